"""LMTP: our daemon with a listener `protocol = "lmtp"`.

Two kinds of tests:

- LMTP_DIALOGUES are played side by side with aiosmtpd's LMTP class (as
  in test_sidebyside.py, whose machinery this file reuses): LHLO, HELO and
  EHLO refused, HELP, the transaction with a single recipient, and the
  rest of the SMTP rules on an LMTP session.
- The **fix** row of BEHAVIOR.md: after the final dot our daemon sends one
  reply per accepted recipient, in RCPT order (RFC 2033), where aiosmtpd
  sends a single reply.  These tests assert the per-recipient replies on
  our daemon and that the reference sends one.  The data errors (552,
  500 line too long, 500 strict ASCII) are repeated per recipient too.

To count replies exactly, the final dot is followed in the same write by
"RSET x", whose "501 Syntax: RSET" must come right after the last reply
for the message.

Run with Debian's interpreter (see test_sidebyside.py).
"""

import pytest

from test_sidebyside import (
    ALICE, BAD_SYNTAX, BOB, C, CLOSED, Dialogue, GO_AHEAD, LINE_TOO_LONG,
    MAIL, MAIL_PARAMS_555, MAIL_SYNTAX_E, MALFORMED, NEED_MAIL, NEED_RCPT,
    NESTED_MAIL, OK, PARAMS, R, RCPT_PARAMS_555, RCPT_SYNTAX_E, S,
    SEND_HELO, SIZE_552, STRICT_ASCII, TOO_LONG, TOO_MANY_UNKNOWN,
    TOO_MUCH_DATA, VRFY_252, ehlo_reply, expected_transcript, mail_line,
    message_of, over_limit, play, render, run_compared, ServerPool,
    unknown)

LMTP_HELP = ("Supported commands: AUTH DATA HELP LHLO MAIL NOOP QUIT RCPT "
             "RSET VRFY")
HELO_REFUSED = unknown("HELO")
EHLO_REFUSED = unknown("EHLO")
RSET_501 = "501 Syntax: RSET"
MESSAGE = b"Subject: lmtp\r\n\r\nHello.\r\n.\r\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(ours, reference) pairs with an LMTP listener / aiosmtpd's LMTP."""
    pool = ServerPool(tmp_path_factory.mktemp("lmtp"))
    yield pool
    pool.stop_all()


def lhlo(**kw):
    return C("LHLO client.example", *ehlo_reply(**kw))


LHLO = lhlo()
RCPT = C("RCPT TO:<%s>" % BOB, OK)
DATA = C("DATA", GO_AHEAD)


def rcpts(n):
    return [C("RCPT TO:<user%d@example.com>" % i, OK) for i in range(n)]


def lmtp(name, steps, **settings):
    return Dialogue(name, steps, lmtp=True, **settings)


# --- side by side: everything that is not the fix row ---------------------

