"""The Maildir handler: one Maildir per recipient, with trace headers.

-c Maildir PATH (or handler = { type = "maildir"; path = ...; }) with %u
and %d in PATH: recipients in two domains land in their own Maildirs,
created on the way (mode 0700), as hard links of one file that carries a
Return-Path and a Received header whose id is the session id of the log.
"""

import os
import re
import stat
import subprocess

import pytest

from conftest import BIN, HOSTNAME, Server
from peers import wait_until

RCPTS = ["anne@example.com", "Bob@Example.COM", "carol@example.org"]
MESSAGE = b"Subject: to three\r\n\r\nline one\r\n..dot\r\nbare\rcr\r\n"


def maildir_daemon(daemon, path):
    return daemon(handler='{ type = "maildir"; path = "%s"; }' % path)


def send(connect, server, rcpts, message=MESSAGE, sender="sender@x.org"):
    c = connect(server)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<%s>" % sender) == b"250 OK\r\n"
    for r in rcpts:
        assert c.cmd("RCPT TO:<%s>" % r) == b"250 OK\r\n"
    assert c.cmd("DATA").startswith(b"354")
    reply = c.cmd(message + b".")
    c.cmd("QUIT")
    return reply


def files_in(maildir):
    new = os.path.join(maildir, "new")
    return [os.path.join(new, n) for n in sorted(os.listdir(new))]


def session_id(server):
    wait_until(lambda: " message from=" in server.log())
    line = [l for l in server.log().splitlines() if " message from=" in l][0]
    return line.split()[2]


