"""ROUTER/DEALER: a ROUTER process with several clients, and a DEALER worker."""
import zmq

from zmqprocesstest import ProcessTestCase, process
from howto.dealerworker import PongWorker
from pingpong.pongproc import PongProc


@process
class TestRouterProcess(ProcessTestCase):
    """The process under test binds a ROUTER: each DEALER gets its own replies."""

    def setUp(self):
        self.alice = self.socket(zmq.DEALER, connect=self.endpoint, name="alice")
        self.bob = self.socket(zmq.DEALER, connect=self.endpoint, name="bob")
        self.proc = self.start_process(PongProc, self.endpoint, zmq.ROUTER)
        self.set_stop_message(self.proc, self.alice, ["plzdiekthxbye", None], header=[b""])

    def test_replies_go_back_to_the_sender(self):
        yield ("send", self.alice, [b""], ["ping", 1])
        yield ("send", self.bob, [b""], ["ping", 2])
        self.assertEqual((yield ("recv", self.bob)), [b"", ["pong", 2]])
        self.assertEqual((yield ("recv", self.alice)), [b"", ["pong", 1]])
        yield ("recv_nothing", self.alice, 0.05)


@process
class TestDealerWorker(ProcessTestCase):
    """The process under test is a DEALER worker: the test plays the ROUTER broker."""

    def setUp(self):
        self.router = self.socket(zmq.ROUTER, bind=self.endpoint, name="broker")
        self.proc = self.start_process(PongWorker, self.endpoint)
        # Events are methods too: setUp cannot yield, so it calls recv directly.
        self.worker_id, empty, ready = self.recv(self.router)
        self.assertEqual([empty, ready], [b"", ["ready", None]])
        self.set_stop_message(self.proc, self.router, ["plzdiekthxbye", None], header=[self.worker_id, b""])

    def test_ping(self):
        yield ("send", self.router, [self.worker_id, b""], ["ping", 3])
        reply = yield ("recv", self.router)
        self.assertEqual(reply, [self.worker_id, b"", ["pong", 3]])
