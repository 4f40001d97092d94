"""The Debugging handler prints what aiosmtpd's Debugging handler prints.

Every scenario is played with smtplib to Debian's aiosmtpd 1.4.3 (handler
Debugging on stdout) and to our daemon (handler { type = "debugging"; }),
and the two printed outputs must be equal byte for byte once the client
port in X-Peer is normalised.  Where content must reach the server
unchanged (bare CR or LF, no final line end, an exact dot-stuffing), the
DATA payload is written to smtplib's socket as is, after smtplib's own
MAIL/RCPT/DATA commands.

A last test runs 4 workers and 8 concurrent clients: every message must
come out as one unbroken block.

    AIOSMTPD_BIN=/path/to/aiosmtpd AIOSMTPD_BUILDDIR=/path/to/build \\
        /usr/bin/python3 -m pytest tests/integration/test_debugging.py
"""

import re
import smtplib
import threading

import pytest

SENDER = "anne@example.com"
RCPT = "bart@example.com"
BEGIN = b"---------- MESSAGE FOLLOWS ----------\n"
END = b"------------ END MESSAGE ------------\n"
LOG_LINE = re.compile(
    rb"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+ aiosmtpd\[[0-9]+\]: .*\n",
    re.MULTILINE)
X_PEER = re.compile(rb"^(X-Peer: \('127\.0\.0\.1', )[0-9]+\)$", re.MULTILINE)


def normalise(out):
    return X_PEER.sub(rb"\1PORT)", out)


def strip_log(out):
    """Our stderr with the daemon's own log lines taken out."""
    return LOG_LINE.sub(b"", out)


# --- ways of sending ---------------------------------------------------------

def sendmail(data, mail_options=()):
    """smtplib's sendmail: line ends made CRLF, dots stuffed, SIZE added."""
    def run(client):
        refused = client.sendmail(SENDER, [RCPT], data, list(mail_options))
        assert refused == {}
        return (250, b"OK")
    return run


def raw_data(payload, mail_options=()):
    """MAIL, RCPT and DATA by smtplib, then payload exactly as given (it
    must hold its own dot-stuffing and end with CRLF), then ".\\r\\n"."""
    def run(client):
        client.ehlo_or_helo_if_needed()
        code, msg = client.mail(SENDER, list(mail_options))
        assert code == 250, msg
        code, msg = client.rcpt(RCPT)
        assert code == 250, msg
        code, msg = client.docmd("DATA")
        assert code == 354, msg
        client.sock.sendall(payload + b".\r\n")
        return client.getreply()
    return run


def play(server, steps):
    """Run the steps over one connection; the replies to each."""
    replies = []
    with smtplib.SMTP(server.host, server.port, timeout=20) as client:
        for step in steps:
            replies.append(step(client))
        client.quit()
    return replies


def printed(server, n, stream="stdout"):
    """The printed output once n messages are complete."""
    if stream == "stdout":
        return server.wait_output(lambda b: b.count(END) >= n, timeout=20)
    return strip_log(server.stderr.wait_for(
        lambda b: strip_log(b).count(END) >= n, timeout=20))


@pytest.fixture
def ref(reference, monkeypatch):
    # aiosmtpd's Debugging never flushes: without this the reference's
    # output sits in its stdio buffer.
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    return reference(handler="debugging")


# --- the corpus --------------------------------------------------------------

PLAIN = (b"From: Anne <anne@example.com>\r\n"
         b"To: Bart <bart@example.com>\r\n"
         b"Subject: a plain message\r\n"
         b"Message-ID: <1@example.com>\r\n"
         b"\r\n"
         b"Hello Bart,\r\n"
         b"\r\n"
         b"this is the body.\r\n"
         b"  An indented line.\r\n"
         b"-- \r\n"
         b"Anne\r\n")

