"""The client library: what the key-value server's users import and call.

Like many client libraries, it is synchronous and has no timeout: each call sends a
request and blocks in a raw ``recv()`` until the reply comes, however long that takes.
"""
import zmq


class KVClient:
    """A client of the key-value server at *endpoint*, on a REQ socket.

    *context*: the :class:`zmq.Context` to make the socket in (a new one, owned and
    terminated by :meth:`close`, if not given).
    """

    def __init__(self, endpoint, context=None):
        self.owns_context = context is None
        self.context = zmq.Context() if context is None else context
        self.sock = self.context.socket(zmq.REQ)
        self.sock.linger = 0
        self.sock.connect(endpoint)

    def call(self, **request):
        self.sock.send_json(request)
        return self.sock.recv_json()  # blocks until the reply: no timeout

    def put(self, key, value):
        self.call(op="put", key=key, value=value)

    def get(self, key):
        return self.call(op="get", key=key)

    def shutdown(self):
        """Ask the server to exit; its last reply."""
        return self.call(op="shutdown")

    def close(self):
        self.sock.close()
        if self.owns_context:
            self.context.term()
