"""The key-value example's first test as it was before zmqprocesstest, twice: on
IsolatedAsyncioTestCase and on pytest-asyncio. "Testing asyncio code" (docs/howto) shows
them beside their ProcessTestCase version (test_kvstore.py); tests/test_async_example.py
runs this module under pytest, where both pass.

Not a test module of the examples (its name does not start with "test"): the runners of
docs/examples collect only ProcessTestCase tests there.
"""
import os
import shutil
import tempfile
import unittest

import pytest
import pytest_asyncio

from kvstore.client import KVClient
from kvstore.service import KVService


class TestKVStoreBefore(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        self.endpoint = f"ipc://{os.path.join(folder, 'kv')}"
        self.service = KVService(self.endpoint)
        self.service.start()
        self.addCleanup(self.service.join, 5)
        self.addCleanup(self.service.terminate)

    async def asyncSetUp(self):
        self.client = KVClient(self.endpoint)
        self.addAsyncCleanup(self.client.close)

    async def test_put_then_get(self):
        await self.client.put("colour", "green")
        self.assertEqual(await self.client.get("colour"), "green")


@pytest.fixture
def endpoint(tmp_path):
    endpoint = f"ipc://{tmp_path / 'kv'}"
    service = KVService(endpoint)
    service.start()
    yield endpoint
    service.terminate()
    service.join(5)


@pytest_asyncio.fixture
async def client(endpoint):
    async with KVClient(endpoint) as client:
        yield client


@pytest.mark.asyncio
async def test_put_then_get(client):
    await client.put("colour", "green")
    assert await client.get("colour") == "green"
