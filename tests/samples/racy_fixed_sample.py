"""The racy sample fixed (run by tests/test_runs.py, not collected): the test waits until
its subscription is live (``wait_subscribed``) before it relies on what is published."""
import zmq

from zmqprocesstest import ProcessTestCase

from .racy_sample import Announcer


class TestFixed(ProcessTestCase):
    def setUp(self):
        pub_endpoint = self.new_endpoint()
        self.proc = self.start_process(Announcer, pub_endpoint, self.endpoint)
        self.sub = self.socket(zmq.SUB, connect=pub_endpoint, name="sub")
        self.push = self.socket(zmq.PUSH, connect=self.endpoint, name="push")
        self.set_stop_message(self.proc, self.push, ["plzdiekthxbye", None])

    def test_first_message(self):
        # "ready" if the subscription was live in time, else the answer to a ping.
        first = yield ("wait_subscribed", self.sub, ("send", self.push, [], ["ping", 0]))
        self.assertIn(first[0], (b"ready", b"pong"))
