"""The guarantees at the edges CI hits, each proved the way a user would break it.

docs/guarantees.rst lists each guarantee with the test here (or in test_guardian.py and
test_watchdog.py) that proves it.
"""
import inspect
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import unittest

import zmq

from zmqprocesstest import ProcessTestCase

from .samples import cases as samples
from zmqprocesstest.processes._os import alive, command_line

from .support import EXAMPLES, ROOT, interruptible, only_problem, problems, run_case
from pingpong.faulty import StubbornProc
from pingpong.pongproc import PongProc

_WATCHED = {"SIGHUP": signal.SIGHUP, "SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


def report_signals():
    """In a process under test: print which of INT, TERM, HUP are ignored or blocked."""
    with open("/proc/self/status") as f:
        status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    ignored, blocked = int(status["SigIgn"], 16), int(status["SigBlk"], 16)
    for name, sig in _WATCHED.items():
        print(f"{name} ignored={bool(ignored >> (sig - 1) & 1)}", flush=True)
    print(f"blocked={blocked:x}", flush=True)


# The same report as a command that imports nothing else: importing this module (zmq,
# the library, the example application) took more than wait_exit's 1 s under CPU load.
_NUMBERS = {name: int(sig) for name, sig in _WATCHED.items()}
REPORT_COMMAND = [sys.executable, "-c", f"_WATCHED = {_NUMBERS!r}\n" + inspect.getsource(report_signals)
                  + "report_signals()\n"]


class TestInheritedSignalDispositions(unittest.TestCase):
    """Processes under test start with default INT/TERM/HUP and no blocked signals."""

    def setUp(self):
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _WATCHED.values()}
        self.addCleanup(lambda: [signal.signal(sig, handler) for sig, handler in previous.items()])
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGTERM})
        self.addCleanup(signal.pthread_sigmask, signal.SIG_SETMASK, old_mask)

    def test_forked_and_command_processes_get_defaults(self):
        outputs = {}

        class Reports(ProcessTestCase):
            def test_it(self):
                for name, proc in (("forked", self.start_process(report_signals)),
                                   ("command", self.start_command(REPORT_COMMAND))):
                    yield ("wait_exit", proc)
                    outputs[name] = self.output_of(proc)

        self.assertEqual(problems(run_case(Reports)), [])
        expected = "SIGHUP ignored=False\nSIGINT ignored=False\nSIGTERM ignored=False\nblocked=0\n"
        self.assertEqual(outputs, {"forked": expected, "command": expected})

    def test_the_main_job_passes_from_a_runner_with_sigint_ignored(self):
        """README's first command run as a background job of a script (SIGINT ignored)."""
        proc = subprocess.run([sys.executable, "-m", "unittest", "test_pongproc", "test_signals"], cwd=EXAMPLES,
                              capture_output=True, text=True, timeout=120)  # inherits this test's SIG_IGN
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertRegex(proc.stderr, r"\nOK\n")
        self.assertNotIn("did not stop politely", proc.stderr)


class TestOneFailureForOneTest(unittest.TestCase):
    def test_escalation_after_a_failure_joins_that_failure(self):
        class FailsThenStubborn(ProcessTestCase):
            stop_timeouts = samples.SHORT_STOPS

            def test_it(self):
                self.start_process(StubbornProc, self.endpoint)
                self.fail("the test itself failed")

        text = only_problem(self, run_case(FailsThenStubborn))
        self.assertIn("AssertionError: the test itself failed", text)
        self.assertRegex(text, r"Stopping the processes after this failure:\n  process 'StubbornProc' \(pid \d+, "
                               r"killed by SIGTERM\) did not stop politely \(SIGINT\); it took SIGTERM")

    def test_escalation_after_a_pass_is_still_a_failure(self):
        self.assertIn("did not stop politely (SIGINT); it took SIGTERM", only_problem(self, run_case(samples.Stubborn)))

    def test_cleanup_problems_after_a_failure_join_it(self):
        """A leftover file descriptor (leak check) and a cleanup of the test's own that
        fails, after the test failed: one failure, whose report has both."""
        class FailsAndLeaks(ProcessTestCase):
            check_leaks = True

            def test_it(self):
                r, w = os.pipe()
                self.addCleanup(os.close, w)  # r is left open: the leak check finds it
                self.addCleanup(lambda: 1 / 0)
                self.fail("the test itself failed")

        result = run_case(FailsAndLeaks)
        self.assertEqual((result.testsRun, len(result.failures), len(result.errors)), (1, 1, 0), problems(result))
        text = result.failures[0][1]
        self.assertIn("AssertionError: the test itself failed", text)
        self.assertIn("The test's cleanup failed too, after that:", text)
        self.assertIn("ZeroDivisionError", text)
        self.assertRegex(text, r"LeakError: .* left resources behind: file descriptors left open")

    def test_a_cleanup_problem_after_a_pass_is_the_tests_one_outcome(self):
        class PassesAndLeaks(ProcessTestCase):
            check_leaks = True

            def test_it(self):
                r, w = os.pipe()
                self.addCleanup(os.close, w)

        text = only_problem(self, run_case(PassesAndLeaks))
        self.assertIn("left resources behind: file descriptors left open", text)


