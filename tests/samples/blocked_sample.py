"""A client library under test whose calls block without a timeout, and its server.

:class:`Client` is what a project's own SDK looks like: ``get()`` sends a request and
blocks in a raw ``recv()`` with no timeout. :func:`serve` answers ``get`` and, asked to,
dies: ``die`` exits with code 3 without a reply (noting when, in *died_at*), ``kill``
is SIGKILLed, ``later`` replies and exits with code 3 *ms* milliseconds later, ``stop``
replies ``bye`` and exits cleanly.
"""
import json
import os
import signal
import time

import zmq


class Client:
    """A blocking client: no timeout anywhere, as many client libraries are."""

    def __init__(self, context, endpoint):
        self.sock = context.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def call(self, **request):
        self.sock.send_string(json.dumps(request))
        return json.loads(self.sock.recv_string())  # blocks until the reply, however long

    def get(self, key):
        return self.call(op="get", key=key)

    def close(self):
        self.sock.close(linger=0)


def serve(endpoint, died_at=None):
    sock = zmq.Context.instance().socket(zmq.REP)
    sock.bind(endpoint)
    while True:
        request = json.loads(sock.recv_string())
        op = request["op"]
        if op == "get":
            if request["key"] == "die":
                if died_at:
                    with open(died_at, "w") as f:
                        f.write(repr(time.monotonic()))
                os._exit(3)
            if request["key"] == "kill":
                if died_at:
                    with open(died_at, "w") as f:
                        f.write(repr(time.monotonic()))
                os.kill(os.getpid(), signal.SIGKILL)
            sock.send_string(json.dumps({"key": request["key"], "value": request["key"].upper()}))
        elif op == "later":
            sock.send_string(json.dumps("ok"))
            time.sleep(request["ms"] / 1000)
            if died_at:
                with open(died_at, "w") as f:
                    f.write(repr(time.monotonic()))
            os._exit(3)
        elif op == "stop":
            sock.send_string(json.dumps("bye"))
            sock.close(linger=1000)
            zmq.Context.instance().term()
            return
