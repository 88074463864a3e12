"""Tests of scopes.py: processes and sockets shared by a class or a module."""
import os
import signal
import sys
import time
import types
import unittest

import zmq

from zmqprocesstest import ProcessTestCase, module_scope
from zmqprocesstest.scopes import MODULE_SCOPES

from .samples import cases as samples
from .support import gone, problems
from pingpong.faulty import CrashingProc, StubbornProc
from pingpong.pongproc import PongProc


def run_suite(*classes):
    """Run whole classes as a runner does (class fixtures and cleanups included)."""
    result = unittest.TestResult()
    loader = unittest.TestLoader()
    unittest.TestSuite([loader.loadTestsFromTestCase(cls) for cls in classes]).run(result)
    return result


def texts(entries):
    return {test.id().rsplit(".", 1)[-1] if hasattr(test, "id") else str(test): text for test, text in entries}


class SharedPong(ProcessTestCase):
    timeout = 2.0
    seen = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.seen = {"pids": [], "transcripts": {}}
        cls.ep = cls.new_endpoint()
        cls.proc = cls.start_process(PongProc, cls.ep)
        cls.ctl = cls.socket(zmq.REQ, connect=cls.ep, name="ctl")
        cls.set_stop_message(cls.proc, cls.ctl, ["plzdiekthxbye", None])


class TestClassScope(unittest.TestCase):
    def test_one_process_for_the_class_stopped_politely_after_it(self):
        class Shares(SharedPong):
            def test_a(self):
                self.seen["pids"].append(self.proc.pid)
                req = self.socket(zmq.REQ, connect=self.ep)
                yield ("send", req, [], ["ping", 1])
                yield ("recv", req)

            def test_b(self):
                self.seen["pids"].append(self.proc.pid)
                yield ("send", self.ctl, [], ["ping", 2])
                self.assertEqual((yield ("recv", self.ctl)), [["pong", 2]])
                self.seen["managed"] = self.managed(self.proc)

        result = run_suite(Shares)
        self.assertEqual((result.testsRun, problems(result)), (2, []))
        pids = Shares.seen["pids"]
        self.assertEqual(len(set(pids)), 1)
        self.assertEqual((Shares.seen["managed"].stopped_by, Shares.seen["managed"].exitcode()), ("message", 0))
        self.assertTrue(gone(pids[0]))

    def test_class_socket_messages_are_in_the_running_tests_transcript(self):
        class Transcribed(SharedPong):
            def test_a(self):
                yield ("send", self.ctl, [], ["ping", "a"])
                yield ("recv", self.ctl)
                self.fail("show the transcript")

            def test_b(self):
                yield ("send", self.ctl, [], ["ping", "b"])
                yield ("recv", self.ctl)
                self.fail("show the transcript")

        failures = texts(run_suite(Transcribed).failures)
        self.assertIn("ctl -> [['ping', 'a']]", failures["test_a"])
        self.assertNotIn('"b"', failures["test_a"])
        self.assertIn("ctl -> [['ping', 'b']]", failures["test_b"])
        self.assertNotIn('"a"', failures["test_b"])
        self.assertIn("Processes shared by the class or module:\n  process 'pongproc'", failures["test_b"])

    def test_a_crash_during_a_test_fails_it_at_once_and_every_later_test(self):
        class Crashes(ProcessTestCase):
            timeout = 10.0

            @classmethod
            def setUpClass(cls):
                cls.ep = cls.new_endpoint()
                cls.proc = cls.start_process(CrashingProc, cls.ep)

            def test_1_crash(self):
                req = self.socket(zmq.REQ, connect=self.ep)
                yield ("send", req, [], ["crash", 3])
                yield ("recv", req)

            def test_2_later(self):
                req = self.socket(zmq.REQ, connect=self.ep)
                yield ("send", req, [], ["ping", 1])
                yield ("recv", req)

            def test_3_plain(self):
                pass

        start = time.monotonic()
        result = run_suite(Crashes)
        self.assertLess(time.monotonic() - start, 5.0)  # never the 10 s timeout
        failures = texts(result.failures)
        self.assertEqual(sorted(failures), ["test_1_crash", "test_2_later", "test_3_plain"], problems(result))
        self.assertIn("ProcessDied: shared 'CrashingProc' died while the test was waiting", failures["test_1_crash"])
        self.assertIn("| CrashingProc: crashing with exit code 3", failures["test_1_crash"])
        for later in ("test_2_later", "test_3_plain"):
            self.assertRegex(failures[later], r"shared process 'CrashingProc' \(pid \d+, exit code 3\) of "
                                              r"tests\.test_scopes\..*Crashes died during .*Crashes\.test_1_crash; "
                                              r"every later test that shares it fails at once")
        self.assertEqual(result.errors, [])  # the class teardown does not report it again

    def test_a_shared_process_a_test_froze_is_thawed_for_the_next_test(self):
        seen = {}

        class Freezes(SharedPong):
            timeout = 5.0

            def test_1_freeze(self):
                yield ("freeze", self.proc)  # and left frozen

            def test_2_later(self):
                seen["frozen at start"] = self.managed(self.proc).frozen
                yield ("send", self.ctl, [], ["ping", 2])
                seen["reply"] = yield ("recv", self.ctl)
                seen["timeline"] = self._resources().timeline.format()
                seen["report"] = self._resources().report()

            def test_3_own_freeze(self):
                yield ("freeze", self.proc)
                yield ("thaw", self.proc)  # thawed by the test itself: nothing to do at its end
                yield ("send", self.ctl, [], ["ping", 3])
                seen["own"] = yield ("recv", self.ctl)

        result = run_suite(Freezes)
        self.assertEqual((result.testsRun, problems(result)), (3, []))
        self.assertEqual((seen["frozen at start"], seen["reply"], seen["own"]), (False, [["pong", 2]], [["pong", 3]]))
        self.assertRegex(seen["timeline"], r"pongproc fault: thaw \(SIGCONT\) at the end of "
                                           r"tests\.test_scopes\..*Freezes\.test_1_freeze, which froze it")
        self.assertNotIn("still running", seen["report"].split("Processes shared by the class or module:")[0])

    def test_a_frozen_shared_process_is_reported_frozen(self):
        seen = {}

        class Reports(SharedPong):
            def test_it(self):
                yield ("freeze", self.proc)
                seen["report"] = self._resources().report()

        self.assertEqual(problems(run_suite(Reports)), [])
        self.assertRegex(seen["report"], r"Processes shared by the class or module:\n  process 'pongproc' "
                                         r"\(pid \d+, frozen\)")

    def test_a_death_between_tests_is_named_as_such(self):
        class DiesBetween(SharedPong):
            def test_1_kill(self):
                os.kill(self.proc.pid, signal.SIGKILL)
                self.assertTrue(gone(self.proc.pid))

            def test_2_later(self):
                pass

        failures = texts(run_suite(DiesBetween).failures)
        self.assertRegex(failures["test_2_later"], r"shared process 'pongproc' \(pid \d+, killed by SIGKILL\) of .*"
                                                   r"died between tests \(after .*DiesBetween\.test_1_kill\)")

    def test_a_stop_that_needs_escalation_is_an_error_of_the_class_teardown(self):
        class StubbornShared(ProcessTestCase):
            stop_timeouts = samples.SHORT_STOPS

            @classmethod
            def setUpClass(cls):
                cls.proc = cls.start_process(StubbornProc, cls.new_endpoint())

            def test_it(self):
                pass

        result = run_suite(StubbornShared)
        self.assertEqual(result.failures, [])
        self.assertEqual(len(result.errors), 1, problems(result))
        where, text = result.errors[0]
        self.assertIn("tearDownClass", str(where))
        self.assertRegex(text, r"ProcessStopError: shared by .*StubbornShared: process 'StubbornProc' .* did not stop "
                               r"politely \(SIGINT\); it took SIGTERM")

    def test_each_test_still_gets_its_own_process_and_endpoint(self):
        class Both(SharedPong):
            def test_it(self):
                self.assertNotEqual(self.endpoint, self.ep)
                own = self.start_process(PongProc, self.endpoint)
                self.assertNotEqual(own.pid, self.proc.pid)
                yield ("signal", self.proc, signal.SIGCONT)  # a test may signal the shared process

        self.assertEqual(problems(run_suite(Both)), [])


