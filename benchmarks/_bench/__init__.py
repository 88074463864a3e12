"""Shared helpers of the benchmark scripts (a package, so ``benchmarks/*.py`` lists only benchmarks).

Puts the repository root and ``docs/examples`` first on ``sys.path`` (so the scripts
measure this checkout and can import the ping-pong example), and provides: a
``unittest`` result that times every test, medians and ratio formatting, target
lines, a bounded safety deadline, and a last-resort reaper for child processes.
"""
import argparse
import gc
import json
import os
import resource
import signal
import statistics
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/
REPO = os.path.dirname(HERE)
EXAMPLES = os.path.join(REPO, "docs", "examples")
for _path in (EXAMPLES, REPO):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import zmq  # noqa: E402 - imports below the sys.path set-up on purpose

from zmqprocesstest.processes import _guardian, _os  # noqa: E402 - below the sys.path set-up


def child_pids():
    """Our child processes, less the guardian (a child of the runner by design)."""
    return [pid for pid in _os.child_pids() if pid not in _guardian.guardian_pids()]

from pingpong.pongproc import PongProc  # noqa: E402 - below the sys.path set-up

perf_counter = time.perf_counter

# A benchmark started as a background job of a script inherits SIGINT ignored, and the
# bare cycles' children (plain multiprocessing, which keeps it) would then never stop on
# their SIGINT. The library's own processes get the default back by themselves.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: The ping-pong example's stop message.
STOP = ["plzdiekthxbye", None]
#: Bound of every bare wait, in seconds.
WAIT = 5.0
#: A bare SIGINT stop resends SIGINT if the process has not exited after this many seconds.
SIGINT_RETRY = 0.1
#: Pids of bare cycles whose first SIGINT was lost (see bare_cycle).
LOST_SIGINTS = []

#: Set when any target line printed TARGET MISSED (informational; exit code stays 0).
MISSED = []


class BenchError(RuntimeError):
    """An actual error of the benchmark (not a missed target): the script exits 1."""


def parser(description, default_deadline=300):
    """An argument parser with the options every script shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes for a CI smoke run (< 15 s)")
    p.add_argument("--deadline", type=float, default=default_deadline,
                   help="abort the whole run after this many seconds (a safety net; default %(default)s)")
    return p


def header(title):
    """Print what is measured on what: versions, cpus and the library's git commit."""
    import subprocess
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "zmqprocesstest"],
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        where = f"commit {commit or '?'}{' + uncommitted library changes' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        where = "commit unknown"
    print(f"{title} -- zmqprocesstest {where}; python {sys.version.split()[0]}, pyzmq {zmq.__version__}, "
          f"libzmq {zmq.zmq_version()}, {os.cpu_count()} cpu")


def median(values):
    return statistics.median(values)


def target(label, ok, detail):
    """Print one target line: ``target met`` or ``TARGET MISSED``."""
    verdict = "target met" if ok else "TARGET MISSED"
    if not ok:
        MISSED.append(label)
    print(f"  {verdict}: {label} ({detail})")


def _child_usage():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_minflt


class TimingResult(unittest.TestResult):
    """A quiet TestResult that records how long each test took, start to stop.

    ``durations`` holds seconds per test (setUp, test, cleanups included), in run
    order; ``stops`` the perf_counter at each stopTest; ``report_times`` the
    perf_counter at each addFailure/addError call (the moment the runner learns of the
    failure), before the traceback is formatted.
    """

    def __init__(self):
        super().__init__()
        self.durations = []
        self.cpu = []  # main-thread CPU seconds per test (less disturbed by other load)
        self.stops = []
        self.report_times = []
        #: Cumulative (CPU seconds, minor page faults) of reaped children: before, then after each test.
        self.child_usage = [_child_usage()]
        self._start = self._cpu = 0.0
        _RESULTS.append(self)

    def startTest(self, test):
        super().startTest(test)
        self._cpu = time.thread_time()
        self._start = perf_counter()

    def stopTest(self, test):
        now = perf_counter()
        self.cpu.append(time.thread_time() - self._cpu)
        self.child_usage.append(_child_usage())
        self.stops.append(now)
        self.durations.append(now - self._start)
        super().stopTest(test)

    def addFailure(self, test, err):
        self.report_times.append(perf_counter())
        super().addFailure(test, err)

    def addError(self, test, err):
        self.report_times.append(perf_counter())
        super().addError(test, err)

    def problems(self):
        return self.failures + self.errors

    def describe_problems(self, limit=3):
        shown = []
        for test, text in self.problems()[:limit]:
            shown.append(f"--- {test.id()}\n{text}")
        return "\n".join(shown)


def run_tests(tests):
    """Run *tests* (a list of TestCase instances, emptied) as one suite; return the TimingResult."""
    result = TimingResult()
    suite = unittest.TestSuite(tests)
    del tests[:]  # the suite drops each test after running it; keep no other reference
    suite.run(result)
    if result.shouldStop:
        raise _Deadline()
    return result


def require_success(result, what):
    """Raise BenchError if any test of *result* failed or errored."""
    if result.problems() or result.skipped:
        raise BenchError(f"{what}: {len(result.failures)} failure(s), {len(result.errors)} error(s), "
                         f"{len(result.skipped)} skip(s) in {result.testsRun} test(s)\n"
                         + result.describe_problems())


