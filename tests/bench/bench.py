#!/usr/bin/python3
"""tests/bench/bench.py - our daemon side by side with aiosmtpd and smtp-sink

Starts each server on a loopback port, runs the same Postfix smtp-source
workloads against every one of them in interleaved order, repeats the
whole round, and prints one table of medians: messages per second, the
ratio to smtp-sink and to aiosmtpd, server CPU time per message, and the
peak PSS of the server's whole process tree.  The same run measures this
machine's fsync + rename bound, so durable Maildir delivery is judged
against the disk it runs on.

Not a test: it asserts nothing about speed.  Exit status 0 when every run
completed and delivered what it was sent, 1 when one did not or the
set-up failed (a message on stderr says which).  See "Benchmarks" in
README.md.
"""

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
KIB = 1024
MIB = 1024 * 1024


class Workload:
    def __init__(self, key, title, sessions, size, count, reuse=False):
        self.key = key
        self.title = title
        self.sessions = sessions
        self.size = size
        self.count = count
        self.reuse = reuse


def workloads(smoke, count_1k, count_1m):
    if smoke:
        count_1k, count_1m = 100, 16
    return [
        Workload("s1", "1 KiB, 1 session", 1, KIB, count_1k),
        Workload("s8", "1 KiB, 8 sessions", 8, KIB, count_1k),
        Workload("s32", "1 KiB, 32 sessions", 32, KIB, count_1k),
        Workload("d8", "1 KiB, 8 sessions, -d", 8, KIB, count_1k, True),
        Workload("m8", "1 MiB, 8 sessions", 8, MIB, count_1m),
    ]


# --- process trees from /proc ---------------------------------------------


