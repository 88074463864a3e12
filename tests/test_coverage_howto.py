"""docs/howto/coverage.rst: coverage.py measures the processes under test too."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

from .support import EXAMPLES


class TestCoverageOfProcessesUnderTest(unittest.TestCase):
    def coverage(self, command, *args, env):
        done = subprocess.run([sys.executable, "-m", "coverage", command, "--rcfile=coverage.ini", *args], cwd=EXAMPLES,
                              env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stdout[-2000:] + done.stderr[-3000:])
        return done.stdout

    def test_the_howto_settings_measure_pongproc(self):
        with tempfile.TemporaryDirectory() as data:
            env = dict(os.environ, COVERAGE_FILE=os.path.join(data, ".coverage"))
            self.coverage("run", "-m", "unittest", "test_pongproc", env=env)
            self.coverage("combine", env=env)
            report = self.coverage("report", env=env)
        # pongproc.py runs only in the processes under test: the test side never calls its code.
        found = re.search(r"^pingpong/pongproc\.py\s+\d+\s+\d+\s+(\d+)%$", report, re.M)
        self.assertIsNotNone(found, report)
        self.assertGreaterEqual(int(found.group(1)), 60, report)


if __name__ == "__main__":
    unittest.main()
