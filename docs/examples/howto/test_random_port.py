"""A process that picks its own port: read the port from what it prints."""
import zmq

from zmqprocesstest import ProcessTestCase, process
from howto.announcing import AnnouncingPongProc


@process
class TestAnnouncedPort(ProcessTestCase):

    def setUp(self):
        self.proc = self.start_process(AnnouncingPongProc, "tcp://127.0.0.1:*")

    def test_ping_on_the_announced_port(self):
        endpoint = (yield ("wait_output", self.proc, r"tcp://127\.0\.0\.1:\d+"))[0]
        req = self.socket(zmq.REQ, connect=endpoint, name="req")
        self.set_stop_message(self.proc, req, ["plzdiekthxbye", None])
        yield ("send", req, [], ["ping", 1])
        reply = yield ("recv", req)
        self.assertEqual(reply, [["pong", 1]])
