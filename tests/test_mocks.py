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
        self.addCleanup(proc_mock.close_pipe)
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
        self.addCleanup(proc_mock.close_pipe)
        proc_mock(object)
        self.assertEqual(proc_mock.wait_for_call(1.0).args, [repr(object)])

    def test_timeout_is_a_clear_failure(self):
        proc_mock = ProcessMock("worker", timeout=0.05)
        self.addCleanup(proc_mock.close_pipe)
        with self.assertRaises(MockTimeout) as caught:
            proc_mock.wait_for_call()
        self.assertIsInstance(caught.exception, AssertionError)
        self.assertIn("expected the mocked process 'worker' to be constructed within 0.05 s", str(caught.exception))

    def test_close_is_the_process_api_and_leaves_the_pipe_open(self):
        proc_mock = ProcessMock("worker")
        self.addCleanup(proc_mock.close_pipe)
        # Code under test that cleans up after its child, then starts another one.
        first = proc_mock(1)
        first.start()
        first.join()
        self.assertIsNone(first.close())
        proc_mock(2).start()
        self.assertEqual(proc_mock.wait_for_call(1.0).args, [1])
        self.assertEqual(proc_mock.wait_for_call(1.0).args, [2])

    def test_close_pipe_closes_it_once_and_for_all(self):
        proc_mock = ProcessMock("worker")
        proc_mock.close_pipe()
        proc_mock.close_pipe()  # again: nothing happens
        self.assertTrue(proc_mock._reader.closed and proc_mock._writer.closed)
        with self.assertRaises(ValueError) as caught:
            proc_mock.wait_for_call(0.01)
        self.assertIn("cannot wait for a call of the mocked process 'worker': its reporting pipe is closed",
                      str(caught.exception))

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
