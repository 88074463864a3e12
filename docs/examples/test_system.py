"""System tests: the whole ping-pong application, run from outside."""
import os
import sys

import zmq

from zmqprocesstest import SystemTestCase, system

EXAMPLES = os.path.dirname(os.path.abspath(__file__))

zmqprocesstest_marks = ["system"]  # marks every test in this module


class TestPingPongApp(SystemTestCase):
    golden_dir = "golden"

    def setUp(self):
        self.pong = self.start_command([sys.executable, "-m", "pingpong.pongproc", self.endpoint], cwd=EXAMPLES)
        self.wait_output(self.pong, "pong: serving", timeout=5.0)

    def test_ping_output_matches_golden(self):
        """The ping program prints what golden/ping.out says."""
        self.assertProgramOutput([sys.executable, "-m", "pingpong.ping", self.endpoint, "3"], "ping.out",
                                 cwd=EXAMPLES)

    def test_client_talks_to_the_app(self):
        """A test socket mimics a client of the running application."""
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["ping", 42])
        reply = yield ("recv", req, -1, 5.0)
        self.assertEqual(reply, [["pong", 42]])

    @system  # a method mark too (the module already marks everything)
    def test_pong_prints_its_endpoint(self):
        """Golden output is normalised: the endpoint varies from run to run."""
        self.stop_process(self.pong)
        self.assertGolden(self.output_of(self.pong), "pong.out",
                          normalisers=[lambda text: text.replace(self.endpoint, "<ENDPOINT>")])
