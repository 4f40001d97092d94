"""SMTP AUTH through Cyrus SASL, against the real daemon.

Users live in a sasldb made with saslpasswd2 in a temporary directory;
clients are swaks (--auth PLAIN, LOGIN, CRAM-MD5), Python's smtplib and
raw sockets.  Every daemon here runs with -d -d, and the last test greps
all their logs for the passwords and AUTH payloads: none may appear.
One test goes through saslauthd, run unprivileged, with its rimap back
end pointed at a small IMAP server in this process.
"""

import base64
import hashlib
import hmac
import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import conftest
from tlsauth import (REALM, USERS, WRONG_PASSWORD, Wire, auth_group, b64,
                     client_context, delivered, listener, maildir_handler,
                     make_cert, make_sasldb, need, plain_b64, run, s, swaks,
                     tls_group, wait_log)

HOST = conftest.HOSTNAME
ALICE = "alice@" + REALM
OK_235 = "235 2.7.0 Authentication successful"
BAD_535 = "535 5.7.8 Authentication credentials invalid"
NEEDS_TLS = ("538 5.7.11 Encryption required for requested authentication "
             "mechanism")
DEBUG = ["-d", "-d"]

# Every daemon this module starts, for test_no_password_in_logs.
SERVERS = []


class Env:
    """Files shared by the module: certificate, sasldb, a Maildir."""

    def __init__(self, root):
        self.root = root
        self.cert, self.key = make_cert(root)
        self.sasldb = make_sasldb(root)
        self.count = 0

    def start(self, auth_extra="", listeners=None, settings="",
              options="", env=None, auth=None):
        """A daemon with STARTTLS, SMTPS and plain listeners (in that
        order, unless given) and a Maildir of its own."""
        self.count += 1
        maildir = os.path.join(self.root, "Maildir%d" % self.count)
        if listeners is None:
            listeners = [listener("starttls"), listener("implicit"),
                         listener()]
        if auth is None:
            auth = auth_group(self.sasldb, auth_extra, options)
        cfg = conftest.write_config(
            os.path.join(self.root, "auth%d.conf" % self.count),
            tls_group(self.cert, self.key) + auth + settings, listeners,
            maildir_handler(maildir))
        server = conftest.Server([conftest.BIN, "-n", "--config", cfg] +
                                 DEBUG, n_addresses=len(listeners),
                                 env=env)
        SERVERS.append(server)
        server.start()
        server.maildir = maildir
        return server


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(str(tmp_path_factory.mktemp("auth")))
    yield e
    for server in SERVERS:
        server.kill()


@pytest.fixture(scope="module")
def server(env):
    """The module's daemon, with every default."""
    return env.start()


def port(server, i):
    return server.addresses[i][1]


def tls_wire(server):
    """A Wire after STARTTLS and EHLO; returns (wire, EHLO reply)."""
    w = Wire(port(server, 0))
    w.reply()
    w.cmd("EHLO client.example")
    assert w.cmd("STARTTLS") == "220 Ready to start TLS"
    w.starttls()
    return w, w.cmd("EHLO client.example")


def messages_with(server, marker):
    """Delivered messages that contain marker (the 250 after DATA came
    after the Maildir's fsync, so they are all there already)."""
    return [m for m in delivered(server.maildir, 1) if marker in m]


def received_header(message):
    m = re.search(r"^Received: from .*?\n(?:\t.*\n)+", message, re.M)
    return m.group(0) if m else ""


# --- Must show: swaks with STARTTLS against a sasldb user ------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_starttls_auth(server, mechanism):
    marker = "mech-%s" % mechanism
    status, out = swaks(server, port(server, 0), "--tls", "--auth",
                        mechanism, "--header", "Subject: " + marker,
                        password=USERS["alice"])
    assert status == 0, out
    assert "<~  " + OK_235 in out
    msgs = messages_with(server, marker)
    assert len(msgs) == 1
    trace = received_header(msgs[0])
    assert "\t(using TLSv1.3 with cipher " in trace, msgs[0]
    assert "\t(authenticated as %s)\n" % ALICE in trace, msgs[0]
    assert "\tby %s (aiosmtpd-c) with ESMTPSA id " % HOST in trace
    assert "auth mechanism=%s user=%s" % (mechanism, ALICE) in server.log()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_wrong_password(server, mechanism):
    status, out = swaks(server, port(server, 0), "--tls", "--auth",
                        mechanism, "--quit-after", "AUTH",
                        password=WRONG_PASSWORD)
    assert status != 0
    assert "<~* " + BAD_535 in out


