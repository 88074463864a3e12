"""The guarantees against an adversary: a runner killed at the worst moment, a process
that daemonizes at once, and hostile environments (an inherited SIGCHLD ignore, a long
TMPDIR, a grandchild that leaves its process group).

docs/guarantees.rst names the test here that proves each guarantee.
"""
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from zmqprocesstest.processes._os import alive, command_line

from .samples import cases as samples
from .support import ROOT, only_problem, problems, run_case


def run_sample(test, env=None, kill_after=0):
    """Run *test* of tests/samples/start_window_sample.py in a child runner.

    Returns ``(pids reported by its processes, runner exit code, runner stderr)``. With
    *kill_after* N, the runner is SIGKILLed the moment N reports have arrived (1: a
    process under test ran its first line), and reports are read for 1 s more.
    """
    report_r, report_w = os.pipe()
    err = tempfile.TemporaryFile()  # not a pipe: a survivor holding it must not block us
    full_env = dict(os.environ, **(env or {}), ZPT_REPORT_FD=str(report_w))
    runner = subprocess.Popen([sys.executable, "-m", "unittest", f"tests.samples.start_window_sample.{test}"], cwd=ROOT,
                              stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=[report_w],
                              env=full_env, start_new_session=True)
    os.close(report_w)
    reports = []
    try:
        buffer = b""
        deadline = time.monotonic() + 60
        killed_at = None
        while time.monotonic() < deadline:
            ready = select.select([report_r], [], [], max(0.0, deadline - time.monotonic()))[0]
            chunk = os.read(report_r, 4096) if ready else b""
            if not chunk:
                break  # end of file: the runner and every process holding the pipe are gone
            buffer += chunk
            if kill_after and killed_at is None and buffer.count(b"\n") >= kill_after:
                os.kill(runner.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                deadline = killed_at + 1.0
        reports = [line.split() for line in buffer.decode().splitlines()]
        code = runner.wait(60)
    finally:
        os.close(report_r)
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait(30)
    err.seek(0)
    text = err.read().decode(errors="replace")
    err.close()
    return {name: int(pid) for name, pid in reports}, code, text


def survivors(pids, within=2.0):
    """The pids still running *within* seconds from now (polled: they are not ours)."""
    deadline = time.monotonic() + within
    living = [pid for pid in pids if alive(pid)]
    while living and time.monotonic() < deadline:
        select.select([], [], [], 0.02)  # nothing to poll for processes that are not our children
        living = [pid for pid in living if alive(pid)]
    return {pid: command_line(pid) for pid in living}


class TestStartWindow(unittest.TestCase):
    """A runner SIGKILLed the moment its process under test runs its first line leaves
    nothing 2 s later: the guardian covers the process before it runs a line."""

    def kill_at_first_line(self, test):
        for attempt in range(3):
            with self.subTest(attempt=attempt):
                pids, code, text = run_sample(test, kill_after=1)
                self.assertIn("process", pids, f"no process reported; the runner said:\n{text[-3000:]}")
                self.assertEqual(code, -signal.SIGKILL, text[-3000:])
                self.assertEqual(survivors(pids.values()), {}, f"still running 2 s after the runner died: {pids}")

    def test_the_runners_first_process(self):
        self.kill_at_first_line("StartWindow.test_first")

    def test_a_process_started_with_the_guardian_running(self):
        self.kill_at_first_line("StartWindow.test_second")


class TestFirstProcessDaemonizes(unittest.TestCase):
    """The runner is a subreaper before its first process starts: a daemon made in the
    first microseconds of the runner's first process fails the test, and is killed."""

    def assert_daemon_found(self, test):
        pids, code, text = run_sample(test)
        found = re.search(r"left descendants running outside its process group \(daemonized\?\); "
                          r"killed them: (?:pid \d+: [^;]*; )?pid (\d+): ", text)
        self.assertIsNotNone(found, f"the daemon was not reported; the runner said:\n{text[-3000:]}")
        self.assertEqual(code, 1, text[-3000:])
        daemon = int(found.group(1))
        if "daemon" in pids:
            self.assertEqual(daemon, pids["daemon"])
        self.assertEqual(survivors([daemon], within=0.0), {})

    def test_forked(self):
        self.assert_daemon_found("FirstDaemon.test_forked")

    def test_command(self):
        self.assert_daemon_found("FirstDaemon.test_command")


class TestEscapingDescendants(unittest.TestCase):
    def test_grandchildren_in_another_group_or_session_die_with_the_runner(self):
        """A grandchild that left the process group with ``setpgid`` (still in the
        process's session), and one that left the session and exec'd (it carries the
        token), are killed by the guardian when the runner is SIGKILLed."""
        pids, code, text = run_sample("Escapes.test_grandchildren", kill_after=3)
        self.assertEqual(set(pids), {"process", "setpgid", "setsid"}, text[-3000:])
        self.assertEqual(code, -signal.SIGKILL, text[-3000:])
        self.assertEqual(survivors(pids.values()), {}, f"still running 2 s after the runner died: {pids}")


class PingOnce(samples.PongCase):
    def test_it(self):
        yield ("send", self.req, [], ["ping", 1])
        self.assertEqual((yield ("recv", self.req)), [["pong", 1]])


class TestHostileEnvironments(unittest.TestCase):
    def test_sigchld_inherited_as_ignored(self):
        """A clean stop passes and a real failure is reported truly, with SIGCHLD ignored."""
        previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        self.addCleanup(signal.signal, signal.SIGCHLD, previous)
        self.assertEqual(problems(run_case(PingOnce)), [])
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        text = only_problem(self, run_case(samples.Stubborn))
        self.assertRegex(text, r"did not stop politely \(SIGINT\); it took SIGTERM")

    def test_a_runner_started_with_sigchld_ignored(self):
        """The main job, run by a runner that inherited SIGCHLD ignored, passes."""
        proc = subprocess.run([sys.executable, "-c", "import signal, sys, unittest; "
                               "signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
                               "sys.argv[1:] = ['test_pongproc', 'test_signals']; unittest.main(module=None)"],
                              cwd=os.path.join(ROOT, "docs", "examples"), capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertNotIn("SIGKILL", proc.stderr)

    def test_a_long_tmpdir(self):
        """ipc endpoints work under a 150-character TMPDIR: a short private dir is used."""
        long_dir = tempfile.mkdtemp(prefix="zpt-long-")
        self.addCleanup(os.rmdir, long_dir)
        long_dir = os.path.join(long_dir, "d" * (150 - len(long_dir) - 1))
        os.mkdir(long_dir)
        self.addCleanup(os.rmdir, long_dir)
        self.assertEqual(len(long_dir), 150)
        seen = {}

        class UnderLongTmpdir(PingOnce):
            def setUp(self):
                super().setUp()
                seen["endpoint"] = self.endpoint
                seen["mode"] = os.stat(os.path.dirname(self.endpoint[len("ipc://"):])).st_mode & 0o777

        saved = os.environ.get("TMPDIR"), tempfile.tempdir
        os.environ["TMPDIR"], tempfile.tempdir = long_dir, None
        try:
            result = run_case(UnderLongTmpdir, "test_it")
        finally:
            if saved[0] is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = saved[0]
            tempfile.tempdir = saved[1]
        self.assertEqual(problems(result), [])
        self.assertLessEqual(len(seen["endpoint"]) - len("ipc://"), 107)
        self.assertFalse(seen["endpoint"].startswith("ipc://" + long_dir))
        self.assertEqual(seen["mode"], 0o700)
        self.assertFalse(os.path.exists(os.path.dirname(seen["endpoint"][len("ipc://"):])))  # removed after


if __name__ == "__main__":
    unittest.main()
