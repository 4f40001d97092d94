"""Side-by-side test: our daemon against Debian's aiosmtpd 1.4.3.

Every dialogue below is a list of client steps played once to the
reference (refserver.py) and once to our daemon, both started with the same
settings.  The test compares the two transcripts reply by reply, byte for
byte.  Each step also states the reply BEHAVIOR.md (or, where they differ,
the running reference) gives; the reference is checked against it first,
so a dialogue whose expectation is wrong fails as a test bug, not as a
daemon bug, and a dialogue in which both servers merely hang up cannot
pass.

The rows BEHAVIOR.md marks **fix** are not compared: FIX_DIALOGUES assert
the RFC behaviour on our daemon and the reference's different reply, so the
test documents the difference.

The 220 greeting is compared up to the hostname: the ident differs on
purpose.

Run with Debian's interpreter:

    AIOSMTPD_BIN=/path/to/aiosmtpd AIOSMTPD_BUILDDIR=/path/to/build \\
        /usr/bin/python3 -m pytest -p no:cacheprovider -q \\
        tests/integration/test_sidebyside.py

Servers are pooled per module, one pair per distinct setting set, and are
killed when the module ends; each dialogue uses its own connections.
"""

import re
import socket
import threading
import time

import pytest

import conftest

pytest.importorskip("aiosmtpd.smtp")

HOST = conftest.HOSTNAME  # mx.test.example
READ_TIMEOUT = 10.0       # no reply within this: the dialogue stops there
CLOSE_WAIT = 5.0          # how long a "the server closes" step waits
IDLE_CLOSE_WAIT = 10.0    # same, for the idle timeout (timeout = 2 s)

# --- replies ---------------------------------------------------------------

EOF = "<EOF>"             # the server closed the connection instead
OK = "250 OK"
GO_AHEAD = "354 End data with <CR><LF>.<CR><LF>"
TOO_LONG = "500 Command line too long"
BAD_SYNTAX = "500 Error: bad syntax"
STRICT_ASCII = "500 Error: strict ASCII mode"
SEND_HELO = "503 Error: send HELO first"
NEED_MAIL = "503 Error: need MAIL command"
NEED_RCPT = "503 Error: need RCPT command"
NESTED_MAIL = "503 Error: nested MAIL command"
MALFORMED = "553 5.1.3 Error: malformed address"
MAIL_SYNTAX = "501 Syntax: MAIL FROM: <address>"
RCPT_SYNTAX = "501 Syntax: RCPT TO: <address>"
PARAMS = " [SP <mail-parameters>]"
MAIL_SYNTAX_E = MAIL_SYNTAX + PARAMS
RCPT_SYNTAX_E = RCPT_SYNTAX + PARAMS
MAIL_PARAMS_555 = "555 MAIL FROM parameters not recognized or not implemented"
RCPT_PARAMS_555 = "555 RCPT TO parameters not recognized or not implemented"
BODY_501 = "501 Error: BODY can only be one of 7BIT, 8BITMIME"
SIZE_552 = "552 Error: message size exceeds fixed maximum message size"
TOO_MUCH_DATA = "552 Error: Too much mail data"
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MANY_UNKNOWN = "502 5.5.1 Too many unrecognized commands, goodbye."
VRFY_252 = "252 Cannot VRFY user, but will accept message and attempt delivery"
INDEX_ERROR = "500 Error: (IndexError) string index out of range"
LIST_INDEX_ERROR = "500 Error: (IndexError) list index out of range"
HELP_LIST = ("Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT "
             "RCPT RSET VRFY")
DEFAULT_SIZE = 33554432


def unknown(word):
    return '500 Error: command "%s" not recognized' % word


def over_limit(word):
    return "421 4.7.0 %s sent too many times" % word


def ehlo_reply(size=DEFAULT_SIZE, eightbit=True, smtputf8=False):
    lines = ["250-" + HOST]
    if size:
        lines.append("250-SIZE %d" % size)
    if eightbit:
        lines.append("250-8BITMIME")
    if smtputf8:
        lines.append("250-SMTPUTF8")
    lines.append("250 HELP")
    return tuple(lines)


# --- steps -----------------------------------------------------------------


def _bytes(data):
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def expected_bytes(expect):
    """A reply as the transcript records it: lines with CRLF, "<EOF>"."""
    out = b""
    for line in expect:
        out += b"<EOF>" if line == EOF else _bytes(line) + b"\r\n"
    return out


def _short(data, width=60):
    text = repr(data)
    return text if len(text) <= width else text[:width - 12] + "..." + \
        text[-9:] + " (%d octets)" % len(data)


class C:
    """Send a command line (CRLF appended) and read one reply."""

    def __init__(self, line, *expect, ref=None):
        self.data = _bytes(line) + b"\r\n"
        self.expect = expected_bytes(expect)
        self.ref = None if ref is None else expected_bytes(ref)
        self.label = "C " + _short(_bytes(line))

    def run(self, wire):
        wire.send(self.data)
        return wire.reply()


class R:
    """Read one reply (after S steps)."""

    def __init__(self, *expect, ref=None):
        self.expect = expected_bytes(expect)
        self.ref = None if ref is None else expected_bytes(ref)
        self.label = "R"

    def run(self, wire):
        return wire.reply()


class S:
    """Send raw bytes; no reply is read."""
    expect = ref = None

    def __init__(self, data):
        self.data = _bytes(data)
        self.label = "S " + _short(self.data)

    def run(self, wire):
        wire.send(self.data)
        return None


class P:
    """Pause (for the idle timer); nothing is asserted about time."""
    expect = ref = None

    def __init__(self, seconds):
        self.seconds = seconds
        self.label = "P %gs" % seconds

    def run(self, wire):
        time.sleep(self.seconds)
        return None


class Closed:
    """The server closes the connection, sending nothing more."""

    def __init__(self, wait=CLOSE_WAIT, ref=None):
        self.wait = wait
        self.expect = b"<CLOSED>"
        self.ref = ref
        self.label = "closed?"

    def run(self, wire):
        return wire.closed(self.wait)


CLOSED = Closed()

# --- the client ------------------------------------------------------------


class NoReply(Exception):
    pass