def test_three_recipients_two_domains(daemon, connect, tmp_path):
    root = str(tmp_path / "mail")
    server = maildir_daemon(daemon, root + "/%d/%u/Maildir")
    assert send(connect, server, RCPTS) == b"250 OK\r\n"
    sid = session_id(server)
    dirs = [os.path.join(root, "example.com", "anne", "Maildir"),
            os.path.join(root, "example.com", "bob", "Maildir"),
            os.path.join(root, "example.org", "carol", "Maildir")]
    inodes = set()
    for d in dirs:
        for sub in ("tmp", "new", "cur"):
            mode = os.stat(os.path.join(d, sub)).st_mode
            assert stat.S_IMODE(mode) == 0o700
        [path] = files_in(d)
        assert os.listdir(os.path.join(d, "tmp")) == []
        st = os.stat(path)
        inodes.add(st.st_ino)
        assert st.st_nlink == 3
        with open(path, "rb") as f:
            data = f.read()
        head = (b"Return-Path: <sender@x.org>\n"
                b"Received: from client.example ([127.0.0.1])\n"
                b"\tby %s (aiosmtpd-c) with ESMTP id %s; " % (
                    HOSTNAME.encode(), sid.encode()))
        assert data.startswith(head), data
        date = data[len(head):].split(b"\n", 1)[0]
        assert re.match(rb"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                        rb"\d\d:\d\d:\d\d [+-]\d{4}$", date), date
        assert data.endswith(b"\nSubject: to three\n\nline one\n.dot\n"
                             b"bare\ncr\n")
    assert len(inodes) == 1  # one file, linked three times


def test_shared_maildir_gets_one_copy(daemon, connect, tmp_path):
    root = str(tmp_path / "m")
    server = maildir_daemon(daemon, root + "/%d")
    assert send(connect, server, RCPTS) == b"250 OK\r\n"
    assert len(files_in(os.path.join(root, "example.com"))) == 1
    assert len(files_in(os.path.join(root, "example.org"))) == 1


def test_single_recipient_and_null_sender(daemon, connect, tmp_path):
    root = str(tmp_path / "m")
    server = maildir_daemon(daemon, root + "/%u%%")
    assert send(connect, server, ["anne@example.com"], sender="") == \
        b"250 OK\r\n"
    [path] = files_in(os.path.join(root, "anne%"))
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(b"Return-Path: <>\nReceived: ")
    assert b"\tfor <anne@example.com>; " in data


def test_unsafe_recipient_refused_at_rcpt(daemon, connect, tmp_path):
    root = str(tmp_path / "m")
    server = maildir_daemon(daemon, root + "/%d/%u")
    c = connect(server)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<sender@x.org>")
    for bad in ('"../../etc"@example.com', "a/b@example.com",
                ".hidden@example.com", "..@example.com", "anne@x/y",
                '"..."@example.com'):
        reply = c.cmd("RCPT TO:<%s>" % bad)
        assert reply.startswith(b"550 5.1.3 "), (bad, reply)
    assert not os.path.exists(root)


def test_unwritable_maildir_is_451_and_nothing_kept(daemon, connect,
                                                    tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    (root / "example.org").write_text("a file where a directory should be")
    server = maildir_daemon(daemon, str(root) + "/%d/%u")
    reply = send(connect, server, ["anne@example.com", "carol@example.org"])
    assert reply.startswith(b"451 4.3.0 ")
    # anne's copy was taken back: the client will send it again.
    assert files_in(str(root / "example.com" / "anne")) == []
    assert wait_until(lambda: "result=not delivered" in server.log())
    assert "delivered\n" not in server.log().replace("not delivered", "")


def test_bad_template_stops_the_start(tmp_path):
    proc = subprocess.run([BIN, "-n", "-l", "127.0.0.1:0", "-c", "Maildir",
                           str(tmp_path) + "/%x"],
                          capture_output=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"may hold only %u (local part), %d (domain) and %%" in \
        proc.stderr


def test_cli_form(connect, tmp_path):
    server = Server([BIN, "-n", "-l", "127.0.0.1:0", "-c", "Maildir",
                     str(tmp_path) + "/%d/%u"]).start()
    try:
        assert send(connect, server, ["anne@example.com"]) == b"250 OK\r\n"
        assert len(files_in(str(tmp_path / "example.com" / "anne"))) == 1
    finally:
        server.kill()


# --- one Maildir: written while the message arrives --------------------------

def big_message():
    """Over 1 MiB, line ends of every kind, some split across reads."""
    ends = [b"\r\n", b"\n", b"\r", b"\r\r\n"]
    body = b"".join(b"line %06d %s%s" % (i, b"y" * (i % 89), ends[i % 4])
                    for i in range(20000))
    return b"Subject: big\r\n\r\n" + body + b"end\r\n"


def as_stored(message):
    """What the file holds after the trace headers: LF line ends."""
    return message.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def body_of(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(b"Return-Path: <sender@x.org>\nReceived: "), \
        data[:200]
    return data[data.index(b"Subject: "):]


def test_streamed_and_spooled_files_are_the_same(daemon, connect, tmp_path):
    """One Maildir (written as the message arrives) and two Maildirs
    (spooled first) store the same bytes."""
    root = str(tmp_path / "m")
    server = maildir_daemon(daemon, root + "/%u")
    message = big_message()
    assert send(connect, server, ["one@example.com"], message) == \
        b"250 OK\r\n"
    assert send(connect, server, ["two@example.com", "three@example.com"],
                message) == b"250 OK\r\n"
    [one] = files_in(os.path.join(root, "one"))
    [two] = files_in(os.path.join(root, "two"))
    assert body_of(one) == as_stored(message)
    assert body_of(two) == as_stored(message)
    for user in ("one", "two", "three"):
        assert os.listdir(os.path.join(root, user, "tmp")) == []
    assert stat.S_IMODE(os.stat(one).st_mode) == 0o600


def test_refused_message_leaves_nothing(daemon, connect, tmp_path):
    root = str(tmp_path / "m")
    server = daemon(settings="data_size_limit = 500000;",
                    handler='{ type = "maildir"; path = "%s"; }'
                    % (root + "/%u"))
    reply = send(connect, server, ["one@example.com"], big_message())
    assert reply.startswith(b"552 "), reply
    assert os.listdir(os.path.join(root, "one", "new")) == []
    assert os.listdir(os.path.join(root, "one", "tmp")) == []


def test_one_unwritable_maildir_is_451(daemon, connect, tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    (root / "anne").write_text("a file where a directory should be")
    server = maildir_daemon(daemon, str(root) + "/%u")
    reply = send(connect, server, ["anne@example.com"])
    assert reply.startswith(b"451 4.3.0 "), reply
    assert wait_until(lambda: "result=not delivered" in server.log())
    # The failure is logged once, naming the path that failed.
    assert server.log().count("mkdir(%s/anne/tmp) failed: Not a directory"
                              % root) == 1, server.log()


def test_full_file_system_is_452_and_nothing_kept(daemon, connect,
                                                  tmp_path):
    """A Maildir on a file system that fills up while the message is
    written: 452 4.3.1, and no file left in tmp/ or new/."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                    str(small)], check=True)
    try:
        server = maildir_daemon(daemon, str(small) + "/%u")
        reply = send(connect, server, ["anne@example.com"], big_message())
        assert reply.startswith(b"452 4.3.1 "), reply
        assert os.listdir(str(small / "anne" / "new")) == []
        assert os.listdir(str(small / "anne" / "tmp")) == []
        assert wait_until(lambda: "No space left on device" in server.log())
        # A small message still fits: the space came back.
        assert send(connect, server, ["anne@example.com"]) == b"250 OK\r\n"
        assert len(files_in(str(small / "anne"))) == 1
        assert server.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
