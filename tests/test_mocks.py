"""Tests of mocks.py: the child-process stand-in that reports its arguments."""
import unittest
from unittest import mock

import zmq

from zmqprocesstest import MockTimeout, ProcessMock, ProcessTestCase

from .support import problems, run_case
from pingpong import manager


class TestProcessMock(unittest.TestCase):
    def test_acts_as_class_and_instance(self):
        proc_mock = ProcessMock("worker")
        self.addCleanup(proc_mock.close)
        instance = proc_mock(1234, name="w")
        self.assertIs(instance, proc_mock)
        for method in ("start", "join", "terminate", "kill"):
            self.assertIsNone(getattr(instance, method)())
        self.assertFalse(instance.is_alive())
        call = proc_mock.wait_for_call(timeout=1.0)
        self.assertEqual(call.args, [1234])
        self.assertEqual(call.kwargs, {"name": "w"})

    def test_non_json_arguments_arrive_as_repr(self):
        proc_mock = ProcessMock()
        self.addCleanup(proc_mock.close)
        proc_mock(object)
        self.assertEqual(proc_mock.wait_for_call(1.0).args, [repr(object)])

    def test_timeout_is_a_clear_failure(self):
        proc_mock = ProcessMock("worker", timeout=0.05)
        self.addCleanup(proc_mock.close)
        with self.assertRaises(MockTimeout) as caught:
            proc_mock.wait_for_call()
        self.assertIsInstance(caught.exception, AssertionError)
        self.assertIn("expected the mocked process 'worker' to be constructed within 0.05 s", str(caught.exception))

    def test_reports_the_random_port_from_a_forked_process(self):
        seen = {}

        class Reports(ProcessTestCase):
            def test_it(self):
                worker = self.process_mock("worker")
                with mock.patch("pingpong.manager.Worker", new=worker):
                    self.start_process(manager.Manager, self.endpoint)
                port = worker.wait_for_call().args[0]
                seen["port"] = port
                sock = self.socket(zmq.PAIR, connect=f"tcp://127.0.0.1:{port}")
                req = self.socket(zmq.REQ, connect=self.endpoint)
                yield ("send", req, [], ["double", 1])
                self.assertEqual((yield ("recv", sock)), [["double", 1]])
                seen["mock"] = worker

        self.assertEqual(problems(run_case(Reports)), [])
        self.assertIsInstance(seen["port"], int)
        self.assertTrue(seen["mock"]._reader.closed)


if __name__ == "__main__":
    unittest.main()
