"""Stopping processes, signals, crashes and readiness."""
import signal
import sys
import os

import zmq

from zmqprocesstest import ProcessDied, ProcessTestCase, process
from pingpong.faulty import CrashingProc
from pingpong.pongproc import PongProc

EXAMPLES = os.path.dirname(os.path.abspath(__file__))


@process
class TestKeyboardInterruptCleanUp(ProcessTestCase):
    """SIGINT raises KeyboardInterrupt in the process; its clean-up must run."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint)
        self.proc = self.start_process(PongProc, self.endpoint)

    def test_sigint_exits_cleanly(self):
        yield ("send", self.req, [], ["ping", 1])
        yield ("recv", self.req)
        yield ("signal", self.proc, signal.SIGINT)
        code = yield ("wait_exit", self.proc)
        self.assertEqual(code, 0)


@process
class TestCrash(ProcessTestCase):
    """A crash ends the wait at once, with the exit code and the output tail."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint)
        self.proc = self.start_process(CrashingProc, self.endpoint)

    def test_crash_is_reported_at_once(self):
        yield ("send", self.req, [], ["crash", 3])
        try:
            yield ("recv", self.req, -1, 10.0)
        except ProcessDied as exc:
            self.assertIn("exit code 3", str(exc))
            self.assertIn("crashing with exit code 3", str(exc))
        else:
            self.fail("expected ProcessDied")


@process
class TestCommand(ProcessTestCase):
    """Any command line can be the process under test."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint)
        self.proc = self.start_command([sys.executable, "-m", "pingpong.pongproc", self.endpoint], cwd=EXAMPLES)

    def test_ready_line_then_ping(self):
        yield ("wait_output", self.proc, r"pong: serving on \S+", 5.0)
        yield ("send", self.req, [], ["ping", 5])
        reply = yield ("recv", self.req, -1, 5.0)
        self.assertEqual(reply, [["pong", 5]])
