"""Coroutine tests of the key-value service: its async client library driven as its users'
code drives it, and the raw protocol on a test socket between awaits."""
import asyncio

import zmq

from zmqprocesstest import ProcessTestCase, process
from kvstore.client import KVClient, KVError
from kvstore.service import KVService


@process
class TestKVStore(ProcessTestCase):
    """``async def`` tests: the client library's calls are awaited as in an application."""

    run_timeout = 10.0  # bounds each phase: asyncSetUp, the test, each async cleanup

    def setUp(self):
        self.proc = self.start_process(KVService, self.endpoint)

    async def asyncSetUp(self):
        # The client library takes a zmq.asyncio context: give it the test's own.
        self.client = KVClient(self.endpoint, context=self.asyncio_context)
        self.addAsyncCleanup(self.client.close)  # awaited on the test's loop, after the test

    async def test_put_then_get(self):
        await self.client.put("colour", "green")
        self.assertEqual(await self.client.get("colour"), "green")

    async def test_a_missing_key(self):
        with self.assertRaises(KeyError):
            await self.client.get("shape")  # if the service dies here, the test ends at once: ProcessDied

    async def test_a_watch_is_answered_by_another_clients_put(self):
        watch = asyncio.ensure_future(self.client.watch("door"))
        with self.assertRaises(KeyError):
            await self.client.get("door")  # answered after the watch: one connection keeps the order
        async with KVClient(self.endpoint) as other:
            await other.put("door", "open")
        self.assertEqual(await watch, "open")

    async def test_calls_awaited_together(self):
        await asyncio.gather(*(self.client.put(f"key{n}", n) for n in range(10)))
        values = await asyncio.gather(*(self.client.get(f"key{n}") for n in range(10)))
        self.assertEqual(values, list(range(10)))


@process
class TestKVProtocol(ProcessTestCase):
    """An async generator test: events on a test socket, and awaits between them."""

    run_timeout = 10.0

    def setUp(self):
        self.proc = self.start_process(KVService, self.endpoint)
        self.dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")

    async def asyncSetUp(self):
        self.client = KVClient(self.endpoint)
        self.addAsyncCleanup(self.client.close)

    async def test_the_protocol_and_the_client_agree(self):
        yield ("send", self.dealer, [b""], [1, "put", "colour", "blue"])
        reply = yield ("recv", self.dealer)
        self.assertEqual(reply, [b"", [1, "ok", None]])
        self.assertEqual(await self.client.get("colour"), "blue")  # an await between two yields

    async def test_a_watch_is_answered_by_a_put_on_the_test_socket(self):
        watch = asyncio.ensure_future(self.client.watch("colour"))
        with self.assertRaises(KeyError):
            await self.client.get("colour")  # the watch is registered
        yield ("send", self.dealer, [b""], [2, "put", "colour", "red"])
        self.assertEqual((yield ("recv", self.dealer)), [b"", [2, "ok", None]])
        self.assertEqual(await watch, "red")

    async def test_an_unknown_request(self):
        yield ("send", self.dealer, [b""], [3, "shout", "colour"])
        reply = yield ("recv", self.dealer)
        self.assertEqual(reply, [b"", [3, "error", "unknown request: shout with 1 argument(s)"]])
        with self.assertRaises(KVError):
            await self.client.call(["shout"], timeout=5.0)


@process
class TestSharedKVStore(ProcessTestCase):
    """One service for the whole class serves its coroutine tests, each with a client of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ep = cls.new_endpoint()
        cls.proc = cls.start_process(KVService, cls.ep)

    async def asyncSetUp(self):
        self.client = KVClient(self.ep)
        self.addAsyncCleanup(self.client.close)

    async def test_put(self):
        await self.client.put(self.id(), "written")
        self.assertEqual(await self.client.get(self.id()), "written")

    async def test_another_client_sees_the_same_store(self):
        await self.client.put("shared", 1)
        async with KVClient(self.ep) as other:
            self.assertEqual(await other.get("shared"), 1)
