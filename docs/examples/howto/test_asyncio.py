"""Coroutine tests: an ``async def`` test and an async generator test, on zmq.asyncio."""
import asyncio

import zmq
import zmq.asyncio

from zmqprocesstest import ProcessTestCase, process
from pingpong.pongproc import PongProc


@process
class TestAsyncPong(ProcessTestCase):
    run_timeout = 10.0  # bounds each phase: the test, asyncSetUp, each async cleanup...

    def setUp(self):
        self.proc = self.start_process(PongProc, self.endpoint)

    async def asyncSetUp(self):
        # Your own zmq.asyncio socket, as your application's client code makes it.
        self.ctx = zmq.asyncio.Context()
        self.addCleanup(self.ctx.destroy, 0)
        self.client = self.ctx.socket(zmq.REQ)
        self.client.connect(self.endpoint)

    async def ping(self, n):
        await self.client.send_multipart([b'["ping", %d]' % n])
        return await self.client.recv_multipart()

    async def test_ping(self):
        reply = await self.ping(1)  # if PongProc dies here, the test ends at once: ProcessDied
        self.assertEqual(reply, [b'["pong", 1]'])

    async def test_pings_together(self):
        other = self.ctx.socket(zmq.REQ)
        other.connect(self.endpoint)
        self.addCleanup(other.close, 0)
        await other.send_multipart([b'["ping", 2]'])
        replies = await asyncio.gather(self.ping(3), other.recv_multipart())
        self.assertEqual(replies, [[b'["pong", 3]'], [b'["pong", 2]']])

    async def test_events_and_awaits(self):
        req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        yield ("send", req, [], ["ping", 4])  # the events of a generator test...
        reply = yield ("recv", req)
        self.assertEqual(reply, [["pong", 4]])
        self.assertEqual(await self.ping(5), [b'["pong", 5]'])  # ...and awaits between them
