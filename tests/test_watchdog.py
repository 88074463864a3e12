"""The hard per-test timeout (zmqprocesstest.timeout._watchdog): it interrupts code blocked in C."""
import importlib.util
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

import zmq

from .support import only_problem, problems, run_case
from zmqprocesstest import ProcessTestCase
from zmqprocesstest._config import THREAD_END_GRACE, scaled
from zmqprocesstest.timeout import _watchdog
from zmqprocesstest.timeout._watchdog import HardTimeout, TestTimeout, hard_timeout

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
THIS = os.path.abspath(__file__)
WATCHDOG_PY = os.path.splitext(os.path.abspath(_watchdog.__file__))[0] + ".py"
BIN = os.path.dirname(sys.executable)
ORIGINAL_START = threading.Thread.start
FAST = 2.0  # a 0.3 s timeout must have stopped the test well within this


def line_of(marker, path=THIS):
    """The line number of the only line of *path* that contains *marker*."""
    with open(path) as f:
        found = [n for n, text in enumerate(f, 1) if text.rstrip().endswith(marker)]
    assert len(found) == 1, (marker, found)
    return found[0]


def last_frame_here(exc):
    """The innermost traceback entry in this file."""
    frames = [fs for fs in traceback.extract_tb(exc.__traceback__) if os.path.abspath(fs.filename) == THIS]
    return frames[-1]


def run_inner(case):
    result = unittest.TestResult()
    case.run(result)
    return result


def watchdog_threads():
    """What the shared watchdog thread will still signal (nothing once a block is over)."""
    return _watchdog.armed_on_watchdog()


class SignalState:
    """SIGALRM's handler and itimer and the real-time signals' handlers, to compare and restore."""

    def __init__(self):
        self.alarm = signal.getsignal(signal.SIGALRM)
        self.timer = signal.getitimer(signal.ITIMER_REAL)
        self.rt = {sig: signal.getsignal(sig) for sig in range(signal.SIGRTMIN, signal.SIGRTMAX + 1)}

    def restore(self):
        """Undo what a test changed; a runner's running itimer is left alone."""
        if self.timer == (0.0, 0.0):
            signal.setitimer(signal.ITIMER_REAL, 0)
        if self.alarm is not None and signal.getsignal(signal.SIGALRM) != self.alarm:
            signal.signal(signal.SIGALRM, self.alarm)
        for sig, handler in self.rt.items():
            if handler is not None and signal.getsignal(sig) != handler:
                signal.signal(sig, handler)


class WatchdogTestCase(unittest.TestCase):
    def setUp(self):
        if threading.current_thread() is not threading.main_thread():
            self.skipTest("the runner does not run this test in the main thread")
        # Under a runner that owns SIGALRM (pytest-timeout) the tests that do not need
        # SIGALRM run against the runner's handler, and the fallback is what they test.
        self.runner_owner = _watchdog._sigalrm_owner()
        self.mechanism = "SIGALRM" if self.runner_owner is None else "SIGRTMIN+2"
        self.before = SignalState()
        self.addCleanup(self.check_restored)

    def require_free_sigalrm(self):
        """Skip a test that installs or checks SIGALRM's handler or itimer itself."""
        if self.runner_owner is not None:
            self.skipTest(f"{self.runner_owner}; not taking it away from the runner")

    def check_restored(self):
        after = SignalState()
        self.before.restore()  # what the test itself installed goes too
        self.assertFalse(_watchdog._owned_by_hard_timeout(after.alarm), "SIGALRM's handler was not restored")
        self.assertEqual([sig for sig, handler in after.rt.items() if _watchdog._owned_by_hard_timeout(handler)],
                         [], "a real-time signal's handler was not restored")
        self.assertEqual(watchdog_threads(), [], "a block was left armed on the watchdog thread")

    def own_sigalrm(self, delay=0.0):
        """Play the runner that owns SIGALRM (like pytest-timeout): return its calls."""
        calls = []
        if self.runner_owner is not None and not delay:
            return calls  # a real runner owns it already
        self.require_free_sigalrm()
        signal.signal(signal.SIGALRM, lambda signum, frame: calls.append(signum))
        if delay:
            signal.setitimer(signal.ITIMER_REAL, delay)
        return calls

    def assert_stops(self, seconds, body, describe="the test"):
        """Run *body* under hard_timeout(seconds); return (TestTimeout, handle)."""
        start = time.monotonic()
        try:  # not assertRaises: it drops the traceback
            with hard_timeout(seconds, describe) as handle:
                body()
        except TestTimeout as exc:
            caught = exc
        else:
            self.fail("no TestTimeout")
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, seconds * 0.9)
        self.assertLess(elapsed, FAST, f"the hard timeout took {elapsed:.2f} s to stop the test")
        self.assertTrue(handle.fired)
        return caught, handle


