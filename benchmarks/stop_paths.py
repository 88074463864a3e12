"""Per-test cost of each stop path of ProcessTestCase's teardown, and crash-to-report time.

Stop paths (each test: start the process, one round trip, teardown stops it):
  message     PongProc, set_stop_message(..., ['plzdiekthxbye', None])
  SIGINT      PongProc, no stop message: SIGINT, KeyboardInterrupt clean-up, exit 0
  escalation  a process that ignores SIGINT: SIGINT, wait stop_timeouts['SIGINT'] (0.2 s),
              SIGTERM. The teardown reports it as a failure by design (counted as expected).
each against the bare floor doing the same with multiprocessing + pyzmq.

Crash: a test waits in ``yield ('recv', sock, -1, 5)`` (5 s timeout) while its process is
SIGKILLed, (a) right before the recv and (b) from a threading.Timer 50 ms into the wait.
Measured: kill -> ProcessDied caught in the generator, and kill -> addFailure; against a
bare zmq.Poller watching the socket and the process sentinel. Target: within 50 ms.

Usage: python benchmarks/stop_paths.py [--quick] [--runs N]
"""
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading

import _bench  # sets sys.path: repo root and docs/examples first
from _bench import STOP, WAIT, BenchError, bare_cycle, median, perf_counter, run_tests, target

import zmq

from zmqprocesstest import ProcessDied, ProcessTestCase
from pingpong.pongproc import PongProc

CRASH_TARGET = 0.050  # seconds from the kill to the report
ESCALATION_TIMEOUTS = {"message": 0.2, "SIGINT": 0.2, "SIGTERM": 1.0, "SIGKILL": 2.0}
TIMER_DELAY = 0.05


class StubbornProc(multiprocessing.Process):
    """Answers pings on a REP socket and ignores SIGINT (only SIGTERM or SIGKILL stop it)."""

    def __init__(self, endpoint):
        super().__init__(name="stubborn")
        self.endpoint = endpoint
        self.parent = os.getpid()

    def run(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REP)
        sock.linger = 0
        sock.bind(self.endpoint)
        while os.getppid() == self.parent:  # an orphan gives up within a second
            if sock.poll(1000):
                frames = sock.recv_multipart()
                sock.send_multipart([json.dumps(["pong", json.loads(frames[-1])[1]]).encode()])
        sock.close()
        ctx.term()


# -- the stop-path tests ---------------------------------------------------------------
class _OnePing(ProcessTestCase):
    proc_class = PongProc
    stop_message = True
    ends = []  # perf_counter when each test body finished (teardown starts)

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(self.proc_class, self.endpoint)
        if self.stop_message:
            self.set_stop_message(self.proc, self.req, STOP)

    def test_ping(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 1]])
        _OnePing.ends.append(perf_counter())


class MessageStop(_OnePing):
    pass


class SigintStop(_OnePing):
    stop_message = False


class EscalationStop(_OnePing):
    proc_class = StubbornProc
    stop_message = False
    stop_timeouts = dict(ESCALATION_TIMEOUTS)


def stop_path(cls, runs, expect_failures):
    """Run *runs* tests of *cls*; return (per-test seconds, teardown seconds)."""
    _OnePing.ends = []
    result = run_tests([cls("test_ping") for _ in range(runs)])
    if result.errors or result.skipped or len(_OnePing.ends) != runs:
        raise BenchError(f"{cls.__name__}: unexpected outcome\n" + result.describe_problems())
    if expect_failures:
        wrong = [text for _, text in result.failures if "it took SIGTERM" not in text]
        if len(result.failures) != runs or wrong:
            raise BenchError(f"{cls.__name__}: expected {runs} 'did not stop politely ... it took SIGTERM' "
                             f"failures, got {len(result.failures)}\n" + "\n".join(wrong[:2]))
    elif result.failures:
        raise BenchError(f"{cls.__name__}: unexpected failures\n" + result.describe_problems())
    # stopTest comes after the cleanups: duration minus body = teardown
    teardown = [result.stops[i] - _OnePing.ends[i] for i in range(runs)]
    return result.durations, teardown


# -- crash to report -------------------------------------------------------------------
class Crash(ProcessTestCase):
    use_timer = False
    caught = []  # (t_kill, t_caught)

    def setUp(self):
        self.dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")
        self.proc = self.start_process(PongProc, self.endpoint)

    def test_crash(self):
        yield ("send", self.dealer, [b""], ["ping", 1])
        reply = yield ("recv", self.dealer)  # the process is up and serving
        self.assertEqual(reply, [b"", ["pong", 1]])
        killed = []

        def kill():
            killed.append(perf_counter())
            os.kill(self.proc.pid, signal.SIGKILL)

        timer = None
        if self.use_timer:
            timer = threading.Timer(TIMER_DELAY, kill)
            timer.start()
        else:
            kill()
        try:
            yield ("recv", self.dealer, -1, 5)
        except ProcessDied:
            Crash.caught.append((killed[0], perf_counter()))
            raise  # reported as a failure, by design
        finally:
            if timer is not None:
                timer.cancel()
                timer.join(1)
        raise AssertionError("expected ProcessDied while waiting on the dealer; the recv returned")


class CrashTimer(Crash):
    use_timer = True


