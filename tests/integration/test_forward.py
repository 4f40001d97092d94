"""Forwarding: the LMTP handler into Dovecot, the Proxy handler into
Postfix's smtp-sink and into aiosmtpd, with real peers started here.

What issue 5 asks to see:
- SMTP in, LMTP to Dovecot out: 1,000 messages with 3 recipients each
  land in Dovecot's Maildirs with their content byte for byte; a recipient
  Dovecot does not know is refused at RCPT with Dovecot's own reply;
- LMTP in: three recipients, one over quota after DATA: three replies
  after the final dot, in RCPT order, the right one failing;
- the next hop stopped: 4xx at RCPT (or DATA), nothing delivered; started
  again: the retry is delivered, once;
- "\\n.\\r\\n" in a message reaches the next hop as message text, never as
  the end of the message.
"""

import base64
import json
import os
import random
import socket
import subprocess
import threading

from conftest import BIN, HOSTNAME, Client
from peers import dovecot, nexthop, smtp_sink, wait_until  # noqa: F401

RECIPIENTS = ["anne@example.com", "bob@example.com", "dave@example.org"]


def lmtp_daemon(daemon, target, lmtp_listener=False, workers=None,
                extra=""):
    listeners = None
    if lmtp_listener:
        listeners = ['{ address = "127.0.0.1:0"; protocol = "lmtp"; }']
    return daemon(listeners=listeners, workers=workers,
                  handler='{ type = "lmtp"; target = "%s"; %s }' % (
                      target, extra))


def body_for(n, rng):
    """A message with what breaks naive forwarding: lines that start with
    dots, a lone dot line, a 998-octet line, 8-bit octets."""
    lines = [b"Message-ID: <m%d@test.example>" % n,
             b"Subject: message %d" % n, b"", b"Hello %d." % n]
    for _ in range(rng.randint(1, 20)):
        kind = rng.randint(0, 5)
        if kind == 0:
            lines.append(b"." * rng.randint(1, 3) + b"dotted")
        elif kind == 1:
            lines.append(b".")
        elif kind == 2:
            lines.append(bytes(rng.randint(0x21, 0x7e) for _ in range(998)))
        elif kind == 3:
            lines.append(bytes(rng.randint(0x80, 0xff) for _ in range(40)))
        else:
            lines.append(b"")
    return b"\r\n".join(lines) + b"\r\n"


def mail_from(connect, server, **kw):
    """A session past EHLO and an accepted MAIL FROM."""
    c = connect(server, **kw)
    assert c.reply().startswith(b"220")
    assert c.cmd("EHLO client.example").startswith(b"250")
    assert c.cmd("MAIL FROM:<sender@test.example>") == b"250 OK\r\n"
    return c


def stuffed(content):
    return b"".join(b"." + l if l.startswith(b".") else l
                    for l in content.splitlines(keepends=True))


def send_messages(port, first, count, rng_seed, sent):
    """One SMTP session that sends count messages to RECIPIENTS."""
    rng = random.Random(rng_seed)
    c = Client("127.0.0.1", port, timeout=60)
    assert c.reply().startswith(b"220")
    assert c.cmd("EHLO client.example").startswith(b"250")
    for n in range(first, first + count):
        content = body_for(n, rng)
        sent[n] = content
        assert c.cmd("MAIL FROM:<sender@test.example> BODY=8BITMIME") == \
            b"250 OK\r\n"
        for r in RECIPIENTS:
            assert c.cmd("RCPT TO:<%s>" % r) == b"250 OK\r\n"
        assert c.cmd("DATA").startswith(b"354")
        assert c.cmd(stuffed(content) + b".") == b"250 OK\r\n", n
    assert c.cmd("QUIT").startswith(b"221")
    c.close()


def message_number(stored):
    head = stored.split(b"\n\n", 1)[0]
    for line in head.split(b"\n"):
        if line.startswith(b"Message-ID: <m"):
            return int(line[len(b"Message-ID: <m"):].split(b"@")[0])
    raise AssertionError("no Message-ID in %r" % stored[:200])


