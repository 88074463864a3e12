"""Hunting and seeing a race (issue 31): names in every report, the peer of each test
socket, a page that focuses the eye, reproduce lines in one form.

* A process is named after its target (a function's or class's ``__name__``) or its
  command's program, or the ``name=`` given; names are unique in a test (``#2``).
* A test socket's messages go to the process that uses its endpoint (given at its
  start, or seen listening), else to a lane saying the process is not known.
* The HTML page: a rule where the test failed, the teardown folded, sent and received
  frames alike, the timeline once, the traceback up to the exception, plurals.
* The reproduce lines of every runner: the interpreter, the test's id, no ``seed -``.
"""
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import unittest
from unittest import mock

import zmq

from zmqprocesstest import ProcessDied, ProcessTestCase, process
from zmqprocesstest.processes.managed import program_name, unique_name
from zmqprocesstest.report._svg import sequence_svg
from zmqprocesstest.report_html import finish_dir, page_html, rebuild_index
from zmqprocesstest.timeline import UNKNOWN_PEER, Timeline

from .support import ROOT, only_problem, run_case
from howto.failing_samples import broker, worker

_CLEARED = ("ZMQPROCESSTEST_REPORT_DIR", "ZMQPROCESSTEST_REPORT_ALL", "ZMQPROCESSTEST_TIMEOUT_SCALE",
            "ZMQPROCESSTEST_REPEAT", "ZMQPROCESSTEST_UNTIL_FAILURE", "ZMQPROCESSTEST_STRESS", "ZMQPROCESSTEST_SEED",
            "ZMQPROCESSTEST_SHUFFLE", "ZMQPROCESSTEST_MARKS")


def sleeper(seconds=30.0, name=None):
    """Waits to be stopped (SIGINT ends the wait)."""
    import time
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        pass


def takes_name(name):
    print(f"I am {name}", flush=True)
    sleeper()


def binds_its_own():
    """Binds an endpoint nobody gave it (a random port), says which, and serves it."""
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.linger = 0
    try:
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        print(f"serving tcp://127.0.0.1:{port}", flush=True)
        while True:
            frames = sock.recv_multipart()
            sock.send_multipart(frames)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        context.term()


class Lonely(multiprocessing.Process):
    """A Process subclass that gives itself no name."""

    def run(self):
        sleeper()


@process
class TestNames(unittest.TestCase):

    def test_a_function_or_class_target_is_named_after_itself_and_names_stay_unique(self):
        seen = {}

        class Names(ProcessTestCase):
            def test_it(self):
                procs = [self.start_process(sleeper), self.start_process(sleeper), self.start_process(Lonely),
                         self.start_process(sleeper, name="mine"), self.start_process(sleeper, name="mine")]
                seen["names"] = [self.managed(p).name for p in procs]
                seen["mp"] = [p.name for p in procs]  # the process object (and the child) carry it too
                seen["lanes"] = [n for n, (kind, _) in self._zpt.timeline.lanes.items() if kind == "process"]

        result = run_case(Names)
        self.assertEqual(result.failures + result.errors, [])
        self.assertEqual(seen["names"], ["sleeper", "sleeper#2", "Lonely", "mine", "mine#2"])
        self.assertEqual(seen["mp"], seen["names"])
        self.assertEqual(seen["lanes"], seen["names"])

    def test_name_goes_to_a_target_that_takes_it_and_names_the_process(self):
        class Named(ProcessTestCase):
            def test_it(self):
                proc = self.start_process(takes_name, name="w1")
                yield ("wait_output", proc, "I am w1")
                raise AssertionError("planted, to see the report")

        text = only_problem(self, run_case(Named))
        self.assertIn("process 'w1' (pid", text)
        self.assertRegex(text, r"w1 +started pid")

    def test_process_died_names_the_function(self):
        class Dies(ProcessTestCase):
            def test_it(self):
                self.start_process(os._exit, 3)
                sock = self.socket(zmq.PAIR, connect=self.endpoint)
                yield ("recv", sock, -1, 10.0)

        text = only_problem(self, run_case(Dies))
        self.assertIn(ProcessDied.__name__, text)
        self.assertIn("'_exit' died while the test was waiting", text)

    def test_a_command_is_named_after_its_program(self):
        self.assertEqual(program_name(["/usr/bin/pongd", "--fast"]), "pongd")
        self.assertEqual(program_name([sys.executable, "-m", "pingpong.pongproc", "ipc://x"]), "pingpong.pongproc")
        self.assertEqual(program_name(["python3", "-u", "tools/serve.py", "--port", "1"]), "serve")
        self.assertEqual(program_name(["python3.12", "-c", "print(1)"]), "python3.12")
        self.assertEqual(unique_name("serve", {"serve", "serve#2"}), "serve#3")

    def test_a_bad_name_is_refused(self):
        class Bad(ProcessTestCase):
            def test_it(self):
                self.start_process(sleeper, name=3)

        text = only_problem(self, run_case(Bad), "error")
        self.assertIn("expected the process's name to be a non-empty str, got 3", text)


