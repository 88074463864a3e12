"""The log event: assert on records published by PyZMQ's PUBHandler."""
import zmq

from zmqprocesstest import ProcessTestCase, process
from pingpong.logger import LoggingPongProc


@process
class TestLoggingPongProc(ProcessTestCase):

    def setUp(self):
        log_endpoint = self.new_endpoint()
        self.log_socket = self.socket(zmq.SUB, connect=log_endpoint, name="log")
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(LoggingPongProc, self.endpoint, log_endpoint)
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    def test_ping_is_logged(self):
        yield ("send", self.req, [], ["ping", 3])
        yield ("recv", self.req)
        yield ("log", "got ping 3", "INFO")

    def test_unknown_message_is_a_warning(self):
        yield ("send", self.req, [], ["spam", None])
        yield ("recv", self.req)
        yield ("log", "unknown message", "WARNING")