class TestReports(unittest.TestCase):
    def test_last_output_is_shown_even_after_a_wait_read_it(self):
        class ReadThenFail(samples.PongCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-c", "print('first'); print('ready'); "
                                           "import sys; sys.stdin.read()"])
                yield ("wait_output", proc, "ready")
                self.fail("after the wait")

        text = only_problem(self, run_case(ReadThenFail))
        self.assertRegex(text, r"last output of 'python[\d.]*':\n    \| first\n    \| ready")

    def test_output_of_after_wait_exit_holds_all_of_a_crash(self):
        code = ("import sys\n"
                "for i in range(300): print('line', i)\n"
                "raise SystemExit('the very end of the crash')\n")
        seen = []

        class Crashes(ProcessTestCase):
            def test_it(self):
                for _ in range(20):
                    proc = self.start_command([sys.executable, "-c", code])
                    yield ("wait_exit", proc, None, 1)
                    seen.append(self.output_of(proc).rstrip().endswith("the very end of the crash"))

        self.assertEqual(problems(run_case(Crashes)), [])
        self.assertEqual(seen, [True] * 20)

    def test_bad_arguments_to_start_process_and_start_command_end_at_the_users_line(self):
        class BadStarts(ProcessTestCase):
            def test_process(self):
                self.start_process(42)

            def test_command(self):
                self.start_command("python -m pingpong.pongproc")

        result = run_case(BadStarts)
        self.assertEqual(len(result.errors), 2)
        for test, text in result.errors:
            with self.subTest(test=test.id()):
                traceback = text.split("Traceback (most recent call last):")[1].split("Error:")[0]
                self.assertNotIn("zmqprocesstest", traceback)
                self.assertRegex(text, r"self\.start_(process|command)\(")
                self.assertRegex(text, r"TypeError: expected (a multiprocessing.Process subclass or a callable, got 42"
                                       r"|an argument list, got the string)")

    def test_the_traceback_object_itself_ends_at_the_users_line(self):
        class BadStart(ProcessTestCase):
            def test_it(self):
                self.start_process(42)

        case = BadStart("test_it")
        try:
            case._callTestMethod(case.test_it)
        except TypeError as exc:
            frames = traceback.extract_tb(exc.__traceback__)
        case.doCleanups()
        last = frames[-1]
        self.assertEqual((os.path.basename(last.filename), last.line), ("test_guarantees.py", "self.start_process(42)"))


class TestHardTimeout(unittest.TestCase):
    """run_timeout bounds the whole test, even code blocked in C, and cleanup still runs."""

    def run_blocking(self, case_class):
        start = time.monotonic()
        text = only_problem(self, run_case(case_class))
        self.assertLess(time.monotonic() - start, 5.0)
        self.assertIn("TestTimeout", text)
        self.assertIn("ran longer than run_timeout (0.3 s)", text)
        self.assertIn("Where every thread was:", text)
        return text

    def test_a_blocking_custom_event(self):
        seen = {}

        class BlocksInEvent(ProcessTestCase):
            run_timeout = 0.3

            def raw_recv(self, endpoint):
                raw = self.context.socket(zmq.PULL)
                self.addCleanup(raw.close, 0)
                raw.bind(endpoint)
                return raw.recv()  # a raw zmq recv: no timeout at all

            def test_it(self):
                proc = self.start_process(PongProc, self.endpoint)
                seen["proc"] = self.managed(proc)
                yield ("raw_recv", self.new_endpoint())

        text = self.run_blocking(BlocksInEvent)
        self.assertIn("return raw.recv()  # a raw zmq recv: no timeout at all", text)
        self.assertEqual(seen["proc"].stopped_by, "SIGINT")  # cleanup ran as usual
        self.assertNotIn("zmqprocesstest/events.py", text.split("Where every thread was:")[0])

    def test_the_librarys_own_threads_take_one_line(self):
        class BlocksWithAProcess(ProcessTestCase):
            run_timeout = 0.3

            def test_it(self):
                self.start_process(PongProc, self.endpoint)  # its output is drained by a kept thread
                select.select([], [], [], 30)  # blocks in C

        text = self.run_blocking(BlocksWithAProcess)
        stacks = text.split("Where every thread was:")[1]
        self.assertRegex(stacks, r"\(and zmqprocesstest's own threads: [^)]*zmqprocesstest-output")
        self.assertNotIn("_output.py", stacks)
        self.assertRegex(stacks, r'test_guarantees.py", line \d+ in test_it')

    def test_a_blocking_plain_test(self):
        class BlocksPlainly(ProcessTestCase):
            run_timeout = 0.3

            def test_it(self):
                select.select([], [], [], 30)  # blocks in C

        self.assertIn("select.select([], [], [], 30)  # blocks in C", self.run_blocking(BlocksPlainly))

    def test_a_blocking_setup(self):
        class BlocksInSetUp(ProcessTestCase):
            run_timeout = 0.3

            def setUp(self):
                threading.Event().wait()

            def test_it(self):
                pass

        result = run_case(BlocksInSetUp)
        self.assertEqual(len(result.failures), 1, problems(result))
        self.assertIn("(setUp) ran longer than run_timeout (0.3 s)", result.failures[0][1])

    def test_the_timeout_is_not_thrown_into_the_generator(self):
        class Catches(ProcessTestCase):
            run_timeout = 0.3

            def block(self):
                select.select([], [], [], 30)

            def test_it(self):
                try:
                    yield ("block",)
                except AssertionError:
                    self.caught = True

        self.assertIn("select.select([], [], [], 30)", self.run_blocking(Catches))


