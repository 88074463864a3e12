"""Parallel runners: killing the controller or a worker leaves nothing under test running.

A child ``pytest -n 2`` and a child ``unittest-parallel -j 2`` run
tests/samples/controller_sample.py, whose tests each report their worker, the worker's guardian
and a process under test through a FIFO, then block. The controller (or one worker) is
killed; 2 s after it died no reported process may run: a worker whose controller died
would otherwise finish its test first (unittest-parallel) or linger for seconds
(pytest-xdist), with its processes under test.
"""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from zmqprocesstest.processes._os import alive, command_line

from .support import ROOT

GUARANTEE = 2.0  # seconds after the death by which everything must be gone
BOUND = 60.0  # every other wait ends by then
BIN = os.path.dirname(sys.executable)
LINUX = sys.platform.startswith("linux") and hasattr(os, "pidfd_open")


def _have(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _default_signals():
    """``preexec_fn``: the child controller dies of the signals it is sent, as from a terminal."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _wait_gone(pids, deadline):
    """Wait (pidfds, no sleeping) until every pid in *pids* exited or *deadline* passed."""
    fds = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                pass
        while fds and time.monotonic() < deadline:
            ready = select.select(fds, [], [], deadline - time.monotonic())[0]
            for fd in ready:
                fds.remove(fd)
                os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


@unittest.skipUnless(LINUX, "the guardian needs Linux (/proc, pidfd)")
class TestParallelRunnerKilled(unittest.TestCase):
    maxDiff = None

    def start(self, runner):
        """Start *runner* on the sample; return it once two workers each run a test."""
        folder = tempfile.mkdtemp(prefix="zmqprocesstest-controllers-")
        fifo = os.path.join(folder, "sentinel")
        os.mkfifo(fifo)
        self.reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.keeper = os.open(fifo, os.O_WRONLY)  # no end-of-file between the tests' writes
        self.output = tempfile.TemporaryFile()
        self.reports = []
        if runner == "xdist":
            argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
                    "tests/samples/controller_sample.py"]
        else:
            argv = [os.path.join(BIN, "unittest-parallel"), "-s", "tests/samples", "-t", ".",
                    "-p", "controller_sample.py", "--level", "test", "-j", "2"]
        env = dict(os.environ, ZMQPROCESSTEST_SENTINEL=fifo)
        self.controller = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.output, stderr=subprocess.STDOUT,
                                           start_new_session=True, preexec_fn=_default_signals)
        self.addCleanup(self.clean_up, folder, fifo)
        deadline = time.monotonic() + BOUND
        buffer = b""
        while len({r["runner"] for r in self.reports}) < 2:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.reader], [], [], remaining)[0]:
                self.fail(f"two workers did not each start a test within {BOUND} s:\n{self.tail()}")
            buffer += os.read(self.reader, 65536)
            *lines, buffer = buffer.split(b"\n")
            self.reports += [json.loads(line) for line in lines]
        for report in self.reports:
            self.assertEqual(report["controller"], self.controller.pid, report)  # the workers are its children
            for name in ("runner", "guardian", "command"):
                self.assertTrue(alive(report[name]), f"{name} {report[name]} is not running before the kill")
        return self.controller

    def tail(self):
        self.output.seek(0)
        return self.output.read().decode(errors="replace")[-3000:]

    def clean_up(self, folder, fifo):
        """Never leave anything behind: the runner's group, and every process reported."""
        try:
            os.killpg(self.controller.pid, signal.SIGKILL)  # the controller and its workers
        except ProcessLookupError:
            pass
        self.controller.wait(BOUND)
        try:
            extra = os.read(self.reader, 65536)  # reports of workers started meanwhile
        except BlockingIOError:
            extra = b""
        reports = self.reports + [json.loads(line) for line in extra.split(b"\n") if line]
        pids = [r[name] for r in reports for name in ("runner", "command", "guardian")]
        for pid in pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _wait_gone(pids, time.monotonic() + BOUND)
        os.close(self.reader)
        os.close(self.keeper)
        os.unlink(fifo)
        os.rmdir(folder)
        self.output.close()

    def check_gone(self, reports, died, what):
        deadline = died + GUARANTEE
        pids = {f"{name} {r[name]}": r[name] for r in reports for name in ("runner", "guardian", "command")}
        _wait_gone(pids.values(), deadline)
        living = {label: command_line(pid) for label, pid in pids.items() if alive(pid)}
        self.assertEqual(living, {}, f"still running {time.monotonic() - died:.2f} s after {what}")
        for report in reports:
            self.assertFalse(os.path.exists(report["tmpdir"]), f"{report['tmpdir']} is still there after {what}")

    def kill_controller(self, runner, sig):
        controller = self.start(runner)
        os.kill(controller.pid, sig)  # the controller alone, as a CI job timeout does
        controller.wait(BOUND)
        self.check_gone(self.reports, time.monotonic(), f"the controller died of {sig!r}")

    def kill_worker(self, runner):
        self.start(runner)
        report = self.reports[0]
        os.kill(report["runner"], signal.SIGKILL)
        _wait_gone([report["runner"]], time.monotonic() + BOUND)
        self.check_gone([report], time.monotonic(), "its worker was killed")


@unittest.skipUnless(_have("xdist"), "pytest-xdist is not installed")
class TestPytestXdist(TestParallelRunnerKilled):
    def test_controller_sigterm(self):
        self.kill_controller("xdist", signal.SIGTERM)

    def test_controller_sigkill(self):
        self.kill_controller("xdist", signal.SIGKILL)

    def test_worker_sigkill(self):
        self.kill_worker("xdist")


@unittest.skipUnless(os.path.exists(os.path.join(BIN, "unittest-parallel")), "unittest-parallel is not installed")
class TestUnittestParallel(TestParallelRunnerKilled):
    def test_controller_sigterm(self):
        self.kill_controller("unittest-parallel", signal.SIGTERM)

    def test_controller_sigkill(self):
        self.kill_controller("unittest-parallel", signal.SIGKILL)

    def test_worker_sigkill(self):
        self.kill_worker("unittest-parallel")

