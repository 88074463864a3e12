"""The key-value example's client library (docs/examples/kvstore) against a service with a
planted crash: test cases that tests/test_async_example.py runs inside (not collected directly)."""
import time

import zmq

from zmqprocesstest import ProcessTestCase

from ..support import EXAMPLES  # noqa: F401  (puts the example app on sys.path)
from kvstore.client import KVClient
from kvstore.service import KVService

#: When the test's await started and ended (time.monotonic()), by name.
TIMES = {}
#: Clients a test left open on purpose, for the outer test to close.
UNCLOSED = []
#: The client's own timeout: the death must show long before it.
CLIENT_TIMEOUT = 15.0


class ForgetfulKVService(KVService):
    """The planted bug: a get of a missing key raises KeyError in the service, which dies of it."""

    def get(self, request_id, key):
        return [request_id, "ok", self.data[key]]


class DiesDuringACall(ProcessTestCase):
    run_timeout = 20.0

    def setUp(self):
        self.proc = self.start_process(ForgetfulKVService, self.endpoint)

    async def asyncSetUp(self):
        self.client = KVClient(self.endpoint, timeout=CLIENT_TIMEOUT)
        self.addAsyncCleanup(self.client.close)

    async def test_in_a_client_call(self):
        await self.client.put("colour", "green")
        TIMES["sent"] = time.monotonic()
        try:
            await self.client.get("shape")  # DIES IN A CLIENT CALL
        finally:  # the await ends (cancelled), then the test fails with ProcessDied
            TIMES["ended"] = time.monotonic()

    async def test_between_yields(self):
        dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")
        yield ("send", dealer, [b""], [1, "put", "colour", "green"])
        yield ("recv", dealer)
        TIMES["sent"] = time.monotonic()
        try:
            await self.client.get("shape")  # DIES BETWEEN YIELDS
        finally:
            TIMES["ended"] = time.monotonic()

    async def test_in_a_yielded_event(self):
        dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")
        yield ("send", dealer, [b""], [1, "get", "shape"])
        TIMES["sent"] = time.monotonic()
        try:
            yield ("recv", dealer)  # DIES IN AN EVENT
        finally:
            TIMES["ended"] = time.monotonic()


class LeftBehind(ProcessTestCase):
    """The example's client used carelessly, against the correct service."""

    run_timeout = 10.0

    def setUp(self):
        self.proc = self.start_process(KVService, self.endpoint)

    async def test_client_never_closed(self):
        client = KVClient(self.endpoint)  # no addAsyncCleanup(client.close): its reader task runs on
        UNCLOSED.append(client)
        await client.put("colour", "green")

    async def test_call_never_awaited(self):
        async with KVClient(self.endpoint) as client:
            client.put("colour", "green")  # NOT AWAITED
            with self.assertRaises(KeyError):
                await client.get("colour")
