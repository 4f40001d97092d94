#!/usr/bin/python3
"""tests/bench/forward.py - forwarding over SMTP: our Proxy beside aiosmtpd's

Three front ends forward every message they receive to one next hop, our
Sink (4 workers, STARTTLS offered, not required), and the same Postfix
smtp-source workloads run against each front end in interleaved rounds:

  aiosmtpd Proxy        aiosmtpd.handlers.Proxy, served as its main() does
  ours Proxy            aiosmtpd -c Proxy (the self-sizing pool)
  ours Proxy STARTTLS   the same with starttls=required and tls_ca: the
                        next hop's certificate and name checked on every
                        connection, its TLS session resumed

It prints the median messages per second of each, ours as a multiple of
aiosmtpd's, the front end's CPU time per message, and checks that the
next hop accepted every message (aiosmtpd's Proxy answers 250 even when
it did not).  Not a test: it asserts nothing about speed; exit status 1
when a run failed or lost messages.  Reuses bench.py's machinery; see
"Benchmarks" in README.md.

    /usr/bin/python3 tests/bench/forward.py [PATH/TO/aiosmtpd] [--smoke]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the next to this file)

KIB, MIB = bench.KIB, bench.MIB

AIOSMTPD_PROXY = """
import asyncio, sys
from aiosmtpd.handlers import Proxy
from aiosmtpd.smtp import SMTP
loop = asyncio.new_event_loop()
loop.run_until_complete(loop.create_server(
    lambda: SMTP(Proxy("127.0.0.1", int(sys.argv[2]))),
    host="127.0.0.1", port=int(sys.argv[1])))
loop.run_forever()
"""


def workloads(smoke):
    small, big = (100, 16) if smoke else (2000, 200)
    return [
        bench.Workload("s8", "1 KiB, 8 sessions", 8, KIB, small),
        bench.Workload("d8", "1 KiB, 8 sessions, -d", 8, KIB, small, True),
        bench.Workload("m8", "1 MiB, 8 sessions", 8, MIB, big),
    ]


def make_cert(directory):
    """A self-signed certificate for localhost: (cert, key)"""
    cert = os.path.join(directory, "hop.crt")
    key = os.path.join(directory, "hop.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class NextHop(bench.Server):
    """Our Sink as the next hop; counts the messages it accepted from
    its log"""

    def accepted(self):
        with open(self.log, "rb") as f:
            return len(re.findall(rb' result="250', f.read()))


def make_servers(args, tmp):
    cert, key = make_cert(tmp)
    hop = NextHop("next hop", "hop", lambda port: [
        args.daemon, "-n", "-l", "127.0.0.1:0", "-w", "4", "-c", "Sink",
        "--tlscert", cert, "--tlskey", key, "--no-requiretls"],
        os.path.join(tmp, "hop"), port_from_stdout=True)

    def front(name, argv_fn):
        workdir = os.path.join(tmp, name.replace(" ", "_"))
        return bench.Server(name, "proxy", argv_fn, workdir,
                            port_from_stdout=argv_fn is not aiosmtpd)

    def aiosmtpd(port):
        # aiosmtpd's command line gives no arguments to Proxy (it has no
        # from_cli), so it is served as aiosmtpd's main() serves one.
        return [args.python, "-c", AIOSMTPD_PROXY, str(port), str(hop.port)]

    ours = [args.daemon, "-n", "-l", "127.0.0.1:0", "-c", "Proxy"]
    fronts = [
        front("aiosmtpd Proxy", aiosmtpd),
        front("ours Proxy", lambda port: ours + ["127.0.0.1",
                                                 str(hop.port)]),
        front("ours Proxy STARTTLS", lambda port: ours + [
            "localhost", str(hop.port), "starttls=required",
            "tls_ca=" + cert]),
    ]
    return hop, fronts


def measure(hop, fronts, wls, args):
    """results[(front, workload)] = [(msgs/s, cpu ms/msg), ...]; the
    failures as a list of strings"""
    results = {(f.name, w.key): [] for f in fronts for w in wls}
    failures = []
    for rep in range(args.reps):
        for w in wls:
            for f in fronts:
                before = hop.accepted()
                try:
                    rate, cpu_ms, _, _ = bench.run_workload(f, w, args)
                except RuntimeError as e:
                    failures.append(f"{f.name}, {w.title}: {e}")
                    continue
                # The next hop logs a message once it has answered it.
                deadline = time.monotonic() + 10
                while (hop.accepted() - before < w.count
                       and time.monotonic() < deadline):
                    time.sleep(0.05)
                got = hop.accepted() - before
                if got != w.count:
                    failures.append(f"{f.name}, {w.title}: the next hop "
                                    f"accepted {got} of {w.count}")
                    continue
                results[(f.name, w.key)].append((rate, cpu_ms))
                print(f"  round {rep + 1}  {w.title:<22} {f.name:<20} "
                      f"{rate:9.1f} msgs/s", file=sys.stderr, flush=True)
    return results, failures


def print_table(fronts, wls, results):
    def med(name, key, i):
        xs = [r[i] for r in results[(name, key)]]
        return bench.median(xs) if xs else None

    print()
    print(f"{'workload':<22} {'front end':<20} {'msgs/s':>9} "
          f"{'x aiosmtpd':>10} {'CPU ms/msg':>10}")
    for w in wls:
        ref = med("aiosmtpd Proxy", w.key, 0)
        for f in fronts:
            rate, cpu = med(f.name, w.key, 0), med(f.name, w.key, 1)
            print(f"{w.title:<22} {f.name:<20} {bench.fmt_rate(rate):>9} "
                  f"{bench.fmt_ratio(bench.ratio(rate, ref)):>10} "
                  f"{'-' if cpu is None else format(cpu, '.2f'):>10}")


def parse_args():
    p = argparse.ArgumentParser(
        description="Forwarding over SMTP: our Proxy handler beside "
        "aiosmtpd's, both in front of the same next hop.")
    p.add_argument("daemon", nargs="?",
                   help="our daemon (found as bench.py finds it)")
    p.add_argument("--smoke", action="store_true",
                   help="one short round (~15 s)")
    p.add_argument("--reps", type=int, default=3,
                   help="rounds of every workload (default 3)")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds one smtp-source run may take")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="the Python that runs aiosmtpd")
    p.add_argument("--install", action="store_true",
                   help="run scripts/deps when something is missing")
    args = p.parse_args()
    args.sample_interval = 0.5  # bench.run_workload samples memory
    if args.smoke:
        args.reps = 1
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def main():
    args = parse_args()
    bench.check_tools(args)
    args.daemon = bench.find_daemon(args)
    wls = workloads(args.smoke)
    tmp = tempfile.mkdtemp(prefix="aiosmtpd-forward.")
    hop, fronts = make_servers(args, tmp)
    started = []
    try:
        # The next hop first: the front ends' command lines need its port.
        for s in [hop] + fronts:
            s.start()
            started.append(s)
            if not s.wait_ready(30):
                sys.exit(f"forward: {s.name} did not start; see {s.log}")
        results, failures = measure(hop, fronts, wls, args)
    finally:
        for s in reversed(started):
            s.stop()
    print_table(fronts, wls, results)
    for f in failures:
        print("FAILED: " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
