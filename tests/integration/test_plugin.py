"""Handlers written in C as shared objects.

The example in examples/relay_domains.c is built by make check; loaded
with -c (or type = "plugin") it accepts recipients of its domains and
refuses the others with "550 5.7.1 Unable to relay".  A shared object
built for another ABI version is refused at start, and the daemon exports
nothing to plugins but the functions of aiosmtpd/handler.h.
"""

import os
import subprocess

from conftest import BIN, BUILDDIR, Server

EXAMPLE = os.path.join(BUILDDIR, "examples", "relay_domains.so")
BAD_ABI = os.path.join(BUILDDIR, "tests", "plugins", "bad_abi.so")


def dialogue(connect, server):
    c = connect(server)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<sender@x.org>") == b"250 OK\r\n"
    assert c.cmd("RCPT TO:<anne@example.com>") == b"250 OK\r\n"
    assert c.cmd("RCPT TO:<bob@EXAMPLE.org>") == b"250 OK\r\n"
    assert c.cmd("RCPT TO:<eve@elsewhere.net>") == \
        b"550 5.7.1 Unable to relay\r\n"
    assert c.cmd("RCPT TO:<postmaster>") == b"550 5.7.1 Unable to relay\r\n"
    assert c.cmd("DATA").startswith(b"354")
    assert c.cmd("Subject: x\r\n\r\nhello\r\n.") == b"250 OK\r\n"
    c.cmd("QUIT")


def test_example_plugin_from_the_command_line(connect):
    # -d: without a configuration file the log would go to syslog
    server = Server([BIN, "-n", "-d", "-l", "127.0.0.1:0", "-c", EXAMPLE,
                     "example.com", "example.org"]).start()
    try:
        dialogue(connect, server)
        server.stop()
        log = server.log()
        assert "relay_domains: refused <eve@elsewhere.net>" in log
        assert "relay_domains: accepted 21 octets for 2 recipients" in log
    finally:
        server.kill()


def test_example_plugin_from_the_configuration(daemon, connect):
    server = daemon(handler='{ type = "plugin"; path = "%s"; '
                            'args = [ "example.com", "example.org" ]; }'
                    % EXAMPLE)
    dialogue(connect, server)


def test_plugin_init_error_stops_the_start():
    proc = subprocess.run([BIN, "-n", "-l", "127.0.0.1:0", "-c", EXAMPLE],
                          capture_output=True, timeout=30)
    assert proc.returncode == 2
    assert b"relay_domains usage: DOMAIN [DOMAIN ...]" in proc.stderr


def test_wrong_abi_version_refused_at_start():
    proc = subprocess.run([BIN, "-n", "-l", "127.0.0.1:0", "-c", BAD_ABI],
                          capture_output=True, timeout=30)
    assert proc.returncode == 78
    assert proc.stdout == b""
    assert (b"cannot load handler %s: it was built for handler ABI "
            b"version 99, this daemon has version 1" % BAD_ABI.encode()) \
        in proc.stderr


def test_missing_shared_object_refused_at_start(tmp_path):
    missing = str(tmp_path / "nothing.so")
    proc = subprocess.run([BIN, "-n", "-l", "127.0.0.1:0", "-c", missing],
                          capture_output=True, timeout=30)
    assert proc.returncode == 78
    assert b"cannot load handler " + missing.encode() in proc.stderr


def test_daemon_exports_only_the_public_api():
    out = subprocess.run(["nm", "-D", "--defined-only", BIN],
                         capture_output=True, check=True, timeout=30).stdout
    names = set()
    for line in out.decode().splitlines():
        kind, name = line.split()[-2:]
        if kind in "TtDdBbRr" and not name.startswith(("_", "std")):
            names.add(name.split("@")[0])
    assert names == {"aiosmtpd_content_read", "aiosmtpd_content_rewind",
                     "aiosmtpd_log"}
