"""The process under test: a key-value store served on zmq.asyncio.

It binds a ROUTER socket; each request is one JSON frame after the empty delimiter,
``[id, operation, *arguments]``, and each reply ``[id, status, value]``:

* ``[id, "put", key, value]``: store *value*, reply ``[id, "ok", null]``;
* ``[id, "get", key]``: reply ``[id, "ok", value]``, or ``[id, "missing", key]``;
* ``[id, "watch", key]``: reply ``[id, "ok", value]`` at the next put of *key*, while
  the other requests go on being served;
* anything else: ``[id, "error", "..."]``.

One coroutine serves every client: a pending watch holds no task, only the envelope to
answer. It stops on SIGINT (KeyboardInterrupt), closing its socket.
"""
import asyncio
import json
import multiprocessing
import signal
import sys

import zmq
import zmq.asyncio


class KVService(multiprocessing.Process):
    """Binds *endpoint* and serves the store until SIGINT."""

    def __init__(self, endpoint):
        super().__init__(name="kvservice")
        self.endpoint = endpoint
        self.data = {}
        self.watchers = {}  # key -> [(envelope, request id)]

    def run(self):
        try:
            asyncio.run(self.serve())
        except KeyboardInterrupt:
            pass  # stopped with SIGINT: serve()'s clean-up has run
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second SIGINT must not cut the exit short

    async def serve(self):
        context = zmq.asyncio.Context()
        sock = context.socket(zmq.ROUTER)
        sock.linger = 0
        try:
            sock.bind(self.endpoint)
            while True:
                frames = await sock.recv_multipart()
                envelope, body = frames[:-1], frames[-1]
                for to, reply in self.handle(envelope, body):
                    await sock.send_multipart(to + [json.dumps(reply).encode()])
        finally:
            sock.close()
            context.term()

    def handle(self, envelope, body):
        """The replies one request makes: [(envelope, reply)]."""
        try:
            request_id, operation, *args = json.loads(body)
        except (ValueError, TypeError):
            return [(envelope, [None, "error", "expected a JSON [id, operation, *arguments] request"])]
        if operation == "put" and len(args) == 2:
            key, value = args
            self.data[key] = value
            woken = [(to, [watch_id, "ok", value]) for to, watch_id in self.watchers.pop(key, [])]
            return [(envelope, [request_id, "ok", None])] + woken
        if operation == "get" and len(args) == 1:
            return [(envelope, self.get(request_id, args[0]))]
        if operation == "watch" and len(args) == 1:
            self.watchers.setdefault(args[0], []).append((envelope, request_id))
            return []
        return [(envelope, [request_id, "error", f"unknown request: {operation} with {len(args)} argument(s)"])]

    def get(self, request_id, key):
        if key not in self.data:
            return [request_id, "missing", key]
        return [request_id, "ok", self.data[key]]


def main(argv=None):
    """``python -m kvstore.service ENDPOINT``: run the service in the foreground."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m kvstore.service ENDPOINT")
    print(f"kvstore: serving on {argv[0]}", flush=True)
    KVService(argv[0]).run()
    print("kvstore: stopped", flush=True)


if __name__ == "__main__":
    main()
