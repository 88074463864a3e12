"""Hostile input: whatever a test or a peer sends, the run ends with a clear result."""
import json
import os
import subprocess
import sys
import unittest

import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zmqprocesstest import ProcessTestCase

from .samples import cases as samples
from pingpong.faulty import FloodProc
from .support import gone, only_problem, problems, run_case

#: Words that start or mark the library's deliberate error messages.
CLEAR = ("expected", "cannot", "is closed", "belongs to", "unknown event", "bad arguments", "timed out", "died")


def last_line(text):
    """The exception line of a reported problem (before the appended report)."""
    text = text.split("Timeline (")[0].split("Processes under test:")[0]
    return [line for line in text.strip().splitlines() if line and not line.startswith(" ")][-1]


class PairCase(ProcessTestCase):
    """Two connected PAIR test sockets: ``self.a`` (the test) and ``self.b`` (a peer)."""

    timeout = 0.2

    def setUp(self):
        self.a = self.socket(zmq.PAIR, bind=self.endpoint, name="a")
        self.b = self.socket(zmq.PAIR, connect=self.endpoint, name="b")


class TestPeerInput(unittest.TestCase):
    def run_recv(self, frames, **recv_args):
        class Receives(PairCase):
            def test_it(self):
                self.b.send_multipart(frames)
                self.received = yield ("recv", self.a, *recv_args.values())

        return run_case(Receives)

    def test_non_json_frame(self):
        text = only_problem(self, self.run_recv([b"hdr", b"not json"]), "error")
        self.assertIn("ValueError: expected JSON in frame -1 of the message on socket 'a' (PAIR, bind ipc://", text)
        self.assertIn("got b'not json'", text)

    def test_non_utf8_frame(self):
        text = only_problem(self, self.run_recv([b"\xff\xfe\xfd"]), "error")
        self.assertIn("expected JSON in frame -1", text)
        self.assertIn("b'\\xff\\xfe\\xfd'", text)

    def test_json_index_out_of_range(self):
        text = only_problem(self, self.run_recv([b"1"], json_index=4), "error")
        self.assertIn("IndexError: expected a JSON frame at index 4 of the message on socket 'a'", text)

    def test_wrong_number_of_frames(self):
        class Counts(PairCase):
            def test_it(self):
                self.b.send_multipart([b"a", b"1"])
                yield ("recv", self.a, -1, None, 3)

        text = only_problem(self, run_case(Counts))
        self.assertIn("expected 3 frame(s) on socket 'a'", text)
        self.assertIn("got 2: [b'a', b'1']", text)

    def test_huge_frame_is_shown_truncated(self):
        class Huge(PairCase):
            def test_it(self):
                self.b.send_multipart([b"h", b"z" * 30_000_000])
                reply = yield ("recv", self.a, None)
                self.assertEqual(len(reply), 3)

        text = only_problem(self, run_case(Huge))
        self.assertLess(len(text), 5000)
        self.assertIn("... (30000000 bytes)", text)

    def test_flooding_process_does_not_hang_the_test_or_its_teardown(self):
        class Flooded(ProcessTestCase):
            transcript_length = 5

            def test_it(self):
                self.start_process(FloodProc, self.endpoint)
                pull = self.socket(zmq.PULL, connect=self.endpoint, rcvhwm=10)
                for _ in range(100):
                    yield ("recv", pull, None)
                self.fail("show the transcript")

        text = only_problem(self, run_case(Flooded))
        self.assertRegex(text, r"Timeline \(last 5 of \d+ entries, oldest first\):")
        self.assertLess(len(text), 5000)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.binary(max_size=300), min_size=1, max_size=5))
    def test_random_frames_end_in_a_value_or_a_clear_error(self, frames):
        result = self.run_recv(frames)
        self.assertEqual(result.testsRun, 1)
        try:
            expected = json.loads(frames[-1])
        except ValueError:
            expected = None
            text = only_problem(self, result, "error")
            self.assertIn("expected JSON in frame -1", last_line(text))
        if expected is not None or frames[-1] in (b"null",):
            self.assertEqual(problems(result), [])