def test_thousand_messages_to_dovecot(daemon, dovecot):
    server = lmtp_daemon(daemon, dovecot.target, workers=4)
    sent = {}
    threads = [threading.Thread(target=send_messages,
                                args=(server.port, i * 250, 250, i, sent))
               for i in range(4)]
    errors = []
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
        assert not t.is_alive()
    assert len(sent) == 1000
    for rcpt in RECIPIENTS:
        stored = dovecot.messages(rcpt)
        assert len(stored) == 1000, rcpt
        seen = set()
        for data in stored:
            n = message_number(data)
            seen.add(n)
            # Dovecot stores LF line ends; everything we were sent is
            # there, byte for byte, under the trace headers.
            want = sent[n].replace(b"\r\n", b"\n")
            if not data.endswith(b"\n" + want):
                errors.append((rcpt, n))
        assert seen == set(range(1000))
    assert errors == []


def test_received_header_names_the_session(daemon, dovecot, connect):
    server = lmtp_daemon(daemon, dovecot.target)
    c = mail_from(connect, server)
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    c.cmd("DATA")
    assert c.cmd("Subject: trace\r\n\r\nbody\r\n.") == b"250 OK\r\n"
    c.cmd("QUIT")
    wait_until(lambda: "disconnect" in server.log())
    line = [l for l in server.log().splitlines() if " message from=" in l][0]
    session_id = line.split()[2]
    [stored] = dovecot.messages("anne@example.com")
    assert (b"Received: from client.example ([127.0.0.1])\n"
            b"\tby %s (aiosmtpd-c) with ESMTP id %s\n"
            b"\tfor <anne@example.com>; " % (
                HOSTNAME.encode(), session_id.encode())) in stored


def test_unknown_user_refused_at_rcpt_with_dovecots_reply(daemon, dovecot,
                                                          connect):
    server = lmtp_daemon(daemon, dovecot.target)
    c = mail_from(connect, server)
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    assert c.cmd("RCPT TO:<nobody@example.com>") == (
        b"550 5.1.1 <nobody@example.com> User doesn't exist: "
        b"nobody@example.com\r\n")
    assert c.cmd("DATA").startswith(b"354")
    assert c.cmd("Subject: x\r\n\r\nonly anne\r\n.") == b"250 OK\r\n"
    assert len(dovecot.messages("anne@example.com")) == 1


def test_lmtp_in_three_replies_in_rcpt_order(daemon, dovecot, connect):
    server = lmtp_daemon(daemon, dovecot.target, lmtp_listener=True)
    c = connect(server)
    c.reply()
    assert c.cmd("LHLO client.example").startswith(b"250")
    c.cmd("MAIL FROM:<sender@test.example>")
    for r in ("anne@example.com", "carol@example.org", "bob@example.com"):
        assert c.cmd("RCPT TO:<%s>" % r) == b"250 OK\r\n"
    assert c.cmd("DATA").startswith(b"354")
    # carol's quota is 1 KiB: Dovecot refuses her after DATA.
    c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40 +
           b".\r\nNOOP\r\n")
    replies = [c.reply() for _ in range(4)]
    assert replies[0].startswith(b"250 2.0.0 <anne@example.com> ")
    assert replies[1] == (b"552 5.2.2 <carol@example.org> Quota exceeded "
                          b"(mailbox for user is full)\r\n")
    assert replies[2].startswith(b"250 2.0.0 <bob@example.com> ")
    assert replies[3] == b"250 OK\r\n"  # the NOOP: nothing more came
    assert len(dovecot.messages("anne@example.com")) == 1
    assert len(dovecot.messages("bob@example.com")) == 1
    assert dovecot.messages("carol@example.org") == []


def test_smtp_in_partial_failure_is_451(daemon, dovecot, connect):
    server = lmtp_daemon(daemon, dovecot.target)
    c = mail_from(connect, server)
    c.cmd("RCPT TO:<anne@example.com>")
    c.cmd("RCPT TO:<carol@example.org>")
    c.cmd("DATA")
    reply = c.cmd(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 40 +
                  b".")
    assert reply.startswith(b"451 4.3.0 ")
    # Only carol failed, for good: alone she gets Dovecot's 552.
    c.cmd("MAIL FROM:<sender@test.example>")
    c.cmd("RCPT TO:<carol@example.org>")
    c.cmd("DATA")
    reply = c.cmd(b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 40 +
                  b".")
    assert reply.startswith(b"552 5.2.2 <carol@example.org> Quota")