class Wire:
    """A raw client that turns resets into EOF and never blocks forever."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=READ_TIMEOUT)
        self.buf = b""
        self.eof = False

    def send(self, data):
        if self.eof:
            return
        try:
            self.sock.sendall(data)
        except OSError:  # EPIPE, ECONNRESET: the server has gone
            self.eof = True

    def _fill(self, timeout):
        if self.eof:
            return False
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise NoReply()
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def reply(self, timeout=READ_TIMEOUT):
        """One whole reply; b"<EOF>" ends it when the server closed."""
        out = b""
        while True:
            while b"\n" not in self.buf:
                if not self._fill(timeout):
                    out += self.buf + b"<EOF>"
                    self.buf = b""
                    return out
            line, _, self.buf = self.buf.partition(b"\n")
            out += line + b"\n"
            if line[3:4] != b"-":
                return out

    def closed(self, wait):
        """b"<CLOSED>" when the server hangs up within wait seconds (any
        bytes it sends first are recorded in front), else b"<OPEN>"."""
        deadline = time.monotonic() + wait
        try:
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoReply()
                self._fill(left)
        except NoReply:
            return self.buf + b"<OPEN>"
        data, self.buf = self.buf, b""
        return data + b"<CLOSED>"

    def close(self):
        self.sock.close()


GREETING = re.compile(rb"220 " + re.escape(HOST.encode()) + rb" (\S[^\r\n]*)\r\n\Z")
NORMAL_GREETING = b"220 " + HOST.encode() + b" <ident>\r\n"


def normalize_greeting(reply):
    """The greeting up to the hostname; the ident differs on purpose."""
    return NORMAL_GREETING if GREETING.match(reply) else reply


def step_labels(steps):
    """Labels for the transcript; a read after raw sends names them."""
    labels, sent = [], []
    for step in steps:
        if isinstance(step, S):
            sent.append(step.label[2:])
        label = step.label
        if isinstance(step, R) and sent:
            label = "R after S " + " + ".join(sent)
        if step.expect is not None:
            sent = []
        labels.append(label)
    return labels


def play(server, steps):
    """Run steps on a new connection; returns [(label, bytes)] with the
    greeting first and one entry per step that reads."""
    wire = Wire(server.host, server.port)
    out = []
    try:
        out.append(("greeting", normalize_greeting(wire.reply())))
        stopped = False
        for step, label in zip(steps, step_labels(steps)):
            if stopped:
                if step.expect is not None:
                    out.append((label, b"<not run>"))
                continue
            try:
                got = step.run(wire)
            except NoReply:
                got = b"<NO REPLY within %gs>" % READ_TIMEOUT
                stopped = True
            if got is not None:
                out.append((label, got))
    finally:
        wire.close()
    return out


def play_both(ours, ref, steps):
    """Play the dialogue to both servers at the same time (halves the
    waiting in idle-timer dialogues); returns (ours, ref) transcripts."""
    results = {}

    def run(name, server):
        try:
            results[name] = play(server, steps)
        except Exception as e:  # connection refused etc.: report it
            results[name] = [("error", repr(e).encode())]

    threads = [threading.Thread(target=run, args=(n, s))
               for n, s in (("ours", ours), ("ref", ref))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results.get("ours", []), results.get("ref", [])


def expected_transcript(steps, side="ours"):
    out = [("greeting", NORMAL_GREETING)]
    for step, label in zip(steps, step_labels(steps)):
        if step.expect is None:
            continue
        want = step.expect
        if side == "ref" and step.ref is not None:
            want = step.ref
        out.append((label, want))
    return out


def render(title_a, a, title_b, b):
    """A step-by-step table of two transcripts, mismatches marked."""
    lines = []
    for i in range(max(len(a), len(b))):
        la, ra = a[i] if i < len(a) else ("-", b"<missing>")
        lb, rb = b[i] if i < len(b) else ("-", b"<missing>")
        mark = "  " if ra == rb else "!!"
        lines.append("%s %s" % (mark, la if la != "-" else lb))
        lines.append("     %-9s %r" % (title_a + ":", ra))
        if ra != rb:
            lines.append("     %-9s %r" % (title_b + ":", rb))
    return "\n".join(lines)


# --- settings --------------------------------------------------------------


def libconfig_value(key, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        items = ["%s = %d;" % ("default" if k == "*" else k, v)
                 for k, v in value.items()]
        return "{ " + " ".join(items) + " }"
    return str(value)


def our_config(settings):
    """(settings text, listeners) for conftest.write_config."""
    text = ""
    for key, value in sorted(settings.items()):
        if key == "lmtp":
            continue
        text += "%s = %s;\n" % (key, libconfig_value(key, value))
    proto = "lmtp" if settings.get("lmtp") else "smtp"
    listeners = ['{ address = "127.0.0.1:0"; protocol = "%s"; }' % proto]
    return text, listeners


def start_ours(path, settings, handler='{ type = "sink"; }'):
    text, listeners = our_config(settings)
    cfg = conftest.write_config(str(path), text, listeners, handler)
    return conftest.Server([conftest.BIN, "-n", "--config", cfg]).start()


def start_reference(settings, handler=None):
    argv = [conftest.PYTHON, conftest.REFSERVER, "--hostname", HOST]
    for key, value in sorted(settings.items()):
        argv += ["--" + key.replace("_", "-"), repr(value)]
    if handler:
        argv += ["--handler", repr(handler)]
    return conftest.Server(argv).start()


class ServerPool:
    """One (ours, reference) pair per distinct settings, started on first
    use and killed by stop_all()."""

    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.pairs = {}
        self.started = []

    def get(self, settings):
        key = repr(sorted(settings.items()))
        if key not in self.pairs:
            ours = ref = None
            path = self.tmpdir / ("ours-%d.conf" % len(self.pairs))
            try:
                ref = start_reference(settings)
                self.started.append(ref)
                ours = start_ours(path, settings)
                self.started.append(ours)
            except Exception:
                # remember the failure so every test using it fails fast
                self.pairs[key] = (ours, ref)
                raise
            self.pairs[key] = (ours, ref)
        ours, ref = self.pairs[key]
        if ours is None or ref is None:
            pytest.fail("server with settings %r did not start" % (settings,))
        return ours, ref

    def stop_all(self):
        for server in self.started:
            server.kill()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    pool = ServerPool(tmp_path_factory.mktemp("sidebyside"))
    yield pool
    pool.stop_all()


# --- the dialogue runner ---------------------------------------------------


class Dialogue:
    def __init__(self, name, steps, **settings):
        self.name = name
        self.steps = steps
        self.settings = settings

    def __repr__(self):
        return self.name


def run_compared(servers, d):
    """The comparison every table row gets: the reference must give the
    replies the table states, and ours exactly the reference's."""
    ours_srv, ref_srv = servers.get(d.settings)
    ours, ref = play_both(ours_srv, ref_srv, d.steps)
    want = expected_transcript(d.steps, "ref")
    assert ref == want, (
        "TEST TABLE WRONG: the reference does not give the stated replies "
        "(settings %r)\n%s" % (d.settings, render("expected", want,
                                                  "reference", ref)))
    assert ours == ref, (
        "our daemon differs from aiosmtpd (settings %r)\n%s" % (
            d.settings, render("aiosmtpd", ref, "ours", ours)))


def run_fix(servers, d):
    """A **fix** row: ours must give the RFC replies (expect), the
    reference must give its own (ref=...), and the two must differ."""
    ours_srv, ref_srv = servers.get(d.settings)
    ours, ref = play_both(ours_srv, ref_srv, d.steps)
    want_ref = expected_transcript(d.steps, "ref")
    want_ours = expected_transcript(d.steps, "ours")
    assert want_ref != want_ours, "a fix dialogue must state the difference"
    assert ref == want_ref, (
        "TEST TABLE WRONG: the reference no longer behaves as documented "
        "(settings %r)\n%s" % (d.settings, render("expected", want_ref,
                                                  "reference", ref)))
    assert ours == want_ours, (
        "our daemon does not follow the RFC here (settings %r)\n%s" % (
            d.settings, render("expected", want_ours, "ours", ours)))


# --- building blocks ---------------------------------------------------------

ALICE = "anne@example.com"
BOB = "bob@example.com"
EHLO = C("EHLO client.example", *ehlo_reply())
HELO = C("HELO client.example", "250 " + HOST)
MAIL = C("MAIL FROM:<%s>" % ALICE, OK)
RCPT = C("RCPT TO:<%s>" % BOB, OK)
DATA = C("DATA", GO_AHEAD)
QUIT = C("QUIT", "221 Bye")
MESSAGE = b"Subject: test\r\n\r\nHello.\r\n.\r\n"


def ehlo(**kw):
    return C("EHLO client.example", *ehlo_reply(**kw))


def noop_line(n):
    """A NOOP command line of exactly n octets (without CRLF)."""
    assert n >= 5
    return "NOOP " + "x" * (n - 5)


def path_line(verb, n, params=""):
    """'MAIL FROM:<aaa...@example.com>params' of exactly n octets."""
    head = verb + "<"
    tail = "@example.com>" + params
    assert n > len(head) + len(tail)
    return head + "a" * (n - len(head) - len(tail)) + tail


def mail_line(n, params=""):
    return path_line("MAIL FROM:", n, params)


def rcpt_line(n):
    return path_line("RCPT TO:", n)


def message_of(*lines):
    """DATA content from lines (CRLF added), then the final dot."""
    return b"".join(_bytes(l) + b"\r\n" for l in lines) + b".\r\n"


