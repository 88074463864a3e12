"""docs/examples/kvsync's blocking client under the runners: a server that dies during
``get()`` ends the test at once, at that line, under unittest, nose2 and pytest."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from zmqprocesstest.processes._os import child_pids
from .support import EXAMPLES, ROOT

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples", "client_sample.py")


def dies_here_line():
    with open(SAMPLE, encoding="utf-8") as f:
        (line,) = [number for number, text in enumerate(f, 1) if text.rstrip().endswith("# DIES HERE")]
    return line


def howto_block():
    """The lines of the failure shown in docs/howto/client.rst (its one ``code-block:: text``)."""
    with open(os.path.join(ROOT, "docs", "howto", "client.rst"), encoding="utf-8") as f:
        text = f.read()
    lines = []
    for line in text.split(".. code-block:: text\n\n", 1)[1].splitlines():
        if line and not line.startswith("   "):
            break
        lines.append(line.strip())
    return [line for line in lines if line]


def pids(text):
    return re.sub(r"pid \d+", "pid <PID>", text)


class UnderEachRunner(unittest.TestCase):
    RUNNERS = {
        "unittest": (None, ["-m", "unittest", "-v", "test_client_sample"]),
        "nose2": ("nose2", ["-m", "nose2", "-v", "-s", ".", "-t", ".", "test_client_sample"]),
        "pytest": ("pytest", ["-m", "pytest", "-p", "no:cacheprovider", "-q", "test_client_sample.py"]),
    }

    def run_sample(self, label):
        module, args = self.RUNNERS[label]
        if module is not None and importlib.util.find_spec(module) is None:
            self.skipTest(f"{module} is not installed")
        work = tempfile.mkdtemp(prefix="client-sample-")
        self.addCleanup(shutil.rmtree, work, True)
        shutil.copy(SAMPLE, os.path.join(work, "test_client_sample.py"))
        out = os.path.join(work, "seconds")
        env = dict(os.environ, CLIENT_SAMPLE_OUT=out,
                   PYTHONPATH=os.pathsep.join(p for p in (ROOT, EXAMPLES, os.environ.get("PYTHONPATH")) if p))
        for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "CI", "BUILD_NUMBER"):
            env.pop(name, None)
        before = set(child_pids())
        started = time.monotonic()
        run = subprocess.run([sys.executable, *args], cwd=work, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120)
        took = time.monotonic() - started
        text = run.stdout.decode(errors="replace")
        self.assertEqual(set(child_pids()) - before, set(), "a process was left running")
        with open(out, encoding="utf-8") as f:
            seconds = dict((name, float(s)) for name, s in (line.split() for line in f))
        print(f"\n  {label}: get() to its end {seconds['test_a_missing_key'] * 1000:.1f} ms, "
              f"the run {took:.1f} s", file=sys.stderr)
        self.assertNotEqual(run.returncode, 0, text)
        self.assertNotIn("TestTimeout", text)
        self.assertIn("ProcessDied", text)
        self.assertIn("'kvserver'", text)
        line = dies_here_line()
        self.assertRegex(text, rf'test_client_sample\.py", line {line}\b|test_client_sample\.py:{line}\b')
        self.assertLess(seconds["test_a_missing_key"], 1.0, text)
        self.assertIn("test_a_shutdown_by_a_raw_message", seconds, text)
        self.assertLess(took, 20, "a test waited for run_timeout")
        return text

    def test_unittest(self):
        text = self.run_sample("unittest")
        self.assertRegex(text, r"test_a_missing_key \S+ \.\.\. FAIL")
        self.assertRegex(text, r"test_a_shutdown_by_a_raw_message \S+ \.\.\. ok")
        self.assertIn("FAILED (failures=1)", text)
        # The how-to shows this failure: each of its lines is in the output ("..." for
        # lines left out, ".../" for a path's start).
        shown = [pids(line.strip()) for line in text.splitlines()]
        for line in howto_block():
            if line != "...":
                part = pids(line.split(".../", 1)[-1])
                self.assertTrue(any(out.endswith(part) for out in shown), f"not in the output: {line!r}\n{text}")

    def test_nose2(self):
        text = self.run_sample("nose2")
        self.assertIn("FAILED (failures=1)", text)
        self.assertRegex(text, r"test_a_shutdown_by_a_raw_message \S+ \.\.\. ok")

    def test_pytest(self):
        text = self.run_sample("pytest")
        self.assertRegex(text, r"\b1 failed, 1 passed\b")


if __name__ == "__main__":
    unittest.main()
