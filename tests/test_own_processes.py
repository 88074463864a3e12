"""The test process's own processes: its helpers are not daemons, and what it starts
itself does not outlive a killed runner; nor do processes whose guardian was lost.

Each scenario runs in a child runner (tests/samples/own_processes_sample.py), under unittest,
and under nose2 and pytest where the runner matters. docs/guarantees.rst names the test
here that proves each guarantee.
"""
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

from zmqprocesstest import ProcessTestCase
from zmqprocesstest.processes._os import command_line

from .support import ROOT, gone, only_problem, problems
from .test_adversary import survivors

SAMPLE = "tests.samples.own_processes_sample"
RUNNERS = {
    "unittest": lambda tests: [sys.executable, "-m", "unittest", *(f"{SAMPLE}.{t}" for t in tests)],
    "nose2": lambda tests: [sys.executable, "-m", "nose2", "-s", ".", *(f"{SAMPLE}.{t}" for t in tests)],
    "pytest": lambda tests: [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             *("tests/samples/own_processes_sample.py::" + t.replace(".", "::") for t in tests)],
}
BOUND = 120  # a child runner's whole run
SLEEPER = [sys.executable, "-c", "import signal; signal.pause()"]  # runs until killed


def kill_survivors(pids):
    """SIGKILL what a failed check left running (never leave a process behind); only
    processes of the sample, never one that took a pid since."""
    for pid in pids:
        if any(mark in command_line(pid) for mark in (SAMPLE, "signal.pause")):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def run(runner, *tests, kill_after=0, env=None):
    """Run *tests* of the sample under *runner*; SIGKILL it after *kill_after* reports.

    Returns ``(reported pids by name, exit code, output)``.
    """
    report_r, report_w = os.pipe()
    out = tempfile.TemporaryFile()  # not a pipe: a survivor holding it must not block us
    env = dict(os.environ, **(env or {}), ZPT_REPORT_FD=str(report_w))
    proc = subprocess.Popen(RUNNERS[runner](tests), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            pass_fds=[report_w], env=env, start_new_session=True)
    os.close(report_w)
    buffer = b""
    try:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            if not select.select([report_r], [], [], max(0.0, deadline - time.monotonic()))[0]:
                break
            chunk = os.read(report_r, 4096)
            if not chunk:
                break
            buffer += chunk
            if kill_after and buffer.count(b"\n") >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
        code = proc.wait(BOUND)
    finally:
        os.close(report_r)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    out.seek(0)
    text = out.read().decode(errors="replace")
    out.close()
    reports = dict(line.split() for line in buffer.decode().splitlines())
    return {name: int(pid) for name, pid in reports.items()}, code, text


class TestHelpersAreNotDaemons(unittest.TestCase):
    """The test process's own helpers (resource tracker, forkserver, pool workers, joined
    spawn children) are not daemons of a process under test: nothing kills them, and the
    tests that use them pass, under every runner."""

    def check(self, runner, *tests, env=None):
        _, code, text = run(runner, *tests, env=env)
        self.assertEqual(code, 0, text[-4000:])
        self.assertNotIn("daemonized", text)

    def test_start_methods_under_unittest(self):
        self.check("unittest", "Spawn", "Forkserver")

    def test_start_methods_under_nose2(self):
        self.check("nose2", "Spawn", "Forkserver")

    def test_start_methods_under_pytest(self):
        self.check("pytest", "Spawn", "Forkserver")

    def test_pools_shared_memory_and_spawn_children(self):
        self.check("unittest", "Helpers")

    def test_a_module_level_pool_across_two_tests(self):
        self.check("unittest", "ModulePool", env={"ZMQPROCESSTEST_CHECK_LEAKS": "0"})