class TestRunnerKilled(unittest.TestCase):
    """The runner dying mid-test leaves nothing running 2 s later, and no private directory."""

    def run_and_kill(self, how):
        runner = subprocess.Popen([sys.executable, "-m", "unittest", "tests.samples.killed_runner_sample"], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                  preexec_fn=interruptible)
        self.addCleanup(runner.stderr.close)
        self.addCleanup(runner.stdout.close)
        try:
            ready, _, _ = select.select([runner.stdout], [], [], 60)
            self.assertTrue(ready, "the child runner printed nothing in 60 s")
            line = runner.stdout.readline()
            if not line:
                self.fail("the child runner ended early: " + runner.stderr.read().decode(errors="replace")[-3000:])
            started = json.loads(line)
            pids = [started["forked"], started["command"], started["daemon"], *started["group"]]
            self.assertGreaterEqual(len(started["group"]), 2, started)  # the forked process and its own child
            self.assertTrue(os.path.isdir(started["tmpdir"]))
            if how == "os._exit":
                os.kill(runner.pid, signal.SIGUSR1)  # the sample's runner has no handler: it dies as by _exit
            else:
                os.kill(runner.pid, how)
            # Read what it writes while it dies (a report, tracebacks): a full stderr pipe
            # would block it and look like a runner that does not die.
            try:
                runner.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                runner.kill()
                _, err = runner.communicate(timeout=30)
                self.fail(f"the child runner did not die within 30 s of {how}; its stderr ends:\n"
                          + err.decode(errors="replace")[-3000:])
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait(30)
        deadline = time.monotonic() + 2.0
        living = pids
        # The guardian removes the directory after the last kill: wait for both.
        while (living or os.path.exists(started["tmpdir"])) and time.monotonic() < deadline:
            select.select([], [], [], 0.02)  # nothing to poll for processes that are not ours
            living = [pid for pid in pids if alive(pid)]
        self.assertEqual(living, [], f"still running 2 s after the runner died ({how}): "
                                     + "; ".join(f"{pid}: {command_line(pid)}" for pid in living))
        self.assertFalse(os.path.exists(started["tmpdir"]), f"the private directory is still there 2 s after "
                                                            f"the runner died ({how})")

    def test_sigint(self):
        self.run_and_kill(signal.SIGINT)

    def test_sigterm(self):
        self.run_and_kill(signal.SIGTERM)

    def test_sighup(self):
        self.run_and_kill(signal.SIGHUP)

    def test_sigkill(self):
        self.run_and_kill(signal.SIGKILL)

    def test_os_exit(self):
        self.run_and_kill("os._exit")


class TestDaemonizingProcess(unittest.TestCase):
    def run_daemonizing(self, script):
        """Run a test whose command daemonizes; return its one failure's text and the daemon's pid."""
        seen = {}

        class Daemonizes(ProcessTestCase):
            def test_it(self):
                command = self.start_command([sys.executable, "-c", script])
                seen["daemon"] = int((yield ("wait_output", command, r"daemon (\d+)"))[1])

        text = only_problem(self, run_case(Daemonizes))
        self.assertFalse(alive(seen["daemon"]))
        return text, seen["daemon"]

    def test_a_daemon_left_by_a_passing_test_is_killed_and_fails_it(self):
        from .samples.killed_runner_sample import DAEMONIZING
        text, daemon = self.run_daemonizing(DAEMONIZING)
        # (its parent too, if that had not exited yet when the test ended)
        self.assertRegex(text, r"left descendants running outside its process group \(daemonized\?\); killed them: "
                               rf"(pid \d+: [^;]*; )?pid {daemon}: \S*python\S* -c")

    def test_a_daemon_whose_parent_has_not_exited_yet_is_found_too(self):
        from .samples.killed_runner_sample import DAEMONIZING
        slow_parent = DAEMONIZING.replace("    os._exit(0)",
                                          "    signal.pause()  # lingers until killed\n    os._exit(0)")
        self.assertNotEqual(slow_parent, DAEMONIZING)
        text, daemon = self.run_daemonizing(slow_parent)
        # The middle process is killed first; the daemon re-parents to the runner then.
        self.assertRegex(text, rf"killed them: pid \d+: \S*python\S* -c[^;]*; pid {daemon}: ")
