"""STARTTLS and SMTPS against the real daemon, with real clients.

Clients: Python's smtplib and ssl, openssl s_client (-starttls smtp and
-connect), curl (smtp:// with --ssl-reqd and smtps://) and swaks (--tls,
--tlsc).  The certificate is made with the openssl command line for each
module.  BEHAVIOR.md's rows are compared with aiosmtpd itself in
test_tls_sidebyside.py; here the daemon's own promises are checked:
injection, state reset, protocol versions, ciphers, timeouts, session
resumption across workers, logging.
"""

import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import time

import pytest

import conftest
from tlsauth import (Wire, client_context, delivered, listener,  # noqa: F401
                     maildir_handler, make_cert, need, pki, run, swaks,
                     tls_group, wait_log)

HOST = conftest.HOSTNAME
MESSAGE = "Subject: tls\r\n\r\nover TLS\r\n"


@pytest.fixture
def tls_daemon(daemon, pki, tmp_path):
    """Factory: a daemon with a STARTTLS and an SMTPS listener (in that
    order) delivering to tmp_path/Maildir."""

    def start(extra_tls="", settings="", listeners=None, **kw):
        cert, key = pki
        if listeners is None:
            listeners = [listener("starttls"), listener("implicit")]
        return daemon(settings=tls_group(cert, key, extra_tls) + settings,
                      listeners=listeners,
                      handler=maildir_handler(tmp_path / "Maildir"), **kw)

    return start


def port(server, i):
    return server.addresses[i][1]


# --- real clients -----------------------------------------------------------


def test_smtplib_starttls(tls_daemon, tmp_path):
    server = tls_daemon()
    with smtplib.SMTP("127.0.0.1", port(server, 0), timeout=10) as c:
        c.ehlo("client.example")
        assert c.has_extn("starttls")
        code, text = c.starttls(context=client_context())
        assert (code, text) == (220, b"Ready to start TLS")
        c.ehlo("client.example")
        assert not c.has_extn("starttls")
        c.sendmail("a@example.com", ["b@example.com"], MESSAGE)
    msgs = delivered(tmp_path / "Maildir")
    assert len(msgs) == 1 and "over TLS" in msgs[0]
    assert re.search(r"tls version=TLSv1\.3 cipher=\S+ bits=\d+",
                     server.log())


def test_smtplib_smtps(tls_daemon, tmp_path):
    server = tls_daemon()
    with smtplib.SMTP_SSL("127.0.0.1", port(server, 1), timeout=10,
                          context=client_context()) as c:
        code, _ = c.ehlo("client.example")
        assert code == 250
        assert not c.has_extn("starttls")
        c.sendmail("a@example.com", ["b@example.com"], MESSAGE)
    assert len(delivered(tmp_path / "Maildir")) == 1


def test_openssl_s_client_starttls(tls_daemon):
    need("openssl")
    server = tls_daemon()
    r = run(["openssl", "s_client", "-connect",
             "127.0.0.1:%d" % port(server, 0), "-starttls", "smtp",
             "-crlf", "-quiet"], stdin=b"EHLO client.example\nQUIT\n")
    out = r.stdout.decode()
    assert "250-%s" % HOST in out
    assert "250-STARTTLS" not in out  # the EHLO after the handshake
    assert "221 Bye" in out


def test_openssl_s_client_smtps(tls_daemon):
    need("openssl")
    server = tls_daemon()
    r = run(["openssl", "s_client", "-connect",
             "127.0.0.1:%d" % port(server, 1), "-crlf", "-ign_eof"],
            stdin=b"EHLO client.example\nQUIT\n")
    out = r.stdout.decode()
    assert re.search(r"^220 %s " % re.escape(HOST), out, re.M)
    assert "Protocol  : TLSv1.3" in out or "TLSv1.3" in out
    assert "221 Bye" in out


def test_curl_smtps_and_starttls(tls_daemon, tmp_path):
    need("curl")
    server = tls_daemon()
    body = tmp_path / "body.txt"
    body.write_text("Subject: curl\r\n\r\nfrom curl\r\n")
    for url in ("smtps://127.0.0.1:%d" % port(server, 1),
                "smtp://127.0.0.1:%d" % port(server, 0)):
        r = run(["curl", "-sS", "--ssl-reqd", "-k", "--max-time", "20",
                 url, "--mail-from", "a@example.com", "--mail-rcpt",
                 "b@example.com", "-T", str(body)])
        assert r.returncode == 0, r.stderr
    msgs = delivered(tmp_path / "Maildir", 2)
    assert len(msgs) == 2 and all("from curl" in m for m in msgs)
    assert server.log().count(" tls version=") == 2


