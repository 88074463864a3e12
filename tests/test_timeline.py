"""One timeline per test, and the HTML report of a report directory (issue 19, items 4-5)."""
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings
import xml.etree.ElementTree as ET
from unittest import mock

from zmqprocesstest import process, timeline
from zmqprocesstest.report_html import finish_dir, rebuild_index
from zmqprocesstest.timeline import Timeline

from .samples import timeline_samples
from .support import EXAMPLES, only_problem, run_case

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CLEARED = ("ZMQPROCESSTEST_REPORT_DIR", "ZMQPROCESSTEST_REPORT_ALL", "ZMQPROCESSTEST_TIMEOUT_SCALE")


def run_reported(case_class, directory, report_all=False):
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["ZMQPROCESSTEST_REPORT_DIR"] = directory
    if report_all:
        env["ZMQPROCESSTEST_REPORT_ALL"] = "1"
    with mock.patch.dict(os.environ, env, clear=True):
        result = run_case(case_class)
    finish_dir(directory)
    return result


def results_of(directory):
    lines = []
    for name in os.listdir(os.path.join(directory, ".results")):
        with open(os.path.join(directory, ".results", name), encoding="utf-8") as f:
            lines.extend(json.loads(line) for line in f)
    return lines


@process
class TestTimeline(unittest.TestCase):

    def test_record_adds_to_the_active_timeline_only(self):
        line = Timeline(5)
        timeline.record("note", "x", "before")  # none active in this plain test: nothing, no error
        previous = timeline.activate(line)
        try:
            timeline.record("monitor", "req", "connected")
        finally:
            self.assertIs(timeline.activate(previous), line)
        timeline.record("note", "x", "after")
        self.assertEqual([row[1:] for row in line.lines()], [("monitor", "req", "connected")])

    def test_output_is_split_into_lines_each_with_its_chunk_time(self):
        line = Timeline(5)
        line.entries.append((line.start + 1.0, "output", "p", b"one\ntwo\n\n"))
        self.assertEqual(line.lines(), [(1.0, "output", "p", "one"), (1.0, "output", "p", "two")])

    def test_the_report_is_one_time_ordered_timeline_of_every_kind(self):
        text = only_problem(self, run_case(timeline_samples.Everything))
        section = text.split("Timeline (", 1)[1].split("Sequence of the last messages:")[0]
        expected = ["started pid", "subscribed b'news'", "fault: partition", "fault: freeze (SIGSTOP)",
                    "fault: thaw (SIGCONT)", "signal SIGTERM", "exited: killed by SIGTERM", "monitor connected",
                    "TIMED OUT: recv_multipart after 0.05 s"]
        timeline_samples.Everything.transcript_length = 100
        try:
            section = only_problem(self, run_case(timeline_samples.Everything)).split("Timeline (", 1)[1]
        finally:
            del timeline_samples.Everything.transcript_length
        positions = [section.find(what) for what in expected]
        self.assertNotIn(-1, positions, section)
        self.assertEqual(positions[2:], sorted(positions[2:]), section)
        self.assertIn("CrashingProc | CrashingProc: ready", section)  # its output, as a line of its own
        times = [float(line.split("s ", 1)[0].strip(" +")) for line in section.splitlines()[1:]
                 if line.startswith("  +")]
        self.assertEqual(times[:len(times) // 2], sorted(times[:len(times) // 2]))
        self.assertIn("-->|", text)  # the compact sequence chart

    def test_a_failing_test_gets_a_page_and_the_report_points_to_it(self):
        with tempfile.TemporaryDirectory() as directory:
            text = only_problem(self, run_reported(timeline_samples.Everything, directory))
            page = os.path.join(directory, "tests", "tests.samples.timeline_samples.Everything.test_it.html")
            self.assertIn(f"full timeline: {page}", text)
            with open(page, encoding="utf-8") as f:
                html = f.read()
            svg = ET.fromstring(html[html.index("<svg"):html.index("</svg>") + 6])
            lanes = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.get("font-weight") == "bold"]
            self.assertEqual(lanes[:2], ["req", "sub"])
            self.assertIn("link", " ".join(lanes))
            self.assertIn("CrashingProc", lanes)
            self.assertIn("TIMED OUT", html)
            self.assertIn("Traceback", html)
            self.assertEqual(results_of(directory)[0]["status"], "failed")
            with open(os.path.join(directory, "index.html"), encoding="utf-8") as f:
                self.assertIn('href="tests/tests.samples.timeline_samples.Everything.test_it.html"', f.read())

    def test_a_passing_test_gets_a_page_only_with_report_all(self):
        with tempfile.TemporaryDirectory() as directory:
            self.assertTrue(run_reported(timeline_samples.Passing, directory).wasSuccessful())
            self.assertFalse(os.path.exists(os.path.join(directory, "tests")))
            self.assertEqual([(r["status"], r["page"]) for r in results_of(directory)], [("passed", None)])
        with tempfile.TemporaryDirectory() as directory:
            self.assertTrue(run_reported(timeline_samples.Passing, directory, report_all=True).wasSuccessful())
            self.assertEqual(os.listdir(os.path.join(directory, "tests")),
                             ["tests.samples.timeline_samples.Passing.test_it.html"])

    def test_an_unwritable_report_dir_warns_once_and_the_run_goes_on(self):
        with tempfile.TemporaryDirectory() as parent:
            directory = os.path.join(parent, "a-file")
            with open(directory, "w"):
                pass  # a file where the directory should be: unwritable even for root
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = run_reported(timeline_samples.Twice, directory)
            self.assertEqual(result.testsRun, 2)
            self.assertEqual(len(result.failures), 2, result.errors)
            self.assertEqual(result.errors, [])
            told = [str(w.message) for w in caught if "report directory" in str(w.message)]
            self.assertEqual(len(told), 1, told)
            self.assertIn(f"cannot write anything in the report directory {directory} (", told[0])
            self.assertIn("the run goes on", told[0])

    def test_a_page_that_cannot_be_written_warns_once_and_the_run_goes_on(self):
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "tests"), "w"):
                pass  # the pages' folder is a file
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = run_reported(timeline_samples.Twice, directory)
            self.assertEqual((result.testsRun, len(result.failures), len(result.errors)), (2, 2, 0))
            told = [str(w.message) for w in caught if "report directory" in str(w.message)]
            self.assertEqual(len(told), 1, told)
            self.assertIn("cannot write the page of tests.samples.timeline_samples.Twice.test_", told[0])
            self.assertEqual([(r["status"], r["page"]) for r in results_of(directory)], [("failed", None)] * 2)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # warnings made errors: told on stderr, never raised
                with mock.patch("sys.stderr", new_callable=io.StringIO) as err:
                    run_reported(timeline_samples.Twice, os.path.join(directory, "tests", "below-a-file"))
            self.assertIn("cannot write anything in the report directory", err.getvalue())

    def test_the_index_merges_the_results_of_every_runner_process(self):
        with tempfile.TemporaryDirectory() as directory:
            os.makedirs(os.path.join(directory, ".results"))
            for pid, status in ((1, "passed"), (2, "error")):
                with open(os.path.join(directory, ".results", f"{pid}.jsonl"), "w", encoding="utf-8") as f:
                    f.write(json.dumps({"id": f"t{pid}", "status": status, "duration": 0.5, "page": None}) + "\n")
                    f.write('{"id": "cut sh')  # a runner killed mid-line
            with open(rebuild_index(directory), encoding="utf-8") as f:
                index = f.read()
            self.assertLess(index.index("t2"), index.index("t1"))  # failures first
            self.assertIn("2 tests: 1 error, 1 passed", index)

    def test_the_cli_takes_report_dir_and_report_all(self):
        with tempfile.TemporaryDirectory() as directory:
            env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
            env["PYTHONPATH"] = os.pathsep.join([ROOT, EXAMPLES])
            run = subprocess.run([sys.executable, "-m", "zmqprocesstest", "--report-dir", directory, "--report-all",
                                  "tests.samples.timeline_samples.Passing"], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=120)
            self.assertEqual(run.returncode, 0, run.stderr)
            page = os.path.join(directory, "tests", "tests.samples.timeline_samples.Passing.test_it.html")
            self.assertTrue(os.path.exists(page))
            with open(os.path.join(directory, "index.html"), encoding="utf-8") as f:  # written at exit
                self.assertIn("tests.samples.timeline_samples.Passing.test_it", f.read())
            bad = subprocess.run(
                [sys.executable, "-m", "zmqprocesstest", "--report-all", "tests.samples.timeline_samples.Passing"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            self.assertIn("--report-all needs --report-dir DIR", bad.stderr)


_STREAM = r"""
import resource, sys, zmq
from zmqprocesstest import ProcessTestCase
from zmqprocesstest.report.timeline import current

class Streams(ProcessTestCase):
    def test_it(self):
        pull = self.socket(zmq.PULL, bind="inproc://stream", name="pull")
        push = self.socket(zmq.PUSH, connect="inproc://stream", name="push")
        for i in range(300):
            push.send_multipart([b"chunk", bytes([i % 256]) * (4 * 1024 * 1024)])
            pull.recv_multipart()  # kept by nobody but the timeline
        self.assertEqual(len([e for e in current().entries if e[1] in ("sent", "received")]), 600)

import unittest
result = unittest.TestResult()
unittest.defaultTestLoader.loadTestsFromTestCase(Streams).run(result)
assert result.wasSuccessful(), result.failures + result.errors
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


class TestBoundedFrames(unittest.TestCase):
    """The timeline keeps bounded copies of frames, never the frames (issue 32, item 6)."""

    def test_a_stream_of_300_messages_of_4_mib_stays_under_200_mb(self):
        out = subprocess.run([sys.executable, "-c", _STREAM], cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        peak_mb = int(out.stdout.split()[-1])
        self.assertLess(peak_mb, 200, f"peak RSS {peak_mb} MB")

    def test_previews_render_as_the_frames_did(self):
        import zmq

        big = bytes(range(256)) * 100
        messages = [[b"short"], [big], [bytearray(big)], [memoryview(big)], [zmq.Frame(big)], [zmq.Frame(b"x")],
                    [b""] * 12, [big] * 9, [["decoded", 1]], [{"k": "v" * 300}], None, 3, (b"a", b"b"),
                    [b"'\""], ["text" * 40]]
        for message in messages:
            for frames in (message, message[0] if isinstance(message, list) and message else message):
                kept = timeline.preview(frames)
                render = timeline.short_frames if isinstance(frames, (list, tuple)) else timeline.short
                with self.subTest(frames=repr(frames)[:40]):
                    if render is timeline.short_frames:
                        self.assertEqual(render(kept), render(frames))
                        self.assertEqual(render(kept, limit=30, most=4), render(frames, limit=30, most=4))
                    else:
                        self.assertEqual(render(kept), render(frames))
                        self.assertEqual(render(kept, 30), render(frames, 30))

    def test_the_timeline_keeps_no_frame_alive(self):
        line = Timeline()
        previous = timeline.activate(line)
        try:
            frame = bytearray(1024 * 1024)
            timeline.record("sent", "push", [frame, b"small"])
        finally:
            timeline.activate(previous)
        kept = line.entries[-1][3]
        self.assertEqual(sum(len(f.head) if isinstance(f, timeline.FramePreview) else len(f) for f in kept), 64 + 5)
        self.assertEqual(line.lines()[-1][3], timeline.short_frames([frame, b"small"]))
