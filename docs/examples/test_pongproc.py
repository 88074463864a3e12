"""Process tests of the pong process: real messages over a real socket."""
import zmq

from zmqprocesstest import ProcessTestCase, process
from pingpong.pongproc import PongProc


@process
class TestPongProc(ProcessTestCase):
    """Mimic the ping client with a REQ test socket."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    def test_ping(self):
        """A ping is answered with a pong of the same number."""
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 1]])

    def test_many_pings(self):
        for n in range(10):
            yield ("send", self.req, [], ["ping", n])
            reply = yield ("recv", self.req)
            self.assertEqual(reply, [["pong", n]])

    def test_unknown_message(self):
        yield ("send", self.req, [], ["spam", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["error", "unknown message type: spam"]])

    def test_stop_message(self):
        yield ("send", self.req, [], ["plzdiekthxbye", None])
        code = yield ("wait_exit", self.proc)
        self.assertEqual(code, 0)

    def test_sigint(self):
        """SIGINT runs the KeyboardInterrupt clean-up and the process exits 0."""
        yield ("send", self.req, [], ["ping", 7])
        yield ("recv", self.req)
        yield ("signal", self.proc)
        code = yield ("wait_exit", self.proc)
        self.assertEqual(code, 0)


@process
class TestPongRouter(ProcessTestCase):
    """With a ROUTER socket the process keeps the envelope: test with a DEALER."""

    def setUp(self):
        self.dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")
        self.proc = self.start_process(PongProc, self.endpoint, zmq.ROUTER)

    def test_ping_through_router(self):
        yield ("send", self.dealer, [b""], ["ping", 2])
        reply = yield ("recv", self.dealer)
        self.assertEqual(reply, [b"", ["pong", 2]])
