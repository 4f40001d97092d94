"""Workers under load and under signals, with the Mailbox handler.

(a) A message just under the default 32 MiB limit and a 40 MiB one
    (refused with 552 after the final dot) leave every worker's peak RSS
    (VmHWM, read from /proc while the daemon runs) under 8 MiB, and the
    big message is stored intact.  Hostile paths at the largest
    command_size_limit (nested comments, long runs of quoted words) keep
    it under 8 MiB too.
(b) kill -9 of the worker serving a session in the middle of DATA: nothing
    in new/ or tmp/ from it, the master forks a replacement, and a session
    open at the same time still delivers its message.
(c) SIGTERM while a ~10 MiB DATA is in flight: the message completes with
    250 and is stored, then the daemon exits 0.
(d) SIGTERM with an idle session and shutdown_timeout = 1: the client gets
    a 421 and the daemon exits 0.

    AIOSMTPD_BIN=/path/to/aiosmtpd AIOSMTPD_BUILDDIR=/path/to/build \\
        /usr/bin/python3 -m pytest tests/integration/test_resources.py
"""

import os
import signal
import smtplib
import socket
import time

import pytest

from conftest import proc_status

SENDER = "anne@example.com"
RCPT = "bart@example.com"
DEFAULT_LIMIT = 33554432
MAX_WORKER_HWM_KIB = 8 * 1024
# make check says when the daemon was built with the sanitizers.
SANITIZED = bool(os.environ.get("AIOSMTPD_SANITIZERS"))
STOP_TIMEOUT = 40.0
CHUNK = 1 << 20


# --- helpers -----------------------------------------------------------------

def body_of_size(size, tag):
    """CRLF text of exactly size octets, lines of 80, tagged."""
    line = (tag + " " + "0123456789" * 8)[:78].encode() + b"\r\n"
    n, rest = divmod(size, len(line))
    if rest == 1:  # no room for a CRLF: make the last line longer
        n, rest = n - 1, rest + len(line)
    body = line * n
    if rest:
        body += b"y" * (rest - 2) + b"\r\n"
    assert len(body) == size
    return body


def message(size, tag):
    """A message of exactly size octets (as sent, CRLF)."""
    head = ("Subject: %s\r\nMessage-ID: <%s@resources.example>\r\n\r\n"
            % (tag, tag)).encode()
    return head + body_of_size(size - len(head), tag)


def stored_body(sent):
    """What the Mailbox stores after the headers: LF line ends."""
    return sent.partition(b"\r\n\r\n")[2].replace(b"\r\n", b"\n")


def start_data(client):
    """EHLO, MAIL (no SIZE), RCPT, DATA: ready for content."""
    code, msg = client.ehlo("client.example")
    assert code == 250, msg
    code, msg = client.mail(SENDER)
    assert code == 250, msg
    code, msg = client.rcpt(RCPT)
    assert code == 250, msg
    code, msg = client.docmd("DATA")
    assert code == 354, msg


def send_chunks(client, data):
    for i in range(0, len(data), CHUNK):
        client.sock.sendall(data[i:i + CHUNK])


def finish_data(client):
    client.sock.sendall(b".\r\n")
    return client.getreply()


