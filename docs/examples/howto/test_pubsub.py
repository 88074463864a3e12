"""PUB/SUB: a process that publishes, and a process that subscribes."""
import time

import zmq

from zmqprocesstest import ProcessTestCase, process
from howto.pubsub import Broadcaster, Listener


@process
class TestBroadcaster(ProcessTestCase):
    """The process under test publishes: the test subscribes with a SUB socket."""

    def setUp(self):
        self.pub_endpoint = pub_endpoint = self.new_endpoint()
        self.sub = self.socket(zmq.SUB, connect=pub_endpoint, name="sub")  # subscribes to everything
        self.push = self.socket(zmq.PUSH, connect=self.endpoint, name="push")
        self.proc = self.start_process(Broadcaster, self.endpoint, pub_endpoint)
        self.set_stop_message(self.proc, self.push, ["plzdiekthxbye", None])

    def recv_topic(self, sock, topic, timeout=None):
        """Event: the next message on *sock* with first frame *topic*; others are skipped."""
        limit = sock.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            msg = self.recv(sock, timeout=max(0.0, deadline - time.monotonic()))
            if msg[0] == topic:
                return msg

    def test_ping_is_published(self):
        # The first message proves the subscription has reached the publisher;
        # anything published before that was dropped ("slow joiner").
        yield ("recv", self.sub)
        yield ("send", self.push, [], ["ping", 1])
        msg = yield ("recv_topic", self.sub, b"pong")
        self.assertEqual(msg, [b"pong", ["pong", 1]])

    def test_slow_joiner_without_a_heartbeat(self):
        # Subscribed to pongs only, nothing comes by itself: ping until the first pong
        # arrives (bounded by the socket's timeout), then the subscription is live.
        pongs = self.socket(zmq.SUB, connect=self.pub_endpoint, subscribe=b"pong", name="pongs")
        first = yield ("wait_subscribed", pongs, ("send", self.push, [], ["ping", 0]))
        self.assertEqual(first[0], b"pong")
        yield ("send", self.push, [], ["ping", 1])
        msg = yield ("recv", pongs)
        while msg == [b"pong", ["pong", 0]]:  # answers to the pings sent while it was on its way
            msg = yield ("recv", pongs)
        self.assertEqual(msg, [b"pong", ["pong", 1]])


@process
class TestListener(ProcessTestCase):
    """The process under test subscribes: the test publishes with an XPUB socket."""

    def setUp(self):
        upstream, downstream = self.new_endpoint(), self.new_endpoint()
        self.xpub = self.socket(zmq.XPUB, bind=upstream, name="xpub")
        self.pull = self.socket(zmq.PULL, bind=downstream, name="pull")
        self.proc = self.start_process(Listener, upstream, downstream)
        self.set_stop_message(self.proc, self.xpub, ["plzdiekthxbye", None], header=[b"ping"])

    def test_subscribes_then_answers(self):
        # XPUB receives the subscription itself: no guessing when it is live.
        subscription = yield ("recv", self.xpub, None)
        self.assertEqual(subscription, [b"\x01ping"])
        yield ("send", self.xpub, [b"ping"], ["ping", 1])
        reply = yield ("recv", self.pull)
        self.assertEqual(reply, [["pong", 1]])