_EVENT_NAMES = st.sampled_from(["send", "recv", "recv_nothing", "log", "signal", "wait_exit", "wait_output",
                                "wait_endpoint", "nope", "_private", "assertEqual", "setUp", "run"])
_ARGS = st.lists(st.one_of(st.none(), st.integers(-3, 3), st.floats(-1, 0.05, allow_nan=False), st.text(max_size=5),
                           st.binary(max_size=5), st.just("SOCKET"), st.lists(st.integers(0, 3), max_size=2)),
                 max_size=4)


class TestRandomYields(unittest.TestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.one_of(st.tuples(_EVENT_NAMES, _ARGS), st.integers(), st.none(), st.text(max_size=3)),
                    min_size=1, max_size=3))
    def test_random_yields_end_in_a_pass_or_a_clear_failure(self, yields):
        class Yields(PairCase):
            timeout = 0.05
            run_timeout = 2.0

            def test_it(self):
                for item in yields:
                    if isinstance(item, tuple):
                        name, args = item
                        item = (name, *[self.a if arg == "SOCKET" else arg for arg in args])
                    yield item

        result = run_case(Yields)
        self.assertEqual(result.testsRun, 1)
        for _, text in problems(result):
            line = last_line(text)
            self.assertTrue(any(word in line for word in CLEAR), f"unclear error: {line}\n{text}")


class TestGeneratorMisbehaviour(unittest.TestCase):
    def test_yielding_after_a_thrown_error_goes_on(self):
        class Persists(PairCase):
            def test_it(self):
                try:
                    yield ("recv", self.a, -1, 0.01)
                except AssertionError:
                    pass
                yield ("send", self.b, [], "again")
                self.assertEqual((yield ("recv", self.a)), ["again"])

        self.assertEqual(problems(run_case(Persists)), [])

    def test_generator_that_ignores_close_is_still_stopped(self):
        from zmqprocesstest import loop as events_module
        released = []

        class Ignores(ProcessTestCase):
            run_timeout = 0.1

            def test_it(self):
                # Swallows everything, even GeneratorExit, and the hard timeout's TestTimeout
                # wherever it lands (the outer try catches one raised between two yields).
                while not released:
                    try:
                        while not released:
                            try:
                                yield ("bogus",)
                            except BaseException:
                                pass
                    except BaseException:
                        pass

        text = only_problem(self, run_case(Ignores))
        self.assertIn("ran longer than run_timeout (0.1 s)", text)
        generator = events_module._UNSTOPPABLE.pop()
        released.append(True)
        generator.close()  # now it can end


class TestLeakCheck(unittest.TestCase):
    def test_leaked_file_descriptor_fails_the_test(self):
        class LeaksFd(ProcessTestCase):
            check_leaks = True

            def test_it(self):
                self.keep = open(os.devnull)

        case = LeaksFd("test_it")
        result = unittest.TestResult()
        case.run(result)
        case.keep.close()
        text = only_problem(self, result)
        self.assertIn("LeakError", text)
        self.assertIn("left resources behind: file descriptors left open:", text)
        self.assertIn("-> /dev/null", text)

    def test_leaked_child_process_fails_the_test_and_is_killed(self):
        # A subprocess, not a multiprocessing.Process: this test must run inside the
        # daemonic workers of parallel runners too, which may not have Process children.
        class LeaksChild(ProcessTestCase):
            check_leaks = True

            def test_it(self):
                self.child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])

        case = LeaksChild("test_it")
        result = unittest.TestResult()
        case.run(result)
        try:
            text = only_problem(self, result)
            self.assertIn("child processes left running, started by the test itself (not by a process under test): "
                          f"pid {case.child.pid}: ", text)
            self.assertTrue(gone(case.child.pid), "the leaked child was not killed")
        finally:
            if case.child.poll() is None:  # only if the check failed to kill it
                case.child.kill()
            case.child.wait(5)

    def test_a_clean_test_passes_the_check(self):
        class Clean(samples.PongCase):
            check_leaks = True

            def test_it(self):
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req)

        self.assertEqual(problems(run_case(Clean)), [])


if __name__ == "__main__":
    unittest.main()