LMTP_DIALOGUES = [
    lmtp("lhlo_reply", [LHLO, MAIL, RCPT]),
    lmtp("lhlo_reply_without_size", [lhlo(size=0)], data_size_limit=0),
    lmtp("lhlo_reply_decode_data_smtputf8",
         [lhlo(size=1000, eightbit=False, smtputf8=True)],
         data_size_limit=1000, decode_data=True, smtputf8=True),
    lmtp("lhlo_no_argument", [
        C("LHLO", "501 Syntax: EHLO hostname"),
        C("LHLO   ", "501 Syntax: EHLO hostname"),
        C("MAIL FROM:<%s>" % ALICE, SEND_HELO)]),
    lmtp("lhlo_twice_resets_envelope", [
        LHLO, MAIL, RCPT, LHLO, C("RCPT TO:<%s>" % BOB, NEED_MAIL), MAIL]),
    lmtp("helo_and_ehlo_not_recognized", [
        C("HELO client.example", HELO_REFUSED),
        C("EHLO client.example", EHLO_REFUSED),
        C("HELO", HELO_REFUSED), C("ehlo", EHLO_REFUSED),
        C("helo x y", HELO_REFUSED),
        C("MAIL FROM:<%s>" % ALICE, SEND_HELO),
        LHLO, C("HELO client.example", HELO_REFUSED), MAIL]),
    # aiosmtpd's LMTP has HELO and EHLO methods that answer 500: they are
    # not unknown commands and do not use up the five-unknown budget.
    lmtp("helo_ehlo_not_counted_as_unknown", [
        C("HELO a", HELO_REFUSED), C("EHLO a", EHLO_REFUSED),
        C("HELO a", HELO_REFUSED), C("EHLO a", EHLO_REFUSED),
        C("HELO a", HELO_REFUSED), C("EHLO a", EHLO_REFUSED),
        C("FOO", unknown("FOO")), C("BAR", unknown("BAR")),
        C("BAZ", unknown("BAZ")), C("QUX", unknown("QUX")),
        C("NOOP", OK), C("ZAP", TOO_MANY_UNKNOWN), CLOSED]),
    lmtp("transaction_before_lhlo", [
        C("MAIL FROM:<%s>" % ALICE, SEND_HELO),
        C("RCPT TO:<%s>" % BOB, SEND_HELO),
        C("DATA", SEND_HELO), C("NOOP", OK)]),
    lmtp("help", [
        C("HELP", "250 " + LMTP_HELP),
        C("HELP LHLO", "250 Syntax: LHLO hostname"),
        C("HELP lhlo", "250 Syntax: LHLO hostname"),
        C("HELP HELO", "501 " + LMTP_HELP),
        C("HELP EHLO", "501 " + LMTP_HELP),
        C("HELP MAIL", "250 Syntax: MAIL FROM: <address>"),
        C("HELP FOO", "501 " + LMTP_HELP),
        LHLO,
        C("HELP", "250 " + LMTP_HELP),
        C("HELP MAIL", "250 Syntax: MAIL FROM: <address>" + PARAMS),
        C("HELP RCPT", "250 Syntax: RCPT TO: <address>" + PARAMS)]),
    lmtp("one_recipient_single_reply", [
        LHLO, MAIL, RCPT, DATA, S(MESSAGE + b"RSET x\r\n"),
        R(OK), R(RSET_501), C("RCPT TO:<%s>" % BOB, NEED_MAIL),
        C("QUIT", "221 Bye"), CLOSED]),
    lmtp("one_recipient_too_much_data", [
        lhlo(size=100), MAIL, RCPT, DATA,
        S(message_of("x" * 60, "y" * 60) + b"RSET x\r\n"),
        R(TOO_MUCH_DATA), R(RSET_501), C("RCPT TO:<%s>" % BOB, NEED_MAIL)],
        data_size_limit=100),
    lmtp("one_recipient_line_too_long", [
        LHLO, MAIL, RCPT, DATA,
        S(message_of("x" * 1500) + b"RSET x\r\n"),
        R(LINE_TOO_LONG), R(RSET_501), C("RCPT TO:<%s>" % BOB, NEED_MAIL)]),
    lmtp("one_recipient_strict_ascii", [
        lhlo(eightbit=False), MAIL, RCPT, DATA,
        S(b"Subject: caf\xc3\xa9\r\n\r\nx\r\n.\r\nRSET x\r\n"),
        R(STRICT_ASCII), R(RSET_501)], decode_data=True),
    lmtp("data_without_recipient", [
        LHLO, C("DATA", NEED_RCPT), MAIL, C("DATA", NEED_RCPT),
        C("RCPT TO:<bad@example.com.>", MALFORMED), C("DATA", NEED_RCPT)]),
    lmtp("mail_and_rcpt_rules", [
        lhlo(size=1000),
        C("MAIL", MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> SIZE=1001" % ALICE, SIZE_552),
        C("MAIL FROM:<%s> FOO=1" % ALICE, MAIL_PARAMS_555),
        C("MAIL FROM:<%s> BODY=8BITMIME SIZE=1000" % ALICE, OK),
        C("MAIL FROM:<%s>" % ALICE, NESTED_MAIL),
        C("RCPT", RCPT_SYNTAX_E),
        C("RCPT TO:<%s> NOTIFY=NEVER" % BOB, RCPT_PARAMS_555),
        RCPT, C("RSET", OK), C("RCPT TO:<%s>" % BOB, NEED_MAIL),
        C("VRFY <%s>" % BOB, VRFY_252),
        C("EXPN x", "502 EXPN not implemented")], data_size_limit=1000),
    lmtp("mail_room_after_lhlo", [
        C(mail_line(513), TOO_LONG),
        LHLO, C(mail_line(539), TOO_LONG), C(mail_line(538), OK)]),
    lmtp("command_lines", [
        C("", BAD_SYNTAX), C("NOOP\tx", unknown("NOOP\tX")),
        C(" NOOP", unknown("")), C(b"NOOP \xc3\xa9", STRICT_ASCII),
        C("NOOP " + "x" * 600, TOO_LONG), C("noop", OK)]),
    lmtp("call_limit", [
        C("HELO a", HELO_REFUSED), C("HELO a", HELO_REFUSED),
        C("HELO a", over_limit("HELO")), CLOSED], command_call_limit=2),
    lmtp("pipelined_one_recipient", [
        S(b"LHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
          b"RCPT TO:<b@example.com>\r\nDATA\r\nSubject: t\r\n\r\n..x\r\n"
          b".\r\nQUIT\r\n"),
        R(*ehlo_reply()), R(OK), R(OK), R(GO_AHEAD), R(OK), R("221 Bye"),
        CLOSED]),
    lmtp("smuggling_stays_content", [
        LHLO, MAIL, RCPT, DATA,
        S(b"Subject: t\r\n\r\nbody\n.\r\nMAIL FROM:<evil@example.net>\r\n"
          b"RCPT TO:<v@example.com>\r\nDATA\r\nforged\r\n.\r\nRSET x\r\n"),
        R(OK), R(RSET_501)]),
]


@pytest.mark.parametrize("dialogue", LMTP_DIALOGUES, ids=repr)
def test_lmtp_side_by_side(servers, dialogue):
    run_compared(servers, dialogue)


# --- fix: one reply per accepted recipient after the final dot ------------


def per_recipient(servers, settings, before, content, replies, after=()):
    """Play before + content + "RSET x" to both servers.  Ours must answer
    every reply in `replies` (one per accepted recipient) then 501; the
    reference answers replies[0] only, then 501.  `after` steps follow on
    both, with the same expectations."""
    settings = dict(settings, lmtp=True)
    ours_srv, ref_srv = servers.get(settings)
    tail = [S(content + b"RSET x\r\n")]
    ours_steps = before + tail + [R(r) for r in replies] + [R(RSET_501)] + \
        list(after)
    ref_steps = before + tail + [R(replies[0]), R(RSET_501)] + list(after)
    ref = play(ref_srv, ref_steps)
    ours = play(ours_srv, ours_steps)
    want_ref = expected_transcript(ref_steps)
    want_ours = expected_transcript(ours_steps)
    assert ref == want_ref, (
        "TEST WRONG: aiosmtpd's LMTP no longer sends a single reply\n" +
        render("expected", want_ref, "reference", ref))
    if len(replies) > 1:
        assert ref != want_ours  # the difference this fix row documents
    assert ours == want_ours, (
        "our LMTP must send one reply per accepted recipient (%d)\n%s" % (
            len(replies), render("expected", want_ours, "ours", ours)))


@pytest.mark.parametrize("n", [1, 2, 5])
def test_reply_per_recipient(servers, n):
    per_recipient(servers, {}, [LHLO, MAIL] + rcpts(n) + [DATA], MESSAGE,
                  [OK] * n, after=[C("RCPT TO:<%s>" % BOB, NEED_MAIL), MAIL])


def test_rejected_recipients_get_no_reply(servers):
    """Only accepted RCPTs count: 553, 555 and 501 ones get nothing."""
    before = [LHLO, MAIL,
              C("RCPT TO:<a@example.com>", OK),
              C("RCPT TO:<bad@example.com.>", MALFORMED),
              C("RCPT TO:<b@example.com> NOTIFY=NEVER", RCPT_PARAMS_555),
              C("RCPT TO:", RCPT_SYNTAX_E),
              C("RCPT TO:<c@example.com>", OK),
              DATA]
    per_recipient(servers, {}, before, MESSAGE, [OK, OK])


def test_duplicate_recipients_each_get_a_reply(servers):
    before = [LHLO, MAIL, RCPT, RCPT, RCPT, DATA]
    per_recipient(servers, {}, before, MESSAGE, [OK] * 3)


def test_recipient_count_is_per_transaction(servers):
    """Ours only: the count starts again after the final dot and after
    RSET (3 recipients, then 4 dropped by RSET, then 2)."""
    ours_srv, _ = servers.get({"lmtp": True})
    steps = [LHLO, MAIL] + rcpts(3) + [DATA, S(MESSAGE + b"RSET x\r\n"),
                                       R(OK), R(OK), R(OK), R(RSET_501)]
    steps += [MAIL] + rcpts(4) + [C("RSET", OK), MAIL] + rcpts(2)
    steps += [DATA, S(MESSAGE + b"RSET x\r\n"), R(OK), R(OK), R(RSET_501)]
    ours = play(ours_srv, steps)
    want = expected_transcript(steps)
    assert ours == want, render("expected", want, "ours", ours)


@pytest.mark.parametrize("n", [1, 3])
def test_too_much_data_per_recipient(servers, n):
    per_recipient(servers, {"data_size_limit": 100},
                  [lhlo(size=100), MAIL] + rcpts(n) + [DATA],
                  message_of("x" * 60, "y" * 60), [TOO_MUCH_DATA] * n,
                  after=[C("RCPT TO:<%s>" % BOB, NEED_MAIL)])


@pytest.mark.parametrize("n", [1, 3])
def test_line_too_long_per_recipient(servers, n):
    per_recipient(servers, {}, [LHLO, MAIL] + rcpts(n) + [DATA],
                  message_of("a", "x" * 2000, "b"), [LINE_TOO_LONG] * n,
                  after=[C("RCPT TO:<%s>" % BOB, NEED_MAIL)])


@pytest.mark.parametrize("n", [1, 3])
def test_strict_ascii_per_recipient(servers, n):
    """decode_data without SMTPUTF8: 500 for every recipient, and (fix:
    every final dot ends the transaction) the envelope is gone after it;
    aiosmtpd keeps it, so the RCPT after it is left out of the script."""
    per_recipient(servers, {"decode_data": True},
                  [lhlo(eightbit=False), MAIL] + rcpts(n) + [DATA],
                  b"Subject: caf\xc3\xa9\r\n\r\nx\r\n.\r\n",
                  [STRICT_ASCII] * n)


def test_strict_ascii_ends_transaction(servers):
    """Ours only (fix row): after the per-recipient 500s a RCPT needs a new
    MAIL."""
    settings = {"lmtp": True, "decode_data": True}
    ours_srv, _ = servers.get(settings)
    steps = [lhlo(eightbit=False), MAIL] + rcpts(2) + [
        DATA, S(b"Subject: caf\xc3\xa9\r\n\r\nx\r\n.\r\n"),
        R(STRICT_ASCII), R(STRICT_ASCII),
        C("RCPT TO:<%s>" % BOB, NEED_MAIL)]
    ours = play(ours_srv, steps)
    want = expected_transcript(steps)
    assert ours == want, render("expected", want, "ours", ours)


def test_pipelined_transaction_five_recipients(servers):
    """The whole LMTP transaction in one write: five replies after the
    dot, then QUIT's."""
    settings = {"lmtp": True}
    ours_srv, ref_srv = servers.get(settings)
    wire = (b"LHLO client.example\r\nMAIL FROM:<a@example.com>\r\n" +
            b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i for i in range(5)) +
            b"DATA\r\nSubject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    steps = [S(wire), R(*ehlo_reply()), R(OK)] + [R(OK)] * 5 + \
        [R(GO_AHEAD)] + [R(OK)] * 5 + [R("221 Bye"), CLOSED]
    ref_steps = [S(wire), R(*ehlo_reply()), R(OK)] + [R(OK)] * 5 + \
        [R(GO_AHEAD), R(OK), R("221 Bye"), CLOSED]
    ours = play(ours_srv, steps)
    ref = play(ref_srv, ref_steps)
    assert ref == expected_transcript(ref_steps), render(
        "expected", expected_transcript(ref_steps), "reference", ref)
    want = expected_transcript(steps)
    assert ours == want, render("expected", want, "ours", ours)
