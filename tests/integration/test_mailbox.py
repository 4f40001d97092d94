"""The Mailbox handler (handler { type = "mailbox"; } or -c Mailbox DIR).

(a) Side by side with aiosmtpd 1.4.3's Mailbox: the same messages sent to
    both servers must be stored as the same file content, once the port
    in X-Peer is normalised.
(b) Issue 2's load check: 10,000 messages of 1 KiB over 16 concurrent
    smtplib sessions give exactly 10,000 files in new/, nothing in tmp/,
    every body as sent, every file mode 0600.
(c) Missing Maildir directories are created with mode 0700.
(d) The file is written while the message arrives: a message that is
    refused or cut off leaves nothing in tmp/ or new/, and a Maildir
    that cannot take the file gives 451 and a log line.

    AIOSMTPD_BIN=/path/to/aiosmtpd AIOSMTPD_BUILDDIR=/path/to/build \\
        /usr/bin/python3 -m pytest tests/integration/test_mailbox.py
"""

import email.mime.application
import email.mime.multipart
import email.mime.text
import email.policy
import os
import re
import smtplib
import stat
import threading

import pytest

SENDER = "anne@example.com"
RCPTS = ["bart@example.com", "carl@example.com"]
X_PEER = re.compile(rb"^(X-Peer: \('127\.0\.0\.1', )[0-9]+\)$", re.MULTILINE)


def normalise(data):
    return X_PEER.sub(rb"\1PORT)", data)


def maildir_files(path, sub="new"):
    d = os.path.join(str(path), sub)
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def read(path):
    with open(str(path), "rb") as f:
        return f.read()


# --- ways of sending ---------------------------------------------------------

def sendmail(client, data, mail_options=()):
    refused = client.sendmail(SENDER, RCPTS, data, list(mail_options))
    assert refused == {}
    return 250


def send_raw(client, payload, mail_options=()):
    """MAIL, RCPT, DATA by smtplib, then the payload exactly as given (it
    holds its own dot-stuffing and ends with CRLF), then the final dot."""
    client.ehlo_or_helo_if_needed()
    code, msg = client.mail(SENDER, list(mail_options))
    assert code == 250, msg
    for rcpt in RCPTS:
        code, msg = client.rcpt(rcpt)
        assert code == 250, msg
    code, msg = client.docmd("DATA")
    assert code == 354, msg
    client.sock.sendall(payload + b".\r\n")
    code, msg = client.getreply()
    return code


def multipart():
    msg = email.mime.multipart.MIMEMultipart("mixed", boundary="==XYZ==")
    msg["From"] = "Anne <anne@example.com>"
    msg["To"] = "Bart <bart@example.com>"
    msg["Subject"] = "a multipart message"
    msg.preamble = "This is a multi-part message in MIME format."
    alt = email.mime.multipart.MIMEMultipart("alternative",
                                             boundary="==ALT==")
    alt.attach(email.mime.text.MIMEText("plain text\nsecond line\n"))
    alt.attach(email.mime.text.MIMEText(
        "<p>caf\u00e9 \u20ac</p>\n", "html", "utf-8"))
    msg.attach(alt)
    msg.attach(email.mime.application.MIMEApplication(
        bytes(range(256)) * 8, Name="blob.bin"))
    msg.epilogue = "the end"
    # smtplib leaves the line ends of bytes alone: make them CRLF.
    return msg.as_bytes(policy=email.policy.SMTP)


PLAIN = (b"From: Anne <anne@example.com>\r\n"
         b"To: Bart <bart@example.com>\r\n"
         b"Subject: a plain message\r\n"
         b"Message-ID: <1@example.com>\r\n"
         b"\r\n"
         b"Hello Bart,\r\n"
         b"\r\n"
         b"this is the body.\r\n")

