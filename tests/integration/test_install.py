"""What an operator installs: make install and uninstall, the man pages,
the systemd unit, and the sample configuration.

These run `make install DESTDIR=...` in the build directory under test
(AIOSMTPD_BUILDDIR) and look at what lands there.
"""

import os
import shutil
import subprocess

import pytest

from conftest import BIN, BUILDDIR

SRCDIR = os.environ.get("AIOSMTPD_SRCDIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))


# Under `make -j2 check` the outer make's flags reach these makes through
# the environment, and with them "make[2]: Entering directory" lines in
# the output that make_var() reads: each make here starts afresh.
MAKE_ENV = {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


def make(*args):
    return subprocess.run(["make", "-s", "-C", BUILDDIR] + list(args),
                          capture_output=True, text=True, timeout=300,
                          env=MAKE_ENV)


def make_var(name):
    """A variable of the build's Makefile (prefix, sbindir, ...)."""
    done = subprocess.run(["make", "-s", "-C", BUILDDIR, "--no-print-directory",
                           "-f", "Makefile", "-f", "-", "print-var"],
                          input="print-var:\n\t@echo $(%s)\n" % name,
                          capture_output=True, text=True, timeout=60,
                          env=MAKE_ENV)
    return done.stdout.strip()


def files_under(root):
    found = set()
    for dirpath, _, names in os.walk(root):
        for n in names:
            found.add(os.path.relpath(os.path.join(dirpath, n), root))
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
        pytest.skip("no build directory with a Makefile")
    dest = str(tmp_path_factory.mktemp("destdir"))
    done = make("install", "DESTDIR=" + dest)
    assert done.returncode == 0, done.stderr
    yield dest
    shutil.rmtree(dest, ignore_errors=True)


def expected_files():
    strip = lambda p: make_var(p).lstrip("/")
    return {
        os.path.join(strip("sbindir"), "aiosmtpd"),
        os.path.join(strip("mandir"), "man8", "aiosmtpd.8"),
        os.path.join(strip("mandir"), "man5", "aiosmtpd.conf.5"),
        os.path.join(strip("sysconfdir"), "aiosmtpd.conf"),
        os.path.join(strip("systemdsystemunitdir"), "aiosmtpd.service"),
        # the public header, for handlers written as shared objects
        os.path.join(strip("includedir"), "aiosmtpd", "handler.h"),
        # libaiosmtpd, for tests that start the daemon (test_controller)
        os.path.join(strip("includedir"), "aiosmtpd", "controller.h"),
        os.path.join(strip("libdir"), "libaiosmtpd.a"),
        os.path.join(strip("libdir"), "pkgconfig", "aiosmtpd.pc"),
    }


def test_install_puts_exactly_the_listed_files(installed):
    assert files_under(installed) == expected_files()


def test_man_pages_render_without_warnings(installed):
    mandir = os.path.join(installed, make_var("mandir").lstrip("/"))
    for page in ("man8/aiosmtpd.8", "man5/aiosmtpd.conf.5"):
        done = subprocess.run(["man", "--warnings", "-l",
                               os.path.join(mandir, page)],
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, MANWIDTH="80"))
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr
        assert "aiosmtpd" in done.stdout


def test_systemd_accepts_the_unit(installed, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unitdir = make_var("systemdsystemunitdir").lstrip("/")
    with open(os.path.join(installed, unitdir, "aiosmtpd.service")) as f:
        unit = f.read()
    sbin = make_var("sbindir")
    assert "ExecStart=%s/aiosmtpd " % sbin in unit
    assert "Type=notify" in unit and "KillMode=mixed" in unit
    # systemd checks that ExecStart exists and that the documented man
    # pages are found: point both at what was installed.
    unit = unit.replace(sbin + "/aiosmtpd",
                        os.path.join(installed, sbin.lstrip("/"),
                                     "aiosmtpd"))
    path = tmp_path / "aiosmtpd.service"
    path.write_text(unit)
    env = dict(os.environ, MANPATH=os.path.join(
        installed, make_var("mandir").lstrip("/")))
    done = subprocess.run(["systemd-analyze", "verify", str(path)],
                          capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_sample_config_checks(installed):
    conf = os.path.join(installed, make_var("sysconfdir").lstrip("/"),
                        "aiosmtpd.conf")
    done = subprocess.run([BIN, "-n", "--config", conf, "--check-config"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert 'address = "localhost:8025"' in done.stdout


def test_install_keeps_an_operators_config(tmp_path):
    if not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
        pytest.skip("no build directory with a Makefile")
    dest = str(tmp_path)
    conf = os.path.join(dest, make_var("sysconfdir").lstrip("/"),
                        "aiosmtpd.conf")
    os.makedirs(os.path.dirname(conf))
    with open(conf, "w") as f:
        f.write("# mine\n")
    assert make("install", "DESTDIR=" + dest).returncode == 0
    assert open(conf).read() == "# mine\n"
    assert make("uninstall", "DESTDIR=" + dest).returncode == 0
    assert files_under(dest) == {os.path.relpath(conf, dest)}


def test_uninstall_removes_everything(tmp_path):
    if not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
        pytest.skip("no build directory with a Makefile")
    dest = str(tmp_path)
    assert make("install", "DESTDIR=" + dest).returncode == 0
    assert make("uninstall", "DESTDIR=" + dest).returncode == 0
    assert files_under(dest) == set()


@pytest.mark.parametrize("text, key", [
    ("timeot = 10;\n", "'timeot'"),
    ("timeout = \"ten\";\n", "'timeout'"),
    ('listeners = ( { address = "127.0.0.1:70000"; } );\n', "'address'"),
])
def test_config_errors_name_file_line_and_key(tmp_path, text, key):
    path = tmp_path / "bad.conf"
    path.write_text("# a comment\n" + text)
    done = subprocess.run([BIN, "-n", "--config", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 78, done
    assert "%s:2: " % path in done.stderr, done.stderr
    assert key in done.stderr, done.stderr