def test_next_hop_down_then_back(daemon, dovecot, connect):
    server = lmtp_daemon(daemon, dovecot.target)
    dovecot.stop()
    c = mail_from(connect, server)
    reply = c.cmd("RCPT TO:<anne@example.com>")
    assert reply.startswith(b"451 4.4.1 "), reply
    assert c.cmd("DATA") == b"503 Error: need RCPT command\r\n"
    assert "delivery to=" not in server.log()
    assert dovecot.messages("anne@example.com") == []

    # The client retries once the next hop is back.
    dovecot.start()
    assert c.cmd("RSET") == b"250 OK\r\n"
    c.cmd("MAIL FROM:<sender@test.example>")
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    c.cmd("DATA")
    assert c.cmd("Subject: retry\r\n\r\nagain\r\n.") == b"250 OK\r\n"
    assert len(dovecot.messages("anne@example.com")) == 1


def test_next_hop_stopped_between_messages(daemon, dovecot, connect):
    """The connection kept from the first message is dead for the second:
    it is replaced, and with Dovecot gone the client gets a 4xx."""
    server = lmtp_daemon(daemon, dovecot.target)
    c = mail_from(connect, server)
    c.cmd("RCPT TO:<anne@example.com>")
    c.cmd("DATA")
    assert c.cmd("Subject: 1\r\n\r\none\r\n.") == b"250 OK\r\n"
    dovecot.stop()
    c.cmd("MAIL FROM:<sender@test.example>")
    assert c.cmd("RCPT TO:<anne@example.com>").startswith(b"451 4.4.")
    dovecot.start()
    c.cmd("RSET")
    c.cmd("MAIL FROM:<sender@test.example>")
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    c.cmd("DATA")
    assert c.cmd("Subject: 2\r\n\r\ntwo\r\n.") == b"250 OK\r\n"
    assert len(dovecot.messages("anne@example.com")) == 2


def test_next_hop_gone_after_rcpt_is_4xx_for_data(daemon, smtp_sink,
                                                   connect):
    # smtp-sink -q . hangs up after the final dot without a reply.
    sink = smtp_sink(["-q", "."])
    server = daemon(handler='{ type = "proxy"; host = "127.0.0.1"; '
                            'port = %d; }' % sink.port)
    c = mail_from(connect, server)
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    c.cmd("DATA")
    reply = c.cmd("Subject: lost\r\n\r\nlost\r\n.")
    assert reply.startswith(b"451 4.4.2 "), reply


def test_next_hop_silent_times_out_with_4xx(daemon, nexthop, connect):
    hop = nexthop(mode="silent")
    server = daemon(handler='{ type = "proxy"; host = "127.0.0.1"; '
                            'port = %d; timeout = 2; }' % hop.port)
    c = mail_from(connect, server, timeout=30)
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    c.cmd("DATA")
    reply = c.cmd("Subject: slow\r\n\r\nslow\r\n.")
    assert reply == (b"451 4.4.2 Next hop timed out, try again later\r\n")


# A next hop that took a bare LF for a line end would see the end of the
# message after "first" and a second message after it.
SMUGGLE = (b"Subject: smuggle\r\n\r\nfirst\n.\r\n"
           b"MAIL FROM:<evil@test.example>\r\nRCPT TO:<anne@example.com>\r\n"
           b"DATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n")


def smuggle_through(server, connect):
    c = mail_from(connect, server)
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    c.cmd("DATA")
    c.send(SMUGGLE)
    assert c.reply() == b"250 OK\r\n"
    assert c.cmd("QUIT").startswith(b"221")


