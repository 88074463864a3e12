"""Connection events: bounded waits on a test socket's connections, shown in the transcript."""
import unittest

import zmq

from zmqprocesstest import ProcessTestCase

from .support import only_problem, run_case
from pingpong.pongproc import PongProc  # support puts docs/examples on sys.path


class _Cases:
    class Connections(ProcessTestCase):
        timeout = 2.0

        def setUp(self):
            self.client = self.socket(zmq.DEALER, name="client")
            self.monitor(self.client)  # before connecting: the first connection is seen
            self.client.connect(self.endpoint)

        def test_connect_handshake_disconnect(self):
            proc = self.start_process(PongProc, self.endpoint, zmq.ROUTER)
            found = yield ("wait_connected", self.client)
            self.assertEqual(found["event"], zmq.EVENT_CONNECTED)
            yield ("wait_handshake", self.client)
            self.stop_process(proc)
            found = yield ("wait_disconnected", self.client)
            self.assertEqual(found["endpoint"], self.endpoint.encode())
            self.fail("show the report")

        def test_nobody_there(self):
            yield ("wait_handshake", self.client, 0.2)

        def test_bad_timeout(self):
            yield ("wait_connected", self.client, "soon")


class TestConnectionEvents(unittest.TestCase):
    def test_waits_return_the_events_and_the_transcript_shows_them(self):
        text = only_problem(self, run_case(_Cases.Connections, "test_connect_handshake_disconnect"))
        transcript = text.split("Timeline (")[1]
        for name in ("CONNECTED", "HANDSHAKE_SUCCEEDED", "DISCONNECTED"):
            self.assertRegex(transcript, rf"client\s+\*\* monitor: {name} ipc://")
        self.assertLess(transcript.index("monitor: CONNECTED"), transcript.index("monitor: DISCONNECTED"))

    def test_a_wait_is_bounded_and_names_what_it_saw(self):
        text = only_problem(self, run_case(_Cases.Connections, "test_nobody_there"))
        self.assertIn("ConnectionTimeout: socket 'client' (DEALER, connect ipc://", text)
        self.assertIn("was not through a handshake within 0.2 s; monitor events read meanwhile:", text)

    def test_bad_arguments(self):
        text = only_problem(self, run_case(_Cases.Connections, "test_bad_timeout"), "error")
        self.assertIn("expected timeout to be a finite number of seconds >= 0 or None, got 'soon'", text)