def test_swaks_unknown_user(server):
    status, out = swaks(server, port(server, 0), "--tls", "--auth", "PLAIN",
                        "--quit-after", "AUTH", user="mallory",
                        password=USERS["alice"])
    assert "<~* " + BAD_535 in out  # never "no such user"


# --- Must show: plaintext and SMTPS ------------------------------------------


def test_plaintext_offers_no_auth(server):
    for i in (2, 0):  # the plain listener, and STARTTLS before STARTTLS
        w = Wire(port(server, i))
        try:
            w.reply()
            ehlo = w.cmd("EHLO client.example")
            assert "AUTH" not in ehlo
            assert w.cmd("AUTH PLAIN " + plain_b64(ALICE, USERS["alice"])) \
                == NEEDS_TLS
            assert w.cmd("AUTH LOGIN") == NEEDS_TLS
        finally:
            w.close()


def test_smtps_offers_auth_and_it_works(server):
    w = Wire(port(server, 1), tls=True)
    try:
        w.reply()
        ehlo = w.cmd("EHLO client.example")
        assert re.search(r"^250-AUTH .*\bPLAIN\b", ehlo, re.M), ehlo
        assert w.cmd("AUTH PLAIN " + plain_b64(ALICE, USERS["alice"])) == \
            OK_235
    finally:
        w.close()
    status, out = swaks(server, port(server, 1), "--tlsc", "--auth", "LOGIN",
                        "--header", "Subject: over-smtps",
                        password=USERS["alice"])
    assert status == 0 and "<~  " + OK_235 in out, out
    msgs = messages_with(server, "over-smtps")
    assert len(msgs) == 1
    trace = received_header(msgs[0])
    assert "\t(authenticated as %s)\n" % ALICE in trace, msgs[0]
    assert "with ESMTPSA id " in trace


def test_ehlo_lists_sasl_mechanisms_sorted(server):
    w, ehlo = tls_wire(server)
    w.close()
    line = [l for l in ehlo.split("\r\n") if l.startswith("250-AUTH ")][0]
    names = line.split()[1:]
    assert names == sorted(names)
    assert {"PLAIN", "LOGIN", "CRAM-MD5"} <= set(names)
    assert "ANONYMOUS" not in names and "NTLM" not in names


def test_smtplib_login(server):
    """smtplib picks CRAM-MD5 first, then PLAIN, then LOGIN."""
    for mechanism in ("CRAM-MD5", "PLAIN", "LOGIN"):
        with smtplib.SMTP("127.0.0.1", port(server, 0), timeout=20) as c:
            c.starttls(context=client_context())
            c.ehlo("client.example")
            c.user, c.password = ALICE, USERS["alice"]
            code, text = c.auth(mechanism, getattr(
                c, "auth_" + mechanism.lower().replace("-", "_")))
            assert (code, text) == (235, OK_235[4:].encode())
            c.sendmail(ALICE, ["b@example.com"],
                       "Subject: smtplib-%s\r\n\r\nhi\r\n" % mechanism)
    with smtplib.SMTP_SSL("127.0.0.1", port(server, 1), timeout=20,
                          context=client_context()) as c:
        assert c.login("bob@" + REALM, USERS["bob"])[0] == 235
        # smtplib takes "503 Already authenticated" as success
        assert c.login("bob@" + REALM, USERS["bob"])[0] == 503


