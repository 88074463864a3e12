"""A picture of every failure: the HTML pages of the samples, golden with times normalised.

Each sample runs with a report directory (``ZMQPROCESSTEST_REPORT_DIR``); the page it
wrote must be self-contained (no script, nothing fetched) with a well-formed SVG, and
the page made from its timeline, times and pids normalised, must equal a golden file
(golden/*_page.html). Lines of process output reach the timeline from the drainer
thread, so where they fall among the messages is the scheduler's choice: the golden
page is drawn without them, and the written page is checked to show them. So is how
often the SIGINT stop step sends its signal (again every 100 ms until the process has
exited: a loaded machine sees a second one): the golden page shows each signal once.
"""
import os
import re
import tempfile
import unittest
import xml.etree.ElementTree as ET
from unittest import mock

from zmqprocesstest import SystemTestCase, normalise_path, normalise_pids, normalise_regex, process
from zmqprocesstest.report_html import finish_dir, page_html
from zmqprocesstest.timeline import Timeline
from howto import failing_samples, test_client, test_failure_handling

EXAMPLES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CLEARED = ("ZMQPROCESSTEST_FULL_TRACEBACK", "ZMQPROCESSTEST_TIMEOUT_SCALE", "ZMQPROCESSTEST_MARKS",
            "ZMQPROCESSTEST_REPORT_DIR", "ZMQPROCESSTEST_REPORT_ALL")


def svg_of(page):
    """The first SVG of a page, parsed; every SVG of it must be well-formed XML
    (``xml.etree`` raises if one is not)."""
    svgs = [ET.fromstring(svg) for svg in re.findall(r"(?s)<svg .*?</svg>", page)]
    return svgs[0]


@process
class TestReportPages(SystemTestCase):
    golden_dir = "golden"
    normalisers = [
        normalise_path(EXAMPLES, "<EXAMPLES>"),
        normalise_pids,
        normalise_regex(r"ipc://\S*?/zpt-[^/\s&\"]+", "ipc://<TMPDIR>"),
        normalise_regex(r"full timeline: \S+/tests/", "full timeline: <REPORT_DIR>/tests/"),
        normalise_regex(r"(?m)^  \+\s*\d+\.\d+s \S+ +\| .*\n", ""),   # output rows of the terminal report
        normalise_regex(r"\+\s*\d+\.\d+(s?)", r"+<TIME>\1"),            # timeline and axis times
        normalise_regex(r"duration \d+\.\d+ s", "duration <TIME> s"),
        normalise_regex(r"(?m)^ *[~^]+ *\n", ""),                       # Python >= 3.11 markers
        normalise_regex(r"connection \d+: ", "connection <N>: "),        # a tap's: 2 if the first try came early
    ]

    def run_sample(self, case_class, method, report_all=False):
        """Run one sample with a report directory; return (case, its page, the index)."""
        with tempfile.TemporaryDirectory() as directory:
            env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
            env["ZMQPROCESSTEST_REPORT_DIR"] = directory
            if report_all:
                env["ZMQPROCESSTEST_REPORT_ALL"] = "1"
            case = case_class(method)
            with mock.patch.dict(os.environ, env, clear=True):
                case.run(unittest.TestResult())
            pages = os.listdir(os.path.join(directory, "tests"))
            self.assertEqual(len(pages), 1, pages)
            with open(os.path.join(directory, "tests", pages[0]), encoding="utf-8") as f:
                page = f.read()
            with open(finish_dir(directory), encoding="utf-8") as f:
                index = f.read()
        self.assertIn(f'href="tests/{pages[0]}"', index)
        self.assertIn(case.id(), index)
        self.assertNotIn("<script", page.lower())
        self.assertEqual(re.findall(r"(?:href|src)=\"(?:https?:)?//", page), [])  # nothing fetched
        svg_of(page)
        return case, page, index

    def golden_page(self, case, status, traceback_text, name, state=""):
        """The page of *case*'s timeline without output lines, resent signals or stress
        entries, compared with golden *name*."""
        kept = Timeline(case._timeline.shown)
        kept.start, kept.lanes, kept.endpoints = case._timeline.start, case._timeline.lanes, case._timeline.endpoints
        for entry in case._timeline.entries:
            resent = entry[1] == "signal" and kept.entries and kept.entries[-1][1:] == entry[1:]
            if entry[1] not in ("output", "stress") and not resent:  # stress: what --stress applied
                kept.entries.append(entry)
        page = page_html(case.id(), status, 0.0, kept, traceback_text, state)
        svg_of(page)
        self.assertGolden(page, name)

    def test_wrong_reply_page(self):
        case, page, index = self.run_sample(failing_samples.WrongReplySample, "test_wrong_reply")
        self.assertIn('class="failed"', index)
        self.assertIn("[[&#x27;pong&#x27;, 1]]", page)
        self.golden_page(case, "failed", page_traceback(page), "wrong_reply_page.html")

    def test_crash_page(self):
        case, page, _ = self.run_sample(failing_samples.CrashSample, "test_crash")
        self.assertIn("| CrashingProc: crashing with exit code 3", page)  # its output, with arrival times
        self.assertIn("exited: exit code 3", page)
        self.golden_page(case, "failed", page_traceback(page), "crash_page.html")

    def test_two_processes_page(self):
        case, page, _ = self.run_sample(failing_samples.BrokerSample, "test_upper")
        svg = svg_of(page)
        lanes = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.get("font-weight") == "bold"]
        self.assertEqual(lanes[:3], ["client", "broker", "worker"])  # named after the functions started
        self.assertIn("test failed here: AssertionError: Lists differ:", page)
        self.assertEqual(page.count("<details class=\"teardown\">"), 1)  # the stop rows folded, apart
        self.assertLess(page.index("test failed here"), page.index("<details class=\"teardown\">"))
        self.assertIn("Messages between the processes under test are not drawn", page)
        self.assertNotIn("Timeline (", page_traceback(page))  # the traceback stops at the exception
        self.golden_page(case, "failed", page_traceback(page), "two_processes_page.html",
                         page_section(page, "Processes and fault links at the failure"))

    def test_lazy_pirate_drop_and_retry_page(self):
        case, page, index = self.run_sample(test_failure_handling.TestLazyPirate, "test_one_request_dropped",
                                            report_all=True)
        self.assertIn('class="passed"', index)
        self.assertIn("fault: drop 1 to_server", page)
        self.golden_page(case, "passed", "", "lazy_pirate_drop_page.html")

    def test_client_tap_page(self):
        case, page, index = self.run_sample(test_client.TestThroughATap, "test_the_clients_messages_in_the_reports",
                                            report_all=True)
        self.assertIn('class="passed"', index)
        svg = svg_of(page)
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        self.assertIn("client", texts)  # the tap's lane
        self.assertTrue(any("'op': 'get'" in (t or "") for t in texts), texts)  # its messages in the picture
        self.assertNotIn("(process not known)", texts)  # drawn to the server behind the tap
        self.golden_page(case, "passed", "", "client_tap_page.html")


def page_traceback(page):
    """The traceback section of a written page, unescaped (to draw the golden page with)."""
    import html
    return html.unescape(page.split("<h2>Traceback</h2>\n<pre>", 1)[1].split("</pre>", 1)[0])


def page_section(page, heading):
    """The text of the section under *heading* of a written page, unescaped."""
    import html
    return html.unescape(page.split(f"<h2>{heading}</h2>\n<pre>", 1)[1].split("</pre>", 1)[0])
