"""A client library under test whose calls block without a timeout, and its server.

:class:`Client` is what a project's own SDK looks like: ``get()`` sends a request and
blocks in a raw ``recv()`` with no timeout. :func:`serve` answers ``get`` and, asked to,
dies: ``die`` exits with code 3 without a reply (noting when, in *died_at*), ``kill``
is SIGKILLed, ``later`` replies and exits with code 3 *ms* milliseconds after the reply is sent, ``stop``
replies ``bye`` and exits cleanly.
"""
import json
import os
import signal
import time

import zmq


class Client:
    """A blocking client: no timeout anywhere, as many client libraries are."""

    def __init__(self, context, endpoint):
        self.sock = context.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def call(self, **request):
        self.sock.send_string(json.dumps(request))
        return json.loads(self.sock.recv_string())  # blocks until the reply, however long

    def get(self, key):
        return self.call(op="get", key=key)

    def close(self):
        self.sock.close(linger=0)


def serve(endpoint, died_at=None):
    sock = zmq.Context.instance().socket(zmq.REP)
    sock.bind(endpoint)
    while True:
        try:
            request = json.loads(sock.recv_string())
        except KeyboardInterrupt:  # its stop: SIGINT
            sock.close(linger=0)
            return
        op = request["op"]
        if op == "get":
            if request["key"] == "die":
                if died_at:
                    with open(died_at, "w") as f:
                        f.write(repr(time.monotonic()))
                os._exit(3)
            if request["key"] == "kill":
                if died_at:
                    with open(died_at, "w") as f:
                        f.write(repr(time.monotonic()))
                os.kill(os.getpid(), signal.SIGKILL)
            sock.send_string(json.dumps({"key": request["key"], "value": request["key"].upper()}))
        elif op == "later":
            sock.send_string(json.dumps("ok"))
            sock.close(linger=1000)  # the reply is sent (handed to the kernel) before the exit
            zmq.Context.instance().term()
            time.sleep(request["ms"] / 1000)
            if died_at:
                with open(died_at, "w") as f:
                    f.write(repr(time.monotonic()))
            os._exit(3)
        elif op == "stop":
            sock.send_string(json.dumps("bye"))
            sock.close(linger=1000)
            zmq.Context.instance().term()
            return


# -- the tests, as a user writes them (run in-process by tests/test_deaths.py, and copied
# as test_blocked_sample.py under unittest, nose2 and pytest) ------------------------------
import queue  # noqa: E402
import select  # noqa: E402

from zmqprocesstest import ProcessDied, ProcessTestCase  # noqa: E402

#: When set, each test appends "name seconds" to this file: from the server's death (or
#: the request, for a death nobody notes) to ProcessDied at the test's line.
OUT_ENV = "BLOCKED_SAMPLE_OUT"
#: Latencies of the tests run in this process, by test name.
LATENCIES = {}


class BlockedClient(ProcessTestCase):
    """Every test but the one that stops the server on purpose fails with ProcessDied."""

    run_timeout = 20  # a hang would take this long: each test must end far sooner

    def setUp(self):
        self.died_at = os.path.join(self.tmpdir, "died")
        self.server = self.start_process(serve, self.endpoint, self.died_at)
        self.client = Client(self.context, self.endpoint)
        self.addCleanup(self.client.close)
        self.assertEqual(self.client.get("a")["value"], "A")  # it serves

    def noted(self):
        """Note how long after the server's death ProcessDied came (then re-raise it)."""
        now = time.monotonic()
        with open(self.died_at) as f:
            seconds = now - float(f.read())
        LATENCIES[self._testMethodName] = seconds
        out = os.environ.get(OUT_ENV)
        if out:
            with open(out, "a") as f:
                f.write(f"{self._testMethodName} {seconds:.6f}\n")

    def test_a_server_that_dies_during_get(self):
        try:
            self.client.get("die")  # DIES HERE: get
        except ProcessDied:
            self.noted()
            raise

    def test_a_server_killed_during_get(self):
        try:
            self.client.get("kill")  # DIES HERE: kill
        except ProcessDied:
            self.noted()
            raise

    def test_a_server_that_dies_during_get_in_a_generator_test(self):
        yield ("wait_endpoint", self.endpoint)
        try:
            self.client.get("die")  # DIES HERE: generator
        except ProcessDied:
            self.noted()
            raise

    def test_a_server_stopped_on_purpose_by_a_raw_message(self):
        self.assertEqual(self.client.call(op="stop"), "bye")  # it replies, then exits
        code = yield ("wait_exit", self.server)
        self.assertEqual(code, 0)

    def test_time_sleep(self):
        self.assertEqual(self.client.call(op="later", ms=20), "ok")
        try:
            time.sleep(60)  # DIES HERE: sleep
        except ProcessDied:
            self.noted()
            raise

    def test_queue_get(self):
        self.assertEqual(self.client.call(op="later", ms=20), "ok")
        try:
            queue.Queue().get()  # DIES HERE: queue
        except ProcessDied:
            self.noted()
            raise

    def test_select(self):
        self.assertEqual(self.client.call(op="later", ms=20), "ok")
        try:
            select.select([], [], [])  # DIES HERE: select
        except ProcessDied:
            self.noted()
            raise