def read_stat(pid):
    """(ppid, cpu ticks incl. reaped children) of a process, or None"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    # fields[0] is field 3 (state): ppid is 4, utime..cstime are 14..17
    ppid = int(fields[1])
    ticks = sum(int(x) for x in fields[11:15])
    return ppid, ticks


def process_tree(root):
    """{pid: cpu ticks} of root and all its descendants"""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                stats[int(name)] = st
    if root not in stats:
        return {}
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        tree[pid] = stats[pid][1]
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_ticks(root):
    return sum(process_tree(root).values())


def busy_ticks():
    """CPU ticks the whole machine spent busy (iowait counts as idle)"""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def own_cpu_seconds():
    """CPU seconds of this script and of the children it has reaped"""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def memory_kib(pid):
    """(Pss, Rss) in KiB of one process, or None once it is gone"""
    pss = rss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        return None
    if pss is None or rss is None:
        return None
    return pss, rss


class MemorySampler(threading.Thread):
    """Samples the PSS sum of a process tree while a workload runs

    Scanning /proc for the tree costs milliseconds of the CPU the server
    shares with the client, so the tree is found again only every
    TREE_EVERY seconds; the PSS of the processes known is read at every
    interval.
    """

    TREE_EVERY = 1.0

    def __init__(self, root, interval):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.stop_event = threading.Event()
        self.peak_pss = 0  # KiB, whole tree
        self.peak_rss = 0  # KiB, largest single process
        self.pids = []
        self.tree_at = None

    def sample(self):
        now = time.monotonic()
        if self.tree_at is None or now - self.tree_at >= self.TREE_EVERY:
            self.pids = list(process_tree(self.root))
            self.tree_at = now
        total = 0
        for pid in self.pids:
            mem = memory_kib(pid)
            if mem is None:
                continue
            total += mem[0]
            self.peak_rss = max(self.peak_rss, mem[1])
        self.peak_pss = max(self.peak_pss, total)

    def run(self):
        # Bounded: the workload's own timeout ends it via stop().
        while not self.stop_event.wait(self.interval):
            self.sample()

    def stop(self):
        self.stop_event.set()
        self.join(timeout=5)
        self.tree_at = None
        self.sample()


# --- servers ---------------------------------------------------------------


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_banner(port, deadline):
    """True once the server on port answers with a 220 greeting"""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                s.settimeout(2)
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class Server:
    """One server under test, started once and kept for every round

    kind is "sink" or "mailbox": rows are compared with the aiosmtpd row
    of the same kind.
    """

    def __init__(self, name, kind, argv_fn, workdir, maildir=None,
                 port_from_stdout=False):
        self.name = name
        self.kind = kind
        self.argv_fn = argv_fn
        self.workdir = workdir
        self.maildir = maildir
        self.port_from_stdout = port_from_stdout
        self.proc = None
        self.port = None
        self.log = os.path.join(workdir, "server.log")
        self.out = os.path.join(workdir, "server.out")
        self.known_pids = set()
        self.emptied = set()  # messages counted by count_delivered()

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        if self.maildir is not None:
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(self.maildir, sub), exist_ok=True)
        if not self.port_from_stdout:
            self.port = free_port()
        with open(self.out, "wb") as out, open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv_fn(self.port), stdin=subprocess.DEVNULL,
                stdout=out, stderr=log, cwd=self.workdir,
                start_new_session=True)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        if self.port_from_stdout:
            while time.monotonic() < deadline and self.port is None:
                if self.proc.poll() is not None:
                    break
                with open(self.out) as f:
                    line = f.readline()
                if line.endswith("\n"):
                    self.port = int(line.strip().rsplit(":", 1)[1])
                else:
                    time.sleep(0.05)
        if self.port is None or self.proc.poll() is not None:
            return False
        return wait_banner(self.port, deadline)

    def remember_pids(self):
        if self.proc is not None:
            self.known_pids |= set(process_tree(self.proc.pid))

    def count_delivered(self):
        """Number of messages delivered since the last call

        The messages are emptied, not removed: freed inodes would slow
        the next run down.  On ext4 without a journal, as on these
        machines, creating a file skips every inode of its group freed
        in the last 30 seconds, one by one (recently_deleted() in
        perf, a third of all samples in a Mailbox run after the
        previous run's files were removed).  A Maildir whose messages
        are read and deleted now and then does not meet that.
        """
        if self.maildir is None:
            return None
        n = 0
        for sub in ("new", "cur", "tmp"):
            d = os.path.join(self.maildir, sub)
            for name in os.listdir(d):
                path = os.path.join(d, name)
                if sub == "tmp":
                    os.unlink(path)  # a failed delivery's; not counted
                elif name not in self.emptied:
                    os.truncate(path, 0)
                    self.emptied.add(name)
                    n += 1
        return n

    def stop(self):
        """SIGTERM to the server's PID, SIGKILL after 10 s; then any
        process of its tree that is left, by PID"""
        if self.proc is None:
            return
        self.remember_pids()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in self.known_pids - {self.proc.pid}:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            # Only a process still in the session the server started.
            fields = data[data.rindex(b")") + 2:].split()
            if int(fields[3]) == self.proc.pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.proc = None


def make_servers(args, tmp):
    servers = []

    def add(name, kind, argv_fn, maildir=False, **kw):
        workdir = os.path.join(tmp, name.replace(" ", "_"))
        md = os.path.join(workdir, "Maildir") if maildir else None
        servers.append(Server(name, kind, argv_fn, workdir, md, **kw))
        return servers[-1]

    sink_argv = ["smtp-sink"]
    if os.geteuid() == 0:
        sink_argv += ["-u", "nobody"]
    add("smtp-sink", "ref",
        lambda port: sink_argv + [f"127.0.0.1:{port}", "256"])
    py = [args.python, "-m", "aiosmtpd", "-n"]
    add("aiosmtpd Sink", "sink",
        lambda port: py + ["-l", f"127.0.0.1:{port}",
                           "-c", "aiosmtpd.handlers.Sink"])
    s = add("aiosmtpd Mailbox", "mailbox", None, maildir=True)
    s.argv_fn = (lambda s: lambda port: py + [
        "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox",
        s.maildir])(s)
    def ours(w):
        """our command line and row label for one --workers value"""
        argv = [args.daemon, "-n", "-l", "127.0.0.1:0"]
        if w == "pool":
            return argv, "pool"  # the self-sizing default
        return argv + ["-w", w], f"-w {w}"

    for w in args.workers:
        argv, label = ours(w)
        add(f"ours Sink {label}", "sink",
            (lambda o: lambda port: o + ["-c", "Sink"])(argv),
            port_from_stdout=True)
    # --sched-inherit: Sink again with the workers left under the
    # master's policy (SCHED_OTHER), to show what SCHED_BATCH is worth.
    if args.sched_inherit:
        conf = os.path.join(tmp, "inherit.conf")
        with open(conf, "w") as f:
            f.write('workers = { scheduling = "inherit"; };\n')
        argv, _ = ours(args.workers[0])
        add("ours Sink inherit", "sink",
            (lambda o: lambda port: o + ["--config", conf, "-c", "Sink"])(
                argv),
            port_from_stdout=True)
    for w in args.workers:
        argv, label = ours(w)
        s = add(f"ours Mailbox {label}", "mailbox", None, maildir=True,
                port_from_stdout=True)
        s.argv_fn = (lambda o, s: lambda port: o + [
            "-c", "Mailbox", s.maildir])(argv, s)
    # The Maildir handler, which an operator delivers with (Return-Path
    # and Received, durable too), once: with the first --workers value,
    # the self-sizing pool by default.
    argv, label = ours(args.workers[0])
    s = add(f"ours Maildir {label}", "mailbox", None, maildir=True,
            port_from_stdout=True)
    s.argv_fn = (lambda o, s: lambda port: o + [
        "-c", "Maildir", s.maildir])(argv, s)
    return servers


# --- one measurement -------------------------------------------------------


class Result:
    def __init__(self):
        self.rates = []  # msgs/s of each repetition
        self.cpu_ms = []  # server CPU ms per message
        self.peak_pss = 0  # KiB
        self.peak_rss = 0  # KiB
        self.other = []  # CPUs' worth of load from other processes
        self.failures = []


def run_workload(server, wl, args):
    """One smtp-source run against server: (msgs/s, cpu ms/msg, other
    load, sampler) or raises RuntimeError

    The other load is the CPU time, in CPUs, that neither the server,
    nor smtp-source, nor this script used while the run lasted: another
    program competing for the same cores.
    """
    argv = ["smtp-source", "-s", str(wl.sessions), "-m", str(wl.count),
            "-l", str(wl.size), "-M", "bench.example",
            "-f", "sender@bench.example", "-t", "rcpt@bench.example"]
    if wl.reuse:
        argv.append("-d")
    argv.append(f"127.0.0.1:{server.port}")
    root = server.proc.pid
    sampler = MemorySampler(root, args.sample_interval)
    sampler.sample()
    sampler.start()
    # Reaped workers are in the master's cutime, so the tree's ticks
    # count every process that served the run.
    cpu0 = tree_cpu_ticks(root)
    own0, busy0 = own_cpu_seconds(), busy_ticks()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        sampler.stop()
        raise RuntimeError(f"smtp-source timed out after {args.timeout} s")
    elapsed = time.monotonic() - t0
    own1, busy1 = own_cpu_seconds(), busy_ticks()
    cpu1 = tree_cpu_ticks(root)
    sampler.stop()
    server.remember_pids()
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError("smtp-source exited %d: %s" % (
            proc.returncode, err[-1] if err else ""))
    delivered = server.count_delivered()
    if delivered is not None and delivered != wl.count:
        raise RuntimeError(f"{delivered} messages in the Maildir, "
                           f"{wl.count} sent")
    cpu_ms = (cpu1 - cpu0) * 1000.0 / CLK_TCK / wl.count
    other = ((busy1 - busy0 - (cpu1 - cpu0)) / CLK_TCK
             - (own1 - own0)) / elapsed
    return wl.count / elapsed, cpu_ms, max(other, 0.0), sampler


def run_quietest(server, wl, args):
    """run_workload(), again while other programs loaded the machine by
    more than --max-other CPUs, up to --retries times; the run with the
    least other load counts"""
    best = None
    for attempt in range(1 + args.retries):
        got = run_workload(server, wl, args)
        if best is None or got[2] < best[2]:
            best = got
        if got[2] <= args.max_other or attempt == args.retries:
            break
        print(f"  {wl.title:<22} {server.name:<20} {got[0]:9.1f} msgs/s  "
              f"other load {got[2]:.2f}: again", file=sys.stderr,
              flush=True)
    return best


# --- the fsync + rename bound ----------------------------------------------


def fsync_writer(d, tag, n, size, how):
    """n files of size octets, stored the way how names:

    rename   write tmp/NAME, fsync, rename to new/NAME (the issue's bound)
    dirsync  the same, then fsync new/
    unnamed  write an unnamed file in tmp/ (O_TMPFILE), fsync, link it as
             new/NAME, fsync new/: what our Mailbox handler does
    """
    payload = b"x" * size
    tmp, new = os.path.join(d, "tmp"), os.path.join(d, "new")
    dir_sync = how in ("dirsync", "unnamed")
    dfd = os.open(new, os.O_RDONLY | os.O_DIRECTORY) if dir_sync else -1
    for i in range(n):
        name = f"{tag}.{i}"
        if how == "unnamed":
            fd = os.open(tmp, os.O_WRONLY | os.O_TMPFILE, 0o600)
        else:
            fd = os.open(os.path.join(tmp, name),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        if how == "unnamed":
            # dst_dir_fd makes it linkat(AT_SYMLINK_FOLLOW), not link()
            os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dfd)
        os.close(fd)
        if how != "unnamed":
            os.rename(os.path.join(tmp, name), os.path.join(new, name))
        if dir_sync:
            os.fsync(dfd)
    if dfd >= 0:
        os.close(dfd)


def fsync_rate(base, writers, n_each, size, how):
    """files per second written by writers processes at once"""
    d = tempfile.mkdtemp(prefix="fsync.", dir=base)
    os.mkdir(os.path.join(d, "tmp"))
    os.mkdir(os.path.join(d, "new"))
    try:
        t0 = time.monotonic()
        if writers == 1:
            fsync_writer(d, "w0", n_each, size, how)
        else:
            pids = []
            for w in range(writers):
                pid = os.fork()
                if pid == 0:
                    code = 0
                    try:
                        fsync_writer(d, f"w{w}", n_each, size, how)
                    except BaseException:
                        code = 1
                    os._exit(code)
                pids.append(pid)
            for pid in pids:
                _, status = os.waitpid(pid, 0)
                if status != 0:
                    raise RuntimeError("an fsync writer failed")
        elapsed = time.monotonic() - t0
    finally:
        empty_files(d)
    return writers * n_each / elapsed


def empty_files(d):
    """Free the space of the files under d but keep them, and so their
    inodes, until the run's directory goes (see Server.count_delivered)"""
    for root, _, names in os.walk(d):
        for name in names:
            try:
                os.truncate(os.path.join(root, name), 0)
            except OSError:
                pass


FSYNC_PROBES = [
    # key, label, writers, files each (full, smoke), size, how
    ("1k1", "1 KiB write+fsync+rename, 1 process", 1, (800, 80), KIB,
     "rename"),
    ("1k8", "1 KiB write+fsync+rename, 8 writers", 8, (150, 15), KIB,
     "rename"),
    ("1k1d", "  the same + fsync(new/), 1 process", 1, (800, 80), KIB,
     "dirsync"),
    ("1k8d", "  the same + fsync(new/), 8 writers", 8, (150, 15), KIB,
     "dirsync"),
    ("1k1u", "  unnamed+fsync+link+fsync(new/), 1 process", 1, (800, 80),
     KIB, "unnamed"),
    ("1k8u", "  unnamed+fsync+link+fsync(new/), 8 writers", 8, (150, 15),
     KIB, "unnamed"),
    ("1m1", "1 MiB write+fsync+rename, 1 process", 1, (64, 8), MIB,
     "rename"),
    ("1m8", "1 MiB write+fsync+rename, 8 writers", 8, (12, 2), MIB,
     "rename"),
    ("1m8u", "  unnamed+fsync+link+fsync(new/), 8 writers", 8, (12, 2),
     MIB, "unnamed"),
]


def measure_fsync(base, smoke, results):
    for key, _, writers, counts, size, how in FSYNC_PROBES:
        n = counts[1] if smoke else counts[0]
        rate = fsync_rate(base, writers, n, size, how)
        results.setdefault(key, []).append(rate)


# --- output ----------------------------------------------------------------


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_rate(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}"


def fmt_spread(xs):
    if len(xs) < 2:
        return ""
    return f"{fmt_rate(min(xs))}-{fmt_rate(max(xs))}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def reference(servers, kind):
    for s in servers:
        if s.kind == kind and s.name.startswith("aiosmtpd"):
            return s
    return None


def print_table(servers, wls, results):
    sink = servers[0]
    head = ("workload", "server", "msgs/s", "min-max", "x sink", "x aiosmtpd",
            "CPU ms/msg", "PSS MiB", "max RSS MiB", "other")
    widths = (22, 20, 8, 15, 7, 11, 11, 8, 11, 6)
    line = "  ".join(h.ljust(w) if i < 2 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(head, widths)))
    print(line)
    print("-" * len(line))
    for wl in wls:
        base = median(results[(sink.name, wl.key)].rates)
        for s in servers:
            r = results[(s.name, wl.key)]
            rate = median(r.rates)
            ref = reference(servers, s.kind)
            ref_rate = (median(results[(ref.name, wl.key)].rates)
                        if ref is not None else None)
            cells = (wl.title, s.name,
                     fmt_rate(rate) if not r.failures or r.rates
                     else "FAILED",
                     fmt_spread(r.rates),
                     fmt_ratio(ratio(rate, base)),
                     fmt_ratio(ratio(rate, ref_rate)),
                     "-" if not r.cpu_ms else f"{median(r.cpu_ms):.3f}",
                     f"{r.peak_pss / 1024:.1f}",
                     f"{r.peak_rss / 1024:.1f}",
                     "-" if not r.other else f"{max(r.other):.2f}")
            print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(cells, widths))))
        print()


