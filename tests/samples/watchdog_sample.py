"""Plain unittest tests that block forever inside hard_timeout (run by tests/test_watchdog.py).

tests/test_watchdog.py copies this file into a temporary directory as
test_watchdog_sample.py and runs it under each test runner. Every test must fail with
TestTimeout quickly; its cleanup writes a marker file (into WATCHDOG_SAMPLE_DIR) naming
the mechanism used and whether the test ran in the main thread.
"""
import os
import select
import threading
import time
import unittest

import zmq

from zmqprocesstest.timeout._watchdog import hard_timeout

LIMIT = float(os.environ.get("WATCHDOG_SAMPLE_LIMIT", "1.0"))


class BlockingTest(unittest.TestCase):
    def setUp(self):
        self.watchdog = hard_timeout(LIMIT, self.id())
        self.addCleanup(self._mark)

    def _mark(self):
        name = os.path.join(os.environ["WATCHDOG_SAMPLE_DIR"], self.id() + ".cleanup")
        with open(name, "w") as f:
            f.write(f"{self.watchdog.mechanism} fired={self.watchdog.fired} "
                    f"main={threading.current_thread() is threading.main_thread()}\n")

    def test_sleep(self):
        with self.watchdog:
            time.sleep(600)  # BLOCKS: sleep

    def test_recv(self):
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PULL)
        sock.linger = 0
        self.addCleanup(ctx.term)
        self.addCleanup(sock.close)
        sock.bind("inproc://watchdog-sample")
        with self.watchdog:
            sock.recv()  # BLOCKS: recv

    def test_select(self):
        with self.watchdog:
            select.select([], [], [])  # BLOCKS: select
