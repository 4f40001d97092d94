"""libaiosmtpd as a user meets it: installed with `make install DESTDIR=...`,
found with pkg-config, linked into the example test of tests/example (a
tiny mail-sending function and its cmocka test), run against the installed
daemon.

Must show (issue 8): 100 messages read back exactly; 20 controllers at once
with distinct ports and their own messages, and nothing left after stop;
a test process killed with SIGKILL leaves no daemon.
"""

import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import BUILDDIR
from test_install import SRCDIR, make, make_var

EXAMPLE = os.path.join(SRCDIR, "tests", "example")
GONE_TIMEOUT = 30.0  # seconds for a killed test's processes and files to go


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(destdir, environment for pkg-config and the library)."""
    if not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
        pytest.skip("no build directory with a Makefile")
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config is not installed")
    dest = str(tmp_path_factory.mktemp("destdir"))
    done = make("install", "DESTDIR=" + dest)
    assert done.returncode == 0, done.stderr
    libdir = dest + make_var("libdir")
    env = dict(os.environ,
               PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=dest,
               AIOSMTPD_DAEMON=dest + make_var("sbindir") + "/aiosmtpd")
    yield dest, env
    shutil.rmtree(dest, ignore_errors=True)


@pytest.fixture(scope="module")
def example(installed, tmp_path_factory):
    """The example test, built against the installed library only."""
    dest, env = installed
    aiosmtpd = run(["pkg-config", "--cflags", "--libs", "aiosmtpd"], env=env)
    assert aiosmtpd.returncode == 0, aiosmtpd.stderr
    cmocka = run(["pkg-config", "--cflags", "--libs", "cmocka"])
    assert cmocka.returncode == 0, cmocka.stderr
    exe = str(tmp_path_factory.mktemp("example") / "test-sendmail")
    argv = (["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
            + make_var("SANITIZER_CFLAGS").split()
            + [os.path.join(EXAMPLE, "test-sendmail.c"),
               os.path.join(EXAMPLE, "sendmail.c"), "-o", exe]
            + aiosmtpd.stdout.split() + cmocka.stdout.split())
    done = run(argv)
    assert done.returncode == 0, " ".join(argv) + "\n" + done.stderr
    return exe


def daemon_processes(binary):
    """PIDs of processes running this binary."""
    found = []
    binary = os.path.realpath(binary)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % entry) == binary:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def group_members(pgid):
    """PIDs in the process group, zombies included."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def parent_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def wait_until(predicate, timeout=GONE_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_pkg_config_points_into_destdir(installed):
    dest, env = installed
    daemon = run(["pkg-config", "--variable=daemon", "aiosmtpd"], env=env)
    assert daemon.stdout.strip() == env["AIOSMTPD_DAEMON"]
    # The other way to point pkg-config there: redefine the prefix.
    prefix = make_var("prefix")
    plain = dict(os.environ,
                 PKG_CONFIG_PATH=env["PKG_CONFIG_PATH"])
    cflags = run(["pkg-config", "--define-variable=prefix=" + dest + prefix,
                  "--cflags", "aiosmtpd"], env=plain)
    assert cflags.stdout.split() == ["-I" + dest + make_var("includedir")]
    assert os.path.exists(os.path.join(dest + make_var("includedir"),
                                       "aiosmtpd", "controller.h"))


def test_example_passes_against_installed_library(installed, example,
                                                  tmp_path):
    """100 messages exactly; 20 servers at once, nothing left after stop."""
    dest, env = installed
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    done = run([example], env=dict(env, TMPDIR=str(tmpdir)))
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("test_one_mail", "test_hundred_messages",
                 "test_twenty_servers"):
        assert "[       OK ] " + name in done.stdout, done.stdout
    assert "[  PASSED  ] 3 test(s)." in done.stdout + done.stderr
    # Nothing of the library's, and no daemon, outlives the test.
    assert os.listdir(str(tmpdir)) == []
    assert daemon_processes(env["AIOSMTPD_DAEMON"]) == []


def test_sigkill_leaves_no_daemon(installed, example, tmp_path):
    dest, env = installed
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen([example, "--hold"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(env, TMPDIR=str(tmpdir)))
    timer = threading.Timer(60, proc.kill)  # never hang on readline
    timer.start()
    try:
        line = proc.stdout.readline()
    finally:
        timer.cancel()
    assert line, proc.stderr.read()
    pid, directory = line.split()
    pid = int(pid)
    watchdog = parent_of(pid)
    assert watchdog != proc.pid  # the watchdog stands between them
    assert parent_of(watchdog) == proc.pid
    assert len(group_members(pid)) >= 2  # the master and its workers
    assert os.path.isdir(directory)

    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()
    assert wait_until(lambda: group_members(pid) == []), group_members(pid)
    assert wait_until(lambda: not os.path.exists("/proc/%d" % watchdog))
    assert wait_until(lambda: not os.path.exists(directory))
    assert os.listdir(str(tmpdir)) == []
    assert daemon_processes(env["AIOSMTPD_DAEMON"]) == []