class InterruptsBlockingCode(WatchdogTestCase):
    def test_time_sleep_under_unittest(self):
        class Inner(unittest.TestCase):
            def test_blocks(self):
                with hard_timeout(0.3, self.id()):
                    time.sleep(30)  # BLOCKING-SLEEP

            def tearDown(self):
                cleanups.append("tearDown")

        cleanups = []
        start = time.monotonic()
        result = run_inner(Inner("test_blocks"))
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, FAST)
        self.assertEqual(result.errors, [])
        self.assertEqual(len(result.failures), 1, result.failures)
        self.assertEqual(cleanups, ["tearDown"], "cleanup must run as usual after the timeout")
        text = result.failures[0][1]
        # unittest's report: the last frame is the blocking line, no frame of _watchdog.
        report_frames = re.findall(r'File "([^"]+)", line (\d+)', text.split("TestTimeout")[0])
        self.assertEqual(report_frames[-1], (THIS, str(line_of("# BLOCKING-SLEEP"))), text)
        self.assertNotIn(WATCHDOG_PY, text.split("Where every thread was")[0])
        self.assertIn("time.sleep(30)  # BLOCKING-SLEEP", text)
        self.assertRegex(text, r"TestTimeout: .*Inner\.test_blocks ran longer than run_timeout \(0\.3 s\)")
        # The thread dump names the blocking line too.
        dump = text.split("Where every thread was:")[1]
        self.assertRegex(dump, r"Current thread 0x[0-9a-f]+ \[MainThread\]")
        self.assertIn(f'File "{THIS}", line {line_of("# BLOCKING-SLEEP")}', dump)

    def test_time_sleep_traceback(self):
        exc, handle = self.assert_stops(0.3, lambda: time.sleep(30))  # SLEEP-LAMBDA
        self.assertEqual(handle.mechanism, self.mechanism)
        self.assertEqual(last_frame_here(exc).lineno, line_of("# SLEEP-LAMBDA"))
        frames = traceback.extract_tb(exc.__traceback__)
        self.assertEqual(os.path.abspath(frames[-1].filename), THIS, "the handler's frame is not trimmed")
        formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.assertNotIn(WATCHDOG_PY, formatted.split("Where every thread was")[0])
        self.assertIn("the test ran longer than run_timeout (0.3 s); stopped it where it was.", str(exc))
        if self.runner_owner is None:
            self.assertNotIn("owned by the runner", str(exc))

    def test_raw_zmq_recv(self):
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PULL)
        sock.linger = 0
        self.addCleanup(ctx.term)
        self.addCleanup(sock.close)
        sock.bind("inproc://watchdog-recv")
        exc, _ = self.assert_stops(0.3, lambda: sock.recv())  # RAW-RECV
        self.assertEqual(last_frame_here(exc).lineno, line_of("# RAW-RECV"))
        frames = traceback.extract_tb(exc.__traceback__)
        self.assertFalse([f for f in frames if os.path.abspath(f.filename) == WATCHDOG_PY], frames)

    def test_zmq_poll_select_lock_and_busy_loop(self):
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PULL)
        sock.linger = 0
        self.addCleanup(ctx.term)
        self.addCleanup(sock.close)
        sock.bind("inproc://watchdog-poll")
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)

        def busy():
            while True:
                pass

        bodies = {
            "zmq poll": lambda: poller.poll(),
            "select on nothing": lambda: select.select([], [], []),
            "lock that is never released": lambda: threading.Event().wait(),
            "busy loop": busy,
        }
        for name, body in bodies.items():
            with self.subTest(name):
                self.assert_stops(0.2, body, name)


