"""A racy test, on purpose: the slow joiner (run by tests/test_runs.py, not collected).

The process under test binds a PUB socket, does its start-up work and publishes
"ready" once. The test subscribes after starting it and expects that first message
without making sure its subscription is live (no ``wait_subscribed``): it passes when
its SUB connects within the start-up work, which it usually does, and fails when
anything delays it, as ``--stress`` does now and then.
"""
import json
import time
from multiprocessing import Process

import zmq

from zmqprocesstest import ProcessTestCase

#: Seconds of start-up work between the bind and the one "ready" message.
STARTUP = 0.012


class Announcer(Process):
    """Publishes ``[b"ready"]`` once after binding, and ``[b"pong", body]`` for each ping."""

    def __init__(self, pub_endpoint, pull_endpoint):
        super().__init__()
        self.pub_endpoint, self.pull_endpoint = pub_endpoint, pull_endpoint

    def run(self):
        context = zmq.Context()
        pub, pull = context.socket(zmq.PUB), context.socket(zmq.PULL)
        pub.bind(self.pub_endpoint)
        pull.bind(self.pull_endpoint)
        time.sleep(STARTUP)  # its start-up work (simulated)
        pub.send_multipart([b"ready"])
        while True:
            body = pull.recv_multipart()[-1]
            if json.loads(body)[0] == "plzdiekthxbye":
                break
            pub.send_multipart([b"pong", body])
        pub.close(linger=0)
        pull.close(linger=0)
        context.term()


class TestRacy(ProcessTestCase):
    def setUp(self):
        pub_endpoint = self.new_endpoint()
        self.proc = self.start_process(Announcer, pub_endpoint, self.endpoint)
        self.sub = self.socket(zmq.SUB, connect=pub_endpoint, name="sub")
        self.push = self.socket(zmq.PUSH, connect=self.endpoint, name="push")
        self.set_stop_message(self.proc, self.push, ["plzdiekthxbye", None])

    def test_first_message(self):
        msg = yield ("recv_raw", self.sub, 0.5)  # racy: was the SUB subscribed in time?
        self.assertEqual(msg, [b"ready"])
