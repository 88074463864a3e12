"""The echo server: answers every ``["echo", data]`` with ``["echo", data]``.

It binds a REP socket on the endpoint it is given, speaks JSON, answers anything else
with ``["error", ...]`` and stops on ``["stop", None]`` or on SIGINT
(KeyboardInterrupt), closing its socket and context either way.
"""
import json
import multiprocessing
import sys

import zmq


class EchoServer(multiprocessing.Process):
    """Binds *endpoint* and echoes until told to stop."""

    def __init__(self, endpoint):
        super().__init__(name="echoserver")
        self.endpoint = endpoint

    def run(self):
        context = sock = None
        try:
            context = zmq.Context()
            sock = context.socket(zmq.REP)
            sock.linger = 0
            sock.bind(self.endpoint)
            self.serve(sock)
        except KeyboardInterrupt:
            pass  # stopped with SIGINT: fall through to the clean-up
        finally:
            if sock is not None:
                sock.close()
            if context is not None:
                context.term()

    def serve(self, sock):
        while True:
            try:
                msg_type, data = json.loads(sock.recv())
            except (ValueError, TypeError):
                sock.send(json.dumps(["error", "expected a JSON [type, data] message"]).encode())
                continue
            if msg_type == "stop":
                sock.send(json.dumps(["stopped", None]).encode())
                sock.linger = 1000  # deliver that reply before the socket closes
                return
            if msg_type == "echo":
                sock.send(json.dumps(["echo", data]).encode())
            else:
                sock.send(json.dumps(["error", f"unknown message type: {msg_type}"]).encode())


def main(argv=None):
    """``python -m echoapp.server ENDPOINT``: run the server in the foreground."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m echoapp.server ENDPOINT")
    EchoServer(argv[0]).run()


if __name__ == "__main__":
    main()
