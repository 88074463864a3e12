"""Tests of systemtests.py: programs, golden files, normalisers, update mode."""
import os
import re
import shutil
import sys
import tempfile
import time
import unittest
from unittest import mock

from zmqprocesstest import (ProgramTimeout, SystemTestCase, normalise_path, normalise_pids, normalise_ports,
                            normalise_timestamps, run_program)
from zmqprocesstest.systemtests import UPDATE_GOLDEN_ENV, golden_path

from .support import gone, only_problem, problems, run_case


class GoldenTestBase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        directory = self.dir

        class Golden(SystemTestCase):
            golden_dir = directory

            def test_echo(self):
                self.assertProgramOutput([sys.executable, "-c", "print('hello'); print('pid 4242')"], "echo.out",
                                         normalisers=[normalise_pids])

        self.case = Golden

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read()


class TestGolden(GoldenTestBase):
    def test_matching_output_passes(self):
        self.write("echo.out", "hello\npid <PID>\n")
        self.assertEqual(problems(run_case(self.case)), [])

    def test_mismatch_shows_a_unified_diff_and_how_to_update(self):
        self.write("echo.out", "hallo\npid <PID>\n")
        text = only_problem(self, run_case(self.case))
        self.assertIn("output differs from golden file", text)
        self.assertIn("-hallo\n+hello\n", text)
        # golden_dir is an absolute directory here: the header shows it, not "golden/".
        self.assertIn(f"--- {os.path.join(os.path.realpath(self.dir), 'echo.out')}\n+++ actual output", text)
        self.assertIn(f"rerun with {UPDATE_GOLDEN_ENV}=1", text)

    def test_diff_header_shows_a_relative_golden_dir_as_configured(self):
        here = os.path.dirname(os.path.abspath(__file__))
        directory = tempfile.mkdtemp(prefix="expected-", dir=here)
        self.addCleanup(shutil.rmtree, directory)
        with open(os.path.join(directory, "echo.out"), "w") as f:
            f.write("hallo\n")

        class Relative(SystemTestCase):
            golden_dir = os.path.basename(directory)

            def test_echo(self):
                self.assertProgramOutput([sys.executable, "-c", "print('hello')"], "echo.out")

        text = only_problem(self, run_case(Relative))
        self.assertIn(f"--- {os.path.basename(directory)}/echo.out\n+++ actual output", text)
        self.assertNotIn("golden/echo.out", text)

    def test_missing_golden_file_says_how_to_create_it(self):
        text = only_problem(self, run_case(self.case))
        self.assertIn("echo.out does not exist; create it by running this test with ZMQPROCESSTEST_UPDATE_GOLDEN=1",
                      text)

    def test_update_mode_writes_and_reports(self):
        with mock.patch.dict(os.environ, {UPDATE_GOLDEN_ENV: "1"}), mock.patch("sys.stderr") as stderr:
            result = run_case(self.case)
        self.assertEqual(problems(result), [])
        self.assertEqual(self.read("echo.out"), "hello\npid <PID>\n")
        written = "".join(call.args[0] for call in stderr.write.call_args_list)
        self.assertIn("zmqprocesstest: created golden file", written)

    def test_exit_code_is_checked(self):
        directory = self.dir
        self.write("fail.out", "")

        class Exits(SystemTestCase):
            golden_dir = directory

            def test_it(self):
                self.assertProgramOutput([sys.executable, "-c", "import sys; sys.exit(3)"], "fail.out")

        text = only_problem(self, run_case(Exits))
        self.assertIn("expected exit code 0, got 3", text)


class TestGoldenPaths(unittest.TestCase):
    def test_names_outside_the_directory_are_refused(self):
        with tempfile.TemporaryDirectory() as directory:
            for name in ("../x", "/etc/passwd", "a/../../x"):
                with self.subTest(name=name), self.assertRaises(ValueError) as caught:
                    golden_path(directory, name)
                self.assertIn("expected a golden file name inside", str(caught.exception))
            os.symlink("/tmp", os.path.join(directory, "escape"))
            with self.assertRaises(ValueError):
                golden_path(directory, "escape/x")
            self.assertEqual(golden_path(directory, "sub/ok.out"),
                             os.path.join(os.path.realpath(directory), "sub", "ok.out"))


class TestRunProgram(unittest.TestCase):
    def test_captures_stdout_stderr_and_code(self):
        result = run_program([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); "
                              "print(input()); sys.exit(2)"], stdin="typed\n")
        self.assertEqual((result.stdout, result.stderr, result.returncode), ("out\ntyped\n", "err\n", 2))

    def test_timeout_kills_the_program_and_its_children(self):
        start = time.monotonic()
        with self.assertRaises(ProgramTimeout) as caught:
            # The sleeps are the behaviour under test: a program (and its child) that hangs.
            run_program([sys.executable, "-c", "import subprocess, sys, time\n"
                         "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                         "print('started child', child.pid, flush=True)\n"
                         "time.sleep(60)"], timeout=1.0)
        self.assertLess(time.monotonic() - start, 10)
        self.assertIn("did not finish within 1 s (killed it)", str(caught.exception))
        child = int(re.search(r"started child (\d+)", str(caught.exception)).group(1))
        self.assertTrue(gone(child), f"the program's child {child} outlived the timeout")

    def test_string_argv_is_refused(self):
        with self.assertRaises(TypeError):
            run_program("echo hi")


class TestNormalisers(unittest.TestCase):
    def test_ports(self):
        self.assertEqual(normalise_ports("tcp://127.0.0.1:54321 and localhost:80"),
                         "tcp://127.0.0.1:<PORT> and localhost:<PORT>")

    def test_pids(self):
        self.assertEqual(normalise_pids("pid 123, pid=45, worker[6789]"), "pid <PID>, pid=<PID>, worker[<PID>]")

    def test_timestamps(self):
        self.assertEqual(normalise_timestamps("2026-11-25 22:31:05,123 INFO at 10:00:01"), "<TIME> INFO at <TIME>")

    def test_path(self):
        self.assertEqual(normalise_path("/tmp/zpt-abc")("ipc:///tmp/zpt-abc/1"), "ipc://<PATH>/1")


if __name__ == "__main__":
    unittest.main()