def test_swaks_tls_and_tlsc(tls_daemon, tmp_path):
    server = tls_daemon()
    status, out = swaks(server, port(server, 0), "--tls")
    assert status == 0, out
    assert "<-  220 Ready to start TLS" in out
    status, out = swaks(server, port(server, 1), "--tlsc")
    assert status == 0, out
    assert len(delivered(tmp_path / "Maildir", 2)) == 2


# --- the protocol rules -------------------------------------------------------


def test_starttls_injection(tls_daemon):
    """STARTTLS and NOOP in one write: the NOOP is answered neither in
    plaintext nor inside TLS (CVE-2011-0411)."""
    server = tls_daemon()
    w = Wire(port(server, 0))
    try:
        assert w.reply().startswith("220 ")
        assert w.cmd("EHLO client.example").endswith("250 HELP")
        w.send("STARTTLS\r\nNOOP\r\n")
        assert w.reply() == "220 Ready to start TLS"
        assert w.quiet() == b""          # nothing more in plaintext
        w.starttls()
        assert w.quiet() == b""          # and nothing inside TLS
        assert w.cmd("NOOP") == "250 OK"  # the first NOOP answered
        assert w.quiet() == b""
        assert w.cmd("QUIT") == "221 Bye"
    finally:
        w.close()


def test_starttls_starts_over(tls_daemon):
    server = tls_daemon()
    w = Wire(port(server, 0))
    try:
        w.reply()
        w.cmd("EHLO client.example")
        assert w.cmd("MAIL FROM:<a@example.com>") == "250 OK"
        assert w.cmd("STARTTLS") == "220 Ready to start TLS"
        w.starttls()
        assert w.cmd("RCPT TO:<b@example.com>") == \
            "503 Error: send HELO first"
        ehlo = w.cmd("EHLO client.example")
        assert "STARTTLS" not in ehlo
        assert w.cmd("RCPT TO:<b@example.com>") == \
            "503 Error: need MAIL command"
        assert w.cmd("STARTTLS") == "554 5.5.1 Error: TLS already active"
        assert w.cmd("NOOP") == "250 OK"
    finally:
        w.close()


def test_starttls_over_smtps_is_refused(tls_daemon):
    server = tls_daemon()
    w = Wire(port(server, 1), tls=True)
    try:
        assert w.reply().startswith("220 %s " % HOST)
        assert "STARTTLS" not in w.cmd("EHLO client.example")
        assert w.cmd("STARTTLS") == "554 5.5.1 Error: TLS already active"
        assert w.cmd("NOOP") == "250 OK"
    finally:
        w.close()


def test_no_starttls_on_plain_listener(tls_daemon):
    server = tls_daemon(listeners=[listener()])
    w = Wire(port(server, 0))
    try:
        w.reply()
        assert "STARTTLS" not in w.cmd("EHLO client.example")
        assert w.cmd("STARTTLS") == "454 TLS not available"
        assert "STARTTLS" not in w.cmd("HELP")
    finally:
        w.close()


def test_require_starttls_from_config(tls_daemon):
    server = tls_daemon(extra_tls="require_starttls = true;")
    w = Wire(port(server, 0))
    try:
        w.reply()
        assert w.cmd("HELO x") == "530 Must issue a STARTTLS command first"
        assert w.cmd("MAIL FROM:<a@b>") == \
            "530 Must issue a STARTTLS command first"
        assert w.cmd("NOOP") == "250 OK"
        w.cmd("EHLO x")
        assert w.cmd("STARTTLS") == "220 Ready to start TLS"
        w.starttls()
        w.cmd("EHLO x")
        assert w.cmd("MAIL FROM:<a@b>") == "250 OK"
    finally:
        w.close()
    # implicit TLS is TLS: nothing to require there
    w = Wire(port(server, 1), tls=True)
    try:
        w.reply()
        w.cmd("EHLO x")
        assert w.cmd("MAIL FROM:<a@b>") == "250 OK"
    finally:
        w.close()


@pytest.mark.parametrize("flags,first_mail", [
    ([], "530 Must issue a STARTTLS command first"),
    (["--no-requiretls"], "250 OK"),
])
def test_cli_tlscert(pki, flags, first_mail):
    cert, key = pki
    server = conftest.Server([conftest.BIN, "-n", "-l", "127.0.0.1:0",
                              "-c", "Sink", "--tlscert", cert, "--tlskey",
                              key] + flags).start()
    try:
        w = Wire(server.port)
        w.reply()
        assert "250-STARTTLS" in w.cmd("EHLO x")
        assert w.cmd("MAIL FROM:<a@b>") == first_mail
        w.close()
    finally:
        server.kill()


def test_cli_smtpscert(pki):
    cert, key = pki
    server = conftest.Server([conftest.BIN, "-n", "-l", "127.0.0.1:0",
                              "-c", "Sink", "--smtpscert", cert,
                              "--smtpskey", key]).start()
    try:
        w = Wire(server.port, tls=True)
        assert w.reply().startswith("220 ")
        assert "STARTTLS" not in w.cmd("EHLO x")
        w.close()
    finally:
        server.kill()


