"""The daemon as an operator runs it: the worker pool, SIGHUP, privileges,
systemd's notify protocol and socket activation, the pid file.

Everything runs the real binary on loopback.  Waits are bounded polls of
what the daemon shows (its workers in /proc, its log); nothing asserts a
duration.
"""

import os
import pathlib
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BIN, HOSTNAME, Server, children_of, write_config


def wait_until(predicate, timeout=15.0, step=0.05):
    """Poll predicate until it is true or timeout passes; its last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = predicate()
    return value


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise KeyError(pid)


def hold_session(host, port):
    """A connected client that has said EHLO and waits."""
    c = smtplib.SMTP(host, port, timeout=20)
    c.ehlo("hold.example")
    return c


def send(host, port, n=1, body=b"Subject: t\r\n\r\nhello\r\n"):
    with smtplib.SMTP(host, port, timeout=20) as c:
        for _ in range(n):
            c.sendmail("a@example.com", ["b@example.com"], body)


# --- the pool -------------------------------------------------------------

def test_pool_grows_with_sessions_and_shrinks_when_idle(daemon):
    server = daemon("workers = { min = 2; spare = 2; max = 20; "
                    "max_idle = 2; };")
    assert wait_until(lambda: len(server.workers()) >= 2)
    held = []
    try:
        for _ in range(16):
            held.append(hold_session(server.host, server.port))
        # 16 busy workers, and spare idle ones on top while below max.
        assert wait_until(lambda: len(server.workers()) >= 17), \
            server.workers()
        assert len(server.workers()) <= 20
    finally:
        for c in held:
            c.quit()
    # Idle workers leave after max_idle; the pool settles at min + spare
    # at most.
    assert wait_until(lambda: len(server.workers()) <= 4, timeout=20), \
        server.workers()
    send(server.host, server.port)
    assert server.stop() == 0, server.log()


def test_pool_never_exceeds_max(daemon):
    server = daemon("workers = { min = 1; spare = 5; max = 3; };")
    held = [hold_session(server.host, server.port) for _ in range(3)]
    try:
        time.sleep(1.0)
        assert len(server.workers()) == 3, server.workers()
    finally:
        for c in held:
            c.quit()
    assert server.stop() == 0


def test_worker_replaced_after_max_use(daemon):
    server = daemon("workers = { min = 1; spare = 0; max = 1; "
                    "max_use = 3; };")
    assert wait_until(lambda: len(server.workers()) == 1)
    first = server.workers()[0]
    for _ in range(3):
        send(server.host, server.port)
    # one snapshot per look: the list may change between two reads
    assert wait_until(lambda: (kids := server.workers()) and
                      kids[0] != first), server.workers()
    send(server.host, server.port)
    assert server.stop() == 0


def policies(server):
    """The scheduling policy of each worker, as chrt -p shows it."""
    out = []
    for pid in server.workers():
        try:
            out.append(os.sched_getscheduler(pid))
        except ProcessLookupError:
            pass
    return out


def settled_policies(server, want):
    """The workers' policies once two workers run and all show want; the
    last look otherwise.  A worker takes its policy as it starts."""
    wait_until(lambda: (p := policies(server)) and len(p) >= 2 and
               set(p) == {want})
    return policies(server)


def test_workers_run_sched_batch_by_default(daemon):
    server = daemon("workers = { min = 2; spare = 0; };")
    assert settled_policies(server, os.SCHED_BATCH) == [os.SCHED_BATCH] * 2
    # the master keeps the policy it was started with
    assert os.sched_getscheduler(server.pid) == os.SCHED_OTHER
    send(server.host, server.port)
    assert server.stop() == 0


def test_scheduling_inherit_leaves_workers_alone(daemon):
    server = daemon('workers = { min = 2; spare = 0; scheduling = '
                    '"inherit"; };')
    assert settled_policies(server, os.SCHED_OTHER) == [os.SCHED_OTHER] * 2
    assert "SCHED_BATCH" not in server.log()
    send(server.host, server.port)
    assert server.stop() == 0


def test_policy_chosen_by_the_operator_is_kept(tmp_path):
    # chrt(1) (or systemd's CPUSchedulingPolicy=) put the master under
    # SCHED_IDLE: workers.scheduling = "batch" must not override that.
    cfg = write_config(str(tmp_path / "aiosmtpd.conf"),
                       "workers = { min = 2; spare = 0; };",
                       handler='{ type = "sink"; }')
    server = Server(["chrt", "--idle", "0", BIN, "-n", "--config", cfg])
    server.start()
    try:
        assert settled_policies(server, os.SCHED_IDLE) == \
            [os.SCHED_IDLE] * 2
        send(server.host, server.port)
        assert server.stop() == 0
    finally:
        server.kill()


def backoff_delays(log):
    return [int(x) for x in re.findall(r"died at start; next fork in "
                                       r"(\d+) ms", log)]


def test_workers_dying_at_start_back_off(daemon, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    server = daemon('spool_dir = "%s"; workers = { min = 2; spare = 0; '
                    'max = 2; };' % spool)
    assert wait_until(lambda: len(server.workers()) == 2)
    send(server.host, server.port)
    # The spool directory goes away: every new worker finds it unusable
    # and leaves at once.
    spool.rmdir()
    for pid in server.workers():
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: len(backoff_delays(server.log())) >= 4,
                      timeout=30), server.log()
    delays = backoff_delays(server.log())
    assert all(b > a for a, b in zip(delays, delays[1:4])), delays
    # Once the directory is back, workers start and stay.
    spool.mkdir()
    assert wait_until(lambda: len(server.workers()) == 2, timeout=40)
    send(server.host, server.port)
    assert server.stop() == 0


# --- SIGHUP -----------------------------------------------------------------

RELOAD_CONFIG = """\
data_size_limit = %d;
workers = { min = 2; spare = 2; max = 20; };
"""


def test_reload_under_load_loses_nothing(daemon, tmp_path):
    maildir = tmp_path / "Maildir"
    cfg_text = RELOAD_CONFIG % 33554432
    server = daemon(cfg_text, handler='{ type = "maildir"; path = "%s"; }'
                    % maildir)
    cfg_path = server.argv[server.argv.index("--config") + 1]
    errors = []
    sent = []
    # The last messages of every client wait for the tenth SIGHUP, so the
    # reloads always happen under load, however busy the machine is.
    reloads_done = threading.Event()

    def client(n):
        count = 0
        try:
            while count < 250:
                if count == 200:
                    reloads_done.wait(120)
                # reconnect every 10 messages: many connects cross reloads
                with smtplib.SMTP(server.host, server.port,
                                  timeout=30) as c:
                    for _ in range(10):
                        body = ("Subject: %d-%d\r\n\r\nbody %d %d\r\n"
                                % (n, count, n, count)).encode()
                        c.sendmail("a@example.com", ["b@example.com"],
                                   body)
                        sent.append(body)
                        count += 1
        except Exception as e:  # any refusal or non-250 fails the test
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,))
               for n in range(8)]
    for t in threads:
        t.start()
    hups_under_load = 0
    for i in range(10):
        # Wait for each reload to finish before the next signal, so none
        # is merged with another while pending.
        wait_until(lambda: server.log().count("reloaded:") == i)
        time.sleep(0.1)
        size = 33554432 if i % 2 else 33554431
        write_config(cfg_path, RELOAD_CONFIG % size,
                     handler='{ type = "maildir"; path = "%s"; }' % maildir)
        os.kill(server.pid, signal.SIGHUP)
        hups_under_load += all(t.is_alive() for t in threads)
    reloads_done.set()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    assert len(sent) == 2000
    assert len(os.listdir(maildir / "new")) == 2000
    assert os.listdir(maildir / "tmp") == []
    assert wait_until(lambda: server.log().count("reloaded:") == 10), \
        server.log()
    assert hups_under_load == 10, "the load ended before the reloads did"
    assert server.stop() == 0, server.log()


def test_reload_applies_new_settings(daemon):
    server = daemon("data_size_limit = 1000;")
    cfg_path = server.argv[server.argv.index("--config") + 1]
    with smtplib.SMTP(server.host, server.port, timeout=10) as c:
        c.ehlo("x")
        assert c.esmtp_features["size"] == "1000"
    write_config(cfg_path, "data_size_limit = 2000;")
    os.kill(server.pid, signal.SIGHUP)
    wait_until(lambda: "reloaded:" in server.log())

    def size_now():
        with smtplib.SMTP(server.host, server.port, timeout=10) as c:
            c.ehlo("x")
            return c.esmtp_features["size"]
    # Old idle workers may still take a connection or two while leaving.
    assert wait_until(lambda: size_now() == "2000"), server.log()
    assert server.stop() == 0


def test_broken_reload_keeps_the_old_configuration(daemon):
    server = daemon("data_size_limit = 1000;")
    cfg_path = server.argv[server.argv.index("--config") + 1]
    with open(cfg_path, "a") as f:
        f.write("\n\ntimeout = \"soon\";\n")
    lines = open(cfg_path).read().count("\n")
    os.kill(server.pid, signal.SIGHUP)
    assert wait_until(lambda: "reload failed" in server.log()), server.log()
    line = [l for l in server.log().splitlines() if "reload failed" in l][0]
    assert "%s:%d: 'timeout' must be an integer" % (cfg_path, lines) in line
    with smtplib.SMTP(server.host, server.port, timeout=10) as c:
        c.ehlo("x")
        assert c.esmtp_features["size"] == "1000"
    send(server.host, server.port)
    assert server.stop() == 0


def test_reload_moves_listeners(daemon, tmp_path):
    server = daemon("", listeners=['{ address = "127.0.0.1:0"; }'])
    cfg_path = server.argv[server.argv.index("--config") + 1]
    sock = str(tmp_path / "lmtp.sock")
    # The port-0 listener keeps its socket (and port); a new one is bound.
    write_config(cfg_path, "", listeners=[
        '{ address = "127.0.0.1:0"; }',
        '{ address = "unix:%s"; protocol = "lmtp"; }' % sock])
    os.kill(server.pid, signal.SIGHUP)
    assert wait_until(lambda: os.path.exists(sock)), server.log()
    send(server.host, server.port)
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(10)
    c.connect(sock)
    assert c.recv(1024).startswith(b"220 ")
    c.sendall(b"LHLO x\r\n")
    assert b"250 HELP" in c.recv(4096)
    c.close()
    # Removing it closes and unlinks it.
    write_config(cfg_path, "", listeners=['{ address = "127.0.0.1:0"; }'])
    os.kill(server.pid, signal.SIGHUP)
    assert wait_until(lambda: not os.path.exists(sock)), server.log()
    send(server.host, server.port)
    assert server.stop() == 0


# --- privileges ---------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@needs_root
def test_workers_run_as_the_configured_user(tmp_path):
    user = "daemon"
    uid = pwd.getpwnam(user).pw_uid
    cfg = write_config(str(tmp_path / "a.conf"), 'user = "%s";' % user)
    server = Server([BIN, "--config", cfg]).start()
    try:
        assert wait_until(lambda: len(server.workers()) >= 2)
        assert uid_of(server.pid) == 0  # the master keeps root to reload
        assert {uid_of(p) for p in server.workers()} == {uid}
        send(server.host, server.port)
        assert server.stop() == 0
    finally:
        server.kill()


@needs_root
def test_maildir_belongs_to_the_workers_user(tmp_path):
    # The Maildir's parent must be reachable by the workers' user; pytest's
    # own temporary directories are root's alone.
    top = tempfile.mkdtemp(prefix="aiosmtpd-maildir-")
    os.chmod(top, 0o755)
    uid = pwd.getpwnam("daemon").pw_uid
    os.chown(top, uid, -1)
    maildir = pathlib.Path(top) / "Maildir"
    cfg = write_config(str(tmp_path / "a.conf"), 'user = "daemon";',
                       handler='{ type = "maildir"; path = "%s"; }'
                       % maildir)
    server = Server([BIN, "--config", cfg]).start()
    try:
        send(server.host, server.port)
        assert os.stat(maildir).st_uid == uid
        (name,) = os.listdir(maildir / "new")
        st = os.stat(maildir / "new" / name)
        assert st.st_uid == uid and st.st_mode & 0o777 == 0o600
        assert server.stop() == 0
    finally:
        server.kill()
        shutil.rmtree(top, ignore_errors=True)


@needs_root
def test_root_sessions_need_allow_root(tmp_path):
    cfg = write_config(str(tmp_path / "a.conf"), 'user = "root";')
    done = subprocess.run([BIN, "--config", cfg], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 78, done
    assert "refusing to serve sessions as root" in done.stderr
    assert done.stdout == ""
    cfg = write_config(str(tmp_path / "b.conf"),
                       'user = "root"; allow_root = true;')
    server = Server([BIN, "--config", cfg]).start()
    try:
        assert wait_until(lambda: len(server.workers()) >= 2)
        assert {uid_of(p) for p in server.workers()} == {0}
        assert server.stop() == 0
    finally:
        server.kill()


def test_pid_file(daemon, tmp_path):
    pid_file = tmp_path / "aiosmtpd.pid"
    server = daemon('pid_file = "%s";' % pid_file)
    assert wait_until(pid_file.exists)
    assert int(pid_file.read_text()) == server.pid
    assert server.stop() == 0
    assert not pid_file.exists()


def test_sigusr1_logs_a_pool_summary(daemon):
    server = daemon("")
    send(server.host, server.port, n=3)

    def summary():
        # The worker reports its counts just after the client's QUIT;
        # ask again until the master has them.
        os.kill(server.pid, signal.SIGUSR1)
        time.sleep(0.1)
        return re.search(r"pool: \d+ workers, \d+ busy, \d+ idle, "
                         r"1 sessions, 3 messages", server.log())
    assert wait_until(summary), server.log()
    assert server.stop() == 0


# --- logs ---------------------------------------------------------------------

def test_one_line_per_session_event(daemon):
    server = daemon("")
    with smtplib.SMTP(server.host, server.port, timeout=10) as c:
        c.ehlo("client.example")
        c.sendmail("a@example.com", ["b@example.com", "c@example.com"],
                   b"Subject: x\r\n\r\nsecret body words\r\n")
    assert wait_until(lambda: " disconnect " in server.log())
    log = server.log()
    sid = re.search(r"(\w{12}) 127\.0\.0\.1:\d+ connect ", log).group(1)
    lines = [l for l in log.splitlines() if sid in l]
    assert any("helo=client.example" in l for l in lines), lines
    # size: the content as received, dots removed, CRLFs kept
    assert any("message from=<a@example.com> nrcpt=2 size=33 " in l and
               'result="250 OK"' in l for l in lines), lines
    assert any("disconnect reason=quit" in l and "messages=1" in l
               for l in lines), lines
    assert "secret body words" not in log
    assert server.stop() == 0


# --- systemd --------------------------------------------------------------------

class NotifySocket:
    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []

    def wait(self, text, timeout=15.0, after=0):
        """Wait for a message holding text, among those from index after."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in m for m in self.messages[after:]):
                return True
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return False

    def close(self):
        self.sock.close()