def print_summary(servers, wls, results):
    print("Median msgs/s, laid out as issue 7's table:")
    head = ["server"] + [wl.key for wl in wls]
    print(f"  {head[0]:<20}" + "".join(f"{h:>9}" for h in head[1:]))
    for s in servers:
        cells = [fmt_rate(median(results[(s.name, wl.key)].rates))
                 for wl in wls]
        print(f"  {s.name:<20}" + "".join(f"{c:>9}" for c in cells))
    print("  (s1, s8, s32: sessions, one message per connection; "
          "d8: 8 sessions, -d;\n   m8: 1 MiB over 8 sessions)")
    print()


def print_fsync(fsync):
    print("fsync + rename bound of this machine (median of the rounds):")
    for key, label, _, _, size, _ in FSYNC_PROBES:
        rate = median(fsync[key])
        spread = fmt_spread(fsync[key])
        if size == MIB:
            print(f"  {label:<46} {rate:8.1f} MiB/s   ({spread})")
        else:
            print(f"  {label:<46} {rate:8.0f} /s      ({spread}; "
                  f"{1000 / rate:.2f} ms each)")
    # This VM's disk has been seen to change speed fourfold within a run;
    # a bound that did cannot judge the durable rows.
    unsteady = sum(1 for key, *_ in FSYNC_PROBES
                   if len(fsync[key]) > 1
                   and max(fsync[key]) > 2 * min(fsync[key]))
    if unsteady:
        print(f"  unsteady disk: {unsteady} of {len(FSYNC_PROBES)} "
              "probes varied more than twofold between rounds; the "
              "fractions below are rough")
    print()


