"""PROXY protocol v1 and v2 (BEHAVIOR.md, "PROXY protocol").

Every header of aiosmtpd's own tests/test_proxyprotocol.py is played to
our daemon and to Debian's aiosmtpd 1.4.3 (refserver.py, with a
handle_PROXY that accepts, since aiosmtpd closes every PROXY connection
without one), both with proxy_protocol_timeout = 0.3 as in those tests.
Each must end the same way: a greeting and a working session, or a close
with no greeting.  The timing cases of aiosmtpd's TestWithController
(hiccup, timeout, incomplete) are played the same way.

Then, on our daemon only: the **fix** row (the original client replaces
the peer in X-Peer, the Maildir and the logs, where aiosmtpd keeps the
proxy), LOCAL and UNKNOWN keeping the real peer, IPv6 on both sides,
proxy_protocol_from, the log lines, and a second listener left alone.

Run with Debian's interpreter (see test_sidebyside.py).
"""

import base64
import glob
import ipaddress
import os
import random
import re
import socket
import ssl
import struct
import time

import pytest

import conftest
from tlsauth import client_context, listener, pki, tls_group  # noqa: F401

pytest.importorskip("aiosmtpd.smtp")

HOST = conftest.HOSTNAME
TIMEOUT = 0.3            # proxy_protocol_timeout, as aiosmtpd's tests
LATE = TIMEOUT * 2.0     # aiosmtpd's TIMEOUT_MULTIPLIER
READ_TIMEOUT = 10.0      # no byte within this: the server hangs (a failure)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

# aiosmtpd's TEST_V2_DATA1_XTRA: a header with TLVs, then a line that is
# not part of it
V2_DATA1_XTRA = base64.b64decode(
    "DQoNCgANClFVSVQKIREAcn8AAAF/AAABsFJipQMABFT9xv8CAAlBVVRIT1JJVFkFAAlVTklRVUVf"
    "SUQgAEQBAAAAACEAB1RMU3YxLjIlAAdSU0E0MDk2JAAKUlNBLVNIQTI1NiMAG0VDREhFLVJTQS1B"
    "RVMyNTYtR0NNLVNIQTM4NFRlc3QgZGF0YSB0aGF0IGlzIG5vdCBwYXJ0IG9mIFBST1hZdjIuCg==")
V2_DATA1_EXACT = V2_DATA1_XTRA[:130]
GOOD_V1 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"
HANDSHAKES = {"v1": GOOD_V1, "v2": V2_DATA1_EXACT}


def v2(cmd=0, fam=0, proto=0, payload=b"", ver=2, sig=V2_SIG):
    """A v2 header as aiosmtpd's _send_valid/_send_invalid build it."""
    return (sig + bytes([(ver << 4) | cmd, (fam << 4) | proto]) +
            struct.pack("!H", len(payload)) + payload)


def inet4(src="10.212.4.33", dst="10.11.12.13", sport=0, dport=65535):
    return (ipaddress.IPv4Address(src).packed +
            ipaddress.IPv4Address(dst).packed + struct.pack("!HH", sport, dport))


def inet6(src="2020:dead::0001", dst="2021:cafe::0022", sport=65534,
          dport=8080):
    return (ipaddress.IPv6Address(src).packed +
            ipaddress.IPv6Address(dst).packed + struct.pack("!HH", sport, dport))


UNIX = struct.pack("108s", b"/proc/source") + struct.pack("108s", b"/proc/dest")
DEAD, CAFE = "2020:dead::0001", "2021:cafe::0002"


def v1(text):
    return text.encode("ascii") + b"\r\n"


def _random_v1(rng, family):
    if family == 4:
        src = ".".join(str(rng.getrandbits(8)) for _ in range(4))
        dst = ".".join(str(rng.getrandbits(8)) for _ in range(4))
    else:
        src = ":".join("%04x" % rng.getrandbits(16) for _ in range(8))
        dst = ":".join("%04x" % rng.getrandbits(16) for _ in range(8))
    return v1("PROXY TCP%d %s %s %d %d" % (
        family, src, dst, rng.getrandbits(16), rng.getrandbits(16)))


_rng = random.Random(6)

