"""Per-session limits on the real daemon: max_recipients, and
command_call_limit and the unknown-command budget per listener.

max_recipients is not aiosmtpd's (it has no such limit, and neither has
our daemon unless configured): the RCPT after the limit in one message is
answered "452 4.5.3 Too many recipients" (RFC 5321 4.5.3.1.10), the
message goes to the recipients accepted before it, and the next message
starts counting again.  command_call_limit and the five-unknown budget are
compared with aiosmtpd in test_sidebyside.py; here they are shown to
follow the listener they are configured on.

Run with Debian's interpreter (see test_sidebyside.py).
"""

import glob
import smtplib

import pytest

import conftest

TOO_MANY = (452, b"4.5.3 Too many recipients")


def mailbox_handler(path):
    return '{ type = "mailbox"; path = "%s"; }' % path


def delivered(maildir):
    """The X-RcptTo header of each stored message."""
    out = []
    for name in sorted(glob.glob(str(maildir / "new" / "*"))):
        with open(name, "rb") as f:
            for line in f.read().split(b"\n"):
                if line.startswith(b"X-RcptTo: "):
                    out.append(line[10:].decode())
    return out


def rcpts(n, domain="example.com"):
    return ["user%d@%s" % (i, domain) for i in range(n)]


def test_max_recipients(daemon, tmp_path):
    maildir = tmp_path / "Maildir"
    server = daemon(settings="max_recipients = 3;",
                    handler=mailbox_handler(maildir))
    with smtplib.SMTP(server.host, server.port, timeout=10) as c:
        refused = c.sendmail("a@example.com", rcpts(5),
                             b"Subject: five\r\n\r\nx\r\n")
        assert refused == {"user3@example.com": TOO_MANY,
                           "user4@example.com": TOO_MANY}
        # the count is per message, not per session
        assert c.sendmail("a@example.com", rcpts(3, "example.org"),
                          b"Subject: three\r\n\r\nx\r\n") == {}
        # RSET starts a new message too
        c.mail("a@example.com")
        for r in rcpts(3):
            assert c.rcpt(r)[0] == 250
        assert c.rcpt("late@example.com") == TOO_MANY
        c.rset()
        c.mail("a@example.com")
        assert c.rcpt("late@example.com")[0] == 250
    assert sorted(delivered(maildir)) == [
        "user0@example.com, user1@example.com, user2@example.com",
        "user0@example.org, user1@example.org, user2@example.org"]


def test_max_recipients_then_data(daemon):
    """DATA goes on with the recipients accepted; after the message the
    envelope is empty again."""
    server = daemon(settings="max_recipients = 1;")
    with smtplib.SMTP(server.host, server.port, timeout=10) as c:
        c.ehlo("client.example")
        c.mail("a@example.com")
        assert c.rcpt("b@example.com")[0] == 250
        assert c.rcpt("c@example.com") == TOO_MANY
        assert c.data(b"x\r\n")[0] == 250
        c.mail("a@example.com")
        assert c.docmd("DATA") == (503, b"Error: need RCPT command")


def test_max_recipients_per_listener(daemon):
    server = daemon(settings="max_recipients = 2;", listeners=[
        '{ address = "127.0.0.1:0"; }',
        '{ address = "127.0.0.1:0"; max_recipients = 0; }'])
    for (host, port), refused in zip(server.addresses, [3, 0]):
        with smtplib.SMTP(host, port, timeout=10) as c:
            got = c.sendmail("a@example.com", rcpts(5), b"x\r\n")
            assert len(got) == refused
            assert all(v == TOO_MANY for v in got.values())


def test_no_recipient_limit_by_default(daemon, reference):
    """As aiosmtpd: no limit at all unless configured."""
    for server in (daemon(), reference()):
        with smtplib.SMTP(server.host, server.port, timeout=10) as c:
            assert c.sendmail("a@example.com", rcpts(150), b"x\r\n") == {}


def _noops(host, port, n):
    """Replies to n NOOPs, then whether the server closed."""
    c = conftest.Client(host, port)
    c.reply()
    out = [c.cmd("NOOP").decode() for _ in range(n)]
    closed = c.closed()
    c.close()
    return out, closed


def test_call_limit_per_listener(daemon):
    server = daemon(settings="command_call_limit = { NOOP = 2; };",
                    listeners=[
                        '{ address = "127.0.0.1:0"; }',
                        '{ address = "127.0.0.1:0"; '
                        'command_call_limit = 20; }'])
    (h0, p0), (h1, p1) = server.addresses
    out, closed = _noops(h0, p0, 3)
    assert out == ["250 OK\r\n", "250 OK\r\n",
                   "421 4.7.0 NOOP sent too many times\r\n"]
    assert closed
    out, _ = _noops(h1, p1, 3)
    assert out == ["250 OK\r\n"] * 3
    log = server.stderr.wait_for(lambda b: b"call limit" in b, 10)
    assert b"over the call limit for NOOP" in log


def test_unknown_budget_is_per_session(daemon):
    """Five unknown commands end a session, not the next one."""
    server = daemon()
    for _ in range(2):
        c = conftest.Client(server.host, server.port)
        c.reply()
        for word in ("A", "B", "C", "D"):
            assert c.cmd(word) == (
                b'500 Error: command "%s" not recognized\r\n' %
                word.encode())
        assert c.cmd("E") == (b"502 5.5.1 Too many unrecognized commands, "
                              b"goodbye.\r\n")
        assert c.closed()
        c.close()