# name: (how, data, mail options)
CORPUS = {
    "plain": ("smtplib", PLAIN, ()),
    "folded-headers": ("smtplib", (
        b"Subject: a rather long subject that the sender\r\n"
        b" folded onto a second line\r\n"
        b"\tand a third, with a tab\r\n"
        b"X-Folded:\r\n  value on the next line\r\n"
        b"To: bart@example.com,\r\n    carl@example.com\r\n"
        b"\r\nbody\r\n"), ()),
    "mbox-from-first-line": ("smtplib", (
        b"From anne@example.com Mon Jan  1 00:00:00 2024\r\n"
        b"Subject: mbox\r\n\r\nbody\r\nFrom here on a body line\r\n"), ()),
    "header-without-space": ("smtplib", (
        b"Subject:no space\r\nX-Empty:\r\nX-Blank: \r\n"
        b"X-Trailing: value   \r\nX-Colons: a: b: c\r\n\r\nbody\r\n"), ()),
    "long-header": ("smtplib", (
        b"Subject: " + b"word " * 60 + b"end\r\n"
        b"X-Long: " + b"x" * 300 + b"\r\n\r\nbody\r\n"), ()),
    "no-blank-line-headers-only": ("smtplib", (
        b"Subject: only headers\r\nX-Other: yes\r\n"), ()),
    "no-blank-line-body-follows": ("smtplib", (
        b"Subject: no separator\r\nthis line is not a header\r\n"
        b"X-Not: a header any more\r\n"), ()),
    "no-headers": ("smtplib", (
        b"just a body line\r\nand another\r\n"), ()),
    "blank-first": ("smtplib", (
        b"\r\nbody after an empty line\r\n"), ()),
    "crlf-cr-lf-mix": ("raw", (
        b"Subject: mix\r\nX-A: 1\nX-B: 2\rX-C: 3\r\n\r\n"
        b"crlf\r\nlf\ncr\rcrlf again\r\n\n\r\rend\r\n"), ()),
    "bare-lf-only": ("raw", (
        b"Subject: lf\nX-A: 1\n\nbody\nmore\n\r\n"), ()),
    "bare-cr-only": ("raw", (
        b"Subject: cr\rX-A: 1\r\rbody\rmore\r\r\n"), ()),
    "lf-dot-crlf-is-content": ("raw", (
        b"Subject: smuggle\r\n\r\nbefore\n.\r\nMAIL FROM:<x@y>\r\n"), ()),
    "8bit-body": ("smtplib", (
        b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"caf\xc3\xa9 \xe2\x82\xac\r\nlatin-1 \xe9t\xe9\r\nbad \xff\xfe\r\n"),
        ("BODY=8BITMIME",)),
    "8bit-header": ("smtplib", (
        b"Subject: caf\xc3\xa9\r\nX-Latin1: \xe9t\xe9\r\n\r\nbody\r\n"),
        ("BODY=8BITMIME",)),
    "multipart-email-mime": ("smtplib", multipart(), ()),
    "dot-stuffed": ("smtplib", (
        b"Subject: dots\r\n\r\n.hidden\r\n..two\r\n.\r\nend\r\n"), ()),
    "existing-x-peer": ("smtplib", (
        b"Subject: has headers of its own\r\nX-Peer: forged\r\n"
        b"X-MailFrom: forged@example.com\r\n\r\nbody\r\n"), ()),
    "empty": ("raw", b"", ()),
    "from-between-headers": ("smtplib", (
        b"Subject: one\r\nFrom nobody Mon Jan  1 00:00:00 2024\r\n"
        b"X-After: two\r\n\r\nbody\r\n"), ()),
    "continuation-first": ("smtplib", (
        b" continued first\r\nSubject: x\r\n\r\nbody\r\n"), ()),
    "empty-header-name": ("smtplib", (
        b"Subject: x\r\n: no name\r\nX-After: y\r\n\r\nbody\r\n"), ()),
    "no-final-newline-in-body": ("smtplib", (
        b"Subject: x\r\n\r\nno newline at the end"), ()),
}


