"""Hypothesis's ``@given`` on generator tests: every example driven, each with fresh resources."""
import asyncio
import os
import signal
import subprocess
import sys
import time
import unittest

import zmq
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from zmqprocesstest import ProcessTestCase

from .support import ROOT, gone, only_problem, run_case
from pingpong.pongproc import PongProc  # support puts docs/examples on sys.path


class _PongCase(ProcessTestCase):
    """What the cases below share (they are run by the tests, not collected: not module attributes)."""
    seen = []  # (pid, endpoint, socket) per example
    calls = []  # setUp / tearDown, in order

    def setUp(self):
        self.calls.append("setUp")
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    def tearDown(self):
        self.calls.append("tearDown")


class _Cases:
    """The cases the tests run (not module attributes: no runner collects them)."""
    class GivenPong(_PongCase):
        @settings(max_examples=8, deadline=None, database=None)
        @given(n=st.integers(0, 1000))
        def test_ping(self, n):
            self.seen.append((self.proc.pid, self.endpoint, self.req))
            yield ("send", self.req, [], ["ping", n])
            reply = yield ("recv", self.req)
            self.assertEqual(reply, [["pong", n]])

    class GivenFailing(_PongCase):
        @settings(max_examples=50, deadline=None, database=None, derandomize=True)
        @given(n=st.integers(0, 1000))
        def test_small_pings_only(self, n):
            self.seen.append((self.proc.pid, self.endpoint, self.req))
            yield ("send", self.req, [], ["ping", n])
            reply = yield ("recv", self.req)
            self.assertLess(reply[0][1], 300)

    class PingMixin:
        """Not a test case: the metaclass converts the @given test a subclass inherits from it."""

        @settings(max_examples=3, deadline=None, database=None)
        @given(n=st.integers(0, 1000))
        def test_ping(self, n):
            self.seen.append((self.proc.pid, self.endpoint, self.req))
            yield ("send", self.req, [], ["ping", n])
            reply = yield ("recv", self.req)
            self.assertEqual(reply, [["pong", n]])

    class Inherited(PingMixin, _PongCase):
        pass


class _AsyncPongCase(_PongCase):
    loops = []

    async def asyncSetUp(self):
        self.calls.append("asyncSetUp")
        self.loops.append(asyncio.get_running_loop())

    async def asyncTearDown(self):
        self.calls.append("asyncTearDown")


class _AsyncCases:
    """Coroutine tests with @given (not module attributes: no runner collects them)."""
    class AsyncPong(_AsyncPongCase):
        @settings(max_examples=6, deadline=None, database=None)
        @given(n=st.integers(0, 1000))
        async def test_ping(self, n):
            self.seen.append((self.proc.pid, self.endpoint, self.req))
            await self.req.asyncio.send_json(["ping", n])
            self.assertEqual(await self.req.asyncio.recv_json(), ["pong", n])

    class AsyncGenFailing(_AsyncPongCase):
        @settings(max_examples=50, deadline=None, database=None, derandomize=True)
        @given(n=st.integers(0, 1000))
        async def test_small_pings_only(self, n):
            self.seen.append((self.proc.pid, self.endpoint, self.req))
            await asyncio.sleep(0)
            yield ("send", self.req, [], ["ping", n])
            reply = yield ("recv", self.req)
            self.assertLess(reply[0][1], 300)

    class AsyncPending(_AsyncPongCase):
        @settings(max_examples=5, deadline=None, database=None, derandomize=True)
        @given(n=st.integers(0, 1000))
        async def test_leaves_a_task(self, n):
            if n >= 300:
                asyncio.ensure_future(asyncio.sleep(30))
            await asyncio.sleep(0)

    class AsyncDeath(_AsyncPongCase):
        run_timeout = 20.0

        @settings(max_examples=3, deadline=None, database=None, phases=[Phase.generate])  # no shrinking
        @given(n=st.integers(0, 1000))
        async def test_killed(self, n):
            asyncio.get_running_loop().call_later(0.05, os.kill, self.proc.pid, signal.SIGKILL)
            await asyncio.sleep(15)


