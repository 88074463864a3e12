"""Test cases that tests/test_timeline.py runs inside (not collected: the module name
does not start with ``test``, and the tests import the module, not its classes)."""
import signal

import zmq

from zmqprocesstest import ProcessTestCase, timeline

from ..support import EXAMPLES  # noqa: F401  (puts the example app on sys.path)
from pingpong.faulty import CrashingProc
from pingpong.pongproc import PongProc


class Everything(ProcessTestCase):
    """A test that makes an entry of each kind, then fails to show its report."""
    timeout = 0.2

    def test_it(self):
        self.start_process(PongProc, self.endpoint)
        yield ("wait_endpoint", self.endpoint)
        link = self.fault_link(self.endpoint)
        req = self.socket(zmq.REQ, connect=link.endpoint, name="req")
        self.socket(zmq.SUB, connect=self.new_endpoint(), name="sub", subscribe=b"news")
        crash = self.start_process(CrashingProc, self.new_endpoint())
        yield ("send", req, [], ["ping", 1])
        yield ("recv", req)
        yield ("partition", link)
        yield ("freeze", crash)
        yield ("thaw", crash)
        yield ("signal", crash, signal.SIGTERM)
        yield ("wait_exit", crash, None, None)
        timeline.record("monitor", "req", "connected")
        yield ("send", req, [], ["ping", 2])
        yield ("recv", req, -1, 0.05)  # the link is partitioned: times out


class Passing(ProcessTestCase):
    def test_it(self):
        req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.start_process(PongProc, self.endpoint)
        yield ("send", req, [], ["ping", 1])
        yield ("recv", req)


class Twice(ProcessTestCase):
    """Two failing tests: a report directory that cannot be written is told once."""

    def test_one(self):
        self.fail("one")

    def test_two(self):
        self.fail("two")
