"""Helpers for the TLS and AUTH integration tests.

Certificates are made with the openssl command line and user databases
with saslpasswd2, both in a temporary directory, at test time.  Clients
are real programs (swaks, openssl s_client, curl) run with timeouts, or
Python's smtplib and ssl.  Nothing here listens anywhere but 127.0.0.1.
"""

import base64
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import conftest

REALM = "test.local"
# Distinctive passwords, so that test_auth can grep every log for them.
USERS = {
    "alice": "Tr0ub4dor&3-alice-pw",
    "bob": "c0rrect-h0rse-b4ttery-bob",
}
WRONG_PASSWORD = "wr0ng-guess-Zebra-77"
CLIENT_TIMEOUT = 30  # seconds any client program may take


def need(*programs):
    for p in programs:
        if shutil.which(p) is None:
            pytest.skip("%s is not installed (scripts/deps)" % p)


def make_cert(directory, name="server", cn="localhost"):
    """A self-signed EC certificate and its key; returns (cert, key)."""
    need("openssl")
    cert = os.path.join(str(directory), name + "-cert.pem")
    key = os.path.join(str(directory), name + "-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
         "-out", cert, "-days", "2", "-subj", "/CN=" + cn, "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=CLIENT_TIMEOUT)
    return cert, key


def make_sasldb(directory, users=None, realm=REALM):
    """A sasldb with the users, made by saslpasswd2; returns its path."""
    need("saslpasswd2")
    path = os.path.join(str(directory), "sasldb2")
    for user, password in (users or USERS).items():
        subprocess.run(
            ["saslpasswd2", "-f", path, "-c", "-p", "-u", realm, user],
            input=password.encode(), check=True, capture_output=True,
            timeout=CLIENT_TIMEOUT)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """(cert, key) shared by a test module."""
    return make_cert(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def sasldb(tmp_path_factory):
    return make_sasldb(tmp_path_factory.mktemp("sasl"))


def s(value):
    return conftest.libconfig_string(value)


def tls_group(cert, key, extra=""):
    return "tls = { cert = %s; key = %s; %s };\n" % (s(cert), s(key), extra)


def auth_group(sasldb_path, extra="", options=""):
    return ("auth = { %s sasl = { realm = %s; options = { sasldb_path = %s; "
            "%s }; }; };\n" % (extra, s(REALM), s(sasldb_path), options))


def listener(mode=None, extra=""):
    tls = ' tls = "%s";' % mode if mode else ""
    return '{ address = "127.0.0.1:0";%s %s }' % (tls, extra)


def maildir_handler(path):
    return '{ type = "maildir"; path = %s; }' % s(str(path))


def client_context():
    """A client TLS context that accepts the test certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def plain_b64(user, password, authzid=""):
    raw = "%s\0%s\0%s" % (authzid, user, password)
    return base64.b64encode(raw.encode()).decode()


def b64(text):
    return base64.b64encode(text.encode()).decode()


def run(argv, stdin=b"", timeout=CLIENT_TIMEOUT):
    """Run a client program; returns the CompletedProcess (text)."""
    return subprocess.run(argv, input=stdin, capture_output=True,
                          timeout=timeout)


def swaks(server, port, *args, user="alice", password=None):
    """swaks against 127.0.0.1:port; returns (exit status, transcript)."""
    need("swaks")
    argv = ["swaks", "--server", "127.0.0.1:%d" % port,
            "--to", "rcpt@example.com", "--from", "%s@%s" % (user, REALM),
            "--timeout", "20"]
    argv += list(args)
    if password is not None:
        argv += ["--auth-user", "%s@%s" % (user, REALM),
                 "--auth-password", password]
    r = run(argv)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


class Wire:
    """A raw SMTP client that can switch to TLS in the middle."""

    def __init__(self, port, timeout=10.0, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        if tls:
            self.sock = client_context().wrap_socket(self.sock)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(self.buf)
        self.buf += chunk

    def reply(self):
        """One whole reply as text (lines joined by CRLF), "<EOF>" when
        the server closed, "<TIMEOUT>" when it said nothing."""
        lines = []
        try:
            while True:
                while b"\n" not in self.buf:
                    self._fill()
                line, _, self.buf = self.buf.partition(b"\n")
                lines.append(line.decode("utf-8", "replace").rstrip("\r"))
                if line[3:4] != b"-":
                    break
        except EOFError:
            lines.append("<EOF>")
        except (socket.timeout, ssl.SSLError, OSError):
            lines.append("<TIMEOUT>")
        return "\r\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def starttls(self, session=None):
        """Handshake on the plain socket; the buffer must be empty."""
        assert self.buf == b"", self.buf
        self.sock = client_context().wrap_socket(self.sock, session=session)
        return self.sock

    def quiet(self, wait=1.0):
        """Bytes that arrive within wait seconds (b"" when none)."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            chunk = b""
        except (ssl.SSLError, OSError):
            chunk = b"<ERROR>"
        self.sock.settimeout(10.0)
        return self.buf + chunk

    def closed(self, wait=10.0):
        """True when the server closes within wait seconds."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except (ssl.SSLError, ConnectionError):
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_log(server, predicate, timeout=10.0):
    """The server's log once predicate(log text) holds (or the timeout)."""
    return server.stderr.wait_for(
        lambda b: predicate(b.decode("utf-8", "replace")),
        timeout).decode("utf-8", "replace")


def delivered(maildir, count=1, timeout=10.0):
    """The messages in maildir/new once there are count of them."""
    new = os.path.join(str(maildir), "new")
    deadline = time.monotonic() + timeout
    names = []
    while time.monotonic() < deadline:
        names = sorted(os.listdir(new)) if os.path.isdir(new) else []
        if len(names) >= count:
            break
        time.sleep(0.05)
    out = []
    for n in names:
        with open(os.path.join(new, n), "rb") as f:
            out.append(f.read().decode("utf-8", "replace"))
    return out
