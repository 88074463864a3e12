"""Coroutine test cases that tests/test_async.py runs inside (not collected directly).

tests/test_async.py also copies this file into a temporary directory as a test module,
with ASYNC_SAMPLE_SMOKE set, and runs its smoke cases under nose2 and pytest.
"""
import asyncio
import os
import signal
import time

import zmq
import zmq.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqprocesstest import ProcessTestCase, SystemTestCase

try:
    from ..support import EXAMPLES  # noqa: F401  (puts the example app on sys.path)
except ImportError:  # copied into a temporary directory: PYTHONPATH has the examples
    pass
from pingpong.faulty import CrashingProc
from pingpong.pongproc import PongProc

def reply_then_exit(endpoint):
    """Answer one request, then exit with code 0 (what it sent just before must not be lost)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind(endpoint)
    sock.recv()
    sock.send(b"last words")
    sock.close(linger=-1)
    ctx.term()


ORDER = []
TIMES = {}


def log(what):
    ORDER.append(what)


class Smoke(ProcessTestCase):
    """Passes under every runner: the smoke the child runners count."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)

    async def test_coroutine(self):
        self.assertIs(asyncio.get_running_loop(), self._zpt_aio.loop)  # its own loop: no plugin took over
        await asyncio.sleep(0)
        self.req.send_json(["ping", 1])  # a test socket, called from the coroutine
        self.assertEqual(self.req.recv_json(), ["pong", 1])

    async def test_async_generator(self):
        yield ("send", self.req, [], ["ping", 2])
        await asyncio.sleep(0)
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 2]])

    async def test_own_asyncio_socket(self):
        ctx = zmq.asyncio.Context()
        self.addCleanup(ctx.destroy, 0)
        sock = ctx.socket(zmq.REQ)
        sock.connect(self.endpoint)
        await sock.send_multipart([b'["ping", 3]'])
        reply = await asyncio.wait_for(sock.recv_multipart(), 5)
        self.assertEqual(reply, [b'["pong", 3]'])


    async def test_awaited_test_socket_and_asyncio_context(self):
        await self.req.asyncio.send_json(["ping", 4])
        self.assertEqual(await self.req.asyncio.recv_json(), ["pong", 4])
        sock = self.asyncio_context.socket(zmq.REQ)
        self.addCleanup(sock.close, 0)
        sock.connect(self.endpoint)
        await sock.send_multipart([b'["ping", 5]'])
        self.assertEqual(await sock.recv_multipart(), [b'["pong", 5]'])

    @settings(max_examples=3, deadline=None, database=None)
    @given(n=st.integers(0, 100))
    async def test_given(self, n):
        yield ("send", self.req, [], ["ping", n])
        self.assertEqual((yield ("recv", self.req)), [["pong", n]])
        await self.req.asyncio.send_json(["ping", n + 1])
        self.assertEqual(await self.req.asyncio.recv_json(), ["pong", n + 1])


class SystemSmoke(SystemTestCase):
    async def test_system(self):
        await asyncio.sleep(0)
        self.assertTrue(True)


if os.environ.get("ASYNC_SAMPLE_SMOKE"):
    del ORDER  # only the smoke runs in a child runner