def tcp_row(local_port, remote_port):
    """The /proc/net/tcp fields of the loopback TCP socket
    local_port <-> remote_port, or None."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
            if lport == local_port and rport == remote_port:
                return fields
    return None


def tcp_inode(local_port, remote_port):
    fields = tcp_row(local_port, remote_port)
    return fields[9] if fields else None


def wait_read_by_server(server, client, timeout=30.0):
    """Wait until the worker has read everything the client sent so far
    (the server side's receive queue and the client's send queue are
    empty)."""
    cport = client.sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        srv = tcp_row(server.port, cport)
        cli = tcp_row(cport, server.port)
        if srv and cli and srv[4].split(":")[1] == "00000000" \
                and cli[4].split(":")[0] == "00000000":
            return
        time.sleep(0.02)
    pytest.fail("the worker did not read what the client sent")


def serving_worker(server, client, timeout=10.0):
    """The PID of the worker that holds the server side of client's
    connection (found through /proc)."""
    client_port = client.sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inode = tcp_inode(server.port, client_port)
        if inode is not None:
            target = "socket:[%s]" % inode
            for pid in server.workers():
                fd_dir = "/proc/%d/fd" % pid
                try:
                    fds = os.listdir(fd_dir)
                except OSError:
                    continue
                for fd in fds:
                    try:
                        if os.readlink(os.path.join(fd_dir, fd)) == target:
                            return pid
                    except OSError:
                        pass
        time.sleep(0.05)
    pytest.fail("no worker holds the connection from port %d" % client_port)


def wait_workers(server, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    kids = server.workers()
    while not predicate(kids) and time.monotonic() < deadline:
        time.sleep(0.05)
        kids = server.workers()
    return kids


def hwm_of_workers(server):
    return {pid: proc_status(pid, "VmHWM") for pid in server.workers()}


def files(maildir, sub):
    d = os.path.join(str(maildir), sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def read(path):
    with open(str(path), "rb") as f:
        return f.read()


def peer_closed(sock, timeout=10.0):
    """True once the peer has closed (EOF or reset), within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def maildir_server(daemon, maildir, settings="", workers=2):
    return daemon(settings=settings, workers=workers,
                  handler='{ type = "mailbox"; path = "%s"; }' % maildir)


# --- (a) memory --------------------------------------------------------------

def test_big_messages_keep_workers_small(tmp_path, daemon):
    maildir = tmp_path / "Maildir"
    server = maildir_server(daemon, maildir, workers=2)
    # Under AddressSanitizer a worker starts with several MiB of the
    # sanitizer's own: there the bound applies to what a worker grows by
    # beyond its size at start, elsewhere to its whole peak RSS, as the
    # issue states it.  Either way 32 MiB held in memory would exceed it.
    baseline = {p: proc_status(p, "VmRSS") if SANITIZED else 0
                for p in server.workers()}
    # Just under the default limit, whatever counts the limit applies to.
    big = message(DEFAULT_LIMIT - 64 * 1024, "big")
    huge = message(40 * 1024 * 1024, "huge")
    served = set()
    with smtplib.SMTP(server.host, server.port, timeout=120) as client:
        served.add(serving_worker(server, client))
        start_data(client)
        send_chunks(client, big)
        code, msg = finish_data(client)
        assert code == 250, msg

        # The 40 MiB one on the same session: read to the end, refused.
        code, msg = client.mail(SENDER)
        assert code == 250, msg
        code, msg = client.rcpt(RCPT)
        assert code == 250, msg
        code, msg = client.docmd("DATA")
        assert code == 354, msg
        send_chunks(client, huge)
        code, msg = finish_data(client)
        assert (code, msg) == (552, b"Error: Too much mail data")
        assert client.noop()[0] == 250  # the session goes on
        hwm_first = hwm_of_workers(server)

    # The 40 MiB one again on a fresh session (possibly the other worker).
    with smtplib.SMTP(server.host, server.port, timeout=120) as client:
        served.add(serving_worker(server, client))
        start_data(client)
        send_chunks(client, huge)
        code, msg = finish_data(client)
        assert (code, msg) == (552, b"Error: Too much mail data")
        hwm = hwm_of_workers(server)

    for pid in served:
        assert pid in hwm, "worker %d that served is gone" % pid
    hwm.update({p: max(v, hwm.get(p, 0)) for p, v in hwm_first.items()})
    too_big = {p: v for p, v in hwm.items()
               if v - baseline.get(p, 0) >= MAX_WORKER_HWM_KIB}
    assert too_big == {}, "peak RSS in KiB per worker: %r (at start: %r)" \
        % (hwm, baseline)

    assert files(maildir, "tmp") == []
    stored = files(maildir, "new")
    assert len(stored) == 1, stored
    data = read(maildir / "new" / stored[0])
    assert b"\nSubject: big\n" in b"\n" + data
    assert data.endswith(b"\n\n" + stored_body(big)), \
        "the stored 32 MiB message differs from what was sent"
    assert server.stop() == 0, server.log()