# Which bounds a workload's durable rate is held against: one writer for
# one session, 8 writers for the concurrent ones; (plain, with fsync of
# new/, our own method) in files per second, or MiB/s for 1 MiB.
BOUND_FOR = {"s1": ("1k1", "1k1d", "1k1u"), "s8": ("1k8", "1k8d", "1k8u"),
             "s32": ("1k8", "1k8d", "1k8u"), "d8": ("1k8", "1k8d", "1k8u"),
             "m8": ("1m8", None, "1m8u")}


def print_durable(servers, wls, results, fsync):
    """Our durable Mailbox rate as a fraction of this run's bounds"""
    rows = [s for s in servers if s.name.startswith(("ours Mailbox",
                                                     "ours Maildir"))]
    if not rows:
        return
    print("Our durable Mailbox as a fraction of the bound "
          "(write+fsync+rename / the same + fsync(new/) /\n"
          "unnamed+fsync+link+fsync(new/), which is how we store):")
    print(f"  {'server':<20}" + "".join(f"{wl.key:>20}" for wl in wls))
    for s in rows:
        cells = []
        for wl in wls:
            rate = median(results[(s.name, wl.key)].rates)
            parts = []
            for key in BOUND_FOR[wl.key]:
                f = ratio(rate, median(fsync[key])) if key else None
                parts.append("-" if f is None else f"{100 * f:.0f}%")
            cells.append(" / ".join(parts))
        print(f"  {s.name:<20}" + "".join(f"{c:>20}" for c in cells))
    print("  (s1 against one writer, the others against 8 writers; "
          "m8 in MiB/s against 1 MiB files)")
    print()


