"""ProcessStateMachine: generated sequences of steps against real processes, shrunk when they fail."""
import os
import re
import unittest

import zmq
from hypothesis import settings
from hypothesis.stateful import invariant, rule

from zmqprocesstest.stateful import ProcessStateMachine

from .support import gone, run_case
from counter.service import CounterProc  # support puts docs/examples on sys.path
from test_counter_machine import CounterMachine

class BuggyCounterMachine(CounterMachine):
    """The counter machine against the service with the planted bug."""

    planted_bug = True

BuggyCounterMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=8, deadline=None,
                                                 database=None, derandomize=True)

class PingMachine(ProcessStateMachine):
    """Counts its runs, steps and invariant checks; each run's process and socket are its own."""

    timeout = 2.0
    runs = []

    def setup(self):
        self.proc = self.start_process(CounterProc, self.endpoint, self.endpoint[6:] + ".state")
        self.client = self.socket(zmq.DEALER, connect=self.endpoint, name="client")
        self.runs.append({"pid": self.proc.pid, "socket": self.client, "steps": 0, "checks": 0})

    @rule()
    def increment(self):
        yield ("send", self.client, [b""], ["incr", 1])
        yield ("recv", self.client)
        self.runs[-1]["steps"] += 1

    @invariant()
    def counted(self):
        yield ("send", self.client, [b""], ["read", None])
        reply = yield ("recv", self.client)
        assert reply[1][1] == self.runs[-1]["steps"]
        self.runs[-1]["checks"] += 1

PingMachine.TestCase.settings = settings(max_examples=5, stateful_step_count=3, deadline=None, database=None)

class TestProcessStateMachine(unittest.TestCase):
    def test_runs_get_fresh_resources_and_invariants_run_after_each_step(self):
        PingMachine.runs = []
        result = run_case(PingMachine.TestCase)
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)
        runs = PingMachine.runs
        self.assertGreaterEqual(len(runs), 5)
        self.assertEqual(len({run["pid"] for run in runs}), len(runs))
        for run in runs:
            self.assertTrue(run["socket"].closed)
            self.assertTrue(gone(run["pid"]))
            self.assertEqual(run["checks"], run["steps"] + 1)  # before the first step, then after each

    @unittest.skipUnless(os.environ.get("ZMQPROCESSTEST_HUNT") == "1",
                         "timing-sensitive (a 5 ms window): "
                         "set ZMQPROCESSTEST_HUNT=1, as .ci/run does, to run it alone")
    def test_the_planted_bug_is_found_and_shrunk_to_three_steps(self):
        # The bug needs the restart within 5 ms of the increment. On a loaded machine a
        # replay can miss that window: Hypothesis then rejects a shorter sequence it tried
        # (shrinking stops early) or reports the failure as flaky (FlakyFailure). Such a
        # search is run again, up to 6 times; every search must find the bug.
        for _attempt in range(6):
            result = run_case(BuggyCounterMachine.TestCase)
            self.assertEqual(len(result.failures + result.errors), 1, result.failures + result.errors)
            text = (result.failures + result.errors)[0][1]
            # Hypothesis lists each distinct failure's shrunk steps (an increment lost on
            # restart shows at the next increment or at the next read: two failures).
            blocks = [part.split("state.teardown()")[0]
                      for part in text.split("Failing test case: <state machine>")[1:]]
            shrunk = [[name for name in re.findall(r"^\s*\|?\s*state\.(\w+)\(", block, re.M)
                       if name != "the_link_is_as_the_steps_left_it"] for block in blocks]
            if shrunk and "FlakyFailure" not in text and all(len(rules) <= 3 for rules in shrunk):
                break
        self.assertTrue(blocks, text)
        for block, rules in zip(blocks, shrunk):
            self.assertLessEqual(len(rules), 3, block)
            self.assertEqual(rules[:2], ["increment", "restart"], block)
        self.assertRegex(text, r"AssertionError: expected \['(ok|value)', \d+\], got \[b'', \['(ok|value)', \d+\]\]")
        # each failure carries its final run's report: steps, messages, monitor events, processes
        self.assertIn("Run of BuggyCounterMachine (steps marked **):", text)
        self.assertRegex(text, r"step\s+\*\* rule restart\(\)")
        self.assertRegex(text, r"client\s+\*\* monitor: HANDSHAKE_SUCCEEDED")