def test_systemd_notify(tmp_path):
    ns = NotifySocket(str(tmp_path / "notify"))
    cfg = write_config(str(tmp_path / "a.conf"), "")
    env = dict(os.environ, NOTIFY_SOCKET=ns.path)
    server = Server([BIN, "-n", "--config", cfg], env=env).start()
    try:
        assert ns.wait("READY=1"), ns.messages
        assert ns.wait("MAINPID=%d" % server.pid), ns.messages
        send(server.host, server.port, n=2)
        assert ns.wait("STATUS=0 busy, "), ns.messages
        assert ns.wait("1 sessions, 2 messages"), ns.messages
        os.kill(server.pid, signal.SIGHUP)
        assert ns.wait("RELOADING=1"), ns.messages
        reloading = ns.messages.index("RELOADING=1")
        assert ns.wait("READY=1", after=reloading + 1), ns.messages
        server.proc.send_signal(signal.SIGTERM)
        assert ns.wait("STOPPING=1"), ns.messages
        assert server.proc.wait(30) == 0
        # Workers never speak to systemd in the master's name.
        assert all(m.startswith(("READY=1", "STATUS=", "RELOADING=1",
                                 "STOPPING=1")) for m in ns.messages)
    finally:
        server.kill()
        ns.close()


def test_socket_activation(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    cfg = write_config(str(tmp_path / "a.conf"), "", listeners=[
        '{ address = "127.0.0.1:%d"; }' % port])

    # The socket goes to fd 3 (bash, as dash cannot name fds above 9)
    # and LISTEN_PID must name the daemon itself:
    # the shell's $$ is the pid that exec hands over.
    fd = listener.fileno()
    move = "" if fd == 3 else "exec 3<&%d %d<&-; " % (fd, fd)
    argv = ["bash", "-c", move + 'export LISTEN_PID=$$ LISTEN_FDS=1; '
            'exec "$@"', "sh", BIN, "-n", "--config", cfg]
    proc = subprocess.Popen(argv, pass_fds=(fd,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    listener.close()  # only the daemon holds it now
    try:
        assert wait_until(lambda: len(children_of(proc.pid)) >= 1)
        send("127.0.0.1", port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        err = proc.stderr.read().decode()
        assert "passed in by systemd" in err, err
        assert "bind(" not in err, err
    finally:
        if proc.poll() is None:
            for pid in children_of(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait(10)


# --- where the log goes without a configured target --------------------------

# Runs the daemon in a mount namespace of its own, with /dev/log hidden
# (a machine with no syslog daemon, like this one or a container) or with
# a socket of the test's own mounted there (a machine with one).
NAMESPACE_SCRIPT = r'''
set -e
case "$1" in
hide)
	[ -e /dev/log ] && mount --bind /dev/null /dev/log
	;;
listen)
	mount --bind /dev "$2/olddev"
	mount -t tmpfs -o mode=0755 tmpfs /dev
	for f in null zero random urandom; do
		: > "/dev/$f"
		mount --bind "$2/olddev/$f" "/dev/$f"
	done
	: > /dev/log
	mount --bind "$2/log.sock" /dev/log
	;;
esac
shift 2
exec "$@"
'''


def namespaced_daemon(tmp_path, how, args):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a mount namespace")
    (tmp_path / "olddev").mkdir()
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            NAMESPACE_SCRIPT, "sh", how, str(tmp_path), BIN] + args
    return Server(argv).start()


def test_auto_log_without_syslog_goes_to_stderr(tmp_path):
    """With stderr not a terminal the log would go to syslog; where no
    syslog daemon listens it comes to stderr instead, saying why."""
    server = namespaced_daemon(tmp_path, "hide",
                               ["-n", "-l", "127.0.0.1:0", "-c", "Sink"])
    try:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"x\r\n")
        assert server.stop() == 0
    finally:
        server.kill()
    log = server.log()
    assert "warning: no syslog daemon listens at /dev/log: logging to " \
           "standard error" in log, log
    assert re.search(r" message from=<a@example.com> nrcpt=1 ", log), log


def test_auto_log_with_syslog_goes_to_syslog(tmp_path):
    """Where a syslog daemon listens, the log goes there (facility mail)
    and not to stderr."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "log.sock"))
    sock.settimeout(10)
    received = []
    try:
        server = namespaced_daemon(tmp_path, "listen",
                                   ["-n", "-l", "127.0.0.1:0", "-c", "Sink"])
        try:
            with smtplib.SMTP(server.host, server.port,
                              timeout=10) as client:
                client.sendmail("a@example.com", ["b@example.com"],
                                b"x\r\n")
            deadline = time.monotonic() + 10
            while (not any(b" message from=<a@example.com>" in m
                           for m in received)
                   and time.monotonic() < deadline):
                received.append(sock.recv(4096))
            assert server.stop() == 0
        finally:
            server.kill()
    finally:
        sock.close()
    # <22>: facility mail (2) * 8 + info (6)
    assert any(m.startswith(b"<22>") and b" message from=<a@example.com>"
               in m for m in received), received
    assert "no syslog daemon" not in server.log(), server.log()
    assert "message from=" not in server.log(), server.log()
