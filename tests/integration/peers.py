"""Real next hops for the delivery tests, each started by the test itself.

- Dovecot's LMTP server (Debian's dovecot-lmtpd), run as `dovecot -F` with
  a temporary configuration: a UNIX socket and Maildirs in a temporary
  directory, users from a passwd-file, one of them with a 1 KiB quota so
  that Dovecot refuses it after DATA.  The system's Dovecot is never used.
- Postfix's smtp-sink, on a loopback port, dumping each transaction to a
  file.
- nexthop.py: Debian's aiosmtpd as a recording SMTP next hop, optionally
  with STARTTLS, or a server that accepts and then never answers.

Every process is stopped by its PID at the end of the test.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import PYTHON, Server, children_of

HERE = os.path.dirname(os.path.abspath(__file__))
NEXTHOP = os.path.join(HERE, "nexthop.py")

# user, domain, quota rule (None: no quota)
DOVECOT_USERS = [
    ("anne", "example.com", None),
    ("bob", "example.com", None),
    ("dave", "example.org", None),
    ("carol", "example.org", "*:storage=1K"),
]

DOVECOT_CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
default_internal_user = nobody
default_internal_group = nogroup
default_login_user = nobody
first_valid_uid = 1
mail_location = maildir:{dir}/mail/%d/%n/Maildir
mail_plugins = quota
passdb {{
  driver = passwd-file
  args = {dir}/users
}}
userdb {{
  driver = passwd-file
  args = {dir}/users
  default_fields = uid=nobody gid=nogroup home={dir}/mail/%d/%n
}}
plugin {{
  quota = maildir:User quota
}}
service lmtp {{
  unix_listener {dir}/lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
"""


def wait_until(predicate, timeout=15.0, step=0.05):
    """Poll predicate() until it is true or timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def stop_pid(proc, timeout=15.0):
    """SIGTERM a process we started, then SIGKILL it and its children."""
    if proc.poll() is not None:
        return
    kids = children_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        for pid in kids + children_of(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait(10)
    # Dovecot's children leave with their master; make sure of it.
    for pid in kids:
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), 5.0)


def can_connect_unix(path):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class Dovecot:
    """A private Dovecot LMTP server in a temporary directory."""

    def __init__(self):
        # Short path: UNIX socket names are limited to 108 octets.
        self.dir = tempfile.mkdtemp(prefix="dv", dir="/tmp")
        os.chmod(self.dir, 0o755)
        for sub in ("run", "state", "mail"):
            os.mkdir(os.path.join(self.dir, sub))
        shutil.chown(os.path.join(self.dir, "mail"), "nobody", "nogroup")
        with open(os.path.join(self.dir, "users"), "w") as f:
            for user, domain, quota in DOVECOT_USERS:
                extra = "userdb_quota_rule=%s" % quota if quota else ""
                f.write("%s@%s:{PLAIN}x::::::%s\n" % (user, domain, extra))
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF.format(dir=self.dir))
        self.socket = os.path.join(self.dir, "lmtp")
        self.target = "unix:" + self.socket
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_until(lambda: can_connect_unix(self.socket)):
            self.stop()
            raise RuntimeError("Dovecot did not start: %s" % self.log())
        return self

    def stop(self):
        if self.proc is not None:
            stop_pid(self.proc)
            self.proc = None
        wait_until(lambda: not can_connect_unix(self.socket), 5.0)

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log")) as f:
                return f.read()
        except OSError:
            return ""

    def maildir(self, address):
        user, domain = address.split("@")
        return os.path.join(self.dir, "mail", domain, user, "Maildir")

    def messages(self, address):
        """The files in a user's new/, as bytes."""
        new = os.path.join(self.maildir(address), "new")
        if not os.path.isdir(new):
            return []
        out = []
        for name in sorted(os.listdir(new)):
            with open(os.path.join(new, name), "rb") as f:
                out.append(f.read())
        return out

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def dovecot():
    d = Dovecot().start()
    yield d
    d.cleanup()


def free_port():
    """A loopback port nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.1, one dump file per transaction."""

    def __init__(self, options=()):
        self.dir = tempfile.mkdtemp(prefix="sink", dir="/tmp")
        os.chmod(self.dir, 0o777)
        self.options = list(options)
        self.proc = None
        self.port = None

    def start(self):
        for _ in range(5):  # another process may take the port first
            self.port = free_port()
            self.proc = subprocess.Popen(
                ["smtp-sink", "-u", "nobody", "-h", "sink.test.example",
                 "-d", os.path.join(self.dir, "%H%M%S.")] + self.options +
                ["127.0.0.1:%d" % self.port, "100"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
            if wait_until(self._listening, 5.0):
                return self
            stop_pid(self.proc)
        raise RuntimeError("smtp-sink did not start")

    def _listening(self):
        if self.proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def dumps(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, name), "rb") as f:
                out.append(f.read())
        return out

    def cleanup(self):
        if self.proc is not None:
            stop_pid(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def smtp_sink():
    """Factory: smtp_sink(options=[...]) -> a started SmtpSink."""
    started = []

    def start(options=()):
        sink = SmtpSink(options)
        started.append(sink)
        return sink.start()

    yield start
    for sink in started:
        sink.cleanup()


@pytest.fixture
def nexthop(tmp_path):
    """Factory: nexthop(mode="record"|"silent", tls=False) -> Server whose
    stdout carries one JSON line per message it accepted."""
    started = []

    def start(mode="record", tls=False):
        argv = [PYTHON, NEXTHOP, "--mode", mode]
        if tls:
            argv += ["--cert", make_cert(tmp_path)]
        server = Server(argv)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


def make_cert(directory):
    """A self-signed certificate for "localhost", key in the same file."""
    path = os.path.join(str(directory), "localhost.pem")
    if not os.path.exists(path):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost",
             "-keyout", path + ".key", "-out", path + ".crt"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=60)
        with open(path, "wb") as out:
            for part in (".crt", ".key"):
                with open(path + part, "rb") as f:
                    out.write(f.read())
    return path