def verdict(ok):
    return "met" if ok else "MISSED"


def print_targets(servers, wls, results, fsync):
    """Issue 7's targets, judged on this run's medians"""
    def rate(name, key):
        r = results.get((name, key))
        return median(r.rates) if r is not None else None

    ours_sink = [s for s in servers if s.name.startswith("ours Sink")]
    ours_mbox = [s for s in servers if s.name.startswith("ours Mailbox")]
    b1k = median(fsync["1k8"])
    b1m = median(fsync["1m8"])
    print("Issue 7 targets, on this run's medians:")
    for s in ours_sink:
        for wl in wls:
            if wl.size != KIB:
                continue
            r = rate(s.name, wl.key)
            xs = ratio(r, rate("smtp-sink", wl.key))
            xa = ratio(r, rate("aiosmtpd Sink", wl.key))
            ok = xs is not None and xs >= 1.0 and xa >= 5.0
            print(f"  {s.name:<18} {wl.title:<22} >=1.0x sink, >=5x "
                  f"aiosmtpd: {fmt_ratio(xs)}x, {fmt_ratio(xa)}x  "
                  f"{verdict(ok)}")
        r = rate(s.name, "m8")
        xs = ratio(r, rate("smtp-sink", "m8"))
        print(f"  {s.name:<18} {'1 MiB, 8 sessions':<22} >=2.0x sink: "
              f"{fmt_ratio(xs)}x  {verdict(xs is not None and xs >= 2.0)}")
    for s in ours_mbox:
        for key in ("s8", "s32"):
            wl = next(w for w in wls if w.key == key)
            f = ratio(rate(s.name, key), b1k)
            print(f"  {s.name:<18} {wl.title:<22} >=75% of the 1 KiB "
                  f"bound ({b1k:.0f}/s): {100 * (f or 0):.0f}%  "
                  f"{verdict(f is not None and f >= 0.75)}")
        r = rate(s.name, "m8")
        f = ratio(r, b1m)
        print(f"  {s.name:<18} {'1 MiB, 8 sessions':<22} >=70% of the "
              f"1 MiB bound ({b1m:.0f} MiB/s): {100 * (f or 0):.0f}%  "
              f"{verdict(f is not None and f >= 0.70)}")
    for s in ours_sink + ours_mbox:
        pss = results[(s.name, "s32")].peak_pss / 1024
        print(f"  {s.name:<18} PSS at 32 sessions <= 41 MiB (half of "
              f"Postfix's 82): {pss:.1f} MiB  {verdict(pss <= 41)}")
    for s in ours_sink + ours_mbox:
        small = results[(s.name, "s8")].peak_rss / 1024
        big = results[(s.name, "m8")].peak_rss / 1024
        print(f"  {s.name:<18} largest process RSS, 1 KiB vs 1 MiB: "
              f"{small:.1f} vs {big:.1f} MiB  "
              f"{verdict(big <= small * 1.1 + 1)}")
    print()