def timeline_with(lanes, endpoints, messages):
    line = Timeline()
    for name, (kind, detail) in lanes.items():
        line.lane(name, kind, detail, endpoints.get(name))
    for source in messages:
        line.entries.append((line.start, "sent", source, (b"x",)))
    return line


class TestPeers(unittest.TestCase):

    def test_a_socket_goes_to_the_process_that_uses_its_endpoint(self):
        line = timeline_with(
            {"client": ("socket", ""), "tasks": ("socket", ""), "stray": ("socket", ""),
             "broker": ("process", ""), "worker": ("process", "")},
            {"client": ["connect ipc:///tmp/a"], "tasks": ["bind tcp://127.0.0.1:5555"], "stray": ["connect ipc://z"],
             "broker": ["ipc:///tmp/a"], "worker": ["tcp://localhost:5555"]},
            ["client", "tasks", "stray"])
        self.assertEqual(line.peers(["client", "tasks", "stray"]),
                         {"client": "broker", "tasks": "worker", "stray": UNKNOWN_PEER})
        chart = line.chart()
        self.assertEqual(chart.splitlines()[0].split(), ["client", "tasks", "stray", "broker", "worker", "(process",
                                                          "not", "known)"])
        self.assertNotIn("peers", chart)

    def test_several_candidates_are_all_named_and_a_wildcard_bind_matches_loopback(self):
        line = timeline_with({"req": ("socket", ""), "a": ("process", ""), "b": ("process", "")},
                             {"req": ["connect tcp://127.0.0.1:7000"], "a": ["tcp://*:7000"], "b": ["tcp://0.0.0.0:7000"]},
                             ["req"])
        self.assertEqual(line.peers(["req"]), {"req": "(a or b)"})

    def test_a_taps_messages_go_to_the_process_behind_it(self):
        line = timeline_with({"client": ("socket", "tap ipc:///t/9 -> ipc:///t/1"), "broker": ("process", "")},
                             {"broker": ["ipc:///t/1"]}, ["client"])
        self.assertEqual(line.peers(["client"]), {"client": "broker"})

    def test_the_diagram_labels_an_unknown_peer_honestly(self):
        line = timeline_with({"req": ("socket", ""), "p": ("process", "")}, {"req": ["connect ipc://q"]}, ["req"])
        svg = sequence_svg(line.lines(), line.lanes, "t", line.peers(["req"]))
        self.assertIn(">(process not known)</text>", svg)
        self.assertNotIn(">peers</text>", svg)

    def test_a_process_seen_listening_on_an_endpoint_it_was_not_given(self):
        seen = {}

        class Listening(ProcessTestCase):
            def test_it(self):
                proc = self.start_process(binds_its_own)
                found = yield ("wait_output", proc, r"tcp://\S+")
                client = self.socket(zmq.DEALER, connect=found[0], name="client")
                yield ("send_raw", client, [b"hello"])
                yield ("recv_raw", client)
                self._resources().note_listening()
                seen["peers"] = self._zpt.timeline.peers(["client"])

        result = run_case(Listening)
        self.assertEqual(result.failures + result.errors, [])
        self.assertEqual(seen["peers"], {"client": "binds_its_own"})


