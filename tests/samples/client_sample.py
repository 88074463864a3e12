"""docs/examples/kvsync's client library under test, as a user's test fails with it.

``MissingKey.test_a_missing_key`` fails: the server's bug kills it during ``get()``,
which blocks in a raw ``recv()`` with no timeout; with ``run_timeout = 20`` the test must
still end at once, with ProcessDied at the ``get()`` line. ``test_a_shutdown_by_a_raw_message``
passes: the test stops the server by its own raw message, then waits for its exit.
Run by tests/test_client_example.py under unittest, nose2 and pytest (the docs/examples
folder on the path); each test's seconds from the call to its end go to the file
named by CLIENT_SAMPLE_OUT.
"""
import os
import time

import zmq

from zmqprocesstest import ProcessTestCase
from kvsync.client import KVClient
from kvsync.server import KVServer

OUT_ENV = "CLIENT_SAMPLE_OUT"


class MissingKey(ProcessTestCase):
    run_timeout = 20  # a hang would last this long

    def setUp(self):
        self.server = self.start_process(KVServer, self.endpoint)
        self.client = KVClient(self.endpoint)
        self.addCleanup(self.client.close)
        self.started = None
        self.addCleanup(self.note)

    def note(self):
        out = os.environ.get(OUT_ENV)
        if out and self.started is not None:
            with open(out, "a") as f:
                f.write(f"{self._testMethodName} {time.monotonic() - self.started:.6f}\n")

    def test_a_missing_key(self):
        self.client.put("colour", "green")
        self.started = time.monotonic()
        self.assertIsNone(self.client.get("shape"))  # DIES HERE

    def test_a_shutdown_by_a_raw_message(self):
        sock = self.context.socket(zmq.REQ)
        sock.connect(self.endpoint)
        self.started = time.monotonic()
        sock.send_json({"op": "shutdown"})
        self.assertEqual(sock.recv_json(), "bye")  # no timeout: the reply comes before the exit
        sock.close(linger=0)
        self.wait_exit(self.server)
