"""A real Jupyter kernel (ipykernel) driven by test sockets under codecs.jupyter."""
import json
import os
import sys
import unittest

import zmq

from zmqprocesstest import ProcessTestCase, codecs, process, timeline

try:
    import ipykernel  # noqa: F401 - only whether it is installed
    HAVE_IPYKERNEL = True
except ImportError:
    HAVE_IPYKERNEL = False


def connection_file(folder, key):
    """Write a kernel's connection file (ipc channels in *folder*); return its path and
    the endpoint of each channel."""
    info = {"transport": "ipc", "ip": os.path.join(folder, "kernel"), "shell_port": 1, "iopub_port": 2,
            "stdin_port": 3, "control_port": 4, "hb_port": 5, "key": key, "signature_scheme": "hmac-sha256"}
    path = os.path.join(folder, "kernel.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f)
    return path, {name: f"ipc://{info['ip']}-{info[name + '_port']}" for name in ("shell", "iopub", "control")}


@process
@unittest.skipUnless(HAVE_IPYKERNEL, "ipykernel is not installed (pip install ipykernel, or the test extra)")
class TestKernel(ProcessTestCase):
    timeout = 30.0  # a kernel imports IPython as it starts: seconds on a loaded machine
    # A kernel answers shutdown_request once its loops have stopped, then exits: seconds
    # on a loaded machine, past the default 2 s of the polite stop step.
    stop_timeouts = dict(ProcessTestCase.stop_timeouts, message=10.0)

    def setUp(self):
        folder = os.path.dirname(self.new_endpoint("ipc")[len("ipc://"):])  # the test's private directory
        path, endpoints = connection_file(folder, key="a-secret-key")
        self.codec = codecs.jupyter("a-secret-key")  # one codec for all of a client's sockets
        self.shell = self.socket(zmq.DEALER, connect=endpoints["shell"], codec=self.codec, name="shell")
        self.iopub = self.socket(zmq.SUB, connect=endpoints["iopub"], codec=self.codec, name="iopub")
        control = self.socket(zmq.DEALER, connect=endpoints["control"], codec=self.codec, name="control")
        self.kernel = self.start_command([sys.executable, "-m", "ipykernel_launcher", "-f", path], name="kernel")
        self.set_stop_message(self.kernel, control, {"msg_type": "shutdown_request", "content": {"restart": False}})

    def test_execute(self):
        yield ("send", self.shell, [], {"msg_type": "execute_request", "content": {"code": "print(6 * 7)"}})
        request = self.codec.last_sent["msg_id"]

        def other(frames):  # iopub's messages of other requests (frames[-3]: the parent header)
            return request.encode() not in frames[-3]

        states = []
        while states[-1:] != ["idle"]:
            *topic, message = yield ("recv", self.iopub, -1, None, None, other)
            if message["msg_type"] == "stream":
                self.assertEqual(message["content"]["text"], "42\n")
            states.append(message["content"].get("execution_state", message["msg_type"]))
        self.assertEqual(states, ["busy", "execute_input", "stream", "idle"])
        (reply,) = yield ("recv", self.shell)
        self.assertEqual((reply["msg_type"], reply["content"]["status"]), ("execute_reply", "ok"))
        shown = [text for _, kind, source, text in timeline.current().lines() if source == "iopub"]
        self.assertRegex(shown[-1], r"^status \w+ \(re \w+\) execution_state='idle'$")  # as reports show it
