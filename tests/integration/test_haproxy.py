"""Scale-out behind a real HAProxy (Debian's package), on loopback.

Two daemon instances deliver into one shared Maildir, as two hosts would
into shared storage; HAProxy, started by the test with its own temporary
configuration (never the system service), balances connections between
them round-robin and opens each with a PROXY header:

- send-proxy-v2: 1,000 messages from a client bound to 127.0.0.2, plus
  some from ::1 (so the header carries IPv6 over an IPv4 hop);
- send-proxy (v1): 100 messages the same way.

HAProxy itself connects from 127.0.0.1, so an address of 127.0.0.2 or ::1
can only come from the header.  Every stored message must name, in
X-Peer, the exact client address and port its sender used (each message
carries them in a header of its own), both instances must have taken
mail, and their log lines must name the client too.

Run with Debian's interpreter (see test_sidebyside.py).
"""

import concurrent.futures
import glob
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import time

import pytest

import conftest

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CLIENT_V4 = "127.0.0.2"
MESSAGES_V2 = 1000
MESSAGES_V6 = 50
MESSAGES_V1 = 100
PARALLEL = 4


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port nobody listens on right now (HAProxy needs fixed ports)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class HAProxy:
    """haproxy -db (foreground) with a temporary configuration."""

    def __init__(self, path, backends):
        self.fe = {"v2": free_port(), "v6": free_port(socket.AF_INET6, "::1"),
                   "v1": free_port()}
        servers_v2 = "".join(
            "    server mx%d %s:%d send-proxy-v2\n" % (i, h, p)
            for i, (h, p) in enumerate(backends))
        servers_v1 = "".join(
            "    server mx%d %s:%d send-proxy\n" % (i, h, p)
            for i, (h, p) in enumerate(backends))
        text = (
            "global\n    maxconn 512\n\n"
            "defaults\n    mode tcp\n    timeout connect 5s\n"
            "    timeout client 30s\n    timeout server 30s\n\n"
            "frontend smtp_v2\n    bind 127.0.0.1:%d\n"
            "    bind [::1]:%d\n    default_backend mx_v2\n\n"
            "frontend smtp_v1\n    bind 127.0.0.1:%d\n"
            "    default_backend mx_v1\n\n"
            "backend mx_v2\n    balance roundrobin\n%s\n"
            "backend mx_v1\n    balance roundrobin\n%s" % (
                self.fe["v2"], self.fe["v6"], self.fe["v1"], servers_v2,
                servers_v1))
        with open(path, "w") as f:
            f.write(text)
        self.path = path
        self.proc = None

    def start(self):
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", self.path],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", self.path], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.log = conftest.OutputReader(self.proc.stdout)
        # Ready once every frontend accepts (bounded).
        deadline = time.monotonic() + conftest.STARTUP_TIMEOUT
        for host, port in (("127.0.0.1", self.fe["v2"]),
                           ("::1", self.fe["v6"]),
                           ("127.0.0.1", self.fe["v1"])):
            while True:
                assert self.proc.poll() is None, self.log.text()
                try:
                    socket.create_connection((host, port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, self.log.text()
                    time.sleep(0.05)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def cluster(daemon, tmp_path):
    """(haproxy, [instance, instance], maildir)"""
    maildir = tmp_path / "shared-Maildir"
    handler = '{ type = "mailbox"; path = "%s"; }' % maildir
    listener = ('{ address = "127.0.0.1:0"; proxy_protocol_timeout = 5; '
                'proxy_protocol_from = [ "127.0.0.1" ]; }')
    instances = [daemon(listeners=[listener], handler=handler, workers=4)
                 for _ in range(2)]
    haproxy = HAProxy(str(tmp_path / "haproxy.cfg"),
                      [(s.host, s.port) for s in instances])
    try:
        yield haproxy.start(), instances, maildir
    finally:
        haproxy.stop()


def send_one(port, host, source, n):
    """One message over its own connection; returns the client's
    (address, port) as the daemon should see it."""
    with smtplib.SMTP(host, port, timeout=30,
                      source_address=(source, 0)) as c:
        addr, cport = c.sock.getsockname()[:2]
        msg = ("Subject: %d\r\nX-Test-Client: %s %d\r\n\r\nmessage %d\r\n"
               % (n, addr, cport, n))
        assert c.sendmail("sender@example.com", ["rcpt%d@example.com" % n],
                          msg) == {}
    return addr, cport


def send_many(port, host, source, first, count):
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda n: send_one(port, host, source, n),
                             range(first, first + count)))