def large_message():
    """Over 1 MiB with a header block of 70 KiB, line ends of every kind
    and line ends split across every read the server makes."""
    head = b"Subject: large\r\nX-Folded: start\r\n" + b"".join(
        b" continuation %05d of a header that goes on and on\r\n" % i
        for i in range(1200))
    ends = [b"\r\n", b"\n", b"\r", b"\r\n", b"\r\r\n"]
    body = b"".join(b"body line %06d %s%s" % (i, b"x" * (i % 97),
                                             ends[i % len(ends)])
                    for i in range(16000))
    return head + b"\r\n" + body + b"last line\r\n"


CORPUS["large-mixed-line-ends"] = ("raw", large_message(), ())


def deliver_each(server, maildir, corpus):
    """Send each message; returns {name: (reply code, stored bytes)}."""
    stored = {}
    with smtplib.SMTP(server.host, server.port, timeout=20) as client:
        for name, (how, data, options) in corpus.items():
            before = maildir_files(maildir)
            if how == "smtplib":
                code = sendmail(client, data, options)
            else:
                code = send_raw(client, data, options)
            new = maildir_files(maildir) - before
            assert len(new) == (1 if code == 250 else 0), (name, code, new)
            stored[name] = (code, read(os.path.join(
                str(maildir), "new", new.pop())) if new else None)
        client.quit()
    return stored


def test_same_files_as_aiosmtpd(tmp_path, daemon, reference):
    """Every message of the corpus is stored as aiosmtpd stores it."""
    ref_dir = tmp_path / "ref-Maildir"
    our_dir = tmp_path / "our-Maildir"
    ref = reference(handler="mailbox:%s" % ref_dir)
    ours = daemon(handler='{ type = "mailbox"; path = "%s"; }' % our_dir)
    expected = deliver_each(ref, ref_dir, CORPUS)
    got = deliver_each(ours, our_dir, CORPUS)
    mismatches = []
    for name in CORPUS:
        e_code, e_data = expected[name]
        g_code, g_data = got[name]
        assert e_code == 250, (name, e_code)
        if g_code != e_code or normalise(g_data) != normalise(e_data):
            mismatches.append("--- %s: reply %s, expected %s\n"
                              "expected: %r\ngot:      %r"
                              % (name, g_code, e_code,
                                 normalise(e_data), g_data and
                                 normalise(g_data)))
    assert not mismatches, "%d of %d differ:\n%s" % (
        len(mismatches), len(CORPUS), "\n".join(mismatches))
    assert maildir_files(our_dir, "tmp") == set()


def test_cli_mailbox_same_as_config(tmp_path, daemon):
    """-c Mailbox DIR and -c aiosmtpd.handlers.Mailbox DIR store the same
    as handler { type = "mailbox"; }."""
    results = []
    for i, args in enumerate([
            None, ["-c", "Mailbox"], ["-c", "aiosmtpd.handlers.Mailbox"]]):
        d = tmp_path / ("Maildir%d" % i)
        if args is None:
            server = daemon(handler='{ type = "mailbox"; path = "%s"; }' % d)
        else:
            server = daemon(args=args + [str(d)])
        stored = deliver_each(server, d, {"plain": CORPUS["plain"]})
        results.append(normalise(stored["plain"][1]))
        assert server.stop() == 0, server.log()
    assert results[0] == results[1] == results[2]
    assert results[0].endswith(b"\n\nHello Bart,\n\nthis is the body.\n")


# --- 10,000 messages over 16 sessions ----------------------------------------

N_MESSAGES = 10000
N_SESSIONS = 16
MESSAGE_SIZE = 1024


def load_message(n):
    """Message n: about 1 KiB, with a body only it has."""
    head = "Subject: load %05d\r\nMessage-ID: <%05d@load.example>\r\n\r\n" % (
        n, n)
    line = "%05d %s" % (n, "".join(chr(ord("a") + (n * 7 + i) % 26)
                                   for i in range(60)))
    body = ""
    while len(head) + len(body) + len(line) + 2 <= MESSAGE_SIZE:
        body += line + "\r\n"
    body += "%05d end" % n + "x" * (MESSAGE_SIZE - len(head) - len(body)
                                   - 11) + "\r\n"
    data = (head + body).encode()
    assert len(data) == MESSAGE_SIZE
    return data, body.replace("\r\n", "\n").encode()