class AskedDeaths(ProcessTestCase):
    """Deaths the test asked for: none of these tests is interrupted, and each passes."""

    run_timeout = 20

    def setUp(self):
        self.server = self.start_process(serve, self.endpoint)
        self.client = Client(self.context, self.endpoint)
        self.addCleanup(self.client.close)
        self.exited = self.managed(self.server).pidfd  # readable once it has exited

    def block_past_its_exit(self):
        """Blocking calls of the test's own: one that ends at the exit, then one that
        lasts past it (the window in which an interruption would come, 20 times its bound)."""
        self.assertEqual(select.select([self.exited], [], [], 10)[0], [self.exited])
        time.sleep(0.1)  # DIES HERE: not asked

    def test_allow_exit(self):
        self.allow_exit(self.server)
        self.assertEqual(self.client.call(op="later", ms=20), "ok")
        self.block_past_its_exit()
        self.assertEqual(self.wait_exit(self.server, None, 3), 3)

    def test_allow_exit_as_a_context_manager(self):
        with self.allow_exit(self.server):
            self.assertEqual(self.client.call(op="later", ms=20), "ok")
            self.block_past_its_exit()
        self.assertFalse(self.managed(self.server).watched)

    def test_a_signal_event(self):
        self.assertEqual(self.client.get("a")["value"], "A")  # it serves: it takes the signal at once
        yield ("signal", self.server, signal.SIGTERM)
        self.block_past_its_exit()
        yield ("wait_exit", self.server, None, -signal.SIGTERM)

    def test_stop_process(self):
        self.stop_process(self.server)


class WatchedAgain(ProcessTestCase):
    """allow_exit as a context manager: a process still running at the block's end is watched again."""

    run_timeout = 20

    def test_it(self):
        server = self.start_process(serve, self.endpoint)
        client = Client(self.context, self.endpoint)
        self.addCleanup(client.close)
        with self.allow_exit(server):
            self.assertEqual(client.get("a")["value"], "A")
        self.assertTrue(self.managed(server).watched)
        client.get("die")  # DIES HERE: watched again


class LibraryWaits(ProcessTestCase):
    """The library's own waits report a death themselves, once."""

    run_timeout = 20

    def test_a_test_socket_wait(self):
        import zmq as _zmq
        self.start_process(serve, self.endpoint)
        req = self.socket(_zmq.REQ, connect=self.endpoint, timeout=10)
        yield ("send_raw", req, [json.dumps({"op": "get", "key": "die"})])
        yield ("recv_raw", req)  # DIES HERE: socket


class CoroutineBlocked(ProcessTestCase):
    """A coroutine test: blocked in plain code (the loop cannot run), or awaiting."""

    run_timeout = 20

    async def test_blocked_in_plain_code(self):
        server = self.start_process(serve, self.endpoint)
        client = Client(self.context, self.endpoint)
        self.addCleanup(client.close)
        self.assertEqual(server.is_alive(), True)
        client.get("die")  # DIES HERE: coroutine blocked

    async def test_awaiting(self):
        import zmq.asyncio
        self.start_process(serve, self.endpoint)
        sock = zmq.asyncio.Context(self.context).socket(zmq.REQ)  # the test's context: closed with it
        self.addCleanup(sock.close, 0)
        sock.connect(self.endpoint)
        await sock.send_string(json.dumps({"op": "get", "key": "die"}))
        await sock.recv_string()  # DIES HERE: coroutine awaiting


class NotAsked(AskedDeaths):
    """The same blocking call as AskedDeaths.test_allow_exit, the exit not allowed: interrupted."""

    def test_allow_exit(self):
        self.assertEqual(self.client.call(op="later", ms=20), "ok")
        self.block_past_its_exit()

    test_allow_exit_as_a_context_manager = test_a_signal_event = test_stop_process = None


class ReplyThenExit(ProcessTestCase):
    """A reply sent just before the exit: the client's raw recv gets it, every round."""

    run_timeout = 60
    rounds = 20

    def test_it(self):
        for _ in range(self.rounds):
            endpoint = self.new_endpoint()
            server = self.start_process(serve, endpoint)
            client = Client(self.context, endpoint)
            try:
                self.assertEqual(client.call(op="later", ms=0), "ok")  # it exits (code 3) right after
                self.wait_exit(server, 10, 3)
            finally:
                client.close()


class SharedServer(ProcessTestCase):
    """A process the class shares is watched in each test's blocking calls too."""

    run_timeout = 20

    @classmethod
    def setUpClass(cls):
        cls.shared_endpoint = cls.new_endpoint()
        cls.start_process(serve, cls.shared_endpoint)

    def test_it(self):
        client = Client(self.context, self.shared_endpoint)
        self.addCleanup(client.close)
        client.get("die")  # DIES HERE: shared