@pytest.mark.parametrize("args,message", [
    (["--tlscert", "{cert}"],
     "--tlscert and --tlskey must be specified together"),
    (["--smtpskey", "{key}"],
     "--smtpscert and --smtpskey must be specified together"),
    (["--tlscert", "/nonexistent.pem", "--tlskey", "{key}"],
     "Cert file /nonexistent.pem not found"),
    (["--smtpscert", "{cert}", "--smtpskey", "/nonexistent.key"],
     "Key file /nonexistent.key not found"),
])
def test_cli_tls_checks(pki, args, message):
    cert, key = pki
    argv = [conftest.BIN, "-n", "-l", "127.0.0.1:0"]
    argv += [a.format(cert=cert, key=key) for a in args]
    r = run(argv)
    assert r.returncode == 2
    assert message in r.stderr.decode()


def test_bad_key_stops_the_start(pki, tmp_path):
    cert, _ = pki
    _, other_key = make_cert(tmp_path, "o")
    cfg = conftest.write_config(
        str(tmp_path / "a.conf"), tls_group(cert, other_key),
        [listener("starttls")])
    r = run([conftest.BIN, "-n", "--config", cfg])
    assert r.returncode == 78
    err = r.stderr.decode()
    assert "%s:3: cannot load the key %s: " % (cfg, other_key) in err
    assert "key values mismatch" in err
    cfg = conftest.write_config(str(tmp_path / "b.conf"), "",
                                [listener("implicit")])
    r = run([conftest.BIN, "-n", "--config", cfg])
    assert r.returncode == 78
    assert "implicit TLS needs both 'cert' and 'key'" in r.stderr.decode()


# --- versions, ciphers, timeouts ----------------------------------------------


def s_client(server, i, *args, stdin=b"QUIT\n"):
    need("openssl")
    r = run(["openssl", "s_client", "-connect",
             "127.0.0.1:%d" % port(server, i), "-crlf", "-ign_eof"] + list(args),
            stdin=stdin)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def test_old_protocols_refused(tls_daemon):
    server = tls_daemon()
    status, out = s_client(server, 1, "-tls1_1")
    assert status != 0 and "220 " not in out
    status, out = s_client(server, 1, "-tls1_2")
    assert status == 0 and "221 Bye" in out
    assert re.search(r"Protocol *: TLSv1\.2", out)


def test_min_version_and_ciphers(tls_daemon):
    server = tls_daemon(extra_tls='min_version = "TLSv1.3";')
    status, out = s_client(server, 1, "-tls1_2")
    assert status != 0 and "220 " not in out
    status, out = s_client(server, 1, "-tls1_3")
    assert status == 0 and "221 Bye" in out
    server = tls_daemon(extra_tls='ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";'
                        ' ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";')
    status, out = s_client(server, 1, "-tls1_2")
    assert status == 0
    assert "Cipher is ECDHE-ECDSA-CHACHA20-POLY1305" in out
    status, out = s_client(server, 1, "-tls1_3")
    assert status == 0 and "Cipher is TLS_CHACHA20_POLY1305_SHA256" in out


def test_handshake_timeout(tls_daemon):
    """A client that never starts the handshake is cut off after the
    session timeout, on SMTPS and after STARTTLS alike."""
    server = tls_daemon(settings="timeout = 2;")
    w = Wire(port(server, 1))  # plain TCP to the SMTPS port, silent
    assert w.closed(15.0)
    w.close()
    w = Wire(port(server, 0))
    w.reply()
    assert w.cmd("STARTTLS") == "220 Ready to start TLS"
    assert w.closed(15.0)
    w.close()
    log = wait_log(server, lambda t: t.count('reason="timeout"') == 2)
    assert log.count('tls failed reason="timeout"') == 2
    assert "disconnect reason=tls" in log


def test_plaintext_to_smtps(tls_daemon):
    server = tls_daemon()
    w = Wire(port(server, 1))
    w.send("EHLO client.example\r\n")
    assert w.closed(10.0)
    w.close()
    assert re.search(r'tls failed reason="[^"]+"',
                     wait_log(server, lambda t: "tls failed" in t))