class Restores(WatchdogTestCase):
    def test_previous_ignore_handler_restored(self):
        self.require_free_sigalrm()
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        with hard_timeout(5, "quick") as handle:
            self.assertEqual(handle.mechanism, "SIGALRM")
            self.assertEqual(signal.getsignal(signal.SIGALRM), handle._on_signal)
            self.assertGreater(signal.getitimer(signal.ITIMER_REAL)[0], 4)
        self.assertEqual(signal.getsignal(signal.SIGALRM), signal.SIG_IGN)
        self.assertEqual(signal.getitimer(signal.ITIMER_REAL), (0.0, 0.0))
        self.assertFalse(handle.fired)
        self.assert_stops(0.2, lambda: time.sleep(30))
        self.assertEqual(signal.getsignal(signal.SIGALRM), signal.SIG_IGN)
        self.assertEqual(signal.getitimer(signal.ITIMER_REAL), (0.0, 0.0))

    def test_runners_handler_and_itimer_restored(self):
        calls = self.own_sigalrm(delay=50)
        handler = signal.getsignal(signal.SIGALRM)
        start = time.monotonic()
        exc, handle = self.assert_stops(0.3, lambda: time.sleep(30))
        self.assertIs(signal.getsignal(signal.SIGALRM), handler)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        self.assertLessEqual(left, 50 - (time.monotonic() - start) + 0.01)
        self.assertGreater(left, 45)
        self.assertEqual(calls, [])
        self.assertEqual(signal.getsignal(signal.SIGRTMIN + 2), signal.SIG_DFL)
        self.assertEqual(watchdog_threads(), [])

    def test_disarmed_when_the_block_ends_in_time(self):
        with hard_timeout(0.2, "quick") as handle:
            pass
        if self.runner_owner is None:
            self.assertEqual(signal.getitimer(signal.ITIMER_REAL), (0.0, 0.0))
        self.assertEqual(watchdog_threads(), [])
        time.sleep(0.4)  # a stray alarm would raise here (or kill the process)
        self.assertFalse(handle.fired)
        self.assertTrue(handle.expired())  # the time has passed, though nothing fired

    def test_fires_once_cleanup_after_the_timeout_is_not_interrupted(self):
        cleanup_done = False
        with self.assertRaises(TestTimeout):
            with hard_timeout(0.2, "once"):
                try:
                    time.sleep(30)
                finally:
                    time.sleep(0.5)  # cleanup past the deadline: no second TestTimeout
                    cleanup_done = True
        self.assertTrue(cleanup_done)

    def test_fallback_watchdog_thread_fires_once(self):
        self.own_sigalrm()
        with self.assertRaises(TestTimeout):
            with hard_timeout(0.2, "once") as handle:
                try:
                    time.sleep(30)
                finally:
                    time.sleep(0.4)
        self.assertEqual(handle.mechanism, "SIGRTMIN+2")