def test_smuggling_reaches_smtp_sink_as_text(daemon, smtp_sink, connect):
    sink = smtp_sink()
    server = daemon(handler='{ type = "proxy"; host = "127.0.0.1"; '
                            'port = %d; }' % sink.port)
    smuggle_through(server, connect)
    assert wait_until(lambda: len(sink.dumps()) >= 1)
    [dump] = sink.dumps()  # one transaction, not two
    assert b"\nMAIL FROM:<evil@test.example>\n" in dump
    assert b"\nSubject: smuggled\n\nsecond\n" in dump


def test_smuggling_reaches_dovecot_as_text(daemon, dovecot, connect):
    server = lmtp_daemon(daemon, dovecot.target)
    smuggle_through(server, connect)
    [stored] = dovecot.messages("anne@example.com")
    assert stored.endswith(
        b"\n\nfirst\n.\nMAIL FROM:<evil@test.example>\n"
        b"RCPT TO:<anne@example.com>\nDATA\nSubject: smuggled\n\n"
        b"second\n")
    assert "evil" not in dovecot.log()


def test_proxy_checks_recipients_at_rcpt(daemon, smtp_sink, connect):
    # smtp-sink -r RCPT refuses every recipient with a 4xx.
    sink = smtp_sink(["-r", "RCPT"])
    server = daemon(handler='{ type = "proxy"; host = "127.0.0.1"; '
                            'port = %d; }' % sink.port)
    c = mail_from(connect, server)
    reply = c.cmd("RCPT TO:<anne@example.com>")
    assert reply.startswith(b"450 "), reply
    assert c.cmd("DATA") == b"503 Error: need RCPT command\r\n"


def test_next_hop_421_is_451_to_our_client(daemon, smtp_sink, connect):
    """A 421 closes the next hop's connection, not ours: the client must
    not take it as ours closing."""
    sink = smtp_sink(["-Q", "RCPT"])
    server = daemon(handler='{ type = "proxy"; host = "127.0.0.1"; '
                            'port = %d; }' % sink.port)
    c = mail_from(connect, server)
    reply = c.cmd("RCPT TO:<anne@example.com>")
    assert reply.startswith(b"451 "), reply
    assert c.cmd("NOOP") == b"250 OK\r\n"


def test_proxy_adds_x_peer_like_aiosmtpd(daemon, nexthop, connect):
    hop = nexthop()
    server = daemon(handler='{ type = "proxy"; host = "127.0.0.1"; '
                            'port = %d; }' % hop.port)
    c = mail_from(connect, server)
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    assert c.cmd("RCPT TO:<reject-me@example.com>") == (
        b"550 5.1.1 <reject-me@example.com>: Recipient address "
        b"rejected\r\n")
    c.cmd("DATA")
    assert c.cmd("A: 1\r\nB: 2\r\n\r\nbody\r\n.") == b"250 OK\r\n"
    out = hop.wait_output(lambda b: b.count(b"\n") >= 1)
    record = json.loads(out.splitlines()[0])
    assert record["rcpt_tos"] == ["anne@example.com"]
    content = base64.b64decode(record["content"])
    assert content.startswith(b"Received: from client.example ")
    assert content.endswith(b"A: 1\r\nB: 2\r\nX-Peer: 127.0.0.1\r\n\r\n"
                            b"body\r\n")


def test_proxy_starttls_to_next_hop(daemon, nexthop, connect, tmp_path):
    hop = nexthop(tls=True)
    cert = os.path.join(str(tmp_path), "localhost.pem")
    server = daemon(handler='{ type = "proxy"; host = "localhost"; '
                            'port = %d; starttls = "required"; '
                            'tls_ca = "%s.crt"; }' % (hop.port, cert))
    c = mail_from(connect, server)
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    c.cmd("DATA")
    assert c.cmd("Subject: tls\r\n\r\nsecret\r\n.") == b"250 OK\r\n"
    record = json.loads(hop.wait_output(lambda b: b"\n" in b).splitlines()[0])
    assert record["tls"] is True