def x_peer_of(addr, port):
    if ":" in addr:
        return "('%s', %d, 0, 0)" % (addr, port)
    return "('%s', %d)" % (addr, port)


def stored(maildir):
    """{message number: (X-Test-Client, X-Peer)} of every stored file."""
    out = {}
    for name in glob.glob(str(maildir / "new" / "*")):
        with open(name, "rb") as f:
            text = f.read().decode()
        n = int(re.search(r"^Subject: (\d+)$", text, re.M).group(1))
        client = re.search(r"^X-Test-Client: (\S+) (\d+)$", text, re.M)
        peer = re.search(r"^X-Peer: (.*)$", text, re.M).group(1)
        assert n not in out, "message %d stored twice" % n
        out[n] = (x_peer_of(client.group(1), int(client.group(2))), peer)
    return out


def messages_logged(server, expect_total, instances):
    """The client names in this instance's "message" log lines."""
    def total():
        return sum(i.stderr.text().count(b" message from=")
                   for i in instances)
    deadline = time.monotonic() + 10
    while total() < expect_total and time.monotonic() < deadline:
        time.sleep(0.05)
    return re.findall(r"\w+ (\S+) message from=", server.log())


def check_delivery(haproxy, instances, maildir, sent, kind):
    got = stored(maildir)
    assert sorted(got) == sorted(range(len(sent))), \
        "%d of %d messages stored" % (len(got), len(sent))
    wrong = {n: v for n, v in got.items() if v[0] != v[1]}
    assert not wrong, "X-Peer is not the client for %d messages, e.g. %r" % (
        len(wrong), list(wrong.items())[:3])
    clients = {x_peer_of(*c) for c in sent}
    assert {v[1] for v in got.values()} == clients

    per_instance = [messages_logged(s, len(sent), instances)
                    for s in instances]
    print("\n%s: %d messages through HAProxy; instance A took %d, B took %d"
          % (kind, len(sent), len(per_instance[0]), len(per_instance[1])))
    assert all(len(p) > 0 for p in per_instance), "an instance took no mail"
    assert sum(len(p) for p in per_instance) == len(sent)
    logged = set(per_instance[0]) | set(per_instance[1])
    want = {("[%s]:%d" % c) if ":" in c[0] else ("%s:%d" % c) for c in sent}
    assert logged == want, "log lines name other clients: %r" % (
        sorted(logged - want)[:3])


def test_send_proxy_v2(cluster):
    haproxy, instances, maildir = cluster
    sent = send_many(haproxy.fe["v2"], "127.0.0.1", CLIENT_V4, 0,
                     MESSAGES_V2)
    sent += send_many(haproxy.fe["v6"], "::1", "::1", MESSAGES_V2,
                      MESSAGES_V6)
    assert all(c[0] == CLIENT_V4 for c in sent[:MESSAGES_V2])
    assert all(c[0] == "::1" for c in sent[MESSAGES_V2:])
    check_delivery(haproxy, instances, maildir, sent, "send-proxy-v2")
    # the connect lines name HAProxy's own address as the proxy
    for server in instances:
        assert re.search(r" 127\.0\.0\.2:\d+ connect listener=\S+ "
                         r"proxy=127\.0\.0\.1:\d+\n", server.log())


def test_send_proxy_v1(cluster):
    haproxy, instances, maildir = cluster
    sent = send_many(haproxy.fe["v1"], "127.0.0.1", CLIENT_V4, 0,
                     MESSAGES_V1)
    check_delivery(haproxy, instances, maildir, sent, "send-proxy")

