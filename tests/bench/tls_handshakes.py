#!/usr/bin/python3
"""TLS handshakes per second: aiosmtpd-c's SMTPS listener beside
openssl s_server, with session resumption off and on.

A benchmark, not a test: it prints figures and asserts nothing about
them (make check does not run it).  Run it from a build directory:

    /usr/bin/python3 tests/bench/tls_handshakes.py --bin ./aiosmtpd

Two clients, each in --clients parallel processes for --seconds:

  python   Python's ssl, TLS 1.3: connect, handshake (fresh, or resuming
           the ticket from its first connection), one exchange of
           application data, close.
  s_time   openssl s_time -new / -reuse, TLS 1.2 (s_time never reads
           the TLS 1.3 tickets, so it cannot resume those): connect,
           handshake, close.  A C client, so the figures are less bound
           by the client's own CPU than Python's.

In the python client the exchange of application data is what makes it
read the TLS 1.3 tickets.  The exchange is what makes the
client read the TLS 1.3 tickets, and it is the same size for both
servers: aiosmtpd-c sends its 220 greeting and answers QUIT with 221;
s_server -rev echoes the line back reversed.  s_server serves one
connection at a time in one process; aiosmtpd-c serves with --workers
processes, so with several clients it can use every CPU.

Both servers use the same certificate, made with the openssl command
line (ECDSA P-256 by default, --rsa for RSA 2048), on 127.0.0.1, with
their default session caches and tickets.
"""

import argparse
import multiprocessing
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def make_cert(directory, rsa):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    kind = ["rsa:2048"] if rsa else ["ec", "-pkeyopt",
                                     "ec_paramgen_curve:prime256v1"]
    subprocess.run(["openssl", "req", "-x509", "-newkey"] + kind +
                   ["-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on %d" % port)


def start_ours(binary, directory, cert, key, workers):
    port = free_port()
    cfg = os.path.join(directory, "bench.conf")
    with open(cfg, "w") as f:
        f.write('hostname = "bench.example";\n'
                'tls = { cert = "%s"; key = "%s"; };\n'
                'listeners = ( { address = "127.0.0.1:%d"; '
                'tls = "implicit"; } );\n'
                'handler = { type = "sink"; };\n' % (cert, key, port))
    proc = subprocess.Popen([binary, "-n", "-w", str(workers), "--config",
                             cfg], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def start_s_server(cert, key):
    port = free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-accept",
                             "127.0.0.1:%d" % port, "-cert", cert, "-key",
                             key, "-rev", "-quiet"],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def one(ctx, port, smtp, session):
    """One connection; returns (resumed, session)."""
    with socket.create_connection(("127.0.0.1", port), 10) as raw:
        with ctx.wrap_socket(raw, session=session) as s:
            f = s.makefile("rb")
            if smtp:
                f.readline()            # 220 greeting
                s.sendall(b"QUIT\r\n")
                f.readline()            # 221 Bye
            else:
                s.sendall(b"QUIT\n")
                f.readline()            # TIUQ
            return s.session_reused, s.session


def client(args):
    port, smtp, resume, seconds, start_at = args
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _, session = one(ctx, port, smtp, None)
    while time.monotonic() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    done = resumed = errors = 0
    while time.monotonic() < end:
        try:
            r, s = one(ctx, port, smtp, session if resume else None)
        except (OSError, ssl.SSLError):
            errors += 1
            continue
        done += 1
        resumed += r
        if resume and s is not None and not r:
            session = s
    return done, resumed, errors


def s_time(args):
    """One openssl s_time run: (connections, resumed)."""
    port, resume, seconds = args
    out = subprocess.run(
        ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port,
         "-reuse" if resume else "-new", "-tls1_2", "-time",
         str(int(seconds))],
        capture_output=True, timeout=seconds + 60).stdout.decode()
    m = re.search(r"^(\d+) connections in [\d.]+s", out, re.M)
    progress = "".join(re.findall(r"^[rt0-9*]+$", out, re.M))
    return (int(m.group(1)) if m else 0), progress.count("r")


def measure_s_time(port, smtp, resume, clients, seconds):
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(s_time, [(port, resume, seconds)] * clients)
    done = sum(r[0] for r in results)
    return (done / int(seconds), sum(r[1] for r in results), done,
            0 if done else clients)


def measure(port, smtp, resume, clients, seconds):
    start_at = time.monotonic() + 0.5
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(client, [(port, smtp, resume, seconds, start_at)
                                    ] * clients)
    done = sum(r[0] for r in results)
    return (done / seconds, sum(r[1] for r in results), done,
            sum(r[2] for r in results))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default="./aiosmtpd")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--clients", default="1,4",
                   help="client process counts, comma separated")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--rsa", action="store_true",
                   help="RSA 2048 instead of ECDSA P-256")
    p.add_argument("--client", choices=("python", "s_time", "both"),
                   default="both")
    args = p.parse_args()
    if shutil.which("openssl") is None:
        sys.exit("openssl is needed (scripts/deps)")

    directory = tempfile.mkdtemp(prefix="tls-bench-")
    procs = []
    try:
        cert, key = make_cert(directory, args.rsa)
        ours, ours_port = start_ours(os.path.abspath(args.bin), directory,
                                     cert, key, args.workers)
        procs.append(ours)
        yard, yard_port = start_s_server(cert, key)
        procs.append(yard)
        print("TLS handshakes per second, %s certificate, %g s per run, "
              "%d CPUs; aiosmtpd-c with %d workers"
              % ("RSA 2048" if args.rsa else "ECDSA P-256", args.seconds,
                 os.cpu_count(), args.workers))
        print("%-8s %-22s %-10s %7s %12s %8s %6s"
              % ("client", "server", "resumption", "clients",
                 "handshakes/s", "resumed", "errors"))
        clients_list = [int(c) for c in args.clients.split(",")]
        kinds = (["python", "s_time"] if args.client == "both"
                 else [args.client])
        for kind in kinds:
            run = measure if kind == "python" else measure_s_time
            for clients in clients_list:
                for resume in (False, True):
                    for name, port, smtp in (
                            ("aiosmtpd-c (SMTPS)", ours_port, True),
                            ("openssl s_server", yard_port, False)):
                        rate, resumed, done, errors = run(
                            port, smtp, resume, clients, args.seconds)
                        print("%-8s %-22s %-10s %7d %12.0f %7.0f%% %6d"
                              % (kind, name, "on" if resume else "off",
                                 clients, rate,
                                 100.0 * resumed / done if done else 0,
                                 errors))
                        sys.stdout.flush()
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
