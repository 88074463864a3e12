"""Stopping a process: the stop message, and what happens when it is ignored."""
import hmac
import json

import zmq

from zmqprocesstest import ProcessStopError, ProcessTestCase, process
from pingpong.faulty import StubbornProc
from pingpong.pongproc import PongProc


@process
class TestStopMessage(ProcessTestCase):

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        # After the test: this message first, then SIGINT, SIGTERM, SIGKILL.
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    def test_stop_now(self):
        yield ("send", self.req, [], ["ping", 1])
        yield ("recv", self.req)
        self.stop_process(self.proc)  # fails unless the stop message worked
        self.assertEqual(self.managed(self.proc).exitcode(), 0)


@process
class TestStubbornProcess(ProcessTestCase):
    # Do not wait the default 2 s for a SIGINT that is ignored.
    stop_timeouts = dict(ProcessTestCase.stop_timeouts, SIGINT=0.2)

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(StubbornProc, self.endpoint)

    def test_ignoring_sigint_is_reported(self):
        yield ("send", self.req, [], ["ping", 1])
        yield ("recv", self.req)  # it answered, so it is ignoring SIGINT by now
        with self.assertRaises(ProcessStopError) as caught:
            self.stop_process(self.proc)
        self.assertIn("did not stop politely (SIGINT); it took SIGTERM", str(caught.exception))


@process
class TestStopEvent(ProcessTestCase):
    """A process whose polite stop is not a plain JSON message (a Jupyter kernel wants an
    HMAC-signed shutdown_request): the stop is an event of the test case's own."""

    KEY = b"secret"

    def send_signed(self, sock, body):
        """Event: *body* as JSON, preceded by its HMAC-SHA256 signature."""
        data = json.dumps(body).encode()
        sock.send_multipart([hmac.new(self.KEY, data, "sha256").hexdigest().encode(), data])

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_event(self.proc, ("send_signed", self.req, ["plzdiekthxbye", None]))

    def test_ping(self):
        yield ("send_signed", self.req, ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply[-1], ["pong", 1])


@process
class TestSigtermServer(ProcessTestCase):
    """A server whose documented stop is SIGTERM (it ignores SIGINT): skip that step."""

    stop_steps = ("SIGTERM",)  # then SIGKILL, always

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(StubbornProc, self.endpoint)

    def test_stops_on_sigterm(self):
        yield ("send", self.req, [], ["ping", 1])
        yield ("recv", self.req)
        self.stop_process(self.proc)  # passes: SIGTERM is its polite stop
        self.assertEqual(self.managed(self.proc).stopped_by, "SIGTERM")