# (id, header, accepted?) -- the ids are aiosmtpd's test names
SCENARIOS = [
    # TestGetV1
    ("v1_noproxy", b"HELO example.org\r\n", False),
    ("v1_joaoreis81", v1("PROXY TCP4 222.222.22.222 111.11.11.111 33504 25"),
     True),
    ("v1_haproxydoc", v1("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443"),
     True),
    ("v1_cloudflare4", v1("PROXY TCP4 192.0.2.0 192.0.2.255 42300 443"), True),
    ("v1_cloudflare6", v1("PROXY TCP6 2001:db8:: "
                          "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff 42300 443"),
     True),
    ("v1_avinetworks", v1("PROXY TCP4 12.97.16.194 136.179.21.69 31646 80"),
     True),
    ("v1_googlecloud", v1("PROXY TCP4 192.0.2.1 198.51.100.1 15221 110"),
     True),
    ("v1_tcp4", v1("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535"), True),
    ("v1_tcp4_random", _random_v1(_rng, 4), True),
    ("v1_tcp6_shortened", v1("PROXY TCP6 %s %s 8000 65535" % (DEAD, CAFE)),
     True),
    ("v1_tcp6_random", _random_v1(_rng, 6), True),
    ("v1_unknown", v1("PROXY UNKNOWN whatever"), True),
    ("v1_unknown_short", v1("PROXY UNKNOWN"), True),
    ("v1_invalid_sig", v1("PROXY1 UNKNOWN whatevs"), False),
    ("v1_unsupported_family", v1("PROXY TCP5 123.123.123.123 "
                                 "231.231.231.231 80 90"), False),
    ("v1_unsupported_family_2", v1("PROXY TCP 123.123.123.123 "
                                   "231.231.231.231 80 90"), False),
    ("v1_unsupported_proto", v1("PROXY UDP4 123.123.123.123 "
                                "231.231.231.231 80 90"), False),
    ("v1_too_long", v1("PROXY UNKNOWN " + "*" * 100), False),
    ("v1_malformed_nocr", b"PROXY UNKNOWN\n", False),
    ("v1_malformed_notproxy", v1("NOTPROX TCP4 1.2.3.4 5.6.7.8 65535 65535"),
     False),
    ("v1_malformed_wrongtype_64", v1("PROXY TCP6 1.2.3.4 5.6.7.8 65535 "
                                     "65535"), False),
    ("v1_malformed_wrongtype_46", v1("PROXY TCP4 %s %s 65535 65535" % (
        DEAD, CAFE)), False),
    ("v1_malformed_wrongtype_6mixed", v1("PROXY TCP6 1.2.3.4 %s 65535 "
                                         "65535" % CAFE), False),
    ("v1_malformed_addr_zeroleader", v1("PROXY TCP6 %s %s 02501 80" % (
        DEAD, CAFE)), False),
    ("v1_malformed_addr_space1", v1("PROXY TCP6  %s %s 1 2" % (DEAD, CAFE)),
     False),
    ("v1_malformed_addr_space2", v1("PROXY TCP6 %s  %s 1 2" % (DEAD, CAFE)),
     False),
    ("v1_malformed_addr_space3", v1("PROXY TCP6 %s %s  8080 2" % (
        DEAD, CAFE)), False),
    ("v1_malformed_addr_space4", v1("PROXY TCP6 %s %s 1  0" % (DEAD, CAFE)),
     False),
    ("v1_malformed_addr_addr6s", v1("PROXY TCP6 %s %s 1 2" % (
        DEAD[:-1] + "g", CAFE)), False),
    ("v1_malformed_addr_addr6d", v1("PROXY TCP6 %s %s 1 2" % (
        DEAD, CAFE[:-1] + "h")), False),
    ("v1_extra_space", v1("PROXY TCP6 %s %s 0 25 " % (DEAD, CAFE)), False),
    ("v1_extra_sptext", v1("PROXY TCP6 %s %s 0 25 text" % (DEAD, CAFE)),
     False),
    ("v1_malformed_addr4", v1("PROXY TCP6 1.2.3.a 5.6.7.8 65535 65535"),
     False),
    ("v1_ports_oob", v1("PROXY TCP4 1.2.3.4 5.6.7.8 65536 10200"), False),
    ("v1_portd_oob", v1("PROXY TCP6 %s %s 10000 65536" % (DEAD, CAFE)),
     False),
    # TestModule.test_get_invalid_sig
    ("module_invalid_sig", v1("PROXI TCP4 1.2.3.4 5.6.7.8 9 10"), False),
    # TestGetV2
    ("v2_1", V2_DATA1_EXACT, True),
    ("v2_UNSPEC_empty", v2(0, 0, 0), True),
    ("v2_UNSPEC_notempty", v2(0, 0, 0, b"asdfghjkl"), True),
    ("v2_INET4_stream", v2(0, 1, 1, inet4()), True),
    ("v2_INET4_dgram", v2(0, 1, 2, inet4()), True),
    ("v2_INET4_stream_fake_tlv", v2(0, 1, 1, inet4() + b"fake_tlv"), True),
    ("v2_INET4_dgram_fake_tlv", v2(0, 1, 2, inet4() + b"fake_tlv"), True),
    ("v2_INET6_stream", v2(0, 2, 1, inet6()), True),
    ("v2_INET6_dgram", v2(0, 2, 2, inet6()), True),
    ("v2_INET6_stream_fake_tlv", v2(0, 2, 1, inet6() + b"fake_tlv"), True),
    ("v2_INET6_dgram_fake_tlv", v2(0, 2, 2, inet6() + b"fake_tlv"), True),
    ("v2_UNIX_stream", v2(0, 3, 1, UNIX), True),
    ("v2_UNIX_dgram", v2(0, 3, 2, UNIX), True),
    ("v2_UNIX_stream_fake_tlv", v2(0, 3, 1, UNIX + b"fake_tlv"), True),
    ("v2_UNIX_dgram_fake_tlv", v2(0, 3, 2, UNIX + b"fake_tlv"), True),
    ("v2_fallback_UNSPEC_stream", v2(0, 0, 1, b"whatever"), True),
    ("v2_fallback_UNSPEC_dgram", v2(0, 0, 2, b"whatever"), True),
    ("v2_fallback_INET_unspec", v2(0, 1, 0, b"whatever"), True),
    ("v2_fallback_INET6_unspec", v2(0, 2, 0, b"whatever"), True),
    ("v2_fallback_UNIX_unspec", v2(0, 3, 0, b"whatever"), True),
    ("v2_proxy_INET4", v2(1, 1, 1, inet4()), True),
    ("v2_proxy_INET6", v2(1, 2, 1, inet6()), True),
    ("v2_invalid_sig", v2(sig=b"\r\n\r\n\x00\r\nQUIP\n"), False),
    ("v2_illegal_ver", v2(ver=3), False),
    ("v2_unsupported_cmd", v2(cmd=2), False),
    ("v2_unsupported_fam", v2(fam=4), False),
    ("v2_unsupported_proto", v2(proto=3), False),
    ("v2_wrong_proto_6shouldbe4", v2(0, 2, 1, inet4("192.168.0.11",
                                                    "172.16.0.22", 65534,
                                                    8080)), False),
]


