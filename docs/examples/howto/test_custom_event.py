"""A custom event: every public method of the test case can be yielded."""
import zmq

from zmqprocesstest import EventError, ProcessTestCase, process
from pingpong.pongproc import PongProc


class PingPongTestCase(ProcessTestCase):
    """A base class for pong tests that adds the ``ping_n`` event."""

    def ping_n(self, sock, n):
        """Event: ``n`` ping/pong round trips on *sock*; returns the replies' bodies."""
        replies = []
        for i in range(1, n + 1):
            self.send(sock, [], ["ping", i])  # built-in events are methods too
            replies.append(self.recv(sock)[-1])
        return replies


@process
class TestPingN(PingPongTestCase):

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    def test_three_pings(self):
        replies = yield ("ping_n", self.req, 3)
        self.assertEqual(replies, [["pong", 1], ["pong", 2], ["pong", 3]])

    def test_misspelt_event(self):
        with self.assertRaises(EventError) as caught:
            yield ("pnig_n", self.req, 3)
        self.assertIn("known events:", str(caught.exception))