def scram_sha256(w, user, password):
    """SCRAM-SHA-256 (RFC 5802, RFC 7677) by hand: no client program
    here speaks it.  SMTP has no "additional data with success", so the
    server's final message comes as one more 334, answered by an empty
    line.  Returns the last reply."""
    def h(key, msg):
        return hmac.new(key, msg, hashlib.sha256).digest()

    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user.replace("=", "=3D")
                                .replace(",", "=2C"), cnonce)
    reply = w.cmd("AUTH SCRAM-SHA-256 " + b64("n,," + first_bare))
    if not reply.startswith("334 "):
        return reply
    server_first = base64.b64decode(reply[4:]).decode()
    fields = dict(f.split("=", 1) for f in server_first.split(","))
    assert fields["r"].startswith(cnonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                 base64.b64decode(fields["s"]),
                                 int(fields["i"]))
    without_proof = "c=%s,r=%s" % (b64("n,,"), fields["r"])
    auth_message = ",".join((first_bare, server_first,
                             without_proof)).encode()
    client_key = h(salted, b"Client Key")
    signature = h(hashlib.sha256(client_key).digest(), auth_message)
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    reply = w.cmd(b64(without_proof + ",p=" +
                      base64.b64encode(proof).decode()))
    if not reply.startswith("334 "):
        return reply
    server_final = base64.b64decode(reply[4:]).decode()
    expected = h(h(salted, b"Server Key"), auth_message)
    assert server_final == "v=" + base64.b64encode(expected).decode()
    return w.cmd("")


def test_scram_sha_256(server):
    w, ehlo = tls_wire(server)
    try:
        assert "SCRAM-SHA-256" in ehlo
        assert scram_sha256(w, ALICE, WRONG_PASSWORD) == BAD_535
        assert scram_sha256(w, ALICE, USERS["alice"]) == OK_235
    finally:
        w.close()


# --- BEHAVIOR.md's AUTH table on the daemon ----------------------------------


def test_auth_rows(server):
    w = Wire(port(server, 0))
    try:
        w.reply()
        assert w.cmd("AUTH PLAIN") == "503 Error: send EHLO first"
        w.cmd("HELO client.example")
        assert w.cmd("AUTH PLAIN") == \
            "500 Error: command 'AUTH' not recognized"
    finally:
        w.close()
    w, _ = tls_wire(server)
    try:
        assert w.cmd("AUTH") == "501 Not enough value"
        assert w.cmd("AUTH PLAIN a b") == "501 Too many values"
        assert w.cmd("AUTH XYZZY") == \
            "504 5.5.4 Unrecognized authentication type"
        assert w.cmd("AUTH plain") == \
            "504 5.5.4 Unrecognized authentication type"
        assert w.cmd("AUTH PLAIN") == "334 "
        assert w.cmd("*") == "501 5.7.0 Auth aborted"
        assert w.cmd("AUTH PLAIN not-base64!") == \
            "501 5.5.2 Can't decode base64"
        assert w.cmd("AUTH PLAIN " + b64("no-nuls")) == \
            "501 5.5.2 Can't split auth value"
        assert w.cmd("AUTH PLAIN =") == "501 5.5.2 Can't split auth value"
        assert w.cmd("AUTH LOGIN") == "334 " + b64("Username:")
        assert w.cmd("&&&") == "501 5.5.2 Can't decode base64"
        assert w.cmd("AUTH CRAM-MD5 " + b64("x")).startswith("501 ")
        assert w.cmd("AUTH PLAIN " + plain_b64(ALICE, WRONG_PASSWORD)) == \
            BAD_535
        assert w.cmd("AUTH PLAIN") == "334 "
        assert w.cmd(plain_b64(ALICE, USERS["alice"])) == OK_235
        assert w.cmd("AUTH PLAIN") == "503 Already authenticated"
    finally:
        w.close()


def test_failure_limit(server):
    """Wrong credentials are slowed down and the third one ends the
    session (no duration is asserted)."""
    w, _ = tls_wire(server)
    try:
        bad = "AUTH PLAIN " + plain_b64(ALICE, WRONG_PASSWORD)
        assert w.cmd(bad) == BAD_535
        assert w.cmd(bad) == BAD_535
        assert w.cmd(bad) == "421 4.7.0 Too many authentication failures"
        assert w.closed(10.0)
    finally:
        w.close()
    assert "too many authentication failures" in wait_log(
        server, lambda t: "too many authentication" in t)