else:
    class Order(ProcessTestCase):
        def setUp(self):
            log("setUp")
            self.addAsyncCleanup(self.cleanup, "async cleanup from setUp")

        async def asyncSetUp(self):
            log("asyncSetUp")
            self.addAsyncCleanup(self.cleanup, "async cleanup from asyncSetUp")

        async def cleanup(self, what):
            asyncio.get_running_loop()  # on a running loop
            log(what)

        async def asyncTearDown(self):
            log("asyncTearDown")

        def tearDown(self):
            log("tearDown")

        async def test_order(self):
            log("test")
            self.addCleanup(log, "cleanup from test")
            self.addAsyncCleanup(self.cleanup, "async cleanup from test")
            TIMES["loop"] = asyncio.get_running_loop()

        async def test_fails(self):
            log("test")
            self.fail("on purpose")

        async def test_returns(self):
            return 5

        def test_plain(self):
            log("plain test")

        def test_generator(self):
            log("generator test")
            yield from ()

    class Stuck(ProcessTestCase):
        run_timeout = 1.0

        async def test_await(self):
            await asyncio.sleep(30)  # STUCK AWAIT

        async def test_blocks(self):
            time.sleep(30)  # STUCK BLOCK

        async def test_swallows(self):
            while True:
                try:
                    await asyncio.sleep(30)  # STUCK SWALLOW
                except asyncio.CancelledError:
                    pass

        async def test_async_generator_awaits(self):
            self.assertEqual((yield ("noop",)), "done")
            await asyncio.sleep(30)  # STUCK BETWEEN YIELDS

        def noop(self):
            return "done"

        async def test_callback_blocks(self):
            asyncio.get_running_loop().call_soon(time.sleep, 30)
            await asyncio.sleep(30)  # STUCK BEHIND CALLBACK

        async def test_background_task_blocks(self):
            async def blocks():
                time.sleep(30)
            task = asyncio.ensure_future(blocks())
            await asyncio.sleep(30)  # STUCK BEHIND TASK
            await task

    class Left(ProcessTestCase):
        async def test_pending_task(self):
            asyncio.ensure_future(asyncio.sleep(30))  # CREATES PENDING

        async def test_background_exception(self):
            async def boom():
                raise ValueError("boom in the background")
            asyncio.ensure_future(boom())  # CREATES FAILING
            await asyncio.sleep(0.01)

        async def test_never_awaited(self):
            asyncio.sleep(1)  # NEVER AWAITED

        async def test_handler_exception(self):
            asyncio.get_running_loop().call_soon(int, "not a number")
            await asyncio.sleep(0.01)

        async def test_clean(self):
            task = asyncio.ensure_future(asyncio.sleep(0))
            await task

    class Events(ProcessTestCase):
        def setUp(self):
            self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
            self.proc = self.start_process(PongProc, self.endpoint)

        async def test_send_back_and_throw_back(self):
            yield ("send", self.req, [], ["ping", 7])
            reply = yield ("recv", self.req)
            TIMES["reply"] = reply
            try:
                yield ("no_such_event",)
            except TypeError as exc:  # what a generator test sees: the error thrown at the yield
                TIMES["thrown"] = type(exc).__name__

        async def test_fails_at_yield(self):
            yield ("no_such_event",)  # BAD EVENT

    class Deaths(ProcessTestCase):
        run_timeout = 20.0

        async def test_crash_in_own_socket_recv(self):
            self.start_process(CrashingProc, self.endpoint)
            ctx = zmq.asyncio.Context()
            self.addCleanup(ctx.destroy, 0)
            sock = ctx.socket(zmq.REQ)
            sock.connect(self.endpoint)
            await sock.send_multipart([b'["crash", 3]'])
            TIMES["sent"] = time.monotonic()
            try:
                await sock.recv_multipart()  # DIES HERE
            finally:  # the await ends (cancelled), then the test fails with ProcessDied
                TIMES["ended"] = time.monotonic()

        async def test_reply_before_a_clean_exit(self):
            proc = self.start_process(reply_then_exit, self.endpoint)
            ctx = zmq.asyncio.Context()
            self.addCleanup(ctx.destroy, 0)
            sock = ctx.socket(zmq.REQ)
            sock.connect(self.endpoint)
            await sock.send(b"last request")
            TIMES["reply"] = await sock.recv()
            # Its exit is the test's to wait for: a test that ended first would have the
            # process stopped (SIGINT) in the middle of its ctx.term(), a failed stop.
            self.wait_exit(proc)

        async def test_killed_in_sleep(self):
            proc = self.start_process(CrashingProc, self.endpoint)

            def kill():
                TIMES["killed"] = time.monotonic()
                os.kill(proc.pid, signal.SIGKILL)
            asyncio.get_running_loop().call_later(0.2, kill)
            try:
                await asyncio.sleep(20)  # KILLED HERE
            finally:
                TIMES["ended"] = time.monotonic()

    class SharedDeath(ProcessTestCase):
        run_timeout = 20.0

        @classmethod
        def setUpClass(cls):
            super().setUpClass()
            cls.ep = cls.new_endpoint()
            cls.proc = cls.start_process(CrashingProc, cls.ep)

        async def test_shared_process_killed(self):
            proc = self.proc
            asyncio.get_running_loop().call_soon(os.kill, proc.pid, signal.SIGKILL)
            await asyncio.sleep(20)  # SHARED KILLED HERE

    class StuckPhases(ProcessTestCase):
        run_timeout = 1.0

        async def asyncSetUp(self):
            if self._testMethodName == "test_set_up":
                await asyncio.sleep(30)  # STUCK ASYNCSETUP

        async def stuck_cleanup(self):
            await asyncio.sleep(30)  # STUCK CLEANUP

        async def test_set_up(self):
            pass

        async def test_cleanup(self):
            self.addAsyncCleanup(self.stuck_cleanup)

    KEPT = []

    class Late(ProcessTestCase):
        async def test_keeps_a_failed_task(self):
            async def boom():
                raise ValueError("told late")
            task = asyncio.ensure_future(boom())
            await asyncio.sleep(0.01)
            KEPT.append(task)  # still referenced when the test ends: its loop cannot tell yet


