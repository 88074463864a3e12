"""The ping-pong process shared by the tests of a class, and by the tests of a module."""
import zmq

from zmqprocesstest import ProcessTestCase, module_scope, process
from pingpong.pongproc import PongProc


@process
class TestSharedPong(ProcessTestCase):
    """One pong process for the whole class; each test talks to it on a socket of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ep = cls.new_endpoint()
        cls.proc = cls.start_process(PongProc, cls.ep)
        cls.ctl = cls.socket(zmq.REQ, connect=cls.ep, name="ctl")
        cls.set_stop_message(cls.proc, cls.ctl, ["plzdiekthxbye", None])

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.ep, name="req")  # per test, as usual

    def test_ping(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 1]])

    def test_the_same_process_answers(self):
        yield ("send", self.req, [], ["ping", 2])
        self.assertEqual((yield ("recv", self.req)), [["pong", 2]])
        self.assertTrue(self.proc.is_alive())

    def test_the_class_socket_works_in_events(self):
        yield ("send", self.ctl, [], ["ping", 3])
        self.assertEqual((yield ("recv", self.ctl)), [["pong", 3]])


def setUpModule():
    global MODULE_ENDPOINT
    scope = module_scope(__name__)
    MODULE_ENDPOINT = scope.new_endpoint()
    pong = scope.start_process(PongProc, MODULE_ENDPOINT)
    scope.set_stop_message(pong, scope.socket(zmq.REQ, connect=MODULE_ENDPOINT), ["plzdiekthxbye", None])


@process
class TestModulePong(ProcessTestCase):
    """Every class of the module can talk to the process the module shares."""

    def test_ping_the_module_process(self):
        req = self.socket(zmq.REQ, connect=MODULE_ENDPOINT)
        yield ("send", req, [], ["ping", 4])
        self.assertEqual((yield ("recv", req)), [["pong", 4]])
