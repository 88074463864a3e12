"""A codec of one's own: the test plays a Majordomo broker to an MDP echo worker."""
import multiprocessing

import zmq

from zmqprocesstest import ProcessTestCase, process, timeline
from howto.mdp import MdpWorkerCodec, echo_worker


@process
class TestMdpWorker(ProcessTestCase):
    """The worker under test speaks MDP/Worker; the test's ROUTER socket decodes it."""

    def setUp(self):
        self.broker = self.socket(zmq.ROUTER, bind=self.endpoint, name="broker", codec=MdpWorkerCodec())
        self.worker = self.start_process(multiprocessing.Process, target=echo_worker, args=(self.endpoint,),
                                         name="worker")

    def test_ready_then_a_request_is_echoed(self):
        identity, ready = yield ("recv", self.broker)
        self.assertEqual(ready, {"command": "READY", "service": "echo"})
        self.set_stop_message(self.worker, self.broker, {"command": "DISCONNECT"}, header=[identity])
        yield ("send", self.broker, [identity], {"command": "REQUEST", "client": b"c1", "body": [b"hello", b"2"]})
        heartbeat = [b"", b"MDPW01", b"\x04"]
        _, reply = yield ("recv", self.broker, -1, None, None, lambda frames: frames[1:] == heartbeat)
        self.assertEqual(reply, {"command": "REPLY", "client": b"c1", "body": [b"hello", b"2"]})
        shown = [(kind, text) for _, kind, _, text in timeline.current().lines() if kind in ("sent", "received")]
        beat = ("received", "MDP HEARTBEAT")  # passed over by the recv, still in the timeline
        self.assertIn(beat, shown)  # one at least: how many more came while idle is the scheduler's choice
        self.assertEqual([each for each in shown if each != beat],
                         [("received", "MDP READY b'echo'"),  # every frame, as the reports show them
                          ("sent", "MDP REQUEST client=b'c1' body=[b'hello', b'2']"),
                          ("received", "MDP REPLY client=b'c1' body=[b'hello', b'2']")])