# --- set-up ----------------------------------------------------------------


def check_tools(args):
    missing = []
    for tool in ("smtp-source", "smtp-sink"):
        if shutil.which(tool) is None:
            missing.append(tool + " (Debian package postfix)")
    probe = subprocess.run([args.python, "-c", "import aiosmtpd"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        missing.append(f"aiosmtpd for {args.python} (python3-aiosmtpd)")
    if not missing:
        return
    deps = os.path.join(TOP, "scripts", "deps")
    if args.install and os.geteuid() == 0:
        print("installing: " + ", ".join(missing), file=sys.stderr)
        if subprocess.run([deps]).returncode == 0:
            return check_tools(argparse.Namespace(**{**vars(args),
                                                     "install": False}))
    sys.exit("bench: missing " + "; ".join(missing) +
             f"\nbench: run {deps} as root (or pass --install as root)")


def find_daemon(args):
    if args.daemon is not None:
        if not os.access(args.daemon, os.X_OK):
            sys.exit(f"bench: {args.daemon}: not an executable")
        return os.path.abspath(args.daemon)
    for path in (os.path.join(TOP, "aiosmtpd"),
                 os.path.join(TOP, "build-release", "aiosmtpd")):
        if os.access(path, os.X_OK):
            return path
    # Build one as scripts/run would, in a directory of its own.
    build = os.path.join(TOP, "build-bench")
    print(f"bench: building the daemon in {build}", file=sys.stderr)
    steps = []
    if not os.path.exists(os.path.join(TOP, "configure")):
        steps.append((TOP, ["./autogen.sh"]))
    os.makedirs(build, exist_ok=True)
    if not os.path.exists(os.path.join(build, "Makefile")):
        steps.append((build, [os.path.join(TOP, "configure")]))
    steps.append((build, ["make", f"-j{os.cpu_count() or 1}", "aiosmtpd"]))
    for cwd, argv in steps:
        if subprocess.run(argv, cwd=cwd,
                          stdout=subprocess.DEVNULL).returncode != 0:
            sys.exit(f"bench: {' '.join(argv)} failed in {cwd}")
    return os.path.join(build, "aiosmtpd")


def parse_args():
    p = argparse.ArgumentParser(
        description="Side-by-side SMTP benchmark: our daemon, aiosmtpd "
        "and Postfix's smtp-sink under smtp-source.")
    p.add_argument("daemon", nargs="?",
                   help="our daemon (default: ./aiosmtpd, "
                   "build-release/aiosmtpd, or one built in build-bench/)")
    p.add_argument("--smoke", action="store_true",
                   help="one short round of every workload (~10 s)")
    p.add_argument("--reps", type=int, default=3,
                   help="rounds of every workload (default 3)")
    p.add_argument("--messages", type=int, default=2000,
                   help="1 KiB messages per run (default 2000)")
    p.add_argument("--big-messages", type=int, default=200,
                   help="1 MiB messages per run (default 200)")
    p.add_argument("--workers", nargs="+", default=["pool", 4, 32],
                   help="our worker counts, one row each; 'pool' runs "
                   "without -w, with the self-sizing pool (default: "
                   "pool 4 32)")
    p.add_argument("--sched-inherit", action="store_true",
                   help="one more row, 'ours Sink inherit': the first "
                   "--workers value with workers.scheduling = \"inherit\" "
                   "(SCHED_OTHER) instead of the default SCHED_BATCH")
    p.add_argument("--only", nargs="+", default=None,
                   help="run only these workloads (s1 s8 s32 d8 m8)")
    p.add_argument("--dir", default=None,
                   help="where the Maildirs and the fsync probe write "
                   "(default: a new directory in $TMPDIR)")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds one smtp-source run may take")
    p.add_argument("--sample-interval", type=float, default=0.2,
                   help="seconds between memory samples")
    p.add_argument("--max-other", type=float, default=0.3,
                   help="run again when other programs used more CPUs "
                   "than this meanwhile (default 0.3)")
    p.add_argument("--retries", type=int, default=2,
                   help="at most this many runs again (default 2)")
    p.add_argument("--rt", type=int, metavar="PRIO", default=None,
                   help="run the servers, smtp-source and the probes "
                   "under SCHED_FIFO at this priority (as root), to shield "
                   "the figures from other programs on a shared machine; "
                   "no runs are repeated then")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="the Python that runs aiosmtpd")
    p.add_argument("--install", action="store_true",
                   help="run scripts/deps when something is missing")
    args = p.parse_args()
    if args.smoke:
        args.reps = 1
        args.retries = 0
        args.timeout = min(args.timeout, 60)
    for w in args.workers:
        if w != "pool" and not (str(w).isdigit() and int(w) > 0):
            p.error(f"--workers: {w}: a count or 'pool'")
    args.workers = [str(w) for w in args.workers]
    if args.rt is not None:
        args.retries = 0
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def main():
    args = parse_args()
    check_tools(args)
    args.daemon = find_daemon(args)
    wls = workloads(args.smoke, args.messages, args.big_messages)
    if args.only:
        wls = [w for w in wls if w.key in args.only]
        if not wls:
            sys.exit("bench: --only names no workload")
    if args.rt is not None:
        # Inherited by every process started from here on.
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO,
                                  os.sched_param(args.rt))
        except (OSError, ValueError) as e:
            sys.exit(f"bench: SCHED_FIFO priority {args.rt}: {e}")
    tmp = tempfile.mkdtemp(prefix="aiosmtpd-bench.", dir=args.dir)
    servers = make_servers(args, tmp)
    results = {(s.name, w.key): Result() for s in servers for w in wls}
    fsync = {}
    failed = False
    t_start = time.monotonic()

    # Every server's signals are ours to send until they are stopped.
    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for s in servers:
            s.start()
        for s in servers:
            if not s.wait_ready(20):
                with open(s.log, errors="replace") as f:
                    tail = f.read()[-600:]
                sys.exit(f"bench: {s.name} did not start:\n{tail}")
            s.remember_pids()
        for rep in range(args.reps):
            print(f"round {rep + 1}/{args.reps}: fsync bound",
                  file=sys.stderr, flush=True)
            measure_fsync(tmp, args.smoke, fsync)
            for wl in wls:
                # Rotate the order each round so no server always runs
                # right after the same neighbour.
                k = rep % len(servers)
                order = servers[k:] + servers[:k]
                for s in order:
                    r = results[(s.name, wl.key)]
                    try:
                        rate, cpu, other, sm = run_quietest(s, wl, args)
                    except RuntimeError as e:
                        r.failures.append(str(e))
                        failed = True
                        print(f"  {wl.title} / {s.name}: FAILED: {e}",
                              file=sys.stderr, flush=True)
                        s.count_delivered()
                        continue
                    r.rates.append(rate)
                    r.cpu_ms.append(cpu)
                    r.other.append(other)
                    r.peak_pss = max(r.peak_pss, sm.peak_pss)
                    r.peak_rss = max(r.peak_rss, sm.peak_rss)
                    print(f"  {wl.title:<22} {s.name:<20} "
                          f"{rate:9.1f} msgs/s  other load {other:.2f}",
                          file=sys.stderr, flush=True)
                    if s.proc.poll() is not None:
                        sys.exit(f"bench: {s.name} exited")
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        failed = True
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    if not all(results[(servers[0].name, w.key)].rates for w in wls):
        return 1
    print()
    print(f"aiosmtpd-c benchmark: smtp-source against each server, "
          f"{args.reps} round(s), medians"
          f"{' (SMOKE: short runs, figures are rough)' if args.smoke else ''}")
    print(f"daemon: {args.daemon}; {os.cpu_count()} CPUs; "
          f"{', '.join(f'{w.key}={w.count}x{w.size // KIB} KiB' for w in wls)}"
          f"; {time.monotonic() - t_start:.0f} s in all")
    if args.rt is not None:
        print(f"scheduling: SCHED_FIFO priority {args.rt} for the servers, "
              "smtp-source and the probes (not the default policy: "
              "shields from other load)")
    print("x sink: to smtp-sink; x aiosmtpd: to aiosmtpd with the same kind "
          "of handler (Sink or Mailbox).")
    print("CPU: the server's whole process tree; PSS: peak sum over the "
          "tree; max RSS: its largest process;")
    print("other: the most CPUs' worth of load that other programs put on "
          "this machine during a run (noise)", end="")
    if args.retries > 0:
        print(f";\na run above {args.max_other} was repeated up to "
              f"{args.retries} times and the quietest kept", end="")
    print(".")
    print()
    print_table(servers, wls, results)
    print_summary(servers, wls, results)
    if fsync:
        print_fsync(fsync)
        print_durable(servers, wls, results, fsync)
    if len(wls) == 5 and fsync:
        print_targets(servers, wls, results, fsync)
    for (name, key), r in results.items():
        for f in r.failures:
            print(f"FAILED: {name}, {key}: {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
