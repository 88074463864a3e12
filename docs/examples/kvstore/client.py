"""The service's async client library: what the service's users import and call.

:class:`KVClient` talks to the service over one zmq.asyncio DEALER socket. Requests
carry an id, so calls may be awaited concurrently (a ``watch`` waiting while other
calls go on): one reader task hands each reply to the call that waits for it. Like
many client libraries, it bounds each call by a timeout of its own (a watch excepted).
"""
import asyncio
import itertools
import json

import zmq
import zmq.asyncio

#: Seconds a call waits for its reply before it raises TimeoutError.
DEFAULT_TIMEOUT = 10.0


class KVError(Exception):
    """The service refused a request."""


class KVClient:
    """An async client of the key-value service at *endpoint*.

    *context*: the :class:`zmq.asyncio.Context` to make the socket in (a new one, owned
    and terminated by the client, if not given). Close the client with ``await
    client.close()``, or use it as ``async with KVClient(endpoint) as client:``.
    """

    def __init__(self, endpoint, context=None, timeout=DEFAULT_TIMEOUT):
        self.owns_context = context is None
        self.context = zmq.asyncio.Context() if context is None else context
        self.timeout = timeout
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.ids = itertools.count(1)
        self.waiting = {}  # request id -> the future of the call that waits for its reply
        self.reader = None

    async def put(self, key, value):
        await self.call(["put", key, value], self.timeout)

    async def get(self, key):
        """The value of *key*; KeyError if the store has none."""
        return await self.call(["get", key], self.timeout)

    async def watch(self, key):
        """The value of *key*'s next put, once it happens (no timeout: it may take long)."""
        return await self.call(["watch", key], None)

    async def call(self, request, timeout):
        if self.reader is None:
            self.reader = asyncio.ensure_future(self.read_replies())
        request_id = next(self.ids)
        reply = self.waiting[request_id] = asyncio.get_running_loop().create_future()
        try:
            await self.sock.send_multipart([b"", json.dumps([request_id, *request]).encode()])
            status, value = await asyncio.wait_for(reply, timeout)
        finally:
            del self.waiting[request_id]
        if status == "missing":
            raise KeyError(value)
        if status != "ok":
            raise KVError(value)
        return value

    async def read_replies(self):
        while True:
            frames = await self.sock.recv_multipart()
            request_id, status, value = json.loads(frames[-1])
            reply = self.waiting.get(request_id)
            if reply is not None and not reply.done():  # not a call that gave up (timed out)
                reply.set_result((status, value))

    async def close(self):
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        self.sock.close()
        if self.owns_context:
            self.context.term()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()