# --- servers -----------------------------------------------------------------

def our_config(path, handler='{ type = "sink"; }', listener_extra=""):
    listener = ('{ address = "127.0.0.1:0"; proxy_protocol_timeout = %g; %s }'
                % (TIMEOUT, listener_extra))
    return conftest.write_config(str(path), "", [listener], handler)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(ours, reference), both taking PROXY headers, Sink handlers."""
    tmp = tmp_path_factory.mktemp("proxy")
    started = []
    try:
        ref = conftest.Server([
            conftest.PYTHON, conftest.REFSERVER, "--hostname", HOST,
            "--handler", repr("sink+proxyhook"),
            "--proxy-protocol-timeout", repr(TIMEOUT)])
        started.append(ref)
        ref.start()
        ours = conftest.Server([conftest.BIN, "-n", "--config",
                                our_config(tmp / "ours.conf")])
        started.append(ours)
        ours.start()
        yield ours, ref
    finally:
        for server in started:
            server.kill()


# --- the client ----------------------------------------------------------------

class Conn:
    """A raw connection that reports resets as the end of the stream."""

    def __init__(self, server, family=socket.AF_INET):
        self.sock = socket.create_connection((server.host, server.port),
                                             timeout=READ_TIMEOUT)
        self.buf = b""

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def line(self):
        """One line, b"<EOF>" when the server closed, b"<HUNG>" when it
        said nothing within READ_TIMEOUT."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                return b"<HUNG>"
            except OSError:
                chunk = b""
            if not chunk:
                return b"<EOF>"
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def reply(self):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(b"<") or line[3:4] != b"-":
                return b"".join(lines)

    def close(self):
        self.sock.close()


