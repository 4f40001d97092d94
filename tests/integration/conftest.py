"""Shared fixtures for the integration tests.

Every test talks to real processes on loopback: the daemon just built
(AIOSMTPD_BIN), and, for side-by-side tests, Debian's aiosmtpd 1.4.3 run
by refserver.py with the same settings.  Processes are started with port 0,
report their address on stdout, and are stopped by PID at the end of the
test, whatever happened.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDDIR = os.environ.get("AIOSMTPD_BUILDDIR", os.path.join(HERE, "..", ".."))
BIN = os.environ.get("AIOSMTPD_BIN", os.path.join(BUILDDIR, "aiosmtpd"))
PYTHON = "/usr/bin/python3"
HOSTNAME = "mx.test.example"  # configured on both servers
STARTUP_TIMEOUT = 15.0


class OutputReader:
    """Collects a pipe's bytes in a thread so the process never blocks."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.data = bytearray()
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            chunk = self.pipe.read1(65536) if hasattr(self.pipe, "read1") \
                else os.read(self.pipe.fileno(), 65536)
            with self.cond:
                if not chunk:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                self.cond.notify_all()

    def wait_for(self, predicate, timeout):
        """Wait until predicate(bytes) is true; returns the bytes."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(bytes(self.data)):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    break
                self.cond.wait(left)
            return bytes(self.data)

    def text(self):
        with self.cond:
            return bytes(self.data)


class Server:
    """A server process that prints "host:port" lines once it listens."""

    def __init__(self, argv, n_addresses=1, env=None, cwd=None):
        self.argv = argv
        self.n_addresses = n_addresses
        self.env = env
        self.cwd = cwd
        self.proc = None
        self.addresses = []

    def start(self):
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=self.env, cwd=self.cwd)
        self.stdout = OutputReader(self.proc.stdout)
        self.stderr = OutputReader(self.proc.stderr)
        out = self.stdout.wait_for(
            lambda b: b.count(b"\n") >= self.n_addresses, STARTUP_TIMEOUT)
        lines = out.decode("utf-8", "replace").splitlines()
        if len(lines) < self.n_addresses:
            self.kill()
            raise RuntimeError(
                "%s did not report its address; stderr:\n%s" % (
                    self.argv[0], self.stderr.text().decode(errors="replace")))
        self.addresses = [parse_address(l) for l in lines[:self.n_addresses]]
        self.header_len = sum(len(l) + 1 for l in lines[:self.n_addresses])
        return self

    @property
    def host(self):
        return self.addresses[0][0]

    @property
    def port(self):
        return self.addresses[0][1]

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        """What the server printed after its address lines."""
        return self.stdout.text()[self.header_len:]

    def wait_output(self, predicate, timeout=10.0):
        return self.stdout.wait_for(
            lambda b: predicate(b[self.header_len:]), timeout)[self.header_len:]

    def log(self):
        return self.stderr.text().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=40.0):
        """Signal the server and wait; returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            # The daemon's workers are its children: kill them first so
            # no process outlives the test.
            for pid in children_of(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait(10)

    def workers(self):
        return children_of(self.proc.pid)


def parse_address(text):
    text = text.strip()
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def children_of(pid):
    """PIDs whose parent is pid, read from /proc."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def proc_status(pid, key):
    """A field of /proc/PID/status in KiB (VmHWM, VmRSS, ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def libconfig_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path, settings="", listeners=None, handler=None):
    """A configuration file; listeners default to one on 127.0.0.1:0."""
    if listeners is None:
        listeners = ['{ address = "127.0.0.1:0"; }']
    text = 'hostname = %s;\n' % libconfig_string(HOSTNAME)
    if not re.search(r"^\s*log\s*=", settings, re.M):
        # stderr is a pipe here, which would mean syslog: keep the log
        # where the test can read it.
        text += 'log = { target = "stderr"; };\n'
    text += settings + "\n"
    text += "listeners = (\n  " + ",\n  ".join(listeners) + "\n);\n"
    if handler:
        text += "handler = %s;\n" % handler
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def daemon(tmp_path):
    """Factory: daemon(settings=..., handler=..., args=[...]) -> Server."""
    started = []

    def start(settings="", listeners=None, handler='{ type = "sink"; }',
              args=(), workers=None, n_addresses=None):
        cfg = write_config(str(tmp_path / ("aiosmtpd-%d.conf" % len(started))),
                           settings, listeners, handler)
        argv = [BIN, "-n", "--config", cfg]
        if workers:
            argv += ["-w", str(workers)]
        argv += list(args)
        n = n_addresses if n_addresses is not None else len(listeners or [None])
        server = Server(argv, n_addresses=n)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


REFSERVER = os.path.join(HERE, "refserver.py")


@pytest.fixture
def reference(tmp_path):
    """Factory: reference(lmtp=False, smtputf8=False, ...) -> Server running
    Debian's aiosmtpd with those SMTP keyword arguments."""
    started = []

    def start(**kwargs):
        argv = [PYTHON, REFSERVER, "--hostname", HOSTNAME]
        for key, value in kwargs.items():
            argv += ["--" + key.replace("_", "-"), repr(value)]
        # aiosmtpd's Debugging handler never flushes its stream.
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        server = Server(argv, env=env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


class Client:
    """A raw SMTP client: send lines, read whole replies."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def reply(self):
        """One complete reply (all its lines), or b"<EOF>"."""
        lines = []
        try:
            while True:
                line = self.line()
                lines.append(line)
                if line[3:4] != b"-":
                    break
        except EOFError:
            lines.append(b"<EOF>")
        return b"".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def closed(self, timeout=5.0):
        """True when the server closes the connection (after any data)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def connect():
    clients = []

    def make(server_or_host, port=None, **kw):
        if port is None:
            host, port = server_or_host.host, server_or_host.port
        else:
            host = server_or_host
        c = Client(host, port, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
