"""Testing a process that starts its own child on a random port."""
from unittest import mock

import zmq

from zmqprocesstest import ProcessTestCase, process
from pingpong import manager


@process
class TestManagerWithMockedWorker(ProcessTestCase):
    """The worker is replaced by a ProcessMock; the test plays the worker."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="client")
        worker_mock = self.process_mock("worker")
        with mock.patch("pingpong.manager.Worker", new=worker_mock):
            self.proc = self.start_process(manager.Manager, self.endpoint)
        port = worker_mock.wait_for_call().args[0]
        self.worker = self.socket(zmq.PAIR, connect=f"tcp://127.0.0.1:{port}", name="worker")
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    def test_request_goes_to_worker(self):
        yield ("send", self.req, [], ["double", 21])
        request = yield ("recv", self.worker)
        self.assertEqual(request, [["double", 21]])
        yield ("send", self.worker, [], ["doubled", "forty-two"])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["doubled", "forty-two"]])


@process
class TestManagerWithRealWorker(ProcessTestCase):
    """The real worker runs as the manager's child, in the manager's process group."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="client")
        self.proc = self.start_process(manager.Manager, self.endpoint)

    def test_double(self):
        yield ("send", self.req, [], ["double", 4])
        # The first reply waits for the manager to start its worker process and for the
        # worker to connect: more than a reply from a running process (1 s) on a busy machine.
        reply = yield ("recv", self.req, -1, 5.0)
        self.assertEqual(reply, [["doubled", 8]])