class Nesting(WatchdogTestCase):
    def test_inner_test_inside_an_outer_timeout(self):
        self.require_free_sigalrm()
        class Inner(unittest.TestCase):
            def test_blocks(self):
                with hard_timeout(0.3, self.id()):
                    time.sleep(30)

        start = time.monotonic()
        with hard_timeout(10, "outer") as outer:
            result = run_inner(Inner("test_blocks"))
            self.assertEqual(len(result.failures), 1, result.failures)
            self.assertIn("Inner.test_blocks ran longer than run_timeout (0.3 s)", result.failures[0][1])
            # The outer timeout has its handler and the rest of its time back.
            self.assertEqual(signal.getsignal(signal.SIGALRM), outer._on_signal)
            left = signal.getitimer(signal.ITIMER_REAL)[0]
            self.assertLessEqual(left, 10 - (time.monotonic() - start) + 0.01)
            self.assertGreater(left, 10 - FAST)
        self.assertFalse(outer.fired)

    def test_outer_deadline_first_stops_the_inner_block(self):
        start = time.monotonic()
        try:
            with hard_timeout(0.3, "outer") as outer:
                with hard_timeout(30, "inner") as inner:
                    if self.runner_owner is None:
                        self.assertLess(signal.getitimer(signal.ITIMER_REAL)[0], 0.31)
                    time.sleep(30)  # NESTED-SLEEP
        except TestTimeout as exc:
            caught = exc
        self.assertLess(time.monotonic() - start, FAST)
        self.assertTrue(outer.fired)
        self.assertFalse(inner.fired)
        self.assertIn("outer ran longer than run_timeout (0.3 s)", str(caught))
        frames = traceback.extract_tb(caught.__traceback__)
        self.assertEqual((os.path.abspath(frames[-1].filename), frames[-1].lineno), (THIS, line_of("# NESTED-SLEEP")))

    def test_three_levels(self):
        self.require_free_sigalrm()
        with hard_timeout(20, "outermost") as outermost:
            with self.assertRaises(TestTimeout) as caught:
                with hard_timeout(0.4, "middle"):
                    with hard_timeout(20, "innermost"):
                        time.sleep(30)
            self.assertIn("middle ran longer", str(caught.exception))
            self.assertEqual(signal.getsignal(signal.SIGALRM), outermost._on_signal)
            self.assertGreater(signal.getitimer(signal.ITIMER_REAL)[0], 20 - FAST)
        self.assertFalse(outermost.fired)

    def test_inner_firing_at_once_gives_the_outer_its_time_back(self):
        self.require_free_sigalrm()
        with hard_timeout(10, "outer") as outer:
            for _ in range(20):  # the handler may run right after setitimer(): no state may be missing
                with self.assertRaises(TestTimeout):
                    with hard_timeout(1e-6, "inner"):
                        time.sleep(30)
                self.assertEqual(signal.getsignal(signal.SIGALRM), outer._on_signal)
                self.assertGreater(signal.getitimer(signal.ITIMER_REAL)[0], 10 - FAST)
        self.assertFalse(outer.fired)

    def test_nested_fallbacks_use_two_signals(self):
        self.own_sigalrm()
        with hard_timeout(10, "outer") as outer:
            with self.assertRaises(TestTimeout) as caught:
                with hard_timeout(0.3, "inner") as inner:
                    time.sleep(30)
            self.assertEqual(outer.mechanism, "SIGRTMIN+2")
            self.assertEqual(inner.mechanism, "SIGRTMIN+3")
            self.assertIn("inner ran longer", str(caught.exception))
            self.assertEqual(signal.getsignal(signal.SIGRTMIN + 3), signal.SIG_DFL)
            self.assertEqual(signal.getsignal(signal.SIGRTMIN + 2), outer._on_signal)
            self.assertEqual(len(watchdog_threads()), 1)
        self.assertFalse(outer.fired)