def session_after(conn):
    """What follows a header: "accepted" when the greeting comes and EHLO
    and QUIT work, "closed" when the server hangs up without a word."""
    greeting = conn.line()
    if greeting in (b"<EOF>", b"<HUNG>"):
        return greeting.decode()
    if not greeting.startswith(b"220 " + HOST.encode() + b" "):
        return "unexpected greeting %r" % greeting
    conn.send(b"EHLO example.org\r\n")
    ehlo = conn.reply()
    conn.send(b"QUIT\r\n")
    quit_ = conn.reply()
    if not ehlo.startswith(b"250-") or quit_ != b"221 Bye\r\n":
        return "session failed: %r %r" % (ehlo, quit_)
    return "accepted"


def play(server, header, parts=1, pause=0.0):
    conn = Conn(server)
    try:
        step = -(-len(header) // parts)
        for i in range(0, len(header), step):
            conn.send(header[i:i + step])
            if pause:
                time.sleep(pause)
        return session_after(conn)
    finally:
        conn.close()


def expected(accepted):
    return "accepted" if accepted else "<EOF>"


# --- side by side ----------------------------------------------------------------

@pytest.mark.parametrize("name,header,accepted", SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_header(pair, name, header, accepted):
    ours, ref = pair
    assert play(ref, header) == expected(accepted), \
        "TEST TABLE WRONG: aiosmtpd does not do this"
    assert play(ours, header) == expected(accepted)


@pytest.mark.parametrize("kind", HANDSHAKES)
def test_hiccup(pair, kind):
    """TestWithController.test_hiccup: 20 octets, a pause, the rest."""
    header = HANDSHAKES[kind]
    for server in pair:
        conn = Conn(server)
        conn.send(header[:20])
        time.sleep(0.1)
        conn.send(header[20:])
        assert session_after(conn) == "accepted"
        conn.close()


@pytest.mark.parametrize("kind", HANDSHAKES)
def test_one_octet_at_a_time(pair, kind):
    header = HANDSHAKES[kind]
    for server in pair:
        assert play(server, header, parts=len(header), pause=0.001) == \
            "accepted"


def _closed_after_wait(server, first):
    """Send first, wait past the timeout; then the server must have
    closed without a greeting, and must still serve the next client."""
    conn = Conn(server)
    conn.send(first)
    time.sleep(LATE)
    conn.send(b"\n")
    got = conn.line()
    conn.close()
    return got


@pytest.mark.parametrize("kind", HANDSHAKES)
def test_timeout(pair, kind):
    """TestWithController.test_timeout: nothing within the timeout."""
    for server in pair:
        assert _closed_after_wait(server, b"") == b"<EOF>"
        assert play(server, HANDSHAKES[kind]) == "accepted"


@pytest.mark.parametrize("kind", HANDSHAKES)
def test_incomplete(pair, kind):
    """TestWithController.test_incomplete: all but the last octet."""
    header = HANDSHAKES[kind]
    for server in pair:
        assert _closed_after_wait(server, header[:-1]) == b"<EOF>"
        assert play(server, header) == "accepted"


@pytest.mark.parametrize("kind", HANDSHAKES)
def test_cut(pair, kind):
    """TestModule.test_get_cut_v1/v2: 20 octets, then the client stops
    sending: closed, no greeting."""
    for server in pair:
        conn = Conn(server)
        conn.send(HANDSHAKES[kind][:20])
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.line() == b"<EOF>"
        conn.close()


def _transcript(server, data, n_replies):
    conn = Conn(server)
    conn.send(data)
    out = [conn.line()] + [conn.reply() for _ in range(n_replies)]
    conn.close()
    out[0] = re.sub(rb"^220 (\S+) [^\r\n]*", rb"220 \1 <ident>", out[0])
    return out


def test_octets_after_the_header_are_the_clients(pair):
    """TEST_V2_DATA1_XTRA: the line after the header is the client's
    first command, so not one octet of it may be taken as header."""
    ours, ref = pair
    want = [b"220 " + HOST.encode() + b" <ident>\r\n",
            b'500 Error: command "TEST" not recognized\r\n']
    assert _transcript(ref, V2_DATA1_XTRA, 1) == want
    assert _transcript(ours, V2_DATA1_XTRA, 1) == want


@pytest.mark.parametrize("kind", HANDSHAKES)
def test_pipelined_commands(pair, kind):
    """Header and commands in one segment."""
    ours, ref = pair
    data = HANDSHAKES[kind] + b"EHLO a\r\nNOOP\r\nQUIT\r\n"
    assert _transcript(ours, data, 3) == _transcript(ref, data, 3)


# --- ours only: where the client shows, the fix row --------------------------------

def start(daemon, handler='{ type = "sink"; }', extra="", listeners=None):
    if listeners is None:
        listeners = ['{ address = "127.0.0.1:0"; '
                     'proxy_protocol_timeout = %g; %s }' % (TIMEOUT, extra)]
    return daemon(listeners=listeners, handler=handler)


DEBUGGING = '{ type = "debugging"; stream = "stdout"; }'
MESSAGE = (b"EHLO a\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
           b"DATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")


def send_message(server, header):
    conn = Conn(server)
    conn.send(header + MESSAGE)
    replies = [conn.line()] + [conn.reply() for _ in range(6)]
    local_port = conn.sock.getsockname()[1]
    conn.close()
    assert replies[-1] == b"221 Bye\r\n", replies
    return local_port


def x_peer(server):
    out = server.wait_output(lambda b: b"END MESSAGE" in b)
    m = re.search(rb"X-Peer: (.*)\n", out)
    assert m, out
    return m.group(1).decode()


def test_x_peer_names_the_client_fix(daemon, reference):
    """**fix**: the original client replaces the peer; aiosmtpd's X-Peer
    still shows the proxy."""
    header = v1("PROXY TCP4 192.0.2.7 198.51.100.1 4567 25")
    ours = start(daemon, DEBUGGING)
    send_message(ours, header)
    assert x_peer(ours) == "('192.0.2.7', 4567)"
    ref = reference(handler="debugging+proxyhook",
                    proxy_protocol_timeout=TIMEOUT)
    port = send_message(ref, header)
    assert x_peer(ref) == "('127.0.0.1', %d)" % port


def test_x_peer_from_v2_ipv6(daemon):
    ours = start(daemon, DEBUGGING)
    send_message(ours, v2(1, 2, 1, inet6("2001:db8::7", "2001:db8::1", 4000,
                                         25) + b"\x04\x00\x01x"))
    assert x_peer(ours) == "('2001:db8::7', 4000, 0, 0)"


@pytest.mark.parametrize("header", [
    v2(0, 1, 1, inet4("192.0.2.7")),   # LOCAL: a health check
    v1("PROXY UNKNOWN whatever"),
    v2(1, 0, 0, b""),                   # PROXY but UNSPEC
    v2(1, 3, 1, UNIX),                  # a UNIX client has no address
], ids=["v2_local", "v1_unknown", "v2_unspec", "v2_unix"])
def test_real_peer_stays(daemon, header):
    """LOCAL, UNKNOWN and non-IP families keep the connection's own peer,
    as the specification says."""
    ours = start(daemon, DEBUGGING)
    port = send_message(ours, header)
    assert x_peer(ours) == "('127.0.0.1', %d)" % port


def test_mailbox_and_logs_name_the_client(daemon, tmp_path):
    maildir = tmp_path / "Maildir"
    ours = start(daemon, '{ type = "mailbox"; path = "%s"; }' % maildir)
    port = send_message(ours, v1("PROXY TCP6 2001:db8::7 2001:db8::1 4000 25"))
    files = glob.glob(str(maildir / "new" / "*"))
    assert len(files) == 1
    with open(files[0], "rb") as f:
        # IPv6 peers print as Python's 4-tuple sockaddr, as for a direct client
        assert b"X-Peer: ('2001:db8::7', 4000, 0, 0)\n" in f.read()
    log = ours.stderr.wait_for(lambda b: b"disconnect" in b, 10).decode()
    assert re.search(r" \[2001:db8::7\]:4000 connect listener=\S+ "
                     r"proxy=127\.0\.0\.1:%d\n" % port, log), log
    assert re.search(r" \[2001:db8::7\]:4000 message from=<a@example.com>",
                     log), log
    assert "127.0.0.1:%d disconnect" % port not in log


def test_received_names_the_client(daemon, tmp_path):
    """The Received header of the maildir handler (RFC 5321 4.4) names the
    client from the header, not the proxy."""
    ours = start(daemon, '{ type = "maildir"; path = "%s/%%u"; }' % tmp_path)
    send_message(ours, v1("PROXY TCP4 192.0.2.7 198.51.100.1 4567 25"))
    files = glob.glob(str(tmp_path / "b" / "new" / "*"))
    assert len(files) == 1
    with open(files[0], "rb") as f:
        text = f.read()
    assert b"Received: from a ([192.0.2.7])\n" in text, text
    assert b"127.0.0.1" not in text, text


@pytest.mark.parametrize("header,reason", [
    (b"HELO example.org\r\n", "PROXY unrecognized signature"),
    (b"PROXY UNKNOWN\n", "PROXYv1 malformed"),
    (v1("PROXY TCP4 1.2.3.4 5.6.7.8 65536 1"), "PROXYv1 src port out of "
                                               "bounds"),
    (v2(ver=3), "PROXYv2 illegal version"),
    (GOOD_V1[:-1], "PROXY header timeout"),
    (b"", "PROXY header timeout"),
])
def test_refusal_is_logged(daemon, header, reason):
    """No greeting, and one log line that says why."""
    ours = start(daemon)
    conn = Conn(ours)
    conn.send(header)
    assert conn.line() == b"<EOF>"
    conn.close()
    log = ours.stderr.wait_for(lambda b: b"proxy refused" in b, 10).decode()
    assert re.search(r"warning: \w+ 127\.0\.0\.1:\d+ proxy refused "
                     r"listener=127\.0\.0\.1:\d+ reason=\"%s\"" %
                     re.escape(reason), log), log
    assert " connect listener" not in log


def test_health_check_is_not_a_warning(daemon):
    """A balancer's plain TCP check connects and hangs up: logged as
    info, where a header cut short is a warning."""
    ours = start(daemon)
    socket.create_connection((ours.host, ours.port), timeout=10).close()
    conn = Conn(ours)
    conn.send(GOOD_V1[:10])
    conn.sock.shutdown(socket.SHUT_WR)
    assert conn.line() == b"<EOF>"
    conn.close()
    # Two workers may log in either order: wait for both lines.
    log = ours.stderr.wait_for(
        lambda b: b"proxy refused" in b and b"before the PROXY header" in b,
        10).decode()
    checks = [l for l in log.splitlines() if "before the PROXY header" in l]
    assert len(checks) == 1 and "warning" not in checks[0], log
    assert re.search(r"warning: \w+ 127\.0\.0\.1:\d+ proxy refused "
                     r"listener=\S+ reason=\"connection closed during the "
                     r"PROXY header\"", log), log


def test_proxy_from_refuses_others(daemon):
    ours = start(daemon, extra='proxy_protocol_from = [ "10.0.0.0/8", '
                               '"2001:db8::/32" ];')
    conn = Conn(ours)
    conn.send(GOOD_V1)
    assert conn.line() == b"<EOF>"
    conn.close()
    log = ours.stderr.wait_for(lambda b: b"proxy refused" in b, 10).decode()
    assert 'reason="peer not in proxy_protocol_from"' in log


def test_proxy_from_lets_the_proxy_in(daemon):
    ours = start(daemon, extra='proxy_protocol_from = [ "10.0.0.0/8", '
                               '"127.0.0.0/8" ];')
    assert play(ours, GOOD_V1) == "accepted"


def test_ipv6_listener(daemon):
    """A proxy on ::1 (trusted by address), a client on IPv4."""
    ours = start(daemon, DEBUGGING, listeners=[
        '{ address = "[::1]:0"; proxy_protocol_timeout = 5; '
        'proxy_protocol_from = [ "::1" ]; }'])
    send_message(ours, v1("PROXY TCP4 192.0.2.9 192.0.2.1 1234 25"))
    assert x_peer(ours) == "('192.0.2.9', 1234)"


def test_other_listener_unaffected(daemon):
    """Only the listener that has proxy_protocol_timeout waits for a
    header; on the other a header is just an unknown command."""
    ours = daemon(listeners=[
        '{ address = "127.0.0.1:0"; proxy_protocol_timeout = 5; }',
        '{ address = "127.0.0.1:0"; }'])
    host, port = ours.addresses[1]
    conn = socket.create_connection((host, port), timeout=READ_TIMEOUT)
    conn.sendall(GOOD_V1)
    data = b""
    while data.count(b"\n") < 2:
        chunk = conn.recv(4096)
        assert chunk
        data += chunk
    conn.close()
    assert data.startswith(b"220 ")
    assert b'500 Error: command "PROXY" not recognized' in data


@pytest.mark.parametrize("seconds,warns", [
    (0.3, True), (1, True), (2.999, True), (3, False), (3.0, False), (4, False),
    (4.0, False)])
def test_config_warns_under_three_seconds(daemon, seconds, warns):
    """TestSMTPInit.test_lt_3 and test_ge_3 (test_value_error, for 0 and
    below, is in test-conf.c)."""
    ours = daemon(listeners=['{ address = "127.0.0.1:0"; '
                             'proxy_protocol_timeout = %r; }' % seconds])
    log = ours.stderr.wait_for(lambda b: b"ready" in b, 10).decode()
    assert "ready" in log
    assert ("proxy_protocol_timeout < 3.0" in log) == warns


# --- SMTPS behind a proxy -------------------------------------------------------


class TLSOverSocket:
    """A TLS client over a raw socket through memory BIOs, so the first
    ClientHello can go out in the same write as the PROXY header."""

    def __init__(self, sock, before_hello):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_context().wrap_bio(self.inc, self.out,
                                             server_hostname="localhost")
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        sock.sendall(before_hello + self.out.read())
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed during TLS")
        self.inc.write(chunk)

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def reply(self):
        buf = b""
        while True:
            try:
                buf += self.obj.read(65536)
            except ssl.SSLWantReadError:
                self._fill()
                continue
            lines = buf.split(b"\r\n")
            if len(lines) > 1 and all(l[3:4] == b"-" for l in lines[:-2]) \
                    and lines[-2][3:4] == b" ":
                return buf


@pytest.mark.parametrize("header", [
    v1("PROXY TCP4 192.0.2.9 192.0.2.1 4321 465"),
    v2(1, 1, 1, inet4("192.0.2.9", "192.0.2.1", 4321, 465)),
], ids=["v1", "v2"])
def test_smtps_behind_proxy(daemon, pki, header):
    """An implicit-TLS listener behind a proxy: the header and the
    ClientHello arrive in one segment; the header is taken, the handshake
    gets every octet of the ClientHello, and the session names the
    client."""
    cert, key = pki
    ours = daemon(settings=tls_group(cert, key), handler=DEBUGGING,
                  listeners=[listener("implicit",
                                      "proxy_protocol_timeout = 5;")])
    sock = socket.create_connection((ours.host, ours.port), timeout=10)
    try:
        tls = TLSOverSocket(sock, header)
        assert tls.reply().startswith(b"220 " + HOST.encode())
        for line, code in ((b"EHLO a", b"250"),
                           (b"MAIL FROM:<a@example.com>", b"250"),
                           (b"RCPT TO:<b@example.com>", b"250"),
                           (b"DATA", b"354"),
                           (b"Subject: s\r\n\r\nx\r\n.", b"250"),
                           (b"QUIT", b"221")):
            tls.send(line + b"\r\n")
            assert tls.reply().startswith(code)
    finally:
        sock.close()
    assert x_peer(ours) == "('192.0.2.9', 4321)"
    log = ours.stderr.wait_for(lambda b: b"disconnect" in b, 10).decode()
    assert re.search(r" 192\.0\.2\.9:4321 connect listener=\S+ "
                     r"proxy=127\.0\.0\.1:\d+\n", log), log
    assert re.search(r" 192\.0\.2\.9:4321 tls version=TLSv1\.[23] ", log), log