if not os.environ.get("ASYNC_SAMPLE_SMOKE"):
    class SocketWaits(ProcessTestCase):
        """Test sockets awaited on the loop: a background task runs while the test waits."""

        def setUp(self):
            self.a = self.socket(zmq.PAIR, bind=self.endpoint, name="a", timeout=2.0)
            self.b = self.socket(zmq.PAIR, connect=self.endpoint, name="b")

        def later(self, frames):
            """A background task that sends on b after a while: it runs only if the loop does."""
            async def send_later():
                await asyncio.sleep(0.05)
                self.b.send_multipart(frames)
            return asyncio.ensure_future(send_later())

        async def test_await_recv(self):
            task = self.later([b'{"n": 1}'])
            TIMES["reply"] = await self.a.asyncio.recv_json()
            await task

        async def test_yield_recv(self):
            task = self.later([b'["x", 2]'])
            TIMES["reply"] = yield ("recv", self.a)
            await task

        async def test_await_times_out(self):
            await self.a.asyncio.recv_multipart(timeout=0.2)  # AWAIT TIMES OUT

        async def test_yield_times_out(self):
            yield ("recv", self.a, -1, 0.2)  # YIELD TIMES OUT

        async def test_send_and_poll(self):
            await self.b.asyncio.send_multipart([b"one", b"two"])
            await self.b.asyncio.send_string("three")
            await self.b.asyncio.send_json({"four": 4})
            self.assertTrue(await self.a.asyncio.poll(2))
            self.assertEqual(await self.a.asyncio.recv_multipart(), [b"one", b"two"])
            self.assertEqual(await self.a.asyncio.recv_string(), "three")
            self.assertEqual((yield ("recv", self.a)), [{"four": 4}])
            self.assertFalse(await self.a.asyncio.poll(0.01))

        async def test_a_wrong_state_is_told_at_once(self):
            req = self.socket(zmq.REQ, connect=self.new_endpoint())
            await req.asyncio.recv(timeout=5)  # WRONG STATE

        async def test_two_waiters_on_one_socket(self):
            first = asyncio.ensure_future(self.a.asyncio.recv(timeout=1))
            await asyncio.sleep(0)
            try:
                await self.a.asyncio.recv(timeout=1)
            finally:
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)

        async def request(self, sock, n):
            """An event of the test's own, awaited: the loop runs while it waits."""
            await sock.asyncio.send_json(["ping", n])
            return await sock.asyncio.recv_json()

        async def take(self, sock):
            """An event of the test's own that only another task can answer."""
            return await sock.asyncio.recv_json()

        async def test_own_async_event(self):
            self.start_process(PongProc, self.endpoint_pong)
            req = self.socket(zmq.REQ, connect=self.endpoint_pong, name="req")
            TIMES["reply"] = yield ("request", req, 5)

            async def answer():
                await asyncio.sleep(0)
                await self.b.asyncio.send_json(["from", "a task"])
            task = asyncio.ensure_future(answer())
            TIMES["taken"] = yield ("take", self.a)  # a loop blocked here would never run the task
            await task

        @property
        def endpoint_pong(self):
            if not hasattr(self, "_pong"):
                self._pong = self.new_endpoint()
            return self._pong

    class SocketDeaths(ProcessTestCase):
        run_timeout = 20.0

        def setUp(self):
            self.idle = self.socket(zmq.PULL, bind=self.new_endpoint(), name="idle", timeout=15)
            self.proc = self.start_process(CrashingProc, self.endpoint)

        def kill_soon(self):
            def kill():
                TIMES["killed"] = time.monotonic()
                os.kill(self.proc.pid, signal.SIGKILL)
            asyncio.get_running_loop().call_later(0.2, kill)

        async def test_killed_in_await(self):
            self.kill_soon()
            try:
                await self.idle.asyncio.recv()  # TEST SOCKET DIES HERE
            finally:
                TIMES["ended"] = time.monotonic()

        async def test_killed_at_yield(self):
            self.kill_soon()
            try:
                yield ("recv", self.idle)  # YIELD DIES HERE
            except Exception as exc:  # thrown in at the yield, as in a generator test
                TIMES["ended"] = time.monotonic()
                TIMES["caught"] = type(exc).__name__
                raise

    class SocketCleanExit(ProcessTestCase):
        async def test_reply_before_a_clean_exit(self):
            proc = self.start_process(reply_then_exit, self.endpoint)
            req = self.socket(zmq.REQ, connect=self.endpoint, name="last")
            await req.asyncio.send(b"last request")
            TIMES["reply"] = await req.asyncio.recv()
            self.wait_exit(proc)

    class AsyncioContext(ProcessTestCase):
        def setUp(self):
            self.proc = self.start_process(PongProc, self.endpoint)

        async def test_own_sockets(self):
            ctx = self.asyncio_context
            TIMES["ctx"] = ctx
            sock = ctx.socket(zmq.REQ)
            sock.connect(self.endpoint)
            await sock.send_multipart([b'["ping", 8]'])
            TIMES["reply"] = await sock.recv_multipart()
            sock.close()
            self.assertIs(self.asyncio_context, ctx)

        async def test_left_open(self):
            sock = self.asyncio_context.socket(zmq.REQ)
            sock.connect(self.endpoint)
            await sock.send_multipart([b'["ping", 9]'])
            TIMES["sock"] = sock
