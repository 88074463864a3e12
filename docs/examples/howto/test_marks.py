"""Marks: select or skip tests by what they need."""
import zmq

from zmqprocesstest import ProcessTestCase, mark, process
from pingpong.pongproc import PongProc


@process  # every test of the class is a process test
class TestMarkedPongProc(ProcessTestCase):

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    def test_ping(self):
        yield ("send", self.req, [], ["ping", 1])
        self.assertEqual((yield ("recv", self.req)), [["pong", 1]])

    @mark("slow")  # has the marks "process" and "slow"
    def test_many_pings(self):
        for n in range(500):
            yield ("send", self.req, [], ["ping", n])
            self.assertEqual((yield ("recv", self.req)), [["pong", n]])