class Fallbacks(WatchdogTestCase):
    def test_runner_owns_sigalrm_handler(self):
        calls = self.own_sigalrm()
        exc, handle = self.assert_stops(0.3, lambda: time.sleep(30))  # FALLBACK-SLEEP
        self.assertEqual(handle.mechanism, "SIGRTMIN+2")
        owner = r"handler [\w.<>]+<lambda>" if self.runner_owner is None else r".+"
        self.assertRegex(str(exc), rf"SIGALRM is owned by the runner \({owner}\), "
                                   r"used SIGRTMIN\+2 instead\.")
        self.assertEqual(last_frame_here(exc).lineno, line_of("# FALLBACK-SLEEP"))
        self.assertEqual(os.path.abspath(traceback.extract_tb(exc.__traceback__)[-1].filename), THIS)
        self.assertEqual(calls, [])

    def test_runner_armed_an_itimer(self):
        self.require_free_sigalrm()
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 60)
        exc, handle = self.assert_stops(0.3, lambda: time.sleep(30))
        self.assertIn("SIGALRM is owned by the runner (an itimer is already armed", str(exc))
        self.assertIn("used SIGRTMIN+2 instead", str(exc))
        self.assertGreater(signal.getitimer(signal.ITIMER_REAL)[0], 60 - FAST)

    def test_runner_fallback_in_zmq_recv(self):
        self.own_sigalrm()
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PULL)
        sock.linger = 0
        self.addCleanup(ctx.term)
        self.addCleanup(sock.close)
        sock.bind("inproc://watchdog-fallback")
        exc, handle = self.assert_stops(0.3, lambda: sock.recv())
        self.assertEqual(handle.mechanism, "SIGRTMIN+2")

    def test_taken_real_time_signals_are_skipped(self):
        self.own_sigalrm()
        signal.signal(signal.SIGRTMIN + 2, lambda signum, frame: None)
        exc, handle = self.assert_stops(0.3, lambda: time.sleep(30))
        self.assertEqual(handle.mechanism, "SIGRTMIN+3")

    def test_not_in_the_main_thread(self):
        outcome = {}

        def run():
            try:
                with hard_timeout(0.2, "threaded") as handle:
                    outcome["handle"] = handle
                    for _ in range(500):  # what the event loop does between events
                        if handle.expired():
                            break
                        time.sleep(0.01)
                    handle.check()
            except TestTimeout as exc:
                outcome["exc"] = exc

        thread = threading.Thread(target=run, name="not-main")
        thread.start()
        thread.join(10)
        self.assertFalse(thread.is_alive())
        handle = outcome["handle"]
        self.assertIsNone(handle.mechanism)
        self.assertTrue(handle.fired)
        text = str(outcome["exc"])
        self.assertIn("threaded ran longer than run_timeout (0.2 s); the hard timeout could not interrupt "
                      "blocking code because the test does not run in the main thread", text)
        self.assertRegex(text, r"Current thread 0x[0-9a-f]+ \[not-main\]")


class Handle(unittest.TestCase):
    def test_no_limit(self):
        for seconds in (None, math.inf):
            with hard_timeout(seconds, "unbounded") as handle:
                self.assertFalse(handle.expired())
                self.assertEqual(handle.remaining(), math.inf)
                handle.check()
            self.assertIsNone(handle.mechanism)

    def test_bad_seconds(self):
        for seconds in (0, -1, math.nan):
            with self.subTest(seconds=seconds), self.assertRaises(ValueError):
                hard_timeout(seconds, "bad")

    def test_entered_once(self):
        handle = HardTimeout(None, "once")
        with handle:
            pass
        with self.assertRaises(RuntimeError):
            handle.__enter__()

    def test_exception_class(self):
        self.assertTrue(issubclass(TestTimeout, AssertionError))
        self.assertIs(TestTimeout.__test__, False)
        self.assertTrue(TestTimeout.__doc__)
        self.assertTrue(_watchdog.__dict__["__unittest"])