def test_proxy_resumes_the_next_hops_tls_session(daemon, nexthop, connect,
                                                tmp_path):
    """One worker, three client sessions: the first makes a full TLS
    handshake with the next hop, the later ones resume its session."""
    hop = nexthop(tls=True)
    cert = os.path.join(str(tmp_path), "localhost.pem")
    server = daemon(handler='{ type = "proxy"; host = "localhost"; '
                            'port = %d; starttls = "required"; '
                            'tls_ca = "%s.crt"; }' % (hop.port, cert),
                    workers=1)
    for i in range(3):
        c = mail_from(connect, server)
        assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
        c.cmd("DATA")
        assert c.cmd("Subject: %d\r\n\r\nx\r\n." % i) == b"250 OK\r\n"
        assert c.cmd("QUIT").startswith(b"221")
        c.close()
    out = hop.wait_output(lambda b: b.count(b"\n") >= 3)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["tls"] for r in records] == [True, True, True]
    assert [r["tls_resumed"] for r in records] == [False, True, True]


def test_bad_tls_ca_stops_the_start(daemon, tmp_path):
    """The CAs are loaded once, before the first session: a file that
    cannot be used is an error naming the file, not a 451 per message."""
    notcert = tmp_path / "notcert.pem"
    notcert.write_text("not a certificate\n")
    for ca, message in ((tmp_path / "missing.pem",
                         b"No such file or directory"),
                        (notcert, b"no CA certificate could be loaded")):
        cfg = tmp_path / "aiosmtpd.conf"
        cfg.write_text('handler = { type = "proxy"; host = "localhost"; '
                       'port = 25; starttls = "required"; '
                       'tls_ca = "%s"; };\n' % ca)
        proc = subprocess.run([BIN, "-n", "--config", str(cfg), "-l",
                               "127.0.0.1:0"], capture_output=True, timeout=30)
        assert proc.returncode == 78, proc.stderr
        assert (b"%s: handler: tls_ca %s: " % (str(cfg).encode(),
                                                str(ca).encode())
                + message) in proc.stderr, proc.stderr


def test_proxy_starttls_refuses_unknown_certificate(daemon, nexthop,
                                                    connect):
    hop = nexthop(tls=True)
    # No tls_ca: the system's CAs do not know the self-signed certificate.
    server = daemon(handler='{ type = "proxy"; host = "localhost"; '
                            'port = %d; starttls = "required"; }' % hop.port)
    c = mail_from(connect, server)
    reply = c.cmd("RCPT TO:<anne@example.com>")
    assert reply.startswith(b"451 4.7.5 "), reply
    assert hop.output() == b""


def test_aiosmtpd_proxy_loses_what_ours_refuses(daemon, reference, connect):
    """The fix: with the next hop down, aiosmtpd's Proxy still says 250
    and the message is gone; ours says 4xx."""
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    dead = port.getsockname()[1]
    port.close()
    ref = reference(handler="proxy:127.0.0.1:%d" % dead)
    ours = daemon(handler='{ type = "proxy"; host = "127.0.0.1"; '
                          'port = %d; }' % dead)
    replies = []
    for server in (ref, ours):
        c = mail_from(connect, server)
        rcpt = c.cmd("RCPT TO:<anne@example.com>")
        if rcpt.startswith(b"250"):
            c.cmd("DATA")
            replies.append((rcpt, c.cmd("Subject: x\r\n\r\nx\r\n.")))
        else:
            replies.append((rcpt, None))
    assert replies[0] == (b"250 OK\r\n", b"250 OK\r\n")
    assert replies[1][0].startswith(b"451 4.4.1 ")


def test_bad_target_or_option_stops_the_start():
    for args, message in (
            (["LMTP", "localhost"], b"the target must be unix:/path"),
            (["LMTP", "/run/lmtp", "timeout=0"],
             b"timeouts are seconds from 1 to 86400"),
            (["Proxy", "localhost"], b"Proxy usage: HOST PORT"),
            (["Proxy", "localhost", "25", "starttls=yes"],
             b"starttls must be no, may or required")):
        proc = subprocess.run([BIN, "-n", "-l", "127.0.0.1:0", "-c"] + args,
                              capture_output=True, timeout=30)
        assert proc.returncode == 2, args
        assert message in proc.stderr, (args, proc.stderr)
