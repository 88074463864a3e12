"""Process tests of the echo server: real messages over a real socket."""
import zmq

from zmqprocesstest import ProcessTestCase, process
from echoapp.server import EchoServer


@process
class TestEchoServer(ProcessTestCase):
    """Play the server's client with a REQ test socket."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(EchoServer, self.endpoint)
        self.set_stop_message(self.proc, self.req, ["stop", None])

    def test_echo(self):
        yield ("send", self.req, [], ["echo", {"text": "hello", "n": 1}])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["echo", {"text": "hello", "n": 1}]])

    def test_unknown_message(self):
        yield ("send", self.req, [], ["shout", "hello"])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["error", "unknown message type: shout"]])

    def test_stop_message(self):
        yield ("send", self.req, [], ["stop", None])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["stopped", None]])
        code = yield ("wait_exit", self.proc)
        self.assertEqual(code, 0)

    def test_sigint(self):
        """SIGINT runs the KeyboardInterrupt clean-up and the server exits 0."""
        yield ("send", self.req, [], ["echo", 7])
        yield ("recv", self.req)  # the server is serving: SIGINT lands inside run()
        yield ("signal", self.proc)
        code = yield ("wait_exit", self.proc)
        self.assertEqual(code, 0)