class UnderADebugger(unittest.TestCase):
    """Stepping through a test in pdb must not end it: the hard timeout is off while a
    debugger's trace function is set (coverage.py's tracer does not count)."""

    def run_traced(self, trace):
        import bdb

        from zmqprocesstest import ProcessTestCase

        from .support import problems, run_case

        class SlowUnderTheDebugger(ProcessTestCase):
            run_timeout = 0.2

            def test_it(self):
                select.select([], [], [], 0.6)  # a user taking time at a breakpoint

        previous = sys.gettrace()
        debugger = bdb.Bdb()
        debugger.reset()
        sys.settrace(debugger.trace_dispatch if trace == "pdb" else previous)
        try:
            result = run_case(SlowUnderTheDebugger)
        finally:
            sys.settrace(previous)
        return problems(result)

    def test_no_timeout_under_pdb(self):
        self.assertEqual(self.run_traced("pdb"), [])

    def test_the_timeout_holds_without_a_debugger(self):
        found = self.run_traced(None)
        self.assertEqual(len(found), 1)
        self.assertIn("TestTimeout", found[0][1])

    def test_the_report_says_why(self):
        import bdb

        debugger = bdb.Bdb()
        debugger.reset()
        previous = sys.gettrace()
        sys.settrace(debugger.trace_dispatch)
        try:
            with hard_timeout(0.1, "stepped") as handle:
                pass
        finally:
            sys.settrace(previous)
        self.assertEqual((handle.mechanism, handle.note),
                         (None, "a debugger is attached (bdb): the hard timeout is off"))


class OtherThreadsInTheReport(WatchdogTestCase):
    def test_every_thread_is_shown_with_its_name(self):
        release = threading.Event()

        def helper():
            release.wait(10)  # HELPER-WAIT

        thread = threading.Thread(target=helper, name="blocked-helper")
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(release.set)
        exc, _ = self.assert_stops(0.3, lambda: time.sleep(30))
        text = str(exc)
        self.assertRegex(text, r"Thread 0x[0-9a-f]+ \[blocked-helper\]")
        self.assertIn(f'File "{THIS}", line {line_of("# HELPER-WAIT")} in helper', text)


def _importable(module):
    return importlib.util.find_spec(module) is not None