class TestOwnProcessesDieWithTheRunner(unittest.TestCase):
    """A Popen, an ``os.fork`` child and a multiprocessing Process that a test starts
    itself are gone 2 s after the runner is SIGKILLed."""

    def check(self, test, expected, kill_after):
        pids, code, text = run("unittest", test, kill_after=kill_after)
        self.addCleanup(kill_survivors, list(pids.values()))
        self.assertEqual(set(pids), expected, text[-4000:])
        self.assertEqual(code, -signal.SIGKILL, text[-4000:])
        left = survivors(pids.values())
        self.assertEqual(left, {}, f"still running 2 s after the runner died: {pids}\n{text[-3000:]}")

    def test_with_a_process_under_test(self):
        self.check("OwnProcesses.test_own_processes", {"popen", "fork", "mp"}, 3)

    def test_without_a_process_under_test(self):
        self.check("OwnProcesses.test_own_processes_only", {"popen", "fork", "mp"}, 3)


class TestTheGuardianIsNeverLost(unittest.TestCase):
    """A guardian killed mid-run, and one whose first start failed: the next process
    start (or the test's end) starts a new one that learns everything again, and nothing
    survives a later SIGKILL of the runner."""

    def test_a_killed_guardian(self):
        pids, code, text = run("unittest", "GuardianKilled", kill_after=7)
        self.addCleanup(kill_survivors, list(pids.values()))
        self.assertEqual(set(pids), {"shared", "earlypopen", "earlyfork", "earlymp", "popen", "fork", "mp"},
                         text[-4000:])
        self.assertEqual(code, -signal.SIGKILL, text[-4000:])
        left = survivors(pids.values())
        self.assertEqual(left, {}, f"still running 2 s after the runner died: {pids}\n{text[-3000:]}")

    def test_a_guardian_whose_first_start_failed(self):
        pids, code, text = run("unittest", "GuardianStartFails", kill_after=5)
        self.addCleanup(kill_survivors, [pid for name, pid in pids.items() if name != "failed"])
        self.assertEqual(set(pids), {"failed", "command", "popen", "fork", "mp"}, text[-4000:])
        self.assertEqual(pids["failed"], 1, "the mock did not make the guardian's start fail")
        self.assertEqual(code, -signal.SIGKILL, text[-4000:])
        del pids["failed"]
        left = survivors(pids.values())
        self.assertEqual(left, {}, f"still running 2 s after the runner died: {pids}\n{text[-3000:]}")

    def test_a_guardian_that_cannot_start_fails_the_test(self):
        pids, code, text = run("unittest", "GuardianNeverStarts")
        self.addCleanup(kill_survivors, list(pids.values()))
        self.assertEqual(code, 1, text[-4000:])
        self.assertIn("the guardian is not running (could not start the guardian ([Errno 24] Too many open files "
                      "(simulated))): 1 process group(s) or directory(ies) registered since the last test were "
                      "unguarded", text)
        self.assertEqual(survivors(pids.values(), within=0.0), {})


class TestOwnLeftoversAreNamedAsTheTests(unittest.TestCase):
    """A process the test started itself and left running is not "a process under test
    ... daemonized": the orphan check leaves it alone; the leak check fails the test
    naming it as the test's own (and kills it), even one in a session of its own."""

    def run_leaker(self, check_leaks):
        class Leaks(ProcessTestCase):
            def test_it(self):
                self.start_command(SLEEPER)  # a process under test: the orphan check runs
                self.own = subprocess.Popen(SLEEPER, start_new_session=True)

        Leaks.check_leaks = check_leaks
        case = Leaks("test_it")
        result = unittest.TestResult()
        case.run(result)
        self.addCleanup(case.own.wait, BOUND)
        self.addCleanup(kill_survivors, [case.own.pid])
        return case, result

    def test_named_by_the_leak_check(self):
        case, result = self.run_leaker(True)
        text = only_problem(self, result)
        self.assertIn("child processes left running, started by the test itself (not by a process under test): "
                      f"pid {case.own.pid}: ", text)
        self.assertNotIn("daemonized", text)
        self.assertTrue(gone(case.own.pid), "the leak check did not kill the test's own process")

    def test_left_alone_by_the_orphan_check(self):
        with mock.patch.dict(os.environ, {"ZMQPROCESSTEST_CHECK_LEAKS": "0"}):
            case, result = self.run_leaker(False)
        self.assertEqual(problems(result), [])
        self.assertIsNone(case.own.poll(), "the orphan check killed the test's own process")