def test_ten_thousand_messages(tmp_path, daemon):
    maildir = tmp_path / "Maildir"
    server = daemon(handler='{ type = "mailbox"; path = "%s"; }' % maildir,
                    workers=N_SESSIONS)
    errors = []
    per_session = N_MESSAGES // N_SESSIONS

    def session(s):
        try:
            with smtplib.SMTP(server.host, server.port, timeout=60) as c:
                for n in range(s * per_session, (s + 1) * per_session):
                    data, _ = load_message(n)
                    refused = c.sendmail(SENDER, ["bart@example.com"], data)
                    assert refused == {}, refused
                c.quit()
        except Exception as e:  # reported by the main thread
            errors.append((s, repr(e)))

    threads = [threading.Thread(target=session, args=(s,))
               for s in range(N_SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not any(t.is_alive() for t in threads), "sessions hung"
    assert errors == [], errors[:5]

    new = os.listdir(str(maildir / "new"))
    assert len(new) == N_MESSAGES
    assert os.listdir(str(maildir / "tmp")) == []
    seen = {}
    bad_mode, bad_body = [], []
    for name in new:
        path = os.path.join(str(maildir), "new", name)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode != 0o600:
            bad_mode.append((name, oct(mode)))
        data = read(path)
        m = re.search(rb"^Subject: load ([0-9]{5})$", data, re.MULTILINE)
        assert m, data[:200]
        n = int(m.group(1))
        assert n not in seen, "message %d stored twice" % n
        seen[n] = name
        head, sep, body = data.partition(b"\n\n")
        if not sep or body != load_message(n)[1]:
            bad_body.append(n)
    assert bad_mode == [], bad_mode[:5]
    assert bad_body == [], bad_body[:5]
    assert sorted(seen) == list(range(N_MESSAGES))
    assert server.stop() == 0, server.log()


# --- directories -------------------------------------------------------------

@pytest.mark.parametrize("how", ["config", "command-line"])
def test_missing_directories_created_0700(tmp_path, daemon, how):
    maildir = tmp_path / "Maildir"
    assert not maildir.exists()
    if how == "config":
        server = daemon(handler='{ type = "mailbox"; path = "%s"; }'
                        % maildir)
    else:
        server = daemon(args=["-c", "Mailbox", str(maildir)])
    deliver_each(server, maildir, {"plain": CORPUS["plain"]})
    for d in (maildir, maildir / "new", maildir / "cur", maildir / "tmp"):
        assert d.is_dir(), d
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(
            d.stat().st_mode))
    files = list((maildir / "new").iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert server.stop() == 0, server.log()


def test_missing_subdirectories_created_0700(tmp_path, daemon):
    """An existing, empty directory: new/ cur/ tmp/ are added, 0700; the
    directory itself is left as it was."""
    maildir = tmp_path / "Maildir"
    maildir.mkdir()
    os.chmod(str(maildir), 0o750)
    server = daemon(handler='{ type = "mailbox"; path = "%s"; }' % maildir)
    deliver_each(server, maildir, {"plain": CORPUS["plain"]})
    assert stat.S_IMODE(maildir.stat().st_mode) == 0o750
    for sub in ("new", "cur", "tmp"):
        d = maildir / sub
        assert d.is_dir(), d
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(
            d.stat().st_mode))
    assert len(list((maildir / "new").iterdir())) == 1
    assert server.stop() == 0, server.log()


def test_umask_does_not_loosen_modes(tmp_path, daemon):
    """Even under umask 000 the files are 0600 and the directories 0700."""
    maildir = tmp_path / "Maildir"
    old = os.umask(0)
    try:
        server = daemon(handler='{ type = "mailbox"; path = "%s"; }'
                        % maildir)
    finally:
        os.umask(old)
    deliver_each(server, maildir, {"plain": CORPUS["plain"],
                                   "empty": CORPUS["empty"]})
    for sub in ("", "new", "cur", "tmp"):
        d = maildir / sub if sub else maildir
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(
            d.stat().st_mode))
    for f in (maildir / "new").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(
            f.stat().st_mode))
    assert server.stop() == 0, server.log()


