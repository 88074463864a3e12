"""Deliberately failing tests, run by test_failure_report.py.

Not collected on their own: the module name does not start with ``test``, and the
test module imports this module, not its classes.
"""
import zmq

from zmqprocesstest import ProcessTestCase, process
from pingpong.faulty import CrashingProc
from pingpong.pongproc import PongProc


@process
class CrashSample(ProcessTestCase):

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(CrashingProc, self.endpoint)

    def test_crash(self):
        yield ("send", self.req, [], ["ping", 1])
        yield ("recv", self.req)
        yield ("send", self.req, [], ["crash", 3])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 2]])


@process
class DelimiterSample(ProcessTestCase):
    timeout = 0.2

    def setUp(self):
        self.dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.dealer, ["plzdiekthxbye", None], header=[b""])

    def test_forgot_the_delimiter(self):
        yield ("send", self.dealer, [], ["ping", 1])  # REP drops it: no empty frame first
        reply = yield ("recv", self.dealer)
        self.assertEqual(reply, [b"", ["pong", 1]])


@process
class WrongReplySample(ProcessTestCase):

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)

    def test_wrong_reply(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 2]])  # PongProc answers with the number it got
