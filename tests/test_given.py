"""Hypothesis's ``@given`` on generator tests: every example driven, each with fresh resources."""
import os
import subprocess
import sys
import unittest

import zmq
from hypothesis import given, settings
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
        self.assertIn('["ping", 300]', transcript)
        self.assertEqual(transcript.count('"ping"'), 1, f"only the failing example's messages:\n{transcript}")
        for pid, _, _ in _PongCase.seen:
            self.assertTrue(gone(pid))

    def test_importing_the_library_does_not_import_hypothesis(self):
        code = "import sys, zmqprocesstest, zmqprocesstest.case; print('hypothesis' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PYTHONPATH=ROOT))
        self.assertEqual(out.stdout.strip(), "False", out.stderr)