# --- configuration ----------------------------------------------------------


def test_auth_required(env):
    server = env.start(auth_extra="required = true;")
    w, _ = tls_wire(server)
    try:
        assert w.cmd("MAIL FROM:<a@b>") == "530 5.7.0 Authentication required"
        assert w.cmd("AUTH PLAIN " + plain_b64(ALICE, USERS["alice"])) == \
            OK_235
        assert w.cmd("MAIL FROM:<a@b>") == "250 OK"
    finally:
        w.close()


def test_mechanisms_and_exclude(env):
    server = env.start(auth_extra='mechanisms = ["PLAIN", "LOGIN", '
                       '"CRAM-MD5"]; exclude = ["LOGIN"]; max_failures = 0;')
    w, ehlo = tls_wire(server)
    try:
        assert "250-AUTH CRAM-MD5 PLAIN" in ehlo.split("\r\n")
        assert w.cmd("AUTH LOGIN") == \
            "504 5.5.4 Unrecognized authentication type"
        for _ in range(4):  # no failure limit
            assert w.cmd("AUTH PLAIN " + plain_b64(ALICE, WRONG_PASSWORD)) \
                == BAD_535
    finally:
        w.close()


def test_listener_without_auth(env):
    server = env.start(listeners=[
        listener("starttls", "auth = { enabled = false; };"),
        listener("implicit")])
    w, ehlo = tls_wire(server)
    try:
        assert "AUTH" not in ehlo
        assert w.cmd("AUTH PLAIN " + plain_b64(ALICE, USERS["alice"])) == \
            "504 5.5.4 Unrecognized authentication type"
    finally:
        w.close()
    w = Wire(port(server, 1), tls=True)
    try:
        w.reply()
        assert "250-AUTH " in w.cmd("EHLO x")
    finally:
        w.close()


def test_auth_in_plaintext_when_allowed(env):
    server = env.start(auth_extra="require_tls = false;")
    w = Wire(port(server, 2))
    try:
        w.reply()
        ehlo = w.cmd("EHLO client.example")
        assert re.search(r"^250-AUTH .*\bLOGIN PLAIN\b", ehlo, re.M), ehlo
        assert w.cmd("AUTH PLAIN " + plain_b64(ALICE, USERS["alice"])) == \
            OK_235
        w.cmd("MAIL FROM:<%s>" % ALICE)
        w.cmd("RCPT TO:<b@example.com>")
        w.cmd("DATA")
        assert w.cmd("Subject: plain-auth\r\n\r\nhi\r\n.") == "250 OK"
    finally:
        w.close()
    msgs = messages_with(server, "plain-auth")
    assert "with ESMTPA id " in received_header(msgs[0])


def test_no_sasl_config_file_is_read(env, tmp_path):
    """Cyrus reads aiosmtpd.conf from SASL_CONF_PATH when nothing stops
    it.  That file here names the real sasldb; our configuration names
    none, so Cyrus's own default (/etc/sasldb2, without this user) is
    used and AUTH fails.  Were the file read, AUTH would succeed."""
    (tmp_path / "aiosmtpd.conf").write_text(
        "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
        "sasldb_path: %s\nmech_list: PLAIN LOGIN\n" % env.sasldb)
    server = env.start(
        auth="auth = { sasl = { realm = %s; }; };\n" % s(REALM),
        env=dict(os.environ, SASL_CONF_PATH=str(tmp_path)))
    w, ehlo = tls_wire(server)
    try:
        assert "CRAM-MD5" in ehlo  # our mechanism list, not the file's
        assert w.cmd("AUTH PLAIN " + plain_b64(ALICE, USERS["alice"])) == \
            BAD_535
    finally:
        w.close()


# --- saslauthd --------------------------------------------------------------