SCENARIOS = {
    "plain": [sendmail(PLAIN)],
    "plain-str-message": [sendmail(PLAIN.decode().replace("\r\n", "\n"))],
    "mail-options-smtplib": [sendmail(PLAIN, ["BODY=8BITMIME"])],
    "mail-options-explicit": [raw_data(PLAIN, ["SIZE=300", "BODY=8BITMIME"])],
    "mail-option-lowercase": [raw_data(PLAIN, ["body=7bit"])],
    "no-separator-headers-only": [sendmail(
        b"Subject: no body\r\nFrom: anne@example.com\r\n")],
    "no-separator-no-headers": [sendmail(
        b"just some text\r\nwithout any headers\r\n")],
    "separator-first": [sendmail(b"\r\nbody straight away\r\n")],
    "whitespace-line-is-not-separator": [sendmail(
        b"Subject: x\r\n \r\nstill headers\r\n\r\nbody\r\n")],
    "bare-lf-in-body": [raw_data(
        b"Subject: lf\r\n\r\nline one\nline two\r\nline three\n\nend\r\n")],
    "bare-cr-in-body": [raw_data(
        b"Subject: cr\r\n\r\nline one\rline two\r\r\nline three\r\rend\r\n")],
    "bare-lf-makes-separator": [raw_data(
        b"Subject: lf sep\n\nbody after bare LFs\r\n")],
    "bare-cr-makes-separator": [raw_data(
        b"Subject: cr sep\r\rbody after bare CRs\r\n")],
    "lf-dot-crlf-is-content": [raw_data(
        b"Subject: smuggle\r\n\r\nbefore\n.\r\nMAIL FROM:<x@y>\r\nafter\r\n")],
    "cr-lf-mix": [raw_data(
        b"Subject: mix\r\nX-A: 1\nX-B: 2\r\r\n\r\na\r\n\rb\n\r\nc\r\n")],
    "non-utf8": [raw_data(
        b"Subject: caf\xe9\r\nX-Latin1: \xe9t\xe9\r\n\r\n"
        b"bad \xff\xfe bytes\r\n"
        b"truncated \xe2\x82 euro and \xc3\x28 pair\r\n"
        b"surrogate \xed\xa0\x80 and overlong \xc0\xaf\r\n"
        b"good \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\r\n"
        b"lone continuation \x80\x80 and \xf4\x90\x80\x80 too high\r\n",
        ["BODY=8BITMIME"])],
    "control-characters": [raw_data(
        b"Subject: ctl\r\n\r\ntab\there vt\x0bff\x0cfs\x1cgs\x1drs\x1e"
        b" nel\xc2\x85 ls\xe2\x80\xa8 nul\x00 del\x7f\r\n",
        ["BODY=8BITMIME"])],
    "dot-stuffing-by-smtplib": [sendmail(
        b"Subject: dots\r\n\r\n.hidden\r\n..two dots\r\n.\r\n"
        b" . not first\r\n...\r\nend\r\n")],
    "dot-stuffing-raw": [raw_data(
        b"Subject: dots\r\n\r\n..one\r\n...two\r\n..\r\n.x\r\nend\r\n")],
    "empty-message-raw": [raw_data(b"")],
    "empty-message-smtplib": [sendmail(b"")],
    "only-separator": [raw_data(b"\r\n")],
    "long-line": [sendmail(b"Subject: long\r\n\r\n" + b"x" * 998 + b"\r\n")],
    "several-over-one-connection": [
        sendmail(PLAIN),
        raw_data(b"Subject: second\r\n\r\nsecond body\r\n", ["BODY=7BIT"]),
        sendmail(b"Subject: third\r\n\r\nthird body\r\n"),
        raw_data(b""),
    ],
}


@pytest.mark.parametrize("steps", list(SCENARIOS.values()),
                         ids=list(SCENARIOS))
def test_same_output_as_aiosmtpd(steps, ref, daemon):
    ours = daemon(handler='{ type = "debugging"; }')
    ref_replies = play(ref, steps)
    our_replies = play(ours, steps)
    assert [r[0] for r in our_replies] == [r[0] for r in ref_replies]
    n = sum(1 for code, _ in ref_replies if code == 250)
    assert n == len(steps), ref_replies
    expected = normalise(printed(ref, n))
    got = normalise(printed(ours, n))
    assert expected.count(END) == n, expected  # the reference printed all
    assert got == expected