def transaction(*extra, **ehlo_kw):
    return [ehlo(**ehlo_kw), MAIL, RCPT, DATA] + list(extra)


SMUGGLED = (b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.com>\r\n"
            b"DATA\r\nforged\r\n")

# --- the table ---------------------------------------------------------------

DIALOGUES = [
    # ---- connection and command lines ----
    Dialogue("connect_greeting_quit", [QUIT, CLOSED]),
    Dialogue("empty_line", [C("", BAD_SYNTAX), C("NOOP", OK)]),
    Dialogue("command_word_not_ascii", [
        C(b"N\xc3\x96OP", BAD_SYNTAX),
        C(b"\xffNOOP hello", BAD_SYNTAX),
        C("NOOP", OK)]),
    Dialogue("argument_not_ascii_strict", [
        C(b"NOOP \xc3\xa9", STRICT_ASCII),
        EHLO,
        C(b"MAIL FROM:<j\xc3\xb6rg@example.com>", STRICT_ASCII),
        C(b"VRFY \xff", STRICT_ASCII),
        MAIL]),
    Dialogue("argument_not_ascii_smtputf8", [
        C(b"NOOP \xc3\xa9", OK),
        ehlo(smtputf8=True),
        C(b"MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", OK),
        C(b"RCPT TO:<\xc3\xa5sa@example.com>", OK)], smtputf8=True),
    Dialogue("command_word_case_insensitive", [
        C("noop", OK), C("NoOp x", OK), C("helo client.example", "250 " + HOST),
        C("mail from:<%s>" % ALICE, OK), C("quit", "221 Bye"), CLOSED]),
    Dialogue("argument_surrounding_space_stripped", [
        C("NOOP   x  ", OK),
        C("NOOP  ", OK),
        C("HELO    ", "501 Syntax: HELO hostname"),
        C("RSET  ", OK),
        C("RSET  x ", "501 Syntax: RSET"),
        C("EHLO   client.example   ", *ehlo_reply()),
        C("MAIL  FROM:<%s>  " % ALICE, OK),
        C("QUIT ", "221 Bye"), CLOSED]),
    Dialogue("tab_is_not_a_separator", [
        C("NOOP\tx", unknown("NOOP\tX")),
        C("QUIT\t", unknown("QUIT\t")),
        C("NOOP", OK)]),
    Dialogue("leading_space_is_empty_command", [
        C(" NOOP", unknown("")),
        C("  ", unknown("")),
        C("NOOP", OK)]),
    Dialogue("bare_lf_ends_a_command_line", [
        S(b"NOOP\n"), R(OK),
        S(b"EHLO client.example\nMAIL FROM:<a@example.com>\n"),
        R(*ehlo_reply()), R(OK)]),
    Dialogue("unknown_command", [
        C("FOO", unknown("FOO")),
        C("foo bar baz", unknown("FOO")),
        C("XYZZY", unknown("XYZZY")),
        C("NOOP", OK)]),
    Dialogue("five_unknown_commands_close", [
        C("FOO", unknown("FOO")), C("BAR", unknown("BAR")),
        C("BAZ", unknown("BAZ")), C("QUX", unknown("QUX")),
        C("XYZZY", TOO_MANY_UNKNOWN), CLOSED]),
    Dialogue("unknown_budget_counts_tab_and_leading_space", [
        C("NOOP\tx", unknown("NOOP\tX")), C(" NOOP", unknown("")),
        C("FOO", unknown("FOO")), C("BAR", unknown("BAR")),
        C("\tNOOP", TOO_MANY_UNKNOWN), CLOSED]),
    Dialogue("unknown_budget_not_reset_by_known_commands", [
        C("FOO", unknown("FOO")), C("NOOP", OK),
        C("BAR", unknown("BAR")), HELO,
        C("BAZ", unknown("BAZ")), C("RSET", OK),
        C("QUX", unknown("QUX")), MAIL,
        C("ZAP", TOO_MANY_UNKNOWN), CLOSED]),
    Dialogue("unknown_budget_skips_bad_syntax_and_long_lines", [
        C("FOO", unknown("FOO")), C("BAR", unknown("BAR")),
        C("BAZ", unknown("BAZ")), C("QUX", unknown("QUX")),
        C("", BAD_SYNTAX), C(b"\xc3\xa9", BAD_SYNTAX),
        C(b"FOO \xc3\xa9", STRICT_ASCII),
        C("F" * 600, TOO_LONG),
        C("NOOP", OK),
        C("LAST", TOO_MANY_UNKNOWN), CLOSED]),
    Dialogue("call_limit_number", [
        C("NOOP", OK), C("NOOP", OK), C("NOOP", OK),
        C("NOOP", over_limit("NOOP")), CLOSED], command_call_limit=3),
    Dialogue("call_limit_per_command_word", [
        C("NOOP", OK), C("noop", OK), C("RSET", OK), C("RSET", OK),
        C("HELP NOOP", "250 Syntax: NOOP [ignored]"), C("NoOp", OK),
        C("rset", OK), C("Rset", over_limit("RSET")), CLOSED],
        command_call_limit=3),
    Dialogue("call_limit_counts_unknown_commands", [
        C("FOO", unknown("FOO")), C("foo", unknown("FOO")),
        C("FOO", over_limit("FOO")), CLOSED], command_call_limit=2),
    Dialogue("call_limit_counts_quit", [
        C("QUIT now", "501 Syntax: QUIT"),
        C("QUIT", over_limit("QUIT")), CLOSED],
        command_call_limit={"QUIT": 1, "*": 20}),
    Dialogue("call_limit_group_one_command", [
        C("NOOP", OK), C("NOOP", OK), C("RSET", OK),
        C("NOOP", over_limit("NOOP")), CLOSED],
        command_call_limit={"NOOP": 2}),
    Dialogue("call_limit_group_default_budget_20",
             [C("RSET", OK)] * 20 + [C("RSET", over_limit("RSET")), CLOSED],
             command_call_limit={"NOOP": 2}),
    Dialogue("call_limit_group_explicit_default", [
        C("RSET", OK), C("RSET", OK), C("NOOP", OK),
        C("RSET", over_limit("RSET")), CLOSED],
        command_call_limit={"NOOP": 5, "*": 2}),
    Dialogue("call_limit_skips_empty_bad_and_long_lines", [
        C("", BAD_SYNTAX), C("", BAD_SYNTAX), C(b"\xc3\xa9", BAD_SYNTAX),
        C(b"NOOP \xc3\xa9", STRICT_ASCII), C(noop_line(600), TOO_LONG),
        C("NOOP", OK), C("NOOP", OK),
        C("NOOP", over_limit("NOOP")), CLOSED], command_call_limit=2),
    Dialogue("call_limit_zero", [
        C("NOOP", over_limit("NOOP")), CLOSED], command_call_limit=0),
    Dialogue("call_limit_before_unknown_budget", [
        C("FOO", unknown("FOO")), C("BAR", unknown("BAR")),
        C("FOO", over_limit("FOO")), CLOSED],
        command_call_limit={"FOO": 1, "*": 20}),

    # ---- command line length ----
    Dialogue("line_512_before_ehlo", [
        C(noop_line(512), OK), C(noop_line(513), TOO_LONG),
        C(mail_line(513), TOO_LONG), C("NOOP", OK)]),
    Dialogue("mail_512_after_helo", [
        HELO, C(mail_line(513), TOO_LONG), C(mail_line(512), OK)]),
    Dialogue("mail_room_with_size_after_ehlo", [
        EHLO, C(mail_line(539), TOO_LONG), C(mail_line(538), OK),
        C(rcpt_line(513), TOO_LONG), C(rcpt_line(512), OK)]),
    Dialogue("mail_room_with_size_and_smtputf8", [
        ehlo(smtputf8=True), C(mail_line(549), TOO_LONG),
        C(mail_line(548), OK)], smtputf8=True),
    Dialogue("mail_room_without_size", [
        ehlo(size=0), C(mail_line(513), TOO_LONG), C(mail_line(512), OK)],
        data_size_limit=0),
    Dialogue("mail_room_smtputf8_without_size", [
        ehlo(size=0, smtputf8=True), C(mail_line(523), TOO_LONG),
        C(mail_line(522), OK)], data_size_limit=0, smtputf8=True),
    Dialogue("mail_room_counts_parameters", [
        EHLO, C(mail_line(539, " SIZE=1000"), TOO_LONG),
        C(mail_line(538, " SIZE=1000"), OK)]),
    Dialogue("other_commands_stay_512_after_ehlo", [
        EHLO, C(noop_line(513), TOO_LONG), C(noop_line(512), OK),
        C("VRFY <" + "v" * 600 + "@example.com>", TOO_LONG)]),
    Dialogue("helo_drops_back_to_512", [
        EHLO, HELO, C(mail_line(513), TOO_LONG), C(mail_line(512), OK)]),
    Dialogue("line_over_stream_limit", [
        C("NOOP " + "x" * 2000, TOO_LONG), C("NOOP", OK),
        C("MAIL FROM:<" + "a" * 100000 + "@example.com>", TOO_LONG),
        C("NOOP", OK)]),
    Dialogue("long_line_in_pieces", [
        S("NOOP " + "x" * 700), P(0.2), S("y" * 700 + "\r\n"),
        R(TOO_LONG), C("NOOP", OK)]),
    Dialogue("long_line_rest_dropped", [
        S(b"NOOP " + b"x" * 1200 + b" QUIT\r\nNOOP\r\n"),
        R(TOO_LONG), R(OK),
        S(b"NOOP " + b"x" * 600 + b" QUIT\r\nNOOP\r\n"),
        R(TOO_LONG), R(OK)]),
    Dialogue("long_line_non_ascii_argument_first", [
        C(b"NOOP " + b"\xc3\xa9" * 300, STRICT_ASCII), C("NOOP", OK)]),
    Dialogue("long_unknown_command_is_too_long", [
        C("FOO" * 200, TOO_LONG), C("FOO", unknown("FOO"))]),

    # ---- idle timeout (timeout = 2 s on both; nothing timed is asserted) --
    Dialogue("idle_timeout_after_greeting", [Closed(IDLE_CLOSE_WAIT)],
             timeout=2),
    Dialogue("idle_timeout_after_commands", [
        EHLO, MAIL, Closed(IDLE_CLOSE_WAIT)], timeout=2),
    # Margins: a command 1.2 s after the last recognised one must still be
    # answered (0.8 s to spare); in the "not restarted" dialogues the NOOP
    # goes 2.3 s after the last recognised command, past the 2 s timeout,
    # and a late NOOP only makes that surer.
    Dialogue("idle_timer_restarted_by_commands", [
        P(1.2), C("NOOP", OK), P(1.2), C("NOOP", OK), P(1.2), EHLO,
        Closed(IDLE_CLOSE_WAIT)], timeout=2),
    Dialogue("idle_timer_not_restarted_by_unknown", [
        P(0.6), C("FOO", unknown("FOO")), P(1.7), C("NOOP", EOF)],
        timeout=2),
    Dialogue("idle_timer_not_restarted_by_empty_line", [
        P(0.6), C("", BAD_SYNTAX), P(1.7), C("NOOP", EOF)], timeout=2),
    Dialogue("idle_timer_not_restarted_by_long_line", [
        P(0.6), C(noop_line(600), TOO_LONG), P(1.7), C("NOOP", EOF)],
        timeout=2),
    Dialogue("idle_timer_not_restarted_by_non_ascii", [
        P(0.6), C(b"NOOP \xc3\xa9", STRICT_ASCII), P(1.7), C("NOOP", EOF)],
        timeout=2),
    Dialogue("idle_timer_not_restarted_by_bad_syntax", [
        P(0.6), C(b"\xc3\xa9", BAD_SYNTAX), P(1.7), C("NOOP", EOF)],
        timeout=2),

    # ---- HELO / EHLO ----
    Dialogue("helo_no_argument", [
        C("HELO", "501 Syntax: HELO hostname"), C("MAIL FROM:<a@b>", SEND_HELO)]),
    Dialogue("helo_ok", [HELO, MAIL, RCPT, DATA, S(MESSAGE), R(OK)]),
    Dialogue("helo_twice", [HELO, C("HELO other.example", "250 " + HOST)]),
    Dialogue("helo_resets_envelope", [
        HELO, MAIL, RCPT, HELO, C("RCPT TO:<%s>" % BOB, NEED_MAIL),
        C("DATA", NEED_RCPT), MAIL]),
    Dialogue("helo_leaves_esmtp", [
        EHLO, HELO,
        C("MAIL FROM:<%s> SIZE=100" % ALICE, MAIL_SYNTAX),
        C("HELP MAIL", "250 Syntax: MAIL FROM: <address>"),
        C("MAIL", MAIL_SYNTAX),
        MAIL,
        C("RCPT TO:<%s> NOTIFY=NEVER" % BOB, RCPT_SYNTAX),
        C("RCPT", RCPT_SYNTAX)]),
    Dialogue("ehlo_no_argument", [
        C("EHLO", "501 Syntax: EHLO hostname"),
        C("EHLO   ", "501 Syntax: EHLO hostname"),
        C("MAIL FROM:<a@b>", SEND_HELO)]),
    Dialogue("ehlo_default", [EHLO, MAIL]),
    Dialogue("ehlo_without_size", [ehlo(size=0)], data_size_limit=0),
    Dialogue("ehlo_size_limit", [ehlo(size=1000)], data_size_limit=1000),
    Dialogue("ehlo_decode_data", [ehlo(eightbit=False)], decode_data=True),
    Dialogue("ehlo_smtputf8", [ehlo(smtputf8=True)], smtputf8=True),
    Dialogue("ehlo_everything", [
        ehlo(size=5000, eightbit=False, smtputf8=True)],
        data_size_limit=5000, decode_data=True, smtputf8=True),
    Dialogue("ehlo_resets_envelope", [
        EHLO, MAIL, RCPT, EHLO, C("RCPT TO:<%s>" % BOB, NEED_MAIL),
        C("DATA", NEED_RCPT), MAIL]),
    Dialogue("ehlo_after_helo", [
        HELO, EHLO, C("MAIL FROM:<%s> SIZE=100" % ALICE, OK)]),

    # ---- NOOP / QUIT / RSET / EXPN ----
    Dialogue("noop_any_argument", [
        C("NOOP", OK), C("NOOP x y z", OK), C("NOOP <a@b>", OK),
        EHLO, MAIL, C("NOOP", OK), RCPT]),
    Dialogue("quit_with_argument", [
        C("QUIT now", "501 Syntax: QUIT"), C("NOOP", OK), QUIT, CLOSED]),
    Dialogue("quit_mid_transaction", [EHLO, MAIL, RCPT, QUIT, CLOSED]),
    Dialogue("rset_with_argument", [
        C("RSET x", "501 Syntax: RSET"), C("RSET", OK)]),
    Dialogue("rset_before_helo", [C("RSET", OK), C("MAIL FROM:<a@b>", SEND_HELO)]),
    Dialogue("rset_resets_envelope_keeps_helo", [
        EHLO, MAIL, RCPT, C("RSET", OK),
        C("RCPT TO:<%s>" % BOB, NEED_MAIL), C("DATA", NEED_RCPT),
        MAIL, C("RSET x", "501 Syntax: RSET"), C("MAIL FROM:<a@b>", NESTED_MAIL)]),
    Dialogue("expn_not_implemented", [
        C("EXPN", "502 EXPN not implemented"),
        C("EXPN staff", "502 EXPN not implemented"),
        EHLO, C("expn <%s>" % ALICE, "502 EXPN not implemented")]),

    # ---- VRFY ----
    Dialogue("vrfy_no_argument", [C("VRFY", "501 Syntax: VRFY <address>"),
                                  C("VRFY   ", "501 Syntax: VRFY <address>")]),
    Dialogue("vrfy_ok", [
        C("VRFY <%s>" % ALICE, VRFY_252), C("VRFY anne", VRFY_252),
        C("VRFY %s" % ALICE, VRFY_252), EHLO, C("VRFY <>", VRFY_252)]),
    Dialogue("vrfy_unparsable", [
        C("VRFY <anne@example.com.>", "502 Could not VRFY <anne@example.com.>"),
        C("VRFY @", "502 Could not VRFY @"),
        C("VRFY <a@>", "502 Could not VRFY <a@>"),
        C("VRFY  <@> ", "502 Could not VRFY <@>")]),
    Dialogue("vrfy_parser_exception", [
        C("VRFY <", INDEX_ERROR), C("VRFY a@", INDEX_ERROR),
        C('VRFY "', LIST_INDEX_ERROR), C("NOOP", OK)]),
    Dialogue("vrfy_local_part_limit", [
        C("VRFY <abcdef@example.com>", "502 Could not VRFY <abcdef@example.com>"),
        C("VRFY <abcde@example.com>", VRFY_252)], local_part_limit=5),

    # ---- HELP ----
    Dialogue("help_no_argument", [
        C("HELP", "250 " + HELP_LIST), EHLO, C("HELP", "250 " + HELP_LIST)]),
    Dialogue("help_each_command_before_ehlo", [
        C("HELP AUTH", "250 Syntax: AUTH <mechanism>"),
        C("HELP DATA", "250 Syntax: DATA"),
        C("HELP EHLO", "250 Syntax: EHLO hostname"),
        C("HELP HELO", "250 Syntax: HELO hostname"),
        C("HELP HELP", "250 Syntax: HELP [command]"),
        C("HELP MAIL", "250 Syntax: MAIL FROM: <address>"),
        C("HELP NOOP", "250 Syntax: NOOP [ignored]"),
        C("HELP QUIT", "250 Syntax: QUIT"),
        C("HELP RCPT", "250 Syntax: RCPT TO: <address>"),
        C("HELP RSET", "250 Syntax: RSET"),
        C("HELP VRFY", "250 Syntax: VRFY <address>")]),
    Dialogue("help_after_ehlo_adds_parameters", [
        EHLO,
        C("HELP MAIL", "250 Syntax: MAIL FROM: <address>" + PARAMS),
        C("HELP RCPT", "250 Syntax: RCPT TO: <address>" + PARAMS),
        C("HELP NOOP", "250 Syntax: NOOP [ignored]"),
        C("HELP DATA", "250 Syntax: DATA"),
        HELO,
        C("HELP MAIL", "250 Syntax: MAIL FROM: <address>")]),
    Dialogue("help_argument_case_and_space", [
        C("help mail", "250 Syntax: MAIL FROM: <address>"),
        C("HELP   rset  ", "250 Syntax: RSET")]),
    Dialogue("help_unknown_argument", [
        C("HELP FOO", "501 " + HELP_LIST),
        C("HELP EXPN", "501 " + HELP_LIST),
        C("HELP STARTTLS", "501 " + HELP_LIST),
        C("HELP LHLO", "501 " + HELP_LIST),
        C("HELP MAIL RCPT", "501 " + HELP_LIST),
        C("NOOP", OK)]),

    # ---- MAIL / RCPT / DATA before HELO ----
    Dialogue("transaction_before_helo", [
        C("MAIL FROM:<%s>" % ALICE, SEND_HELO),
        C("MAIL", SEND_HELO),
        C("RCPT TO:<%s>" % BOB, SEND_HELO),
        C("DATA", SEND_HELO),
        C("DATA x", SEND_HELO),
        C("NOOP", OK)]),

    # ---- MAIL ----
    Dialogue("mail_no_argument", [EHLO, C("MAIL", MAIL_SYNTAX_E), MAIL]),
    Dialogue("mail_no_from", [
        EHLO, C("MAIL TO:<%s>" % ALICE, MAIL_SYNTAX_E),
        C("MAIL <%s>" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM <%s>" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROMM:<%s>" % ALICE, MAIL_SYNTAX_E)]),
    Dialogue("mail_empty_address", [
        EHLO, C("MAIL FROM:", MAIL_SYNTAX_E), C("MAIL FROM:   ", MAIL_SYNTAX_E)]),
    Dialogue("mail_parameters_after_helo", [
        HELO, C("MAIL FROM:<%s> SIZE=10" % ALICE, MAIL_SYNTAX),
        C("MAIL FROM:<%s> BODY=8BITMIME" % ALICE, MAIL_SYNTAX),
        C("MAIL FROM:<%s>" % ALICE, OK)]),
    Dialogue("mail_bad_parameter_syntax", [
        EHLO,
        C("MAIL FROM:<%s> SIZE=" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> =10" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> X-Y=1" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> X_Y" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> FOO=1 BAR=" % ALICE, MAIL_SYNTAX_E),
        MAIL]),
    Dialogue("mail_size_not_numeric", [
        EHLO,
        C("MAIL FROM:<%s> SIZE=abc" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> SIZE" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> SIZE=-1" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> SIZE=1.5" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> size=0" % ALICE, OK)]),
    Dialogue("mail_size_above_limit", [
        ehlo(size=1000),
        C("MAIL FROM:<%s> SIZE=1001" % ALICE, SIZE_552),
        C("MAIL FROM:<%s> SIZE=99999999999999999999" % ALICE, SIZE_552),
        C("MAIL FROM:<%s> SIZE=1000" % ALICE, OK)], data_size_limit=1000),
    Dialogue("mail_size_without_limit", [
        ehlo(size=0),
        C("MAIL FROM:<%s> SIZE=99999999999999999999" % ALICE, OK)],
        data_size_limit=0),
    Dialogue("mail_malformed_address", [
        EHLO,
        C("MAIL FROM:<anne@example.com.>", MALFORMED),
        C("MAIL FROM:@", MALFORMED),
        C("MAIL FROM:<a@>", MALFORMED),
        C("MAIL FROM:< >", MALFORMED),
        MAIL]),
    Dialogue("mail_parser_exception", [
        EHLO, C("MAIL FROM:<", INDEX_ERROR), C("MAIL FROM:a@", INDEX_ERROR),
        C('MAIL FROM:"', LIST_INDEX_ERROR), MAIL]),
    Dialogue("mail_nested", [
        EHLO, MAIL, C("MAIL FROM:<%s>" % BOB, NESTED_MAIL),
        C("MAIL FROM:<%s> FOO=1" % BOB, NESTED_MAIL),
        C("MAIL FROM:<bob@example.com.>", MALFORMED),
        C("MAIL FROM:", MAIL_SYNTAX_E),
        RCPT]),
    Dialogue("mail_null_sender", [
        EHLO, C("MAIL FROM:<>", OK), C("MAIL FROM:<>", NESTED_MAIL),
        RCPT, DATA, S(MESSAGE), R(OK)]),
    Dialogue("mail_body", [
        EHLO,
        C("MAIL FROM:<%s> BODY=7BIT" % ALICE, OK), C("RSET", OK),
        C("MAIL FROM:<%s> body=8bitmime" % ALICE, OK), C("RSET", OK),
        C("MAIL FROM:<%s> BODY=BINARYMIME" % ALICE, BODY_501),
        C("MAIL FROM:<%s> BODY" % ALICE, BODY_501),
        C("MAIL FROM:<%s> BODY=8BITMIME" % ALICE, OK)]),
    Dialogue("mail_body_with_decode_data", [
        ehlo(eightbit=False),
        C("MAIL FROM:<%s> BODY=8BITMIME" % ALICE, MAIL_PARAMS_555),
        C("MAIL FROM:<%s> BODY=7BIT" % ALICE, MAIL_PARAMS_555),
        C("MAIL FROM:<%s> BODY=BINARYMIME" % ALICE, MAIL_PARAMS_555),
        MAIL], decode_data=True),
    Dialogue("mail_smtputf8_disabled", [
        EHLO,
        C("MAIL FROM:<%s> SMTPUTF8" % ALICE, "501 Error: SMTPUTF8 disabled"),
        C("MAIL FROM:<%s> SMTPUTF8=x" % ALICE,
          "501 Error: SMTPUTF8 takes no arguments"),
        MAIL]),
    Dialogue("mail_smtputf8_enabled", [
        ehlo(smtputf8=True),
        C("MAIL FROM:<%s> SMTPUTF8=yes" % ALICE,
          "501 Error: SMTPUTF8 takes no arguments"),
        C("MAIL FROM:<%s> smtputf8" % ALICE, OK)], smtputf8=True),
    Dialogue("mail_other_parameters", [
        EHLO,
        C("MAIL FROM:<%s> FOO=bar" % ALICE, MAIL_PARAMS_555),
        C("MAIL FROM:<%s> RET=HDRS" % ALICE, MAIL_PARAMS_555),
        C("MAIL FROM:<%s> AUTH=<>" % ALICE, MAIL_PARAMS_555),
        C("MAIL FROM:<%s> SIZE=10 ENVID=x" % ALICE, MAIL_PARAMS_555),
        MAIL]),
    Dialogue("mail_parameter_check_order", [
        EHLO,
        C("MAIL FROM:<%s> BODY=FOO SIZE=abc" % ALICE, BODY_501),
        C("MAIL FROM:<%s> SMTPUTF8=1 BODY=8BITMIME" % ALICE,
          "501 Error: SMTPUTF8 takes no arguments"),
        C("MAIL FROM:<%s> FOO=1 SIZE=abc" % ALICE, MAIL_SYNTAX_E),
        C("MAIL FROM:<%s> FOO=1 SIZE=99999999999" % ALICE, SIZE_552),
        C("MAIL FROM:<%s> FOO=1 SMTPUTF8" % ALICE,
          "501 Error: SMTPUTF8 disabled"),
        C("MAIL FROM:<%s> X= FOO=1" % ALICE, MAIL_SYNTAX_E)]),
    Dialogue("mail_lenient_addresses", [
        EHLO,
        C("MAIL FROM:<anne@example.com", OK), C("RSET", OK),
        C("MAIL FROM:<anne smith@example.com>", OK), C("RSET", OK),
        C("MAIL FROM:<.anne@example.com>", OK), C("RSET", OK),
        C("MAIL FROM:<anne@[]>", OK), C("RSET", OK),
        C("MAIL FROM:<a@b>SIZE=10", OK), C("RSET", OK),
        C("MAIL FROM:<a@b>x", MAIL_PARAMS_555),
        C("MAIL FROM:anne@example.com", OK), C("RSET", OK),
        C("mail from: <anne@example.com>", OK), C("RSET", OK),
        C("MAIL FROM:<@relay.example:anne@example.com>", OK)]),
    Dialogue("mail_local_part_limit", [
        EHLO,
        C("MAIL FROM:<abcdef@example.com>", MALFORMED),
        C("MAIL FROM:<abcde@example.com>", OK),
        C("RCPT TO:<abcdef@example.com>", MALFORMED),
        C("RCPT TO:<abcde@example.com>", OK)], local_part_limit=5),

    # ---- RCPT ----
    Dialogue("rcpt_without_mail", [
        EHLO, C("RCPT TO:<%s>" % BOB, NEED_MAIL), C("RCPT", NEED_MAIL),
        C("RCPT TO:<bob@example.com.>", NEED_MAIL)]),
    Dialogue("rcpt_syntax", [
        EHLO, MAIL,
        C("RCPT", RCPT_SYNTAX_E),
        C("RCPT FROM:<%s>" % BOB, RCPT_SYNTAX_E),
        C("RCPT TO:", RCPT_SYNTAX_E),
        C("RCPT TO <%s>" % BOB, RCPT_SYNTAX_E),
        C("RCPT TO:<bob@example.com.>", MALFORMED),
        C("RCPT TO:<", INDEX_ERROR),
        C("RCPT TO:<%s> X=" % BOB, RCPT_SYNTAX_E),
        C("RCPT TO:<%s> =1" % BOB, RCPT_SYNTAX_E),
        RCPT]),
    Dialogue("rcpt_parameters", [
        EHLO, MAIL,
        C("RCPT TO:<%s> NOTIFY=NEVER" % BOB, RCPT_PARAMS_555),
        C("RCPT TO:<%s> SIZE=10" % BOB, RCPT_PARAMS_555),
        C("RCPT TO:<%s> SMTPUTF8" % BOB, RCPT_PARAMS_555),
        C("RCPT TO:<%s>x" % BOB, RCPT_PARAMS_555),
        RCPT]),
    Dialogue("rcpt_after_helo", [
        HELO, MAIL,
        C("RCPT TO:<%s> NOTIFY=NEVER" % BOB, RCPT_SYNTAX),
        C("RCPT", RCPT_SYNTAX), C("RCPT TO:", RCPT_SYNTAX), RCPT]),
    Dialogue("rcpt_many_and_lenient", [
        EHLO, MAIL, RCPT, RCPT,
        C("RCPT TO:<>", OK),
        C("RCPT TO:<carol@example.com", OK),
        C("RCPT TO:<dave smith@example.com>", OK),
        C("RCPT TO:<.erin@example.com>", OK),
        C("RCPT TO:<frank@[]>", OK),
        C("rcpt to: grace@example.com", OK),
        DATA, S(MESSAGE), R(OK)]),

    # ---- DATA ----
    Dialogue("data_without_rcpt", [
        EHLO, C("DATA", NEED_RCPT), MAIL, C("DATA", NEED_RCPT),
        C("DATA x", NEED_RCPT), C("RCPT TO:<bad@example.com.>", MALFORMED),
        C("DATA", NEED_RCPT)]),
    Dialogue("data_with_argument", [
        EHLO, MAIL, RCPT, C("DATA x", "501 Syntax: DATA"), DATA,
        S(MESSAGE), R(OK)]),
    Dialogue("data_ok_and_envelope_reset", transaction(
        S(MESSAGE), R(OK),
        C("RCPT TO:<%s>" % BOB, NEED_MAIL), C("DATA", NEED_RCPT),
        MAIL, RCPT, DATA, S(MESSAGE), R(OK), QUIT, CLOSED)),
    Dialogue("data_empty_message", transaction(S(".\r\n"), R(OK), C("NOOP", OK))),
    Dialogue("data_commands_are_content", transaction(
        S(message_of("QUIT", "RSET", "MAIL FROM:<x@y>", "HELO x", "")),
        R(OK), C("NOOP", OK))),
    Dialogue("data_too_much_after_final_dot", transaction(
        S(message_of("x" * 48, "y" * 48, "z" * 48)), R(TOO_MUCH_DATA),
        C("RCPT TO:<%s>" % BOB, NEED_MAIL), MAIL, RCPT, DATA,
        S(message_of("short")), R(OK), size=100), data_size_limit=100),
    Dialogue("data_size_limit_boundary", [
        ehlo(size=20), MAIL, RCPT, DATA,
        S(message_of("x" * 18)), R(OK),                 # 20 octets
        MAIL, RCPT, DATA,
        S(message_of("x" * 19)), R(TOO_MUCH_DATA),      # 21 octets
        MAIL, RCPT, DATA,
        S(message_of("x" * 8, "y" * 8)), R(OK),         # 10 + 10
        MAIL, RCPT, DATA,
        S(message_of("." + "x" * 18)), R(TOO_MUCH_DATA)],  # 21 before unstuffing
        data_size_limit=20),
    Dialogue("data_without_size_limit", [
        ehlo(size=0), MAIL, RCPT, DATA,
        S(message_of(*(["x" * 998] * 300))), R(OK)], data_size_limit=0),
    # 1001 octets with the CRLF (and with a stuffed dot) are fine, 1002 not
    Dialogue("data_line_1001_octets_ok", transaction(
        S(message_of("x" * 999)), R(OK),
        MAIL, RCPT, DATA, S(message_of("." + "x" * 998)), R(OK))),
    Dialogue("data_line_too_long_after_final_dot", transaction(
        S(message_of("x" * 1000)), R(LINE_TOO_LONG),
        C("RCPT TO:<%s>" % BOB, NEED_MAIL), MAIL, RCPT, DATA,
        S(message_of("." + "x" * 999)), R(LINE_TOO_LONG),
        MAIL, RCPT, DATA,
        S(message_of("x" * 1001)), R(LINE_TOO_LONG),
        MAIL, RCPT, DATA,
        S(message_of("a", "x" * 100000, "b")), R(LINE_TOO_LONG),
        C("NOOP", OK))),
    Dialogue("data_long_line_ending_in_dot_is_content", transaction(
        S(b"x" * 1500 + b".\r\n" + b"more\r\n.\r\n"), R(LINE_TOO_LONG),
        C("NOOP", OK))),
    Dialogue("data_too_long_first_wins", transaction(
        S(message_of("x" * 1500, "y" * 900)), R(LINE_TOO_LONG), size=2000),
        data_size_limit=2000),
    Dialogue("data_too_much_first_wins", transaction(
        S(message_of("x" * 60, "y" * 60, "z" * 1500)), R(TOO_MUCH_DATA),
        size=100), data_size_limit=100),
    Dialogue("data_non_ascii_without_decode_data", transaction(
        S(b"Subject: caf\xc3\xa9\r\n\r\n\xff\xfe\r\n.\r\n"), R(OK))),
    Dialogue("data_decode_data_ascii", [
        ehlo(eightbit=False), MAIL, RCPT, DATA, S(MESSAGE), R(OK)],
        decode_data=True),
    Dialogue("data_decode_data_strict_ascii", [
        ehlo(eightbit=False), MAIL, RCPT, DATA,
        S(b"Subject: caf\xc3\xa9\r\n\r\nbody\r\n.\r\n"), R(STRICT_ASCII)],
        decode_data=True),
    Dialogue("data_decode_data_smtputf8", [
        ehlo(eightbit=False, smtputf8=True),
        C("MAIL FROM:<%s> SMTPUTF8" % ALICE, OK), RCPT, DATA,
        S(b"Subject: caf\xc3\xa9\r\n\r\nbody\r\n.\r\n"), R(OK),
        MAIL, RCPT, DATA,
        S(b"Subject: caf\xc3\xa9\r\n\r\n\xff\r\n.\r\n"), R(OK)],
        decode_data=True, smtputf8=True),
    Dialogue("data_dot_stuffing", transaction(
        S(message_of("..", "..leading", "...two", ". space", "x.", " .")),
        R(OK), C("NOOP", OK))),
    Dialogue("data_final_dot_split_across_writes", transaction(
        S(b"Subject: t\r\n\r\nbody\r\n."), P(0.2), S(b"\r"), P(0.2),
        S(b"\n"), R(OK), C("NOOP", OK))),
    Dialogue("data_lone_lf_dot_crlf_is_content", transaction(
        S(b"Subject: t\r\n\r\nbody\n.\r\n" + SMUGGLED + b".\r\n"),
        R(OK), C("RCPT TO:<%s>" % BOB, NEED_MAIL))),
    Dialogue("data_crlf_dot_lf_is_content", transaction(
        S(b"Subject: t\r\n\r\nbody\r\n.\n" + SMUGGLED + b".\r\n"),
        R(OK), C("RCPT TO:<%s>" % BOB, NEED_MAIL))),
    Dialogue("data_cr_dot_crlf_is_content", transaction(
        S(b"Subject: t\r\n\r\nbody\r.\r\n" + SMUGGLED + b".\r\n"),
        R(OK), C("RCPT TO:<%s>" % BOB, NEED_MAIL))),
    Dialogue("data_lf_dot_lf_is_content", transaction(
        S(b"Subject: t\r\n\r\nbody\n.\n" + SMUGGLED + b".\r\n"),
        R(OK), C("RCPT TO:<%s>" % BOB, NEED_MAIL))),
    Dialogue("data_dot_cr_cr_lf_is_content", transaction(
        S(b"Subject: t\r\n\r\nbody\r\n.\r\r\n" + SMUGGLED + b".\r\n"),
        R(OK), C("RCPT TO:<%s>" % BOB, NEED_MAIL))),

    # ---- pipelining ----
    Dialogue("pipelined_transaction", [
        S(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
          b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"),
        R(*ehlo_reply()), R(OK), R(OK), R(OK), R(GO_AHEAD),
        S(b"Subject: t\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n"),
        R(OK), R(OK), R("221 Bye"), CLOSED]),
    Dialogue("pipelined_everything_in_one_write", [
        S(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
          b"RCPT TO:<b@example.com>\r\nDATA\r\nSubject: t\r\n\r\n"
          b"body\r\n.\r\nMAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n"
          b"DATA\r\n..x\r\n.\r\nQUIT\r\n"),
        R(*ehlo_reply()), R(OK), R(OK), R(GO_AHEAD), R(OK),
        R(OK), R(OK), R(GO_AHEAD), R(OK), R("221 Bye"), CLOSED]),
    Dialogue("pipelined_with_errors", [
        S(b"HELO client.example\r\nMAIL FROM:<a@example.com> SIZE=1\r\n"
          b"MAIL FROM:<a@example.com>\r\nRCPT TO:<bad@example.com.>\r\n"
          b"RCPT TO:<b@example.com>\r\nDATA x\r\nDATA\r\n"),
        R("250 " + HOST), R(MAIL_SYNTAX), R(OK), R(MALFORMED), R(OK),
        R("501 Syntax: DATA"), R(GO_AHEAD),
        S(MESSAGE), R(OK)]),
    Dialogue("pipelined_unknown_commands", [
        S(b"FOO\r\nBAR\r\nBAZ\r\nQUX\r\nZAP\r\nNOOP\r\n"),
        R(unknown("FOO")), R(unknown("BAR")), R(unknown("BAZ")),
        R(unknown("QUX")), R(TOO_MANY_UNKNOWN), CLOSED]),
    Dialogue("pipelined_after_quit", [
        S(b"NOOP\r\nQUIT\r\nNOOP\r\nNOOP\r\n"), R(OK), R("221 Bye"), CLOSED]),
    Dialogue("pipelined_long_line_between", [
        S(b"NOOP\r\nNOOP " + b"x" * 3000 + b"\r\nRSET\r\n"),
        R(OK), R(TOO_LONG), R(OK)]),
]


@pytest.mark.parametrize("dialogue", DIALOGUES, ids=repr)
def test_side_by_side(servers, dialogue):
    run_compared(servers, dialogue)


# --- rows marked **fix**: ours follows the RFC, aiosmtpd does not ---------

FIX_DIALOGUES = [
    # The extra MAIL room is granted once per EHLO/LHLO; aiosmtpd adds it
    # again at every EHLO.
    Dialogue("fix_mail_room_once_per_ehlo", [
        EHLO, EHLO,
        C(mail_line(539), TOO_LONG, ref=(OK,)),
        C(mail_line(538), OK, ref=(NESTED_MAIL,))]),
    Dialogue("fix_mail_room_after_helo_then_ehlo", [
        EHLO, HELO, C(mail_line(513), TOO_LONG), EHLO,
        C(mail_line(539), TOO_LONG, ref=(OK,)),
        C(mail_line(538), OK, ref=(NESTED_MAIL,))]),
    Dialogue("fix_mail_room_once_per_ehlo_smtputf8", [
        ehlo(smtputf8=True), ehlo(smtputf8=True), ehlo(smtputf8=True),
        C(mail_line(549), TOO_LONG, ref=(OK,)),
        C(mail_line(548), OK, ref=(NESTED_MAIL,))], smtputf8=True),
    # Every final dot ends the transaction: the envelope is gone after the
    # strict ASCII 500 too (aiosmtpd keeps it).
    Dialogue("fix_final_dot_ends_transaction_strict_ascii", [
        ehlo(eightbit=False), MAIL, RCPT, DATA,
        S(b"Subject: caf\xc3\xa9\r\n\r\nbody\r\n.\r\n"), R(STRICT_ASCII),
        C("RCPT TO:<%s>" % BOB, NEED_MAIL, ref=(OK,)),
        C("MAIL FROM:<%s>" % ALICE, OK, ref=(NESTED_MAIL,))],
        decode_data=True),
    # A configured command_size_limit holds after EHLO too, plus MAIL's
    # extension room; aiosmtpd's per-command table keeps its class default
    # of 512 once EHLO is seen, so a changed limit holds only before EHLO.
    Dialogue("fix_command_size_limit_after_ehlo", [
        C(noop_line(100), OK), C(noop_line(101), TOO_LONG), EHLO,
        C(noop_line(101), TOO_LONG, ref=(OK,)), C(noop_line(513), TOO_LONG),
        C(mail_line(127), TOO_LONG, ref=(OK,)),
        C(mail_line(126), OK, ref=(NESTED_MAIL,))],
        command_size_limit=100),
    # Every data line restarts the idle timer; aiosmtpd cuts off a transfer
    # that lasts longer than timeout in total.
    Dialogue("fix_data_lines_restart_idle_timer", [
        EHLO, MAIL, RCPT, DATA,
        S("Subject: slow\r\n"), P(1.0), S("line 1\r\n"), P(1.0),
        S("line 2\r\n"), P(1.0), S("line 3\r\n"), P(1.0),
        S("line 4\r\n"), P(1.0), S(".\r\n"),
        R(OK, ref=(EOF,)), C("NOOP", OK, ref=(EOF,))], timeout=2),
]


@pytest.mark.parametrize("dialogue", FIX_DIALOGUES, ids=repr)
def test_fix_row(servers, dialogue):
    run_fix(servers, dialogue)


# --- the greeting itself ------------------------------------------------------


def test_greeting(servers):
    """220 H <ident>: same up to the hostname; ours names itself."""
    ours_srv, ref_srv = servers.get({})
    replies = {}
    for name, server in (("ours", ours_srv), ("ref", ref_srv)):
        wire = Wire(server.host, server.port)
        try:
            replies[name] = wire.reply()
        finally:
            wire.close()
    assert replies["ref"] == b"220 mx.test.example Python SMTP 1.4.3\r\n"
    m = GREETING.match(replies["ours"])
    assert m, replies["ours"]
    assert b"Python SMTP" not in m.group(1), replies["ours"]


# --- message content (Debugging handler on both) ------------------------------

PEER = re.compile(rb"X-Peer: \('127\.0\.0\.1', \d+\)")

CONTENT_CASES = [
    ("dot_stuffing",
     b"Subject: dots\r\n\r\n..\r\n..leading\r\n...two\r\nx.\r\n .\r\n.\r\n",
     [b"Subject: dots", b"X-Peer: <peer>", b"", b".", b".leading", b"..two",
      b"x.", b" ."]),
    ("smuggled_lf_dot_crlf_stays_content",
     b"Subject: s\r\n\r\nbody\n.\r\n" + SMUGGLED + b".\r\n",
     [b"Subject: s", b"X-Peer: <peer>", b"", b"body", b".",
      b"MAIL FROM:<evil@example.net>", b"RCPT TO:<victim@example.com>",
      b"DATA", b"forged"]),
    # ".<LF>MAIL ...<CR><LF>" is one line: its leading dot is unstuffed
    ("smuggled_crlf_dot_lf_stays_content",
     b"Subject: s\r\n\r\nbody\r\n.\n" + SMUGGLED + b".\r\n",
     [b"Subject: s", b"X-Peer: <peer>", b"", b"body", b"",
      b"MAIL FROM:<evil@example.net>", b"RCPT TO:<victim@example.com>",
      b"DATA", b"forged"]),
]


def _message_lines(output):
    """The content lines the Debugging handler printed."""
    text = PEER.sub(b"X-Peer: <peer>", output)
    start = text.index(b"---------- MESSAGE FOLLOWS ----------\n")
    end = text.index(b"------------ END MESSAGE ------------\n")
    return text[start:end].split(b"\n")[1:-1]


@pytest.mark.parametrize("name,content,lines", CONTENT_CASES,
                         ids=[c[0] for c in CONTENT_CASES])
def test_content_side_by_side(tmp_path, name, content, lines):
    """Dot-unstuffing and CRLF-only line ends, seen in the content the
    Debugging handler prints (X-Peer's port normalised)."""
    servers = []
    try:
        ref = start_reference({}, handler="debugging")
        servers.append(ref)
        ours = start_ours(tmp_path / "ours.conf", {},
                          handler='{ type = "debugging"; stream = "stdout"; }')
        servers.append(ours)
        steps = [C("HELO client.example", "250 " + HOST), MAIL, RCPT, DATA,
                 S(content), R(OK), QUIT]
        transcripts = {}
        printed = {}
        for side, server in (("ref", ref), ("ours", ours)):
            transcripts[side] = play(server, steps)
            printed[side] = server.wait_output(
                lambda b: b"END MESSAGE" in b, timeout=10)
        want = expected_transcript(steps)
        assert transcripts["ref"] == want
        assert transcripts["ours"] == transcripts["ref"], render(
            "aiosmtpd", transcripts["ref"], "ours", transcripts["ours"])
        assert _message_lines(printed["ref"]) == lines, printed["ref"]
        assert _message_lines(printed["ours"]) == _message_lines(
            printed["ref"]), (printed["ref"], printed["ours"])
    finally:
        for server in servers:
            server.kill()


# --- oversized data is read to the final dot, not held in memory ---------


def _workers_hwm(server):
    """Peak resident KiB of each current worker, by PID."""
    out = {}
    for pid in server.workers():
        try:
            out[pid] = conftest.proc_status(pid, "VmHWM")
        except (OSError, KeyError):
            pass
    return out


BIG = 48 * 1024 * 1024  # octets sent; far more than any worker needs


@pytest.mark.parametrize("case", ["too_much", "line_too_long"])
def test_oversized_data_not_held_in_memory(tmp_path, case):
    """Ours only (aiosmtpd has the same rule but a different footprint):
    48 MiB over the limit, or in one line, is read to the final dot and
    dropped; no worker's peak RSS grows by anything near that."""
    settings = {"data_size_limit": 1000} if case == "too_much" else \
        {"data_size_limit": 0}
    server = start_ours(tmp_path / "big.conf", settings)
    try:
        before = _workers_hwm(server)
        wire = Wire(server.host, server.port)
        try:
            assert normalize_greeting(wire.reply()) == NORMAL_GREETING
            for step in ([HELO, MAIL, RCPT, DATA]):
                assert step.run(wire) == step.expect
            chunk = (b"x" * 998 + b"\r\n") if case == "too_much" else b"x" * 1000
            for _ in range(BIG // len(chunk)):
                wire.send(chunk)
            wire.send(b"\r\n.\r\n")
            want = TOO_MUCH_DATA if case == "too_much" else LINE_TOO_LONG
            assert wire.reply(timeout=60) == expected_bytes([want])
            assert C("NOOP", OK).run(wire) == expected_bytes([OK])
            after = _workers_hwm(server)
        finally:
            wire.close()
        grown = [after[pid] - before.get(pid, 0) for pid in after]
        assert grown and max(grown) < 16 * 1024, (before, after)
    finally:
        server.kill()
