"""A ProcessTestCase test that leaves a non-daemon thread running (run by tests/test_watchdog.py).

tests/test_watchdog.py copies this file into a temporary directory as
test_thread_sample.py and runs it under each test runner: the test must fail naming the
thread, and the runner must then exit, bounded by the last resort, instead of hanging
at interpreter exit.
"""
import threading
import unittest

from zmqprocesstest import ProcessTestCase

NEVER = threading.Event()


def serve_forever():
    NEVER.wait()


class LeavesAThread(ProcessTestCase):
    def test_leaves_a_thread(self):
        threading.Thread(target=serve_forever, name="left-behind").start()  # STARTS THE THREAD

    def test_passes(self):
        pass


if __name__ == "__main__":
    unittest.main()