def test_peer_is_the_client_address(daemon):
    ours = daemon(handler='{ type = "debugging"; }')
    with smtplib.SMTP(ours.host, ours.port, timeout=20) as client:
        port = client.sock.getsockname()[1]
        client.sendmail(SENDER, [RCPT], PLAIN)
    out = printed(ours, 1)
    assert ("X-Peer: ('127.0.0.1', %d)\n" % port).encode() in out, out


@pytest.mark.parametrize("how", ["config", "command-line"])
def test_stream_stderr(how, ref, daemon):
    if how == "config":
        ours = daemon(handler='{ type = "debugging"; stream = "stderr"; }')
    else:
        ours = daemon(args=["-c", "Debugging", "stderr"])
    steps = SCENARIOS["several-over-one-connection"]
    play(ref, steps)
    play(ours, steps)
    n = len(steps)
    expected = normalise(printed(ref, n))
    got = normalise(printed(ours, n, stream="stderr"))
    assert got == expected
    assert ours.output() == b"", "the message went to stdout too"


def test_stream_stdout_explicit(ref, daemon):
    ours = daemon(args=["-c", "aiosmtpd.handlers.Debugging", "stdout"])
    steps = SCENARIOS["plain"]
    play(ref, steps)
    play(ours, steps)
    assert normalise(printed(ours, 1)) == normalise(printed(ref, 1))


# --- concurrency -------------------------------------------------------------

N_WORKERS = 4
N_CLIENTS = 8
PER_CLIENT = 5
BODY_LINES = 2500  # ~190 KiB a message: several writes' worth of output


def body_lines(client, msg):
    tag = "c%d-m%d" % (client, msg)
    return ["%s line %05d %s" % (tag, i, "abcdefghij" * 5)
            for i in range(BODY_LINES)]


def test_concurrent_messages_never_interleave(daemon):
    ours = daemon(handler='{ type = "debugging"; }', workers=N_WORKERS)
    errors = []
    barrier = threading.Barrier(N_CLIENTS, timeout=30)

    def client_thread(c):
        try:
            # All connect at once; 4 are served, 4 wait for a worker.
            barrier.wait()
            with smtplib.SMTP(ours.host, ours.port, timeout=60) as client:
                client.ehlo("client%d.example" % c)
                for m in range(PER_CLIENT):
                    data = ("Subject: c%d-m%d\r\n\r\n" % (c, m) +
                            "\r\n".join(body_lines(c, m)) + "\r\n")
                    client.sendmail(SENDER, [RCPT], data.encode())
                client.quit()
        except Exception as e:  # reported by the main thread
            errors.append((c, repr(e)))

    threads = [threading.Thread(target=client_thread, args=(c,))
               for c in range(N_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert errors == []

    total = N_CLIENTS * PER_CLIENT
    out = ours.wait_output(lambda b: b.count(END) >= total, timeout=30)
    lines = out.decode("utf-8").split("\n")
    assert lines[-1] == ""
    lines.pop()
    seen = set()
    i = 0
    while i < len(lines):
        assert lines[i] == BEGIN.decode().rstrip("\n"), \
            "line %d: %r is not the start of a message" % (i, lines[i])
        try:
            j = lines.index(END.decode().rstrip("\n"), i)
        except ValueError:
            pytest.fail("message at line %d never ends" % i)
        block = lines[i + 1:j]
        # mail options (smtplib adds SIZE), an empty line, the subject,
        # X-Peer, the empty separator, the body
        assert block[0].startswith("mail options: "), block[:3]
        assert block[1] == ""
        m = re.match(r"^Subject: (c([0-9]+)-m([0-9]+))$", block[2])
        assert m, block[:4]
        tag, c, n = m.group(1), int(m.group(2)), int(m.group(3))
        assert block[3].startswith("X-Peer: ('127.0.0.1', "), block[3]
        assert block[4] == ""
        body = block[5:]
        if body != body_lines(c, n):
            strangers = [l for l in body if not l.startswith(tag + " ")]
            pytest.fail("message %s is not one unbroken block: %d body "
                        "lines (expected %d), foreign lines such as %r"
                        % (tag, len(body), BODY_LINES, strangers[:3]))
        assert tag not in seen, "%s printed twice" % tag
        seen.add(tag)
        i = j + 1
    assert len(seen) == total