class FakeImap:
    """An IMAP server that knows LOGIN and LOGOUT, for saslauthd -a rimap."""

    def __init__(self, users):
        self.users = users
        self.logins = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                self.session(conn.makefile("rwb"))

    def session(self, f):
        try:
            f.write(b"* OK fake IMAP ready\r\n")
            f.flush()
            for _ in range(4):
                line = f.readline().decode("utf-8", "replace")
                tag, _, rest = line.strip().partition(" ")
                if rest.upper().startswith("LOGIN "):
                    args = re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', rest[6:])
                    user, password = [a or b for a, b in args][:2]
                    self.logins.append(user)
                    ok = self.users.get(user.split("@")[0]) == password
                    f.write(("%s %s\r\n" % (tag, "OK done" if ok
                                            else "NO denied")).encode())
                elif rest.upper().startswith("LOGOUT"):
                    f.write(("* BYE\r\n%s OK bye\r\n" % tag).encode())
                    f.flush()
                    return
                else:
                    f.write(("%s BAD what\r\n" % tag).encode())
                f.flush()
        except (OSError, ValueError):
            pass

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


def run_saslauthd(muxdir, imap_port):
    """saslauthd in the foreground, as nobody when we are root."""
    argv = ["saslauthd", "-a", "rimap", "-O", "127.0.0.1/%d" % imap_port,
            "-m", muxdir, "-d", "-n", "0"]
    if os.geteuid() == 0:
        need("setpriv")
        import pwd
        nobody = pwd.getpwnam("nobody")
        os.chown(muxdir, nobody.pw_uid, nobody.pw_gid)
        argv = ["setpriv", "--reuid=%d" % nobody.pw_uid,
                "--regid=%d" % nobody.pw_gid, "--clear-groups"] + argv
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_saslauthd_unprivileged(env):
    need("saslauthd")
    imap = FakeImap(USERS)
    muxdir = tempfile.mkdtemp(prefix="aiosmtpd-saslauthd-")
    proc = run_saslauthd(muxdir, imap.port)
    try:
        mux = os.path.join(muxdir, "mux")
        for _ in range(100):
            if os.path.exists(mux) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert os.path.exists(mux), "saslauthd did not start"
        server = env.start(auth=(
            'auth = { mechanisms = ["PLAIN", "LOGIN"]; sasl = { realm = %s;'
            ' options = { pwcheck_method = "saslauthd"; saslauthd_path = %s;'
            ' }; }; };\n' % (s(REALM), s(mux))))
        status, out = swaks(server, port(server, 0), "--tls", "--auth",
                            "LOGIN", "--quit-after", "AUTH",
                            password=USERS["bob"], user="bob")
        assert "<~  " + OK_235 in out, out
        status, out = swaks(server, port(server, 0), "--tls", "--auth",
                            "PLAIN", "--quit-after", "AUTH",
                            password=WRONG_PASSWORD, user="bob")
        assert "<~* " + BAD_535 in out, out
        assert len(imap.logins) == 2 and all(
            u.startswith("bob") for u in imap.logins)
    finally:
        for pid in conftest.children_of(proc.pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait(10)
        imap.stop()
        shutil.rmtree(muxdir, ignore_errors=True)


# --- Must show: nothing secret in any log -----------------------------------


def secrets():
    """Every password of the run, as typed and as the wire carries it."""
    out = set()
    for user, password in list(USERS.items()) + [("alice", WRONG_PASSWORD)]:
        out.add(password)
        out.add(b64(password))
        for name in (user, "%s@%s" % (user, REALM)):
            out.add(plain_b64(name, password))
    return out


def test_no_password_in_logs(env):
    """Greps the logs of every daemon of this module, all at debug level.
    Run alone, it first makes its own AUTH traffic, so it never passes on
    empty logs."""
    server = env.start()
    for password in (USERS["alice"], WRONG_PASSWORD):
        for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
            swaks(server, port(server, 0), "--tls", "--auth", mechanism,
                  "--quit-after", "AUTH", password=password)
    wait_log(server, lambda t: t.count("auth failed") >= 3)
    logs = "".join(sv.log() for sv in SERVERS)
    assert logs.count("auth mechanism=") >= 3
    assert logs.count("auth failed mechanism=") >= 3
    assert "sasl: " in logs  # Cyrus's own debug messages are in there
    leaked = [x for x in sorted(secrets()) if x in logs]
    assert leaked == []
