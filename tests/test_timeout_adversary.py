"""The hard timeout holds against a test that fights it: cancelled alarm, replaced
handler, swallowed TestTimeout; the last resort; Ctrl-C during setUpClass."""
import os
import select
import signal
import subprocess
import sys
import time
import unittest
import unittest.mock

from zmqprocesstest import ProcessTestCase, TestTimeout
from .support import interruptible

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIMIT = 0.5
LATE = 2.0  # the guarantee: stopped at most 2 s after run_timeout


def run_inner(case):
    result = unittest.TestResult()
    start = time.monotonic()
    case.run(result)
    return result, time.monotonic() - start


class HardTimeoutAgainstTheTest(unittest.TestCase):
    class Adversaries(ProcessTestCase):  # (nested: no runner collects it)
        run_timeout = LIMIT

        def test_cancel_alarm(self):
            signal.alarm(0)
            time.sleep(30)  # ADVERSARY

        def test_cancel_itimer(self):
            signal.setitimer(signal.ITIMER_REAL, 0)
            time.sleep(30)  # ADVERSARY

        def test_own_sigalrm_handler(self):
            signal.signal(signal.SIGALRM, lambda signum, frame: None)
            time.sleep(30)  # ADVERSARY

        def test_retry_loop(self):
            while True:
                try:
                    time.sleep(30)  # ADVERSARY
                except Exception:
                    continue

    def setUp(self):
        if threading_main() is False:
            self.skipTest("not in the main thread")
        before = signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)
        self.addCleanup(lambda: before[1] == (0.0, 0.0) and signal.setitimer(signal.ITIMER_REAL, 0))
        self.addCleanup(signal.signal, signal.SIGALRM, before[0] if before[0] is not None else signal.SIG_DFL)

    def test_each_adversary_fails_as_timed_out(self):
        for name in ("test_cancel_alarm", "test_cancel_itimer", "test_own_sigalrm_handler", "test_retry_loop"):
            with self.subTest(name):
                result, elapsed = run_inner(self.Adversaries(name))
                self.assertLess(elapsed, LIMIT + LATE)
                self.assertEqual(result.errors, [])
                self.assertEqual(len(result.failures), 1, result.failures)
                text = result.failures[0][1]
                self.assertIn(f"Adversaries.{name} ran longer than run_timeout ({LIMIT:g} s)", text)
                self.assertIn("TestTimeout", text)
                self.assertIn("# ADVERSARY", text)

    def test_timeout_is_still_an_exception_and_a_failure(self):
        self.assertTrue(issubclass(TestTimeout, AssertionError))


def threading_main():
    import threading
    return threading.current_thread() is threading.main_thread()


class ChildRunners(unittest.TestCase):
    def start(self, adversary, **env):
        env = dict(os.environ, ADVERSARY=adversary, ADVERSARY_ROOT=ROOT, **env)
        for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"):
            env.pop(name, None)
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "samples", "timeout_adversary_sample.py")], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=interruptible)
        self.addCleanup(self.end, proc)
        return proc

    def end(self, proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()

    def test_last_resort_ends_the_run_with_every_stack(self):
        proc = self.start("last_resort", ZMQPROCESSTEST_LAST_RESORT="1.5")
        start = time.monotonic()
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("a test that swallows every exception hung the run")
        elapsed = time.monotonic() - start
        text = err.decode(errors="replace")
        self.assertEqual(proc.returncode, 1, text)
        self.assertLess(elapsed, 10, text)
        self.assertIn("SwallowsEverything.test_swallows ran longer than run_timeout (0.5 s) and still ran 1.5 s later",
                      text)
        self.assertIn("Where every thread was", text)
        self.assertRegex(text, r"Current thread 0x[0-9a-f]+")
        self.assertIn("in test_swallows", text)

    def test_sigint_in_setupclass_stops_the_class_processes(self):
        proc = self.start("setupclass_sigint")
        line = self.read_line(proc, 20)
        self.assertTrue(line.startswith("started "), line)
        pid = int(line.split()[1])
        os.kill(proc.pid, signal.SIGINT)
        self.assertEqual(self.read_line(proc, 10), "interrupted")
        self.assertTrue(self.gone_within(pid, 2.0), f"the class's process {pid} still runs 2 s after Ctrl-C")
        proc.stdin.close()
        self.assertIsNotNone(proc.wait(10))

    def read_line(self, proc, timeout):
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            os.kill(proc.pid, signal.SIGUSR1)  # its threads' stacks, to stderr
            err, deadline = b"", time.monotonic() + 2
            while select.select([proc.stderr], [], [], max(0, deadline - time.monotonic()))[0]:
                chunk = os.read(proc.stderr.fileno(), 65536)
                if not chunk:
                    break
                err += chunk
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            self.fail(f"the child runner said nothing in {timeout} s; its stderr:\n{err.decode(errors='replace')}")
        return proc.stdout.readline().decode().strip()

    def gone_within(self, pid, timeout):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        try:
            return bool(select.select([fd], [], [], timeout)[0])
        finally:
            os.close(fd)


class LastResortSetting(unittest.TestCase):
    def test_a_bad_value_is_an_error_naming_the_variable(self):
        from zmqprocesstest.timeout._watchdog_thread import last_resort_grace
        for raw in ("soon", "0", "-1", "nan", "inf"):
            with self.subTest(raw), unittest.mock.patch.dict(os.environ, {"ZMQPROCESSTEST_LAST_RESORT": raw}):
                with self.assertRaisesRegex(ValueError, rf"ZMQPROCESSTEST_LAST_RESORT must be a positive number "
                                                        rf"of seconds, got '{raw}'"):
                    last_resort_grace()
        with unittest.mock.patch.dict(os.environ, {"ZMQPROCESSTEST_LAST_RESORT": "0.2"}):
            self.assertEqual(last_resort_grace(), 1.0)  # two kicks first