def test_hostile_paths_keep_workers_small(daemon):
    # Paths a client can send at the largest command_size_limit: nested
    # comments, long runs of comments and of quoted words.  The parser
    # once copied the rest of the line for every comment (125 MB and half
    # a second for the first of these); each must get its reply at once
    # and leave the worker small.
    server = daemon(settings="command_size_limit = 32768;", workers=1)
    baseline = {p: proc_status(p, "VmRSS") if SANITIZED else 0
                for p in server.workers()}
    paths = [
        ("<" + "(a" * 16000 + ">", 553),
        ("<" + "(a)" * 10000 + "b@c>", 250),
        ("<" + "a(b)." * 6000 + "@b>", 250),
        ("<" + '"a".' * 8000 + "@b>", 250),
        ("<" + "(a\\)" * 6000 + "b@c>", 553),
    ]
    with smtplib.SMTP(server.host, server.port, timeout=60) as client:
        assert client.ehlo("hostile.example")[0] == 250
        for path, want in paths:
            code, msg = client.docmd("MAIL FROM:" + path)
            assert code == want, (path[:20], code, msg)
            assert client.rset()[0] == 250
        assert client.noop()[0] == 250
        hwm = hwm_of_workers(server)
    # AddressSanitizer keeps freed blocks in quarantine, so there the
    # peak grows with all five parses, each a few MiB; 32 MiB is still a
    # quarter of what one of them took before.
    bound = 4 * MAX_WORKER_HWM_KIB if SANITIZED else MAX_WORKER_HWM_KIB
    too_big = {p: v for p, v in hwm.items()
               if v - baseline.get(p, 0) >= bound}
    assert too_big == {}, "peak RSS in KiB per worker: %r (at start: %r)" \
        % (hwm, baseline)
    assert server.stop() == 0, server.log()


# --- (b) kill -9 in the middle of DATA ---------------------------------------

