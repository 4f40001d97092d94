"""Overload on the real daemon: max_connections_per_client, stress mode
and the queue bound.

max_connections_per_client is counted across all workers (in memory the
master shares with them); the connection past the limit is told
"421 4.7.0 Too many connections" and closed before the greeting.  Stress
mode is Postfix's answer to a pool that is all busy: sessions idle between
commands for stress_timeout are cut, new sessions get stress_timeout as
their timeout, and a connection that has waited queue_timeout for a
worker is told "421 4.3.2 Service currently unavailable".

None of this is aiosmtpd's (it has one process and no such limits), so
nothing here is compared side by side.

Run with Debian's interpreter (see test_sidebyside.py).
"""

import os
import smtplib
import socket
import time

import pytest

import conftest

TOO_MANY = b"421 4.7.0 Too many connections\r\n"
UNAVAILABLE = b"421 4.3.2 Service currently unavailable\r\n"
# make check says when the daemon was built with the sanitizers, whose
# shadow memory makes every process hundreds of MiB larger.
SANITIZED = bool(os.environ.get("AIOSMTPD_SANITIZERS"))


def two_families(daemon, settings):
    """A daemon on 127.0.0.1 and ::1: two distinct client addresses."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    return daemon(settings=settings,
                  listeners=['{ address = "127.0.0.1:0"; }',
                             '{ address = "[::1]:0"; }'])


def greeted(connect, host, port):
    c = connect(host, port)
    reply = c.reply()
    assert reply.startswith(b"220 "), reply
    return c


def test_sixth_connection_from_one_address(daemon, connect):
    server = two_families(
        daemon, "max_connections_per_client = 5;\n"
        "workers = { min = 8; max = 16; spare = 2; };")
    (v4, p4), (v6, p6) = server.addresses
    five = [greeted(connect, v4, p4) for _ in range(5)]

    sixth = connect(v4, p4)
    assert sixth.reply() == TOO_MANY
    assert sixth.closed()
    # Another address is counted on its own.
    other = greeted(connect, v6, p6)
    assert other.cmd("EHLO other.example").startswith(b"250-")
    assert other.cmd("QUIT").startswith(b"221 ")
    # The five still work, and one leaving makes room for one more.
    assert five[0].cmd("NOOP") == b"250 OK\r\n"
    assert five[0].cmd("QUIT").startswith(b"221 ")
    assert five[0].closed()
    deadline = time.monotonic() + 10
    while True:
        c = connect(v4, p4)
        reply = c.reply()
        if reply.startswith(b"220 ") or time.monotonic() > deadline:
            break
        c.close()
        time.sleep(0.05)
    assert reply.startswith(b"220 "), reply
    server.stop()
    assert "max_connections_per_client" in server.log()
    assert "more than 5 connections from 127.0.0.1" in server.log()


def test_killed_worker_gives_its_count_back(daemon, connect):
    """A worker that dies in a session cannot release its client's count
    itself: the master does, or the client would be locked out."""
    server = daemon(settings="max_connections_per_client = 2;\n"
                    "workers = { min = 4; max = 8; spare = 1; };")
    held = [greeted(connect, server.host, server.port) for _ in range(2)]
    assert connect(server.host, server.port).reply() == TOO_MANY
    busy = set(server.workers())
    for pid in busy:
        os.kill(pid, 9)
    for c in held:
        assert c.closed()
    deadline = time.monotonic() + 10
    replies = []
    while time.monotonic() < deadline:
        for c in held:
            c.close()
        held = [connect(server.host, server.port) for _ in range(2)]
        replies = [c.reply() for c in held]
        if all(r.startswith(b"220 ") for r in replies):
            break
        time.sleep(0.1)
    assert all(r.startswith(b"220 ") for r in replies), replies
    assert connect(server.host, server.port).reply() == TOO_MANY


def test_stress_cuts_idle_sessions(daemon, connect):
    """Both workers held by silent clients: the pool goes into stress,
    says so, and the silent sessions are cut after stress_timeout, long
    before their own timeout, so a real client gets through."""
    server = daemon(settings="timeout = 300;\nstress_timeout = 2;\n"
                    "queue_timeout = 60;\n"
                    "workers = { min = 2; max = 2; spare = 1; };")
    silent = [greeted(connect, server.host, server.port) for _ in range(2)]
    started = time.monotonic()
    with smtplib.SMTP(server.host, server.port, timeout=30) as c:
        assert c.sendmail("a@example.com", ["b@example.com"],
                          b"Subject: through\r\n\r\nx\r\n") == {}
    waited = time.monotonic() - started
    for c in silent:
        assert c.closed()
    # Printed, not asserted: these machines are shared.  The message
    # going through at all shows it got a worker, not the queue's 421.
    print("message through after %.1f s with both workers held" % waited)
    # With both workers free for a second, the pool is out of stress.
    server.stderr.wait_for(lambda b: b"stress over" in b, 10)
    server.stop()
    log = server.log()
    assert "stress: all 2 workers busy" in log
    assert log.count("stress: session cut after 2 s idle") == 2
    assert "stress over" in log


def test_session_started_under_stress_gets_stress_timeout(daemon, connect):
    """A session that starts while the pool is under stress has
    stress_timeout as its timeout throughout, even inside DATA, where an
    idle cut does not apply: a client that stalls in the middle of a
    message is let go after stress_timeout, not after timeout (300 s)."""
    server = daemon(settings="timeout = 300;\nstress_timeout = 2;\n"
                    "queue_timeout = 60;\n"
                    "workers = { min = 1; max = 1; spare = 1; };")
    silent = greeted(connect, server.host, server.port)
    # It waits in the backlog; when the silent session is cut, the pool
    # is still under stress (that ends a second after a worker is free).
    late = connect(server.host, server.port, timeout=30)
    assert late.reply().startswith(b"220 ")
    assert silent.closed()
    assert late.cmd("HELO late.example").startswith(b"250 ")
    assert late.cmd("MAIL FROM:<a@example.com>").startswith(b"250 ")
    assert late.cmd("RCPT TO:<b@example.com>").startswith(b"250 ")
    assert late.cmd("DATA").startswith(b"354 ")
    late.send("Subject: stalled\r\n\r\nhalf a li")
    assert late.closed(timeout=30)
    server.stop()
    assert server.log().count("stress: session cut after 2 s idle") == 2


def test_queue_timeout_turns_waiting_connections_away(daemon, connect):
    """Clients that keep their sessions busy (a NOOP every half second)
    are not idle, so they are not cut; a connection waiting behind them
    gets 421 4.3.2 after queue_timeout rather than waiting forever."""
    server = daemon(settings="stress_timeout = 2;\nqueue_timeout = 2;\n"
                    "workers = { min = 1; max = 1; spare = 1; };")
    busy = greeted(connect, server.host, server.port)
    waiting = connect(server.host, server.port)
    waiting.sock.settimeout(0.4)
    reply = b""
    deadline = time.monotonic() + 20
    while not reply and time.monotonic() < deadline:
        assert busy.cmd("NOOP") == b"250 OK\r\n"
        try:
            reply = waiting.reply()
        except socket.timeout:
            pass
    assert reply == UNAVAILABLE
    assert waiting.closed()
    assert busy.cmd("QUIT").startswith(b"221 ")
    # With the worker free again, the next client is served.
    greeted(connect, server.host, server.port)
    server.stop()
    assert "waited 2 s for a worker: told 421 and closed" in server.log()


def cpu_seconds(pid):
    """User and system CPU time of one process so far, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_master_idles_while_connections_wait(daemon, connect):
    """Under stress, with connections waiting in the listen queue, the
    master looks at the queue every fifth of a second and sleeps in
    between.  It used to wait on the listener itself, which stays
    readable while a connection waits: the master spun at a whole CPU
    for as long as the pool was full.  Its CPU time over two seconds
    of that is compared with the two seconds: a resource bound with a
    wide margin, not a duration."""
    server = daemon(settings="timeout = 300;\nstress_timeout = 60;\n"
                    "queue_timeout = 60;\n"
                    "workers = { min = 1; max = 1; spare = 0; };")
    busy = greeted(connect, server.host, server.port)
    waiting = [connect(server.host, server.port) for _ in range(3)]
    server.stderr.wait_for(lambda b: b"stress: all 1 workers busy" in b, 10)
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    time.sleep(2)
    cpu = cpu_seconds(server.pid) - cpu0
    elapsed = time.monotonic() - t0
    assert cpu < elapsed / 4, \
        "master used %.2f s of CPU in %.2f s under stress" % (cpu, elapsed)
    # The queue is still served once the worker is free.
    assert busy.cmd("QUIT").startswith(b"221 ")
    assert waiting[0].reply().startswith(b"220 ")
    server.stop()


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def test_500_silent_connections(daemon):
    """500 connections that say nothing, workers.max = 32: a real client
    still gets its message through (the time is printed, not asserted:
    these machines are shared), and the pool's memory stays bounded."""
    server = daemon(settings="stress_timeout = 1;\nqueue_timeout = 300;\n"
                    "workers = { min = 4; max = 32; spare = 2; };")
    silent = []
    try:
        for _ in range(500):
            silent.append(socket.create_connection(
                (server.host, server.port), timeout=10))
        started = time.monotonic()
        with smtplib.SMTP(server.host, server.port, timeout=120) as c:
            assert c.sendmail("a@example.com", ["b@example.com"],
                              b"Subject: through\r\n\r\nx\r\n") == {}
        waited = time.monotonic() - started
        pids = [server.pid] + server.workers()
        pss = pss_kib(pids)
        print("message through after %.1f s behind 500 silent "
              "connections; %d processes, PSS %.1f MiB"
              % (waited, len(pids), pss / 1024))
        assert len(pids) <= 33
        # 32 workers and the master: a few MiB each at most.
        if not SANITIZED:
            assert pss < 33 * 8 * 1024, pss
    finally:
        for s in silent:
            s.close()
    server.stop()
    assert "stress: all 32 workers busy" in server.log()