class TestModuleScope(unittest.TestCase):
    def make_module(self, crash=False):
        module = types.ModuleType("tests._module_scope_sample")
        sys.modules[module.__name__] = module
        self.addCleanup(sys.modules.pop, module.__name__)
        self.addCleanup(MODULE_SCOPES.pop, module.__name__, None)
        seen = {"pids": []}

        def setUpModule():
            scope = module_scope(module.__name__)
            module.EP = scope.new_endpoint()
            seen["proc"] = scope.managed(scope.start_process(CrashingProc if crash else PongProc, module.EP))

        module.setUpModule = setUpModule

        class First(ProcessTestCase):
            timeout = 5.0

            def test_first(self):
                req = self.socket(zmq.REQ, connect=module.EP)
                yield ("send", req, [], ["crash", 5] if crash else ["ping", 1])
                yield ("recv", req)
                seen["pids"].append(seen["proc"].pid)

        class Second(ProcessTestCase):
            def test_second(self):
                seen["pids"].append(seen["proc"].pid)

        for cls in (First, Second):
            cls.__module__ = module.__name__
        return First, Second, seen

    def test_the_module_shares_one_process_and_stops_it_after_its_last_test(self):
        first, second, seen = self.make_module()
        result = run_suite(first, second)
        self.assertEqual((result.testsRun, problems(result)), (2, []))
        self.assertEqual(len(set(seen["pids"])), 1)
        self.assertEqual(seen["proc"].stopped_by, "SIGINT")
        self.assertTrue(gone(seen["pids"][0]))

    def test_a_crash_fails_the_tests_of_every_class_of_the_module(self):
        first, second, seen = self.make_module(crash=True)
        failures = texts(run_suite(first, second).failures)
        self.assertIn("ProcessDied: shared 'CrashingProc' died while the test was waiting", failures["test_first"])
        self.assertRegex(failures["test_second"], r"shared process 'CrashingProc' \(pid \d+, exit code 5\) of "
                                                  r"tests._module_scope_sample.module_scope\('tests._module_scope_sample'\)"
                                                  r" died during tests._module_scope_sample.*First.test_first")

    def test_module_scope_needs_an_imported_module(self):
        with self.assertRaises(ValueError) as caught:
            module_scope("no.such.module")
        self.assertIn("expected the name of an imported test module (module_scope(__name__))", str(caught.exception))