class TestGivenCoroutines(unittest.TestCase):
    def setUp(self):
        _PongCase.seen, _PongCase.calls, _AsyncPongCase.loops = [], [], []

    def test_each_example_of_an_async_test_runs_with_fresh_resources_and_loop(self):
        result = run_case(_AsyncCases.AsyncPong, "test_ping")
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)
        seen = _PongCase.seen
        self.assertEqual(len(seen), 6)
        for i, what in enumerate(("process", "endpoint", "socket")):
            self.assertEqual(len({entry[i] for entry in seen}), 6, f"each example needs its own {what}")
        for pid, _, _ in seen:
            self.assertTrue(gone(pid), f"the process of an example ({pid}) is still running")
        self.assertEqual(_PongCase.calls, ["setUp", "asyncSetUp", "asyncTearDown", "tearDown"] * 6)
        loops = _AsyncPongCase.loops
        self.assertEqual(len({id(loop) for loop in loops}), 6, "each example needs its own loop")
        self.assertTrue(all(loop.is_closed() for loop in loops))

    def test_a_failing_example_of_an_async_generator_test_is_shrunk_with_its_own_timeline(self):
        text = only_problem(self, run_case(_AsyncCases.AsyncGenFailing, "test_small_pings_only"))
        self.assertIn("n=300", text)
        self.assertIn("AssertionError: 300 not less than 300", text)
        transcript = text.split("Timeline (")[1].split("Sequence of the last messages:")[0]
        self.assertEqual(transcript.count("'ping'"), 1, f"only the failing example's messages:\n{transcript}")
        for pid, _, _ in _PongCase.seen:
            self.assertTrue(gone(pid))

    def test_a_task_an_example_leaves_pending_fails_the_test(self):
        text = only_problem(self, run_case(_AsyncCases.AsyncPending, "test_leaves_a_task"))
        self.assertIn("task(s) still pending", text)
        self.assertIn("created at", text)
        self.assertTrue(all(loop.is_closed() for loop in _AsyncPongCase.loops))

    def test_a_death_during_an_example_ends_it_at_once(self):
        started = time.monotonic()
        text = only_problem(self, run_case(_AsyncCases.AsyncDeath, "test_killed"))
        self.assertLess(time.monotonic() - started, 10.0)
        self.assertIn("ProcessDied", text)
        self.assertIn("died while the test was waiting", text)


class TestGiven(unittest.TestCase):
    def setUp(self):
        _PongCase.seen, _PongCase.calls = [], []

    def test_each_example_runs_with_fresh_resources(self):
        result = run_case(_Cases.GivenPong, "test_ping")
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)
        seen = _PongCase.seen
        self.assertEqual(len(seen), 8)
        for i, what in enumerate(("process", "endpoint", "socket")):
            self.assertEqual(len({entry[i] for entry in seen}), 8, f"each example needs its own {what}")
        self.assertTrue(all(entry[2].closed for entry in seen))
        for pid, _, _ in seen:
            self.assertTrue(gone(pid), f"the process of an example ({pid}) is still running")
        self.assertEqual(_PongCase.calls, ["setUp", "tearDown"] * 8)

    def test_an_inherited_given_test_is_converted_too(self):
        result = run_case(_Cases.Inherited, "test_ping")
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)
        self.assertEqual(len(_PongCase.seen), 3)

    def test_a_failing_example_is_shrunk_and_reported_with_its_own_transcript(self):
        text = only_problem(self, run_case(_Cases.GivenFailing, "test_small_pings_only"))
        self.assertIn("n=300", text)  # Hypothesis's falsifying example, shrunk
        self.assertIn("AssertionError: 300 not less than 300", text)
        transcript = text.split("Timeline (")[1].split("Sequence of the last messages:")[0]
        self.assertIn("['ping', 300]", transcript)
        self.assertEqual(transcript.count("'ping'"), 1, f"only the failing example's messages:\n{transcript}")
        for pid, _, _ in _PongCase.seen:
            self.assertTrue(gone(pid))

    def test_importing_the_library_does_not_import_hypothesis(self):
        code = "import sys, zmqprocesstest, zmqprocesstest.case; print('hypothesis' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PYTHONPATH=ROOT))
        self.assertEqual(out.stdout.strip(), "False", out.stderr)
