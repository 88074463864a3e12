"""The process under test: a key-value server on a REP socket.

Each request is one JSON frame, ``{"op": ..., ...}``, and each reply one JSON frame:

* ``{"op": "put", "key": K, "value": V}``: store *V*, reply ``"ok"``;
* ``{"op": "get", "key": K}``: reply the value of *K*;
* ``{"op": "shutdown"}``: reply ``"bye"``, then exit with code 0.

It has a bug, on purpose: a ``get`` of a key it does not have raises ``KeyError``, and
the server dies (exit code 1) without a reply.
"""
import json
import multiprocessing

import zmq


class KVServer(multiprocessing.Process):
    """Binds *endpoint* and serves until a ``shutdown`` request or SIGINT."""

    def __init__(self, endpoint):
        super().__init__(name="kvserver")
        self.endpoint = endpoint

    def run(self):
        context = zmq.Context()
        sock = context.socket(zmq.REP)
        sock.bind(self.endpoint)
        store = {}
        try:
            while True:
                request = json.loads(sock.recv())
                if request["op"] == "put":
                    store[request["key"]] = request["value"]
                    sock.send_json("ok")
                elif request["op"] == "get":
                    sock.send_json(store[request["key"]])  # the bug: KeyError for a missing key
                elif request["op"] == "shutdown":
                    sock.send_json("bye")
                    break
                else:
                    sock.send_json({"error": f"unknown op {request['op']!r}"})
        except KeyboardInterrupt:  # the stop protocol's SIGINT
            pass
        finally:
            sock.close(linger=1000)  # a last reply ("bye") is sent before the exit
            context.term()
