"""Timeouts: per class, per test, per event."""
import zmq

from zmqprocesstest import ProcessTestCase, SocketTimeout, process
from pingpong.pongproc import PongProc


@process
class TestTimeouts(ProcessTestCase):
    timeout = 2.0        # send/recv timeout of sockets made by self.socket()
    run_timeout = 30.0   # the longest one generator test may run
    stop_timeouts = dict(ProcessTestCase.stop_timeouts, SIGINT=5.0)  # slow clean-up

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.pull = self.socket(zmq.PULL, bind=self.new_endpoint(), name="pull", timeout=0.05)
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    def test_one_slow_reply(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req, -1, 10.0)  # json_index -1, timeout 10 s
        self.assertEqual(reply, [["pong", 1]])

    def test_timeout_is_a_failure_you_can_catch(self):
        with self.assertRaises(SocketTimeout) as caught:
            yield ("recv", self.pull)  # nobody sends to it
        self.assertIn("timed out after 0.05 s", str(caught.exception))
