"""The conversation recorded in conversations/pingpong.jsonl, as a test.

Written by python -m zmqprocesstest scaffold; edit it as your own test.
"""
import zmq

from zmqprocesstest import ProcessTestCase

from pingpong.pongproc import PongProc


class TestPingpong(ProcessTestCase):
    """Plays the client side of pingpong.jsonl."""

    def setUp(self):
        self.client = self.socket(zmq.REQ, connect=self.endpoint, name="client")
        self.proc = self.start_process(PongProc, self.endpoint)

    def test_pingpong(self):
        yield ("send", self.client, [], ["ping", 1])
        reply = yield ("recv", self.client)
        self.assertEqual(reply, [["pong", 1]])
        yield ("send", self.client, [], ["ping", 2])
        reply = yield ("recv", self.client)
        self.assertEqual(reply, [["pong", 2]])
        yield ("send", self.client, [], ["ping", 3])
        reply = yield ("recv", self.client)
        self.assertEqual(reply, [["pong", 3]])