def test_kill_worker_during_data(tmp_path, daemon):
    maildir = tmp_path / "Maildir"
    server = maildir_server(daemon, maildir, workers=2)
    before = wait_workers(server, lambda k: len(k) == 2)
    assert len(before) == 2, before
    victim_msg = message(4 * CHUNK, "victim")
    other_msg = message(2 * CHUNK, "survivor")

    victim = smtplib.SMTP(server.host, server.port, timeout=60)
    other = smtplib.SMTP(server.host, server.port, timeout=60)
    try:
        victim_pid = serving_worker(server, victim)
        other_pid = serving_worker(server, other)
        assert victim_pid != other_pid
        start_data(victim)
        start_data(other)
        send_chunks(victim, victim_msg[:len(victim_msg) // 2])
        send_chunks(other, other_msg[:len(other_msg) // 2])
        # The victim's worker is inside DATA and has taken content.
        wait_read_by_server(server, victim)
        wait_read_by_server(server, other)

        os.kill(victim_pid, signal.SIGKILL)
        assert peer_closed(victim.sock), "the killed session stayed open"

        kids = wait_workers(
            server, lambda k: len(k) == 2 and victim_pid not in k)
        assert victim_pid not in kids
        assert len(kids) == 2, "no replacement worker: %r" % kids
        assert other_pid in kids
        replacement = set(kids) - set(before)
        assert len(replacement) == 1, (before, kids)

        # The other session, open all along, still completes its message.
        send_chunks(other, other_msg[len(other_msg) // 2:])
        code, msg = finish_data(other)
        assert code == 250, msg
        assert other.quit()[0] == 221
    finally:
        victim.close()
        other.close()

    assert files(maildir, "tmp") == []
    stored = files(maildir, "new")
    assert len(stored) == 1, stored
    data = read(maildir / "new" / stored[0])
    assert b"Subject: survivor\n" in data
    assert data.endswith(b"\n\n" + stored_body(other_msg))

    # And the pool still serves new sessions.
    for _ in range(3):
        with smtplib.SMTP(server.host, server.port, timeout=30) as client:
            assert client.sendmail(SENDER, [RCPT],
                                   message(2048, "after")) == {}
    assert len(files(maildir, "new")) == 4
    assert files(maildir, "tmp") == []
    assert server.stop() == 0, server.log()


# --- (c) SIGTERM while DATA is in flight -------------------------------------

def test_sigterm_lets_data_in_flight_finish(tmp_path, daemon, connect):
    maildir = tmp_path / "Maildir"
    server = maildir_server(daemon, maildir, workers=2,
                            settings="shutdown_timeout = 5;")
    msg = message(10 * CHUNK, "inflight")
    # The other worker holds an idle session meanwhile.
    idle = connect(server, timeout=30)
    assert idle.reply().startswith(b"220 ")
    with smtplib.SMTP(server.host, server.port, timeout=60) as client:
        serving_worker(server, client)
        start_data(client)
        send_chunks(client, msg[:len(msg) // 2])
        wait_read_by_server(server, client)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # let the stop request reach the workers
        send_chunks(client, msg[len(msg) // 2:])
        code, text = finish_data(client)
        assert code == 250, text
        stored = files(maildir, "new")
        assert len(stored) == 1, stored
        try:
            client.quit()
        except smtplib.SMTPServerDisconnected:
            pass
    reply = idle.reply()
    assert reply.startswith(b"421 "), (reply, server.log())
    try:
        status = server.proc.wait(STOP_TIMEOUT)
    except Exception:
        pytest.fail("the daemon did not exit after SIGTERM; log:\n"
                    + server.log())
    assert status == 0, server.log()
    assert files(maildir, "tmp") == []
    data = read(maildir / "new" / stored[0])
    assert data.endswith(b"\n\n" + stored_body(msg))


# --- (d) SIGTERM with an idle session ----------------------------------------

def expect_421_and_exit_0(server, clients, maildir):
    """After SIGTERM: every client gets a 421 and is closed; exit 0."""
    replies = [c.reply() for c in clients]
    closed = [c.closed(timeout=10) for c in clients]
    try:
        status = server.proc.wait(STOP_TIMEOUT)
    except Exception:
        pytest.fail("the daemon did not exit after SIGTERM; log:\n"
                    + server.log())
    if not all(r.startswith(b"421 ") for r in replies):
        pytest.fail("replies %r instead of 421s; exit status %r; log:\n%s"
                    % (replies, status, server.log()))
    assert all(closed), "connection left open after 421"
    assert status == 0, server.log()
    assert files(maildir, "new") == []
    assert files(maildir, "tmp") == []


@pytest.mark.parametrize("state", ["after-greeting", "after-ehlo",
                                   "in-transaction"])
def test_sigterm_idle_sessions_get_421(tmp_path, daemon, connect, state):
    maildir = tmp_path / "Maildir"
    server = maildir_server(daemon, maildir, settings="shutdown_timeout = 1;",
                            workers=2)
    # One idle session per worker: both must be told.
    clients = [connect(server, timeout=30) for _ in range(2)]
    for client in clients:
        assert client.reply().startswith(b"220 ")
        if state != "after-greeting":
            assert client.cmd("EHLO client.example").startswith(b"250")
        if state == "in-transaction":
            assert client.cmd("MAIL FROM:<%s>" % SENDER).startswith(b"250")
            assert client.cmd("RCPT TO:<%s>" % RCPT).startswith(b"250")
    server.proc.send_signal(signal.SIGTERM)
    expect_421_and_exit_0(server, clients, maildir)


def test_sigterm_right_after_start(tmp_path, daemon, connect):
    """A stop request as soon as the daemon says it is ready (a supervisor
    or a test harness may well do that) is one signal like any other: the
    idle session gets its 421 and the daemon exits 0.  Repeated, because
    what goes wrong here depends on how far the workers have got."""
    for i in range(12):
        maildir = tmp_path / ("Maildir%d" % i)
        server = maildir_server(daemon, maildir,
                                settings="shutdown_timeout = 1;", workers=2)
        client = connect(server, timeout=30)
        assert client.reply().startswith(b"220 ")
        server.proc.send_signal(signal.SIGTERM)
        expect_421_and_exit_0(server, [client], maildir)