def crash(cls, runs):
    """Return (kill -> caught in the generator, kill -> addFailure) in seconds, per run."""
    Crash.caught = []
    result = run_tests([cls("test_crash") for _ in range(runs)])
    died = [text for _, text in result.failures if "ProcessDied" in text and "died while the test was waiting" in text]
    if result.errors or len(died) != runs or len(Crash.caught) != runs or len(result.report_times) != runs:
        raise BenchError(f"{cls.__name__}: expected {runs} ProcessDied failures, got {len(died)}\n"
                         + result.describe_problems())
    to_gen = [caught - kill for kill, caught in Crash.caught]
    to_report = [report - kill for (kill, _), report in zip(Crash.caught, result.report_times)]
    return to_gen, to_report


def bare_crash(endpoint, use_timer):
    """The floor: a Poller on the socket and the process sentinel sees the SIGKILL."""
    ctx = zmq.Context()
    proc = PongProc(endpoint)
    proc.daemon = True
    proc.start()
    sock = ctx.socket(zmq.DEALER)
    timer = None
    try:
        sock.linger = 0
        sock.reconnect_ivl = 2
        sock.rcvtimeo = sock.sndtimeo = int(WAIT * 1000)
        sock.connect(endpoint)
        sock.send_multipart([b"", json.dumps(["ping", 1]).encode()])
        sock.recv_multipart()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(proc.sentinel, zmq.POLLIN)
        killed = []

        def kill():
            killed.append(perf_counter())
            os.kill(proc.pid, signal.SIGKILL)

        if use_timer:
            timer = threading.Timer(TIMER_DELAY, kill)
            timer.start()
        else:
            kill()
        ready = dict(poller.poll(5000))
        seen = perf_counter()
        if proc.sentinel not in ready:
            raise BenchError("bare crash: the poller did not see the process die")
        proc.join(WAIT)
        return seen - killed[0]
    finally:
        if timer is not None:
            timer.cancel()
            timer.join(1)
        _bench.close_bare(sock, proc, ctx)


def ms(seconds):
    return seconds * 1e3


def run(args):
    runs = args.runs or (5 if args.quick else 20)
    tmpdir = tempfile.mkdtemp(prefix="zpt-bench-")
    count = [0]

    def endpoint():
        count[0] += 1
        return f"ipc://{tmpdir}/{count[0]}"

    try:
        _bench.header("zmqprocesstest stop-path benchmark")
        print(f"medians of {runs} runs each")
        stop_path(MessageStop, 3, False)  # warm-up
        bare_cycle(endpoint())
        print("stop paths: per test = start, 1 round trip, stop; teardown = after the test body until stopTest")
        print(f"  {'path':12s} {'bare ms/test':>12s} {'case ms/test':>12s} {'ratio':>6s} {'case teardown ms':>17s}")
        paths = [("message", MessageStop, "message", False), ("SIGINT", SigintStop, "SIGINT", False),
                 ("escalation", EscalationStop, "escalate", True)]
        for label, cls, bare_stop, failing in paths:
            bare, case, teardown = [], [], []
            lost_before = len(_bench.LOST_SIGINTS)
            # alternate in halves so a slow phase of the machine hits both sides
            for half in (runs // 2, runs - runs // 2):
                durations, down = stop_path(cls, half, failing)
                case += durations
                teardown += down
                proc_cls = StubbornProc if cls is EscalationStop else PongProc
                bare += [bare_cycle(endpoint(), bare_stop, proc_cls, ESCALATION_TIMEOUTS["SIGINT"])
                         for _ in range(half)]
            b, c = median(bare), median(case)
            note = " (failure reported by design, counted as expected)" if failing else ""
            if bare_stop == "SIGINT":
                lost = len(_bench.LOST_SIGINTS) - lost_before
                note = (f" (bare: {lost} SIGINT(s) lost in {runs} stops, sent right after the reply; "
                        f"resent every {_bench.SIGINT_RETRY * 1e3:.0f} ms until it exits)")
            print(f"  {label:12s} {ms(b):12.2f} {ms(c):12.2f} {c / b:6.2f} {ms(median(teardown)):17.2f}{note}")
            if failing:
                over = c - ESCALATION_TIMEOUTS["SIGINT"]
                print(f"  {'':12s} escalation overhead beyond the 0.2 s SIGINT bound: case {ms(over):.1f} ms, "
                      f"bare {ms(b - ESCALATION_TIMEOUTS['SIGINT']):.1f} ms")

        print("crash: SIGKILL while the test waits in ('recv', sock, -1, 5); bare = zmq.Poller on socket + sentinel")
        print(f"  {'when killed':24s} {'bare ms':>8s} {'-> generator ms':>16s} {'ratio':>6s} "
              f"{'-> addFailure ms':>17s} {'max ms':>7s}")
        for label, cls, use_timer in (("right before the recv", Crash, False),
                                      (f"{TIMER_DELAY * 1e3:.0f} ms into the wait", CrashTimer, True)):
            bare = [bare_crash(endpoint(), use_timer) for _ in range(runs)]
            to_gen, to_report = crash(cls, runs)
            b, g, r = median(bare), median(to_gen), median(to_report)
            print(f"  {label:24s} {ms(b):8.2f} {ms(g):16.2f} {g / b:6.2f} {ms(r):17.2f} {ms(max(to_report)):7.2f}")
            target(f"crash reported within {ms(CRASH_TARGET):.0f} ms ({label})",
                   r <= CRASH_TARGET and g <= CRASH_TARGET,
                   f"median {ms(r):.2f} ms to addFailure, worst {ms(max(to_report)):.2f} ms; "
                   "the timeout was 5000 ms")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=0, help="runs per measurement (default 20, quick 5)")
    multiprocessing.set_start_method("fork", force=True)  # what the library and the floor assume
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