def test_resumption_across_workers(tls_daemon):
    """The context is built before the workers fork, so a ticket from one
    worker resumes on the others: three sessions held open at once are
    served by three different workers, and all three resume."""
    server = tls_daemon(workers=3)
    ctx = client_context()
    first = Wire(port(server, 1))
    first.sock = ctx.wrap_socket(first.sock)
    first.reply()  # reading the greeting also reads the tickets
    session = first.sock.session
    first.cmd("QUIT")
    first.close()
    wires = []
    try:
        for _ in range(3):
            w = Wire(port(server, 1))
            w.sock = ctx.wrap_socket(w.sock, session=session)
            assert w.reply().startswith("220 ")
            wires.append(w)
        assert [w.sock.session_reused for w in wires] == [True] * 3
    finally:
        for w in wires:
            w.close()
    # The workers log their sessions on their own time.
    log = wait_log(server, lambda t: t.count(" tls version=") >= 4)
    pids = set(re.findall(r"aiosmtpd\[(\d+)\]: \S+ \S+ tls version=", log))
    assert len(pids) >= 3


def test_tickets_survive_a_reload(daemon, pki):
    """The ticket keys are the master's, not a configuration's: a ticket
    issued before a SIGHUP resumes on a worker forked after it, with the
    context the reload built."""
    cert, key = pki
    server = daemon(tls_group(cert, key), [listener("implicit")], workers=1)
    ctx = client_context()
    first = Wire(server.port)
    first.sock = ctx.wrap_socket(first.sock)
    first.reply()  # reading the greeting also reads the tickets
    session = first.sock.session
    first.cmd("QUIT")
    first.close()
    served = r"aiosmtpd\[(\d+)\]: \S+ \S+ tls version="
    before = set(re.findall(served, wait_log(
        server, lambda t: " tls version=" in t)))
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, lambda t: "reloaded:" in t)
    # The old worker leaves once idle; the next session is the new one's.
    old = "/proc/%s" % next(iter(before))
    deadline = time.monotonic() + 10
    while os.path.exists(old) and time.monotonic() < deadline:
        time.sleep(0.05)
    w = Wire(server.port)
    try:
        w.sock = ctx.wrap_socket(w.sock, session=session)
        assert w.reply().startswith("220 ")
        assert w.sock.session_reused
    finally:
        w.close()
    log = wait_log(server, lambda t: len(re.findall(" tls version=", t)) == 2)
    after = set(re.findall(served, log)) - before
    assert len(before) == 1 and len(after) == 1  # a worker of the reload


def test_tls_state_in_trace_and_log(tls_daemon):
    """Handlers see the TLS state (here through the log line the daemon
    writes from the same fields)."""
    server = tls_daemon()
    with smtplib.SMTP_SSL("127.0.0.1", port(server, 1), timeout=10,
                          context=client_context()) as c:
        c.noop()
        cipher, version, bits = c.sock.cipher()
    line = "tls version=%s cipher=%s bits=%d" % (version, cipher, bits)
    assert line in wait_log(server, lambda t: line in t)


def test_tls_settings_printed(pki, tmp_path):
    cert, key = pki
    cfg = conftest.write_config(
        str(tmp_path / "c.conf"), tls_group(cert, key),
        [listener("starttls"), listener(extra='tls = { mode = "implicit"; '
                                        'min_version = "TLSv1.3"; };')])
    r = run([conftest.BIN, "--config", cfg, "--check-config"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert 'tls = { mode = "starttls"; cert = %s;' % \
        conftest.libconfig_string(cert) in out
    assert 'min_version = "TLSv1.3"' in out


# --- SIGHUP -------------------------------------------------------------------


def served_cert(port_number):
    """The certificate an SMTPS listener presents, DER."""
    w = Wire(port_number, tls=True)
    try:
        w.reply()
        return w.sock.getpeercert(binary_form=True)
    finally:
        w.close()


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def test_sighup_reloads_certificates(daemon, tmp_path):
    """SIGHUP reads the certificate and key again; broken files are
    refused and the running certificate stays."""
    cert_a, key_a = make_cert(tmp_path, "a")
    cert_b, key_b = make_cert(tmp_path, "b")
    cert, key = str(tmp_path / "live-cert.pem"), str(tmp_path / "live-key.pem")
    shutil.copy(cert_a, cert)
    shutil.copy(key_a, key)
    server = daemon(tls_group(cert, key), [listener("implicit")])
    assert served_cert(server.port) == pem_to_der(cert_a)

    shutil.copy(cert_b, cert)
    shutil.copy(key_b, key)
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, lambda t: "reloaded:" in t)
    # old workers leave once idle; a connection may still reach one
    for _ in range(100):
        if served_cert(server.port) == pem_to_der(cert_b):
            break
        time.sleep(0.05)
    assert [served_cert(server.port) for _ in range(5)] == \
        [pem_to_der(cert_b)] * 5

    with open(key, "w") as f:
        f.write("not a key\n")
    os.kill(server.pid, signal.SIGHUP)
    log = wait_log(server, lambda t: "reload failed" in t)
    assert re.search(r"reload failed, keeping the running configuration: "
                     r"\S+:\d+: cannot load the key %s: " % re.escape(key),
                     log), log
    assert [served_cert(server.port) for _ in range(5)] == \
        [pem_to_der(cert_b)] * 5