class TestPage(unittest.TestCase):

    def run_page(self, case_class):
        with tempfile.TemporaryDirectory() as directory:
            env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
            env["ZMQPROCESSTEST_REPORT_DIR"] = directory
            with mock.patch.dict(os.environ, env, clear=True):
                result = run_case(case_class)
            index = finish_dir(directory)
            with open(index, encoding="utf-8") as f:
                index_text = f.read()
            pages = os.listdir(os.path.join(directory, "tests"))
            with open(os.path.join(directory, "tests", pages[0]), encoding="utf-8") as f:
                return result, f.read(), index_text

    def test_the_page_marks_the_failure_folds_the_teardown_and_shows_the_timeline_once(self):
        @process
        class Broker(ProcessTestCase):
            def test_upper(self):
                frontend, backend = self.new_endpoint(), self.new_endpoint()
                self.start_process(broker, frontend, backend)
                self.start_process(worker, backend, "w1")
                client = self.socket(zmq.DEALER, connect=frontend, name="client")
                yield ("send", client, [], ["upper", "one"])
                reply = yield ("recv", client)
                self.assertEqual(reply, [["ok", "w1", "one"]])

        result, page, index = self.run_page(Broker)
        self.assertEqual(len(result.failures), 1)
        self.assertIn("1 test: 1 failed.", index)  # not "1 tests"
        main, rest = page.split('<details class="teardown">', 1)
        self.assertIn("test failed here: AssertionError: Lists differ", main)
        self.assertIn("[['upper', 'one']]</text>", main)  # sent: as the test gave it
        self.assertIn("[['ok', 'w1', 'ONE']]</text>", main)  # received: as the test got it
        self.assertNotIn("stop: SIGINT", main)  # the teardown is folded apart
        self.assertIn("stop: SIGINT", rest.split("</details>", 1)[0])
        self.assertIn('opacity="0.6"', rest)  # and drawn lighter
        traceback = page.split("<h2>Traceback</h2>", 1)[1].split("</pre>", 1)[0]
        self.assertIn("AssertionError: Lists differ", traceback)
        self.assertNotIn("Timeline (", traceback)  # the traceback stops at the exception
        self.assertNotIn("Sequence of the last messages", page)
        self.assertEqual(page.count("<pre>  +"), 1)  # the text timeline once, folded
        self.assertIn("<h2>Processes and fault links at the failure</h2>", page)
        self.assertIn("An output line&#x27;s time is when the test process read it", page.replace("'", "&#x27;"))
        self.assertIn("Messages between the processes under test are not drawn", page)
        self.assertIn("fault link", page)

    def test_a_lone_process_page_says_nothing_about_unseen_messages_and_plurals_are_right(self):
        line = Timeline()
        line.lane("p", "process")
        line.entries.append((line.start, "start", "p", "pid 1"))
        page = page_html("t", "passed", 0.0, line, "")
        self.assertNotIn("are not drawn", page)
        self.assertIn("The timeline as text (1 entry)", page)
        with tempfile.TemporaryDirectory() as directory:
            os.makedirs(os.path.join(directory, ".results"))
            with open(os.path.join(directory, ".results", "1.jsonl"), "w") as f:
                f.write('{"id": "a", "status": "passed", "duration": 0.1, "page": null}\n'
                        '{"id": "b", "status": "passed", "duration": 0.1, "page": null}\n')
            with open(rebuild_index(directory), encoding="utf-8") as f:
                self.assertIn("2 tests: 2 passed.", f.read())

    def test_report_html_runs_without_a_warning(self):
        with tempfile.TemporaryDirectory() as directory:
            done = subprocess.run([sys.executable, "-W", "error", "-m", "zmqprocesstest.report_html", directory],
                                  capture_output=True, text=True, timeout=60, cwd=ROOT,
                                  env={k: v for k, v in os.environ.items() if k not in _CLEARED})
        self.assertEqual((done.returncode, done.stderr), (0, ""))
        self.assertEqual(done.stdout.strip(), os.path.join(directory, "index.html"))


SAMPLE = textwrap.dedent("""\
    from zmqprocesstest import ProcessTestCase

    class TestOne(ProcessTestCase):
        def test_fails(self):
            self.fail("planted")
""")


class TestReproduceLines(unittest.TestCase):
    """Each runner's lines start with this interpreter, name the test, and say "no seed"."""

    def run_runner(self, argv, env=None):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "test_planted.py"), "w") as f:
                f.write(SAMPLE)
            clean = {k: v for k, v in os.environ.items() if k not in _CLEARED}
            clean["PYTHONPATH"] = os.pathsep.join([ROOT, clean.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            done = subprocess.run([sys.executable] + argv, cwd=folder, capture_output=True, text=True, timeout=120,
                                  env=dict(clean, **(env or {})))
            out = done.stdout + done.stderr
            found = re.search(r"(?m)^  or this test alone: (.*)$", out)
            self.assertIsNotNone(found, out)
            alone = subprocess.run(found.group(1), shell=True, cwd=folder, capture_output=True, text=True,
                                   timeout=120, env=clean)
        return out, found.group(1), alone.stdout + alone.stderr

    def check(self, out, alone_line, alone_out):
        self.assertIn("repeat 1 of 2, no seed (neither stress nor shuffle)", out)
        self.assertNotIn("seed -", out)
        run = re.search(r"(?m)^  reproduce the run: (.*)$", out).group(1)
        for line in (run, alone_line):
            self.assertRegex(line, r"(^| )" + re.escape(sys.executable) + " ")  # this interpreter, in both
        self.assertIn("first failure", alone_out)  # the line runs, and fails the same way
        self.assertIn("repeat 1 of 2", alone_out)

    def test_unittest(self):
        out, alone, alone_out = self.run_runner(["-m", "unittest", "test_planted"],
                                                {"ZMQPROCESSTEST_REPEAT": "2", "ZMQPROCESSTEST_UNTIL_FAILURE": "1"})
        self.check(out, alone, alone_out)
        self.assertIn("test_planted.TestOne.test_fails", alone)

    def test_nose2(self):
        out, alone, alone_out = self.run_runner(["-m", "nose2", "test_planted"],
                                                {"ZMQPROCESSTEST_REPEAT": "2", "ZMQPROCESSTEST_UNTIL_FAILURE": "1"})
        self.check(out, alone, alone_out)
        self.assertIn("test_planted.TestOne.test_fails", alone)

    def test_pytest(self):
        out, alone, alone_out = self.run_runner(["-m", "pytest", "-p", "no:cacheprovider", "-q", "--zpt-repeat", "2",
                                                 "--zpt-until-failure", "test_planted.py"])
        self.check(out, alone, alone_out)
        self.assertIn("test_planted.py -k 'TestOne and test_fails'", alone)

    def test_the_command_line(self):
        out, alone, alone_out = self.run_runner(["-m", "zmqprocesstest", "--repeat", "2", "--until-failure",
                                                 "test_planted"])
        self.check(out, alone, alone_out)


if __name__ == "__main__":
    unittest.main()