class UnderEachRunner(unittest.TestCase):
    """A blocking plain unittest test wrapped by hard_timeout fails quickly under every runner."""

    LIMIT = 0.5

    def runners(self):
        py = sys.executable
        pytest_args = [py, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        unittest_parallel = os.path.join(BIN, "unittest-parallel")
        return [
            ("python -m unittest", None, [py, "-m", "unittest", "test_watchdog_sample"]),
            ("pytest", "pytest", pytest_args + ["test_watchdog_sample.py"]),
            ("nose2", "nose2", [py, "-m", "nose2", "-s", ".", "-t", "."]),
            ("nose2 (mp plugin, 2 processes)", "nose2",
             [py, "-m", "nose2", "--plugin", "nose2.plugins.mp", "-N", "2", "-s", ".", "-t", "."]),
            ("pytest-xdist (-n 2)", "xdist", pytest_args + ["-n", "2", "test_watchdog_sample.py"]),
            ("unittest-parallel (-j 2)", "unittest_parallel" if os.path.exists(unittest_parallel) else "-",
             [unittest_parallel, "-s", ".", "-t", ".", "-j", "2"]),
            ("pytest-timeout (signal method)", "pytest_timeout",
             pytest_args + ["--timeout", "120", "--timeout-method", "signal",  # the plugin loads itself
                            "test_watchdog_sample.py"]),
        ]

    def test_blocking_tests_fail_with_test_timeout(self):
        sample = os.path.join(HERE, "samples", "watchdog_sample.py")
        marks = {name: line_of(f"# BLOCKS: {name}", sample) for name in ("sleep", "recv", "select")}
        started = []
        for label, module, command in self.runners():
            if module is not None and (module == "-" or not _importable(module)):
                started.append((label, module, None, f"{module} is not importable"))
                continue
            work = tempfile.mkdtemp(prefix="watchdog-runner-")
            self.addCleanup(shutil.rmtree, work, True)
            shutil.copy(sample, os.path.join(work, "test_watchdog_sample.py"))
            env = dict(os.environ, WATCHDOG_SAMPLE_DIR=work, WATCHDOG_SAMPLE_LIMIT=str(self.LIMIT),
                       PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
            env.pop("PYTEST_ADDOPTS", None)
            env.pop("PYTEST_XDIST_WORKER", None)
            # On CI (CI or BUILD_NUMBER set) pytest repeats each failure's whole message in
            # its short summary; the counts below are of the reports themselves.
            env.pop("CI", None)
            env.pop("BUILD_NUMBER", None)
            proc = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            started.append((label, module, (proc, work, time.monotonic()), None))
        for label, module, running, reason in started:
            with self.subTest(label):
                if running is None:
                    self.skipTest(reason)
                proc, work, start = running
                with proc:
                    try:
                        out, _ = proc.communicate(timeout=60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        out, _ = proc.communicate()
                        self.fail(f"{label} still ran after 60 s:\n{out.decode(errors='replace')}")
                elapsed = time.monotonic() - start
                text = out.decode(errors="replace")
                self.assertNotEqual(proc.returncode, 0, text)
                # Ended by the timeouts, not after the 600 s the tests block for: the runner's
                # own count of its run's time where it prints one (eight interpreters start at
                # once here, which alone takes tens of seconds on a loaded machine).
                reported = re.findall(r"(?:Ran \d+ tests? in |\d+ \w+ in )([\d.]+) ?s", text)
                took = float(reported[-1]) if reported else elapsed
                self.assertLess(took, 55, f"{label} took {took:.1f} s ({elapsed:.1f} s in all)")
                self.assertGreaterEqual(text.count("TestTimeout"), 3, text)
                self.assertEqual(text.count(f"ran longer than run_timeout ({self.LIMIT:g} s); stopped it where it was"),
                                 3, text)
                self.assertNotIn("not run in the main thread", text)
                for name, line in marks.items():
                    # the report points at the blocking line of the copied sample file
                    self.assertRegex(text, rf"test_watchdog_sample\.py\"?[,:] line {line}\b|"
                                           rf"test_watchdog_sample\.py:{line}\b", f"{name}:\n{text}")
                cleanups = sorted(f for f in os.listdir(work) if f.endswith(".cleanup"))
                self.assertEqual(len(cleanups), 3, f"cleanup did not run for every test: {cleanups}\n{text}")
                expected = "SIGRTMIN+2" if module == "pytest_timeout" else "SIGALRM"
                for name in cleanups:
                    with open(os.path.join(work, name)) as f:
                        self.assertEqual(f.read().strip(), f"{expected} fired=True main=True", name)
                if module == "pytest_timeout":
                    self.assertIn("SIGALRM is owned by the runner (pytest-timeout's handler", text)


STOP = threading.Event()


def _serve():
    STOP.wait(60)


class LeftThreads(ProcessTestCase):
    """Inner tests of ThreadsATestLeaves (not collected: no test prefix matches)."""

    testMethodPrefix = "case_"

    def case_leaves_a_thread(self):
        threading.Thread(target=_serve, name="left-behind").start()  # LEAVES A THREAD

    def case_joins_its_thread(self):
        thread = threading.Thread(target=_serve, name="joined")
        thread.start()
        STOP.set()
        thread.join()

    def case_stops_it_in_a_cleanup(self):
        thread = threading.Thread(target=_serve, name="stopped in a cleanup")
        thread.start()
        self.addCleanup(STOP.set)

    def case_leaves_a_daemon_thread(self):
        threading.Thread(target=_serve, name="daemon", daemon=True).start()

    def case_leaves_an_idle_thread_pool(self):
        import concurrent.futures
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="idle pool")
        pool.submit(int).result()  # its worker waits for more: concurrent.futures ends it at exit
        self.addClassCleanup(pool.shutdown)


class ThreadsATestLeaves(unittest.TestCase):
    """A non-daemon thread a test leaves running fails the test, naming it and where it
    was started; the runner's exit is bounded by the last resort."""

    def setUp(self):
        STOP.clear()
        self.addCleanup(self._stop_threads)

    def _stop_threads(self):
        STOP.set()
        for thread in threading.enumerate():
            if thread.name in ("left-behind", "joined", "stopped in a cleanup", "daemon"):
                thread.join(5)

    def test_a_left_thread_fails_the_test_naming_it(self):
        start = time.monotonic()
        result = run_case(LeftThreads, "case_leaves_a_thread")
        text = only_problem(self, result)
        line = line_of("# LEAVES A THREAD")
        self.assertIn("left 1 non-daemon thread(s) running", text)
        self.assertIn(f"'left-behind' (started at {THIS}:{line} in case_leaves_a_thread; runs _serve at {THIS}:",
                      text)
        self.assertLess(time.monotonic() - start, scaled(THREAD_END_GRACE) + FAST)
        self.assertIs(threading.Thread.start, ORIGINAL_START, "the start hook is taken off after the test")

    def test_a_thread_joined_or_stopped_in_a_cleanup_or_daemon_passes(self):
        for name in ("case_joins_its_thread", "case_stops_it_in_a_cleanup", "case_leaves_a_daemon_thread",
                     "case_leaves_an_idle_thread_pool"):
            with self.subTest(name):
                STOP.clear()
                result = run_case(LeftThreads, name)
                self.assertEqual(problems(result), [])
                STOP.set()

    def test_threads_of_an_earlier_test_are_not_blamed_again(self):
        run_case(LeftThreads, "case_leaves_a_thread")
        result = run_case(LeftThreads, "case_leaves_a_daemon_thread")
        self.assertEqual(problems(result), [])

    def runners(self):
        py = sys.executable
        return [
            ("python -m unittest", None, [py, "-m", "unittest", "test_thread_sample"]),
            ("pytest", "pytest", [py, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_thread_sample.py"]),
            ("nose2", "nose2", [py, "-m", "nose2", "-s", ".", "-t", ".", "test_thread_sample"]),
        ]

    def test_each_runner_reports_the_thread_and_exits(self):
        sample = os.path.join(HERE, "samples", "thread_sample.py")
        line = line_of("# STARTS THE THREAD", sample)
        for label, module, command in self.runners():
            with self.subTest(label):
                if module is not None and not _importable(module):
                    self.skipTest(f"{module} is not importable")
                work = tempfile.mkdtemp(prefix="thread-runner-")
                self.addCleanup(shutil.rmtree, work, True)
                copy = os.path.join(work, "test_thread_sample.py")
                shutil.copy(sample, copy)
                env = dict(os.environ, ZMQPROCESSTEST_LAST_RESORT="1",
                           PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
                for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "CI", "BUILD_NUMBER"):
                    env.pop(name, None)
                start = time.monotonic()
                with subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL) as proc:
                    try:
                        out, _ = proc.communicate(timeout=60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        out, _ = proc.communicate()
                        self.fail(f"{label} still ran after 60 s (a hang at exit):\n{out.decode(errors='replace')}")
                text = out.decode(errors="replace")
                self.assertEqual(proc.returncode, 1, text)
                self.assertIn("left 1 non-daemon thread(s) running", text)
                self.assertIn(f"'left-behind' (started at {copy}:{line} in test_leaves_a_thread", text)
                self.assertRegex(text, r"1 failed, 1 passed|FAILED \(failures=1\)")  # the runner's summary
                self.assertIn("the interpreter is exiting, and Python waits for every non-daemon thread; these "
                              "still ran 1 s later", text)
                self.assertIn("in serve_forever", text)  # the stack dump shows where the thread was
                self.assertLess(time.monotonic() - start, 55, text)
