"""One timeline per test, and the HTML report of a report directory (issue 19, items 4-5)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
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