def bare_cycle(endpoint, stop="message", proc_cls=PongProc, sigint_wait=0.2):
    """The fast bare floor of one process test; returns its duration in seconds.

    Context, fork-started process, REQ socket with LINGER 0 and a 2 ms reconnect
    interval, one round trip, then *stop*: ``"message"`` (the stop message),
    ``"SIGINT"`` (resent once after SIGINT_RETRY s if lost), or ``"escalate"``
    (SIGINT, wait *sigint_wait* s, SIGTERM). Joins the
    process, closes the socket, terminates the context. Every wait is bounded.
    """
    start = perf_counter()
    ctx = zmq.Context()
    proc = proc_cls(endpoint)
    proc.daemon = True
    proc.start()
    sock = ctx.socket(zmq.REQ)
    try:
        sock.linger = 0
        sock.reconnect_ivl = 2
        sock.rcvtimeo = sock.sndtimeo = int(WAIT * 1000)
        sock.connect(endpoint)
        sock.send_multipart([json.dumps(["ping", 1]).encode()])
        reply = json.loads(sock.recv_multipart()[-1])
        if reply != ["pong", 1]:
            raise BenchError(f"bare cycle: unexpected reply {reply!r}")
        expected = 0
        if stop == "message":
            sock.send_multipart([json.dumps(STOP).encode()])
            proc.join(WAIT)
        elif stop == "SIGINT":
            os.kill(proc.pid, signal.SIGINT)
            proc.join(SIGINT_RETRY)
            give_up = perf_counter() + WAIT
            while proc.exitcode is None and perf_counter() < give_up:
                # Lost: the SIGINT came while PongProc was entering its blocking recv
                # (after Python's last signal check, before libzmq's poll), or it landed
                # on a libzmq thread; the KeyboardInterrupt waits for a message that
                # never comes. Count, resend (as often as it takes).
                LOST_SIGINTS.append(proc.pid)
                os.kill(proc.pid, signal.SIGINT)
                proc.join(SIGINT_RETRY)
        elif stop == "escalate":
            os.kill(proc.pid, signal.SIGINT)
            proc.join(sigint_wait)
            if proc.exitcode is None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.join(WAIT)
            expected = -signal.SIGTERM
        else:
            raise ValueError(f"unknown stop path {stop!r}")
        if proc.exitcode != expected:
            raise BenchError(f"bare cycle ({stop}): {proc_cls.__name__} exit code {proc.exitcode}, expected {expected}"
                             + (_proc_state(proc.pid) if proc.exitcode is None else ""))
    finally:
        close_bare(sock, proc, ctx)
    return perf_counter() - start


def _proc_state(pid):
    """Where a bare process that did not exit is stuck (each thread's state, syscall and
    wait channel, its ignored signals), to tell a hang from a lost signal."""
    lines = []
    for task in sorted(os.listdir(f"/proc/{pid}/task")) if os.path.isdir(f"/proc/{pid}/task") else []:
        base = f"/proc/{pid}/task/{task}"
        try:
            status = dict(line.split(":", 1) for line in open(f"{base}/status").read().splitlines() if ":" in line)
            lines.append(f"  thread {task} {status['Name'].strip()} {status['State'].strip()} "
                         f"SigIgn {status['SigIgn'].strip()} SigBlk {status['SigBlk'].strip()} "
                         f"syscall {open(f'{base}/syscall').read().split()[:1]} wchan {open(f'{base}/wchan').read()}")
        except OSError as exc:
            lines.append(f"  thread {task}: {exc}")
    return "\n" + "\n".join(lines) if lines else f" (pid {pid}: no /proc entry; reaped by someone else?)"


def close_bare(sock, proc, ctx):
    """End a bare cycle: close the socket, kill and reap the process if needed, term."""
    sock.close(linger=0)
    if proc.exitcode is None:
        proc.kill()
        proc.join(WAIT)
    if proc.exitcode is not None:
        proc.close()
    ctx.term()


def resources():
    """Open fds, child processes, threads, gc-tracked objects, current and peak RSS (KiB)."""
    rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "children": len(child_pids()),
        "threads": threading.active_count(),
        "objects": len(gc.get_objects()),
        "rss_kib": rss,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


class _Deadline(BaseException):
    pass


_RESULTS = []


def _on_alarm(signum, frame):
    for result in _RESULTS:
        result.stop()  # the suite runs no further test
    raise _Deadline()


def main_wrapper(run, args):
    """Run ``run(args)`` with a safety deadline; reap any child left behind; exit code.

    Exit code: 0 when the benchmark ran (targets met or missed), 1 on an actual error
    (an exception, a failing inner test that was not expected, a child left behind).
    """
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(args.deadline)))
    start = perf_counter()
    code = 0
    try:
        run(args)
    except _Deadline:
        code = 1
        print(f"ERROR: the run exceeded its --deadline of {args.deadline:g} s", file=sys.stderr)
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        code = 1
    except Exception:
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        signal.alarm(0)
        left = child_pids()
        if left:
            print(f"ERROR: child processes left behind: {left}; killing them", file=sys.stderr)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
            code = 1
    print(f"total run time {perf_counter() - start:.1f} s; "
          + (f"{len(MISSED)} target(s) missed: {', '.join(MISSED)}" if MISSED else "all targets met"))
    return code
