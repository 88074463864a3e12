"""What a failure looks like: run the deliberately failing samples, compare the reports.

The reports are golden files (golden/*.txt), shown in the guide "Reading a failure report".
"""
import os
import unittest
from unittest import mock

from zmqprocesstest import SystemTestCase, normalise_path, normalise_pids, normalise_regex, process
from howto import failing_samples

EXAMPLES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@process
class TestFailureReports(SystemTestCase):
    golden_dir = "golden"
    normalisers = [
        normalise_path(EXAMPLES, "<EXAMPLES>"),
        normalise_pids,
        normalise_regex(r"ipc://\S*?/zpt-[^/\s]+", "ipc://<TMPDIR>"),  # the private endpoint dir
        # Output lines arrive on the drainer thread: where they fall among the messages
        # is the OS scheduler's choice (test_report_pages checks them separately).
        normalise_regex(r"(?m)^  \+\s*\d+\.\d+s \S+ +\| .*\n", ""),
        # What --stress applied (a run of the examples under it): its own entries.
        normalise_regex(r"(?m)^  \+\s*\d+\.\d+s \S+ +stress .*\n", ""),
        normalise_regex(r"Timeline \(\d+ entries", "Timeline (<N> entries"),
        normalise_regex(r"\+\s*\d+\.\d+s", "+<TIME>s"),                # timeline timestamps
        normalise_regex(r"(?m)^ *[~^]+ *\n", ""),                     # Python >= 3.11 markers
    ]

    def failure_of(self, case_class, method):
        """Run one sample test; return the text unittest prints for its failure."""
        result = unittest.TestResult()
        env = {k: v for k, v in os.environ.items() if k not in (
            "ZMQPROCESSTEST_FULL_TRACEBACK", "ZMQPROCESSTEST_TIMEOUT_SCALE", "ZMQPROCESSTEST_MARKS")}
        with mock.patch.dict(os.environ, env, clear=True):
            case_class(method).run(result)
        self.assertEqual((len(result.failures), result.errors), (1, []))
        return result.failures[0][1]

    def test_crash_report(self):
        report = self.failure_of(failing_samples.CrashSample, "test_crash")
        self.assertGolden(report, "crash_report.txt")

    def test_timeout_report(self):
        report = self.failure_of(failing_samples.DelimiterSample, "test_forgot_the_delimiter")
        self.assertGolden(report, "timeout_report.txt")
