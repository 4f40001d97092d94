"""The command line and the configuration file, driven from outside.

Each test runs the real binary (AIOSMTPD_BIN): version and help, usage
errors (exit 2, usage on stderr), configuration errors (exit 78, FILE:LINE
on stderr), --check-config, privilege dropping, and listeners of every
kind (IPv4 port 0, IPv6, unix sockets) that must then serve mail.

Run with Debian's interpreter:

    AIOSMTPD_BIN=/path/to/aiosmtpd AIOSMTPD_BUILDDIR=/path/to/build \\
        /usr/bin/python3 -m pytest tests/integration/test_cli.py
"""

import grp
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, HOSTNAME, Server, children_of, write_config

RUN_TIMEOUT = 15.0
USAGE_EXIT = 2
CONFIG_EXIT = 78
SETUID_MESSAGE = 'Cannot setuid "nobody"; try running with -n option.'
ADDRESS_LINE = re.compile(rb"^127\.0\.0\.1:([0-9]+)\n")

MESSAGE = (b"From: anne@example.com\r\n"
           b"To: bart@example.com\r\n"
           b"Subject: cli test\r\n"
           b"\r\n"
           b"Hello from the command line tests.\r\n")


# --- helpers -----------------------------------------------------------------

def run(argv, timeout=RUN_TIMEOUT, **kw):
    """Run argv to its end; returns (status, stdout, stderr).

    A process still running after timeout (for instance a daemon that
    started serving when it should have refused to start) is killed with
    its children, and the test fails.
    """
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in children_of(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail("%r still running after %.0f s; stdout %r, stderr %r"
                    % (argv, timeout, out[:500], err[:2000]))
    return proc.returncode, out, err


@pytest.fixture
def empty_config(tmp_path):
    """An empty configuration file, so no file on the host gets in."""
    path = tmp_path / "empty.conf"
    path.write_text("")
    return str(path)


@pytest.fixture
def servers():
    """Servers started by hand, killed at the end whatever happened."""
    started = []

    def start(argv, n_addresses=1):
        server = Server(argv, n_addresses=n_addresses)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()


def wait_workers(server, n, timeout=10.0):
    """The worker PIDs once there are n of them (bounded wait)."""
    deadline = time.monotonic() + timeout
    kids = server.workers()
    while len(kids) != n and time.monotonic() < deadline:
        time.sleep(0.05)
        kids = server.workers()
    return kids


def status_ids(pid, key):
    """The four ids of the Uid: or Gid: line of /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return [int(x) for x in line.split()[1:5]]
    raise KeyError(key)


def send_message(host, port, timeout=10.0):
    with smtplib.SMTP(host, port, timeout=timeout) as client:
        refused = client.sendmail("anne@example.com", ["bart@example.com"],
                                  MESSAGE)
        assert refused == {}


class UnixSMTP(smtplib.SMTP):
    """smtplib over a unix socket: host is the socket's path."""

    def _get_socket(self, host, port, timeout):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(host)
        return sock

    def connect(self, host, port=0, source_address=None):
        self.sock = self._get_socket(host, port, self.timeout)
        self.file = None
        code, msg = self.getreply()
        return code, msg


def wait_path(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.path.exists(path)


def assert_usage_error(status, out, err):
    text = err.decode("utf-8", "replace")
    assert status == USAGE_EXIT, "exit %r, stderr:\n%s" % (status, text)
    assert text.startswith("usage: aiosmtpd"), text
    assert "error:" in text, text
    assert out == b"", out


def can_bind_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --- version, help, usage errors ---------------------------------------------

@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version(flag):
    status, out, err = run([BIN, flag])
    assert status == 0, err
    assert re.match(rb"^aiosmtpd .*[0-9]+\.[0-9]+", out), out
    assert out.count(b"\n") == 1, out


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(flag):
    status, out, err = run([BIN, flag])
    assert status == 0, err
    assert out.startswith(b"usage: aiosmtpd"), out
    for option in (b"--nosetuid", b"--class", b"--size", b"--listen",
                   b"--config", b"--check-config", b"--workers"):
        assert option in out, option


USAGE_ERRORS = {
    "unknown-long-flag": ["--bogus"],
    "unknown-short-flag": ["-x"],
    "flag-value-for-no-value-flag": ["--nosetuid=yes"],
    "size-not-a-number": ["-s", "abc"],
    "size-negative": ["-s", "-5"],
    "size-missing": ["-s"],
    "listen-port-not-a-number": ["-l", "host:notaport"],
    "listen-port-too-large": ["-l", "127.0.0.1:65536"],
    "workers-zero": ["-w", "0"],
    "workers-not-a-number": ["-w", "abc"],
    "class-missing": ["-c"],
    "sink-with-argument": ["-c", "Sink", "x"],
    "dotted-sink-with-argument": ["-c", "aiosmtpd.handlers.Sink", "x"],
    "mailbox-without-dir": ["-c", "Mailbox"],
    "mailbox-two-dirs": ["-c", "Mailbox", "/tmp/a", "/tmp/b"],
    "debugging-bad-stream": ["-c", "Debugging", "stdlog"],
    "debugging-two-streams": ["-c", "Debugging", "stdout", "stderr"],
    "unknown-class": ["-c", "NoSuchHandler"],
    "unknown-dotted-class": ["-c", "aiosmtpd.handlers.NoSuchHandler"],
    "tlscert-without-key": ["--tlscert", "/etc/hostname"],
}


@pytest.mark.parametrize("args", list(USAGE_ERRORS.values()),
                         ids=list(USAGE_ERRORS))
def test_usage_error(args, empty_config):
    # -l 127.0.0.1:0 so that a daemon that wrongly starts binds nothing
    # that matters; run() fails the test if it keeps running.
    argv = [BIN, "-n", "--config", empty_config, "-l", "127.0.0.1:0"]
    if args and args[0] == "-l":
        argv = argv[:-2]
    status, out, err = run(argv + args)
    assert_usage_error(status, out, err)


def test_usage_error_without_config(tmp_path):
    """No --config at all: the flags are still checked first."""
    status, out, err = run([BIN, "-n", "-s", "abc"], cwd=str(tmp_path))
    assert_usage_error(status, out, err)


# --- starting and serving ----------------------------------------------------

def test_listen_port_zero_prints_one_line_and_serves(servers, tmp_path):
    """aiosmtpd -n -l 127.0.0.1:0 with no config: one address line, then
    the default Debugging handler prints the message on stdout."""
    server = servers([BIN, "-n", "-l", "127.0.0.1:0"])
    out = server.stdout.text()
    m = ADDRESS_LINE.match(out)
    assert m, out
    port = int(m.group(1))
    assert port != 0 and port == server.port
    send_message("127.0.0.1", port)
    out = server.stdout.wait_for(
        lambda b: b"------------ END MESSAGE ------------\n" in b, 10.0)
    rest = out[m.end():]
    assert rest.startswith(b"---------- MESSAGE FOLLOWS ----------\n"), out
    assert b"Subject: cli test\n" in rest, out
    assert b"Hello from the command line tests.\n" in rest, out
    # Exactly one line before the message: no other chatter on stdout.
    assert out.count(b"127.0.0.1:") == 1, out
    assert server.stop() == 0, server.log()


def test_dotted_class_name_serves(servers, empty_config):
    server = servers([BIN, "-n", "--config", empty_config,
                      "-l", "127.0.0.1:0", "-c", "aiosmtpd.handlers.Sink"])
    send_message(server.host, server.port)
    assert server.output() == b"", "Sink printed something"
    assert server.stop() == 0, server.log()


def test_cli_size_and_smtputf8_reach_ehlo(servers, empty_config):
    server = servers([BIN, "-n", "--config", empty_config,
                      "-l", "127.0.0.1:0", "-c", "Sink", "-s", "4096", "-u"])
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        code, _ = client.ehlo("client.example")
        assert code == 250
        assert client.esmtp_features.get("size") == "4096"
        assert "smtputf8" in client.esmtp_features
    assert server.stop() == 0, server.log()


def test_workers_flag_sets_pool_size(servers, empty_config):
    server = servers([BIN, "-n", "--config", empty_config,
                      "-l", "127.0.0.1:0", "-c", "Sink", "-w", "3"])
    kids = wait_workers(server, 3)
    assert len(kids) == 3, kids
    # And they stay three: nothing forks beyond the configured number.
    time.sleep(0.5)
    assert len(server.workers()) == 3, server.workers()
    send_message(server.host, server.port)
    assert server.stop() == 0, server.log()


def test_default_pool_starts_min_and_spare(servers, empty_config):
    # Without -w the pool is dynamic: at start it holds workers.min
    # workers, or workers.spare idle ones if that is more.
    shown = subprocess.run([BIN, "-n", "--config", empty_config,
                            "--check-config"], capture_output=True,
                           text=True, timeout=10).stdout
    pool = re.search(r"workers = \{ min = (\d+); max = \d+; "
                     r"spare = (\d+);", shown)
    assert pool, shown
    expected = max(int(pool.group(1)), int(pool.group(2)))
    server = servers([BIN, "-n", "--config", empty_config,
                      "-l", "127.0.0.1:0", "-c", "Sink"])
    assert len(wait_workers(server, expected)) == expected, server.workers()
    time.sleep(0.5)
    assert len(server.workers()) == expected, server.workers()


# --- --check-config ----------------------------------------------------------

CHECK_SETTINGS = """\
ident = "check-config test";
data_size_limit = 1000;
timeout = 42;
command_size_limit = 1024;
smtputf8 = true;
"""


def check_config_conf(tmp_path, maildir):
    return write_config(
        str(tmp_path / "check.conf"), CHECK_SETTINGS,
        ['{ address = "127.0.0.1:0"; protocol = "lmtp"; }'],
        '{ type = "mailbox"; path = "%s"; }' % maildir)


def test_check_config_prints_effective_config(tmp_path):
    maildir = str(tmp_path / "Maildir")
    cfg = check_config_conf(tmp_path, maildir)
    status, out, err = run([BIN, "-n", "--config", cfg, "--check-config"])
    text = out.decode("utf-8", "replace")
    assert status == 0, err.decode(errors="replace")
    for expected in ('hostname = "%s"' % HOSTNAME,
                     'ident = "check-config test"',
                     "data_size_limit = 1000", "timeout = 42",
                     "command_size_limit = 1024", "smtputf8 = true",
                     '"127.0.0.1:0"', '"lmtp"', maildir):
        assert expected in text, "%r missing from:\n%s" % (expected, text)
    # Keys not in the file show their defaults: the *effective* config.
    assert "decode_data = false" in text, text
    assert "local_part_limit = 0" in text, text
    # It only checks: no listener was bound, no Maildir created.
    assert not os.path.exists(maildir)


def test_check_config_shows_command_line_overrides(tmp_path):
    cfg = check_config_conf(tmp_path, str(tmp_path / "Maildir"))
    status, out, err = run([BIN, "-n", "--config", cfg, "--check-config",
                            "-s", "2048"])
    text = out.decode("utf-8", "replace")
    assert status == 0, err.decode(errors="replace")
    assert "data_size_limit = 2048" in text, text
    assert "data_size_limit = 1000" not in text, text


ROUND_TRIP = {
    "maildir-lmtp": (CHECK_SETTINGS,
                     ['{ address = "127.0.0.1:0"; protocol = "lmtp"; }'],
                     '{ type = "mailbox"; path = "/tmp/aiosmtpd-Maildir"; }'),
    "debugging-stderr": ("", None,
                         '{ type = "debugging"; stream = "stderr"; }'),
    "defaults": ("", None, None),
}


@pytest.mark.parametrize("settings,listeners,handler",
                         list(ROUND_TRIP.values()), ids=list(ROUND_TRIP))
def test_check_config_output_is_a_valid_config(tmp_path, settings,
                                               listeners, handler):
    """What --check-config prints loads again and means the same, so an
    operator can start from it."""
    cfg = write_config(str(tmp_path / "first.conf"), settings, listeners,
                       handler)
    if handler is None and listeners is None and not settings:
        with open(cfg, "w"):
            pass  # an empty file: every setting is a default
    status, first, err = run([BIN, "-n", "--config", cfg, "--check-config"])
    assert status == 0, err.decode(errors="replace")
    again = tmp_path / "again.conf"
    again.write_bytes(first)
    status, second, err = run([BIN, "-n", "--config", str(again),
                               "--check-config"])
    assert status == 0, "%s\n--- printed config:\n%s" % (
        err.decode(errors="replace"), first.decode(errors="replace"))

    def body(text):  # comment lines name the file they came from
        return [l for l in text.decode().splitlines()
                if not l.lstrip().startswith(("#", "//"))]
    assert body(second) == body(first)


# --- configuration errors ----------------------------------------------------

CONFIG_ERRORS = {
    # name: (file text, line the error is on, text the message must hold)
    "misspelt-key": (
        'hostname = "mx.example";\ndata_size_limt = 5;\n', 2,
        "data_size_limit"),
    "misspelt-listener-key": (
        'hostname = "mx.example";\nlisteners = (\n'
        '  { adress = "127.0.0.1:0"; }\n);\n', 3, "address"),
    "string-for-number": (
        'hostname = "mx.example";\n\ntimeout = "abc";\n', 3, "timeout"),
    "number-for-string": (
        'hostname = 5;\n', 1, "hostname"),
    "out-of-range-negative": (
        'timeout = -5;\n', 1, "timeout"),
    "out-of-range-small": (
        'hostname = "mx.example";\ncommand_size_limit = 0;\n', 2,
        "command_size_limit"),
    "bad-protocol": (
        'listeners = (\n  { address = "127.0.0.1:0";\n'
        '    protocol = "smtpx"; }\n);\n', 3, "protocol"),
    "bad-handler-type": (
        'hostname = "mx.example";\nhandler = { type = "nope"; };\n', 2,
        "nope"),
    "syntax-error-missing-value": (
        'hostname = "mx.example";\ntimeout = ;\n', 2, ""),
    "syntax-error-unclosed-group": (
        # (no final newline: libconfig reports the end of the file)
        'hostname = "mx.example";\n\n\nhandler = { type = "sink";', 4, ""),
}


@pytest.mark.parametrize("text,line,needle", list(CONFIG_ERRORS.values()),
                         ids=list(CONFIG_ERRORS))
def test_config_error(tmp_path, text, line, needle):
    path = tmp_path / "bad.conf"
    path.write_text(text)
    for extra in ([], ["--check-config"]):
        status, out, err = run([BIN, "-n", "--config", str(path)] + extra)
        msg = err.decode("utf-8", "replace")
        assert status == CONFIG_EXIT, "exit %r with %r, stderr:\n%s" % (
            status, extra, msg)
        assert "%s:%d" % (path, line) in msg, msg
        assert needle in msg, msg
        assert out == b"", out


def test_missing_config_file(tmp_path):
    path = str(tmp_path / "no-such.conf")
    status, out, err = run([BIN, "-n", "--config", path,
                            "-l", "127.0.0.1:0"])
    msg = err.decode("utf-8", "replace")
    assert status == CONFIG_EXIT, "exit %r, stderr:\n%s" % (status, msg)
    assert path in msg, msg
    assert out == b"", out


# --- privileges --------------------------------------------------------------

def nobody_ids():
    try:
        return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    except KeyError:
        return None


@pytest.fixture
def public_bin():
    """A copy of the binary that user nobody can execute (pytest's tmp_path
    is private to root)."""
    d = tempfile.mkdtemp(prefix="aiosmtpd-cli-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "aiosmtpd")
    shutil.copy(BIN, path)
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(d, ignore_errors=True)


def test_setuid_fails_when_not_root(public_bin):
    # As aiosmtpd: an ordinary user other than nobody cannot become
    # nobody.  (Started as nobody itself, aiosmtpd's setuid("nobody")
    # succeeds, and so does ours; see the next test.)
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv(1)")
    try:
        pwd.getpwnam("daemon")
    except KeyError:
        pytest.skip("needs user daemon")
    if os.geteuid() != 0:
        prefix = []  # already not root
    else:
        prefix = ["setpriv", "--reuid=daemon", "--regid=daemon",
                  "--clear-groups"]
    empty = os.path.join(os.path.dirname(public_bin), "empty.conf")
    with open(empty, "w"):
        pass
    os.chmod(empty, 0o644)
    status, out, err = run(prefix + [public_bin, "--config", empty,
                                     "-l", "127.0.0.1:0", "-c", "Sink"])
    msg = err.decode("utf-8", "replace")
    assert status == 1, "exit %r, stderr:\n%s" % (status, msg)
    assert SETUID_MESSAGE in msg, msg
    assert out == b"", "printed an address although it cannot serve"


def test_nobody_without_n_serves(servers, public_bin):
    # aiosmtpd started as nobody without -n calls setuid(nobody), which
    # succeeds; it serves.  So do we.
    if nobody_ids() is None or shutil.which("setpriv") is None or \
            os.geteuid() != 0:
        pytest.skip("needs root, user nobody, group nogroup and setpriv(1)")
    empty = os.path.join(os.path.dirname(public_bin), "empty.conf")
    with open(empty, "w"):
        pass
    os.chmod(empty, 0o644)
    server = servers(["setpriv", "--reuid=nobody", "--regid=nogroup",
                      "--clear-groups", public_bin, "--config", empty,
                      "-l", "127.0.0.1:0", "-c", "Sink"])
    send_message(server.host, server.port)
    assert server.stop() == 0, server.log()


def test_root_without_n_runs_workers_as_nobody(servers, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can setuid to nobody")
    ids = nobody_ids()
    if ids is None:
        pytest.skip("no user nobody / group nogroup on this host")
    uid = pwd.getpwnam("nobody").pw_uid
    gid = pwd.getpwnam("nobody").pw_gid
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    server = servers([BIN, "--config", str(empty), "-l", "127.0.0.1:0",
                      "-w", "2"])
    kids = wait_workers(server, 2)
    assert len(kids) == 2, kids
    # A worker changes user right after fork; give it that moment.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            status_ids(pid, "Uid") != [uid] * 4 for pid in kids):
        time.sleep(0.05)
    for pid in kids:
        assert status_ids(pid, "Uid") == [uid] * 4, pid
        assert status_ids(pid, "Gid") == [gid] * 4, pid
    send_message(server.host, server.port)
    server.stdout.wait_for(
        lambda b: b"------------ END MESSAGE ------------\n" in b, 10.0)
    assert b"Hello from the command line tests.\n" in server.output()
    # The workers that served are still nobody.
    for pid in server.workers():
        assert status_ids(pid, "Uid") == [uid] * 4, pid
    assert server.stop() == 0, server.log()


# --- listeners of every kind -------------------------------------------------

def test_ipv6_listener_from_config(daemon):
    if not can_bind_ipv6():
        pytest.skip("cannot bind ::1 on this host (no IPv6 loopback)")
    server = daemon(listeners=['{ address = "[::1]:0"; }'],
                    handler='{ type = "debugging"; }')
    assert server.host == "::1"
    assert server.stdout.text().startswith(b"[::1]:"), server.stdout.text()
    with smtplib.SMTP("::1", server.port, timeout=10) as client:
        local_port = client.sock.getsockname()[1]
        assert client.sendmail("anne@example.com", ["bart@example.com"],
                               MESSAGE) == {}
    out = server.wait_output(lambda b: b"END MESSAGE" in b)
    # aiosmtpd prints the peer as asyncio gives it: a 4-tuple for IPv6.
    assert ("X-Peer: ('::1', %d, 0, 0)\n" % local_port).encode() in out, out
    assert server.stop() == 0, server.log()


def test_ipv6_listener_from_command_line(servers, empty_config):
    if not can_bind_ipv6():
        pytest.skip("cannot bind ::1 on this host (no IPv6 loopback)")
    server = servers([BIN, "-n", "--config", empty_config,
                      "-l", "[::1]:0", "-c", "Sink"])
    assert server.host == "::1"
    send_message("::1", server.port)
    assert server.stop() == 0, server.log()


def test_unix_listener_smtp(daemon, tmp_path):
    path = str(tmp_path / "smtp.sock")
    server = daemon(listeners=['{ address = "127.0.0.1:0"; }',
                               '{ address = "unix:%s"; }' % path],
                    handler='{ type = "debugging"; }', n_addresses=1)
    assert wait_path(path), "no socket at %s" % path
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    client = UnixSMTP(timeout=10)
    try:
        code, banner = client.connect(path)
        assert code == 220, banner
        assert banner.startswith(HOSTNAME.encode()), banner
        assert client.sendmail("anne@example.com", ["bart@example.com"],
                               MESSAGE) == {}
        client.quit()
    finally:
        client.close()
    out = server.wait_output(lambda b: b"END MESSAGE" in b)
    assert b"Hello from the command line tests.\n" in out, out
    # The TCP listener beside it serves too.
    send_message(server.host, server.port)
    assert server.stop() == 0, server.log()
    # A clean stop removes the socket file it created.
    assert not os.path.exists(path)


def test_unix_listener_lmtp(daemon, tmp_path):
    path = str(tmp_path / "lmtp.sock")
    maildir = tmp_path / "Maildir"
    server = daemon(
        listeners=['{ address = "127.0.0.1:0"; }',
                   '{ address = "unix:%s"; protocol = "lmtp"; }' % path],
        handler='{ type = "mailbox"; path = "%s"; }' % maildir,
        n_addresses=1)
    assert wait_path(path), "no socket at %s" % path
    client = smtplib.LMTP(path, timeout=10)  # smtplib.LMTP speaks AF_UNIX
    try:
        refused = client.sendmail("anne@example.com", ["bart@example.com"],
                                  MESSAGE)
        assert refused == {}
        client.quit()
    finally:
        client.close()
    files = os.listdir(str(maildir / "new"))
    assert len(files) == 1, files
    with open(str(maildir / "new" / files[0]), "rb") as f:
        stored = f.read()
    assert b"X-RcptTo: bart@example.com\n" in stored, stored
    assert server.stop() == 0, server.log()
