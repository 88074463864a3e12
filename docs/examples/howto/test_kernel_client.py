"""A real Jupyter kernel (ipykernel) driven by jupyter_client's own BlockingKernelClient,
through taps that record its messages under codecs.jupyter.

docs/examples/howto/test_jupyter_kernel.py drives a kernel with test sockets; here the
client under test is jupyter_client's, as in jupyter_client's own kernel tests.
"""
import json
import os
import queue
import sys
import unittest

import zmq

from zmqprocesstest import ProcessTestCase, codecs, process, timeline

try:
    import ipykernel  # noqa: F401 - only whether it is installed
    from jupyter_client import BlockingKernelClient
    HAVE_KERNEL = True
except ImportError:
    HAVE_KERNEL = False

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")


def write_connection_file(path, endpoints, key):
    """Write a kernel's connection file at *path*: the tcp ports of *endpoints* (a channel
    name -> endpoint dict) and the signing *key*."""
    info = {"transport": "tcp", "ip": "127.0.0.1", "key": key, "signature_scheme": "hmac-sha256",
            "kernel_name": ""}
    info.update({f"{name}_port": int(endpoint.rsplit(":", 1)[1]) for name, endpoint in endpoints.items()})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f)
    return info


def close_client_loop():
    """Close the event loop that jupyter_client's blocking calls made for this thread
    (jupyter_core keeps it for the next call; the test's leak check counts its descriptors)."""
    import asyncio
    from jupyter_core import utils
    loop = utils._loop.get()
    if loop is not None and not loop.is_closed():
        loop.close()
        asyncio.set_event_loop(None)


@process
@unittest.skipUnless(HAVE_KERNEL, "ipykernel and jupyter_client are not installed "
                                  "(pip install ipykernel jupyter_client, or the test extra)")
class TestBlockingKernelClient(ProcessTestCase):
    timeout = 30.0  # a kernel imports IPython as it starts: seconds on a loaded machine
    # A kernel answers shutdown_request once its loops have stopped, then exits: seconds
    # on a loaded machine, past the default 2 s of the polite stop step.
    stop_timeouts = dict(ProcessTestCase.stop_timeouts, message=10.0)

    def setUp(self):
        # The kernel's five ports, reserved together, in a connection file in the test's own directory.
        endpoints = dict(zip(CHANNELS, self.endpoints(5)))
        path = os.path.join(self.tmpdir, "kernel.json")
        info = write_connection_file(path, endpoints, key="a-secret-key")
        self.codec = codecs.jupyter("a-secret-key")
        control = self.socket(zmq.DEALER, connect=endpoints["control"], codec=self.codec, name="control")
        self.kernel = self.start_command([sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher",
                                          "-f", path], name="kernel")
        self.set_stop_message(self.kernel, control, {"msg_type": "shutdown_request", "content": {"restart": False}})

        # Taps in front of shell and iopub: the client connects to them, to the other channels directly.
        self.seen = {}
        for name in ("shell", "iopub"):
            link = self.tap(endpoints[name], name=name, codec=self.codec)
            self.seen[name] = queue.Queue()
            link.recorders.append(self.seen[name].put)  # each message, once the tap has passed it on
            info[f"{name}_port"] = int(link.endpoint.rsplit(":", 1)[1])

        context = zmq.Context()
        self.addCleanup(context.term)
        self.addCleanup(close_client_loop)
        self.client = BlockingKernelClient(context=context)
        self.client.load_connection_info(info)
        # No heartbeat channel: the test's death watch tells a dead kernel at once (a missed
        # beat while the kernel starts would end wait_for_ready with "Kernel died").
        self.client.start_channels(hb=False)
        self.addCleanup(self.client.stop_channels)
        # jupyter_client's own wait: shell answers, and iopub is subscribed (a SUB socket
        # sends its subscription on a new connection only when its owner uses it).
        self.client.wait_for_ready(timeout=30)

    def recorded(self, channel, keep=lambda message: True):
        """The next message the tap on *channel* passed on that *keep* accepts, decoded."""
        while True:
            message = self.codec.decode(self.seen[channel].get(timeout=30).frames)[-1]
            if keep(message):
                return message

    def test_kernel_info_and_an_execute(self):
        # reply=True: the reply to this request (a stale one of wait_for_ready's is passed over).
        info = self.client.kernel_info(reply=True, timeout=30)
        self.assertEqual(info["msg_type"], "kernel_info_reply")
        reply = self.client.execute("print(6 * 7)", reply=True, timeout=30)
        self.assertEqual(reply["content"]["status"], "ok")
        ids = [info["parent_header"]["msg_id"], reply["parent_header"]["msg_id"]]

        # What went through the taps, by msg_type: shell both ways, iopub for this execute
        # (wait_for_ready's own requests left out).
        def ours(message):
            return message["msg_id"] in ids or message["parent_header"].get("msg_id") in ids

        shell = []
        while len(shell) < 4:
            tapped = self.seen["shell"].get(timeout=30)  # a TapMessage: direction, frames...
            if ours(self.codec.decode(tapped.frames)[-1]):
                shell.append(tapped)
        self.assertEqual([(m.direction, self.codec.decode(m.frames)[-1]["msg_type"]) for m in shell],
                         [("to_server", "kernel_info_request"), ("to_client", "kernel_info_reply"),
                          ("to_server", "execute_request"), ("to_client", "execute_reply")])
        states = []
        while states[-1:] != ["status idle"]:
            message = self.recorded("iopub", lambda m: m["parent_header"].get("msg_id") == ids[1])
            states.append(" ".join([message["msg_type"], message["content"].get("execution_state", "")]).strip())
        self.assertEqual(states, ["status busy", "execute_input", "stream", "status idle"])

        # The reports show them by msg_type, on the taps' lanes:
        shown = [text for _, kind, source, text in timeline.current().lines() if source == "iopub"]
        self.assertRegex(shown[-1], r"^status \w+ \(re \w+\) execution_state='idle'$")

        # Signed with another key, a message fails to decode, saying so:
        with self.assertRaisesRegex(codecs.CodecError, r"^bad signature on the Jupyter message 'execute_reply'"):
            codecs.jupyter("not-the-key").decode(shell[3].frames)
