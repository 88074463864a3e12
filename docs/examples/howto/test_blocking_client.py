"""A client library of your own under test: its blocking calls are watched too.

``KVClient`` blocks in a raw ``recv()`` without a timeout, as many client libraries do;
``kv_server`` is its server. docs/howto/failure_handling.rst shows these tests.
"""
import json
import os
import signal

import zmq

from zmqprocesstest import ProcessDied, ProcessTestCase


class KVClient:
    """A key-value client: ``get`` blocks until the server answers, however long."""

    def __init__(self, context, endpoint):
        self.sock = context.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def request(self, **fields):
        self.sock.send_string(json.dumps(fields))
        return json.loads(self.sock.recv_string())  # no timeout

    def get(self, key):
        return self.request(op="get", key=key)

    def shutdown(self):
        return self.request(op="shutdown")

    def close(self):
        self.sock.close(linger=0)


def kv_server(endpoint, store):
    """Serve *store*; a ``get`` of ``"crash"`` crashes it (SIGKILL), ``shutdown`` ends it."""
    context = zmq.Context()
    sock = context.socket(zmq.REP)
    sock.bind(endpoint)
    try:
        while True:
            request = json.loads(sock.recv_string())
            if request["op"] == "shutdown":
                sock.send_string(json.dumps("bye"))
                break
            if request["key"] == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            sock.send_string(json.dumps(store.get(request["key"])))
    except KeyboardInterrupt:  # the stop protocol's SIGINT
        pass
    sock.close(linger=1000)
    context.term()


class TestKVClient(ProcessTestCase):
    def setUp(self):
        self.server = self.start_process(kv_server, self.endpoint, {"answer": 42})
        self.client = KVClient(self.context, self.endpoint)
        self.addCleanup(self.client.close)

    def test_get(self):
        self.assertEqual(self.client.get("answer"), 42)

    def test_a_crash_ends_the_blocking_call(self):
        # The server dies during get(): ProcessDied at this line, within milliseconds,
        # not a hang until run_timeout.
        with self.assertRaises(ProcessDied):
            self.client.get("crash")

    def test_a_shutdown_the_test_asks_for(self):
        self.assertEqual(self.client.shutdown(), "bye")  # the reply before the exit is ours
        self.wait_exit(self.server)

    def test_allow_exit(self):
        with self.allow_exit(self.server):  # it may exit within the block
            self.assertEqual(self.client.shutdown(), "bye")
        self.wait_exit(self.server)


class TestKernelPorts(ProcessTestCase):
    def test_a_connection_file_with_five_ports(self):
        names = ["shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"]
        ports = [int(e.rsplit(":", 1)[1]) for e in self.endpoints(len(names))]  # reserved together
        path = os.path.join(self.tmpdir, "kernel.json")  # removed after the test
        with open(path, "w") as f:
            json.dump(dict(zip(names, ports), ip="127.0.0.1", transport="tcp"), f)
        self.assertEqual(len(set(ports)), 5)