# --- unfinished messages -----------------------------------------------------

def start_data(client):
    client.ehlo()
    assert client.mail(SENDER)[0] == 250
    assert client.rcpt(RCPTS[0])[0] == 250
    code, msg = client.docmd("DATA")
    assert code == 354, msg


def assert_empty(maildir):
    assert maildir_files(maildir, "new") == set()
    assert maildir_files(maildir, "tmp") == set()


def test_refused_messages_leave_nothing(tmp_path, daemon):
    """Too much mail data, a line too long and non-ASCII in strict ASCII
    mode are refused after the content has started to arrive: no file."""
    maildir = tmp_path / "Maildir"
    server = daemon(settings="data_size_limit = 300000;\n"
                    "decode_data = true;",
                    handler='{ type = "mailbox"; path = "%s"; }' % maildir)
    cases = [
        (b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 5000, 552),
        (b"Subject: long\r\n\r\n" + b"z" * 100000 + b"\r\n", 500),
        (b"Subject: caf\xc3\xa9\r\n\r\n" + b"a" * 200000 + b"\r\n", 500),
    ]
    with smtplib.SMTP(server.host, server.port, timeout=30) as client:
        for payload, want in cases:
            start_data(client)
            client.sock.sendall(payload + b".\r\n")
            code, msg = client.getreply()
            assert code == want, msg
            assert_empty(maildir)
        # and the next message is stored as usual
        assert client.sendmail(SENDER, RCPTS, PLAIN) == {}
    assert len(maildir_files(maildir)) == 1
    assert maildir_files(maildir, "tmp") == set()
    assert server.stop() == 0, server.log()


def test_dropped_connection_leaves_nothing(tmp_path, daemon):
    """A client that goes away in the middle of DATA leaves no file, and
    the worker serves the next session."""
    maildir = tmp_path / "Maildir"
    server = daemon(handler='{ type = "mailbox"; path = "%s"; }' % maildir,
                    workers=1)
    client = smtplib.SMTP(server.host, server.port, timeout=30)
    start_data(client)
    client.sock.sendall(b"Subject: cut\r\n\r\n" + b"w" * 78000 * 10)
    client.close()
    # One worker: this session waits until the cut one is over.
    with smtplib.SMTP(server.host, server.port, timeout=30) as next_client:
        assert next_client.sendmail(SENDER, RCPTS, PLAIN) == {}
    assert len(maildir_files(maildir)) == 1
    assert maildir_files(maildir, "tmp") == set()
    assert server.stop() == 0, server.log()
    assert "reason=eof" in server.log(), server.log()


def test_maildir_without_tmp_gives_451(tmp_path, daemon):
    """tmp/ removed under a running server: 451 and a log line naming the
    Maildir, nothing stored; once tmp/ is back, delivery works again."""
    maildir = tmp_path / "Maildir"
    server = daemon(handler='{ type = "mailbox"; path = "%s"; }' % maildir)
    os.rmdir(str(maildir / "tmp"))
    with smtplib.SMTP(server.host, server.port, timeout=30) as client:
        with pytest.raises(smtplib.SMTPDataError) as e:
            client.sendmail(SENDER, RCPTS, PLAIN)
        assert e.value.smtp_code == 451
        assert maildir_files(maildir) == set()
        os.mkdir(str(maildir / "tmp"), 0o700)
        assert client.sendmail(SENDER, RCPTS, PLAIN) == {}
    assert len(maildir_files(maildir)) == 1
    assert server.stop() == 0, server.log()
    assert re.search(r"Maildir open of \S+/Maildir/tmp/\S+ failed: "
                     r"No such file or directory", server.log()), server.log()
