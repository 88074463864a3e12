"""Tests of stopping.py: the stop protocol's table, chosen steps and stop events, the
stop plan a process carries and the result of its stop."""
import sys
import unittest
from unittest import mock

import zmq

from zmqprocesstest import ProcessTestCase
from zmqprocesstest.processes import CommandProcess
from zmqprocesstest.stopping import (DEFAULT_STOP_STEPS, DEFAULT_STOP_TIMEOUTS, STOP_STEPS, PoliteStop, StopPlan,
                                     check_stop_steps, plan_for)

from .samples import cases as samples
from .support import only_problem, problems, run_case
from pingpong.faulty import StubbornProc
from pingpong.pongproc import PongProc
from howto.dealerworker import PongWorker


class TestTable(unittest.TestCase):
    def test_steps_in_escalation_order_and_timeouts_derived_from_them(self):
        self.assertEqual(list(STOP_STEPS), ["message", "SIGINT", "SIGTERM", "SIGKILL"])
        self.assertEqual(DEFAULT_STOP_TIMEOUTS, {name: step.timeout for name, step in STOP_STEPS.items()})

    def test_a_choice_of_steps_always_ends_with_sigkill(self):
        self.assertEqual(check_stop_steps(["SIGTERM"]), ("SIGTERM", "SIGKILL"))
        self.assertEqual(check_stop_steps(("message", "SIGINT", "SIGKILL")), ("message", "SIGINT", "SIGKILL"))

    def test_unknown_or_out_of_order_steps_are_refused(self):
        for steps in (["SIGTERM", "SIGINT"], ["SIGHUP"], "SIGTERM", ["SIGINT", "SIGINT"]):
            with self.subTest(steps=steps), self.assertRaises(ValueError) as caught:
                check_stop_steps(steps)
            self.assertIn("expected stop steps from ['message', 'SIGINT', 'SIGTERM', 'SIGKILL'], in that order",
                          str(caught.exception))


class TestSigintStep(unittest.TestCase):
    def stop_by_sigint(self, target):
        seen = {}

        class Stops(ProcessTestCase):
            stop_timeouts = {"SIGINT": 3.0}

            def test_it(self):
                proc = self.start_process(target, self.endpoint)
                yield ("wait_endpoint", self.endpoint)
                seen["managed"] = self.managed(proc)

        self.assertEqual(problems(run_case(Stops)), [])
        self.assertEqual((seen["managed"].stopped_by, seen["managed"].exitcode()), ("SIGINT", 0))

    def test_a_clean_up_that_blocks_gets_no_second_sigint(self):
        self.stop_by_sigint(samples.slow_clean_up)

    def test_sigint_is_sent_again_while_the_process_sits_in_the_call_it_was_in(self):
        self.stop_by_sigint(samples.shrugs_off_one_sigint)


class TestChosenSteps(unittest.TestCase):
    def test_a_server_whose_documented_stop_is_sigterm(self):
        seen = {}

        class TermServer(ProcessTestCase):
            stop_steps = ("SIGTERM",)
            stop_timeouts = samples.SHORT_STOPS

            def test_it(self):
                proc = self.start_process(StubbornProc, self.endpoint)  # ignores SIGINT
                seen["managed"] = self.managed(proc)

        self.assertEqual(problems(run_case(TermServer)), [])
        self.assertEqual(seen["managed"].stopped_by, "SIGTERM")

    def test_set_stop_steps_per_process(self):
        seen = {}

        class PerProcess(ProcessTestCase):
            stop_timeouts = samples.SHORT_STOPS

            def test_it(self):
                proc = self.start_process(StubbornProc, self.endpoint)
                self.set_stop_steps(proc, ["SIGTERM"])
                seen["managed"] = self.managed(proc)

        self.assertEqual(problems(run_case(PerProcess)), [])
        self.assertEqual(seen["managed"].stop_plan.steps, ("SIGTERM", "SIGKILL"))


class TestStopEvent(unittest.TestCase):
    def test_a_custom_event_is_the_polite_stop(self):
        seen = {}

        class Signed(samples.PongCase):
            def send_shutdown(self, sock):
                """The test case's own event: here it sends the stop message by hand."""
                sock.send_multipart([b'["plzdiekthxbye", null]'])
                seen["sent"] = True

            def test_it(self):
                self.set_stop_event(self.proc, ("send_shutdown", self.req))
                seen["managed"] = self.managed(self.proc)
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req)

        self.assertEqual(problems(run_case(Signed)), [])
        self.assertEqual((seen["sent"], seen["managed"].stopped_by, seen["managed"].exitcode()), (True, "message", 0))

    def test_a_stop_event_that_fails_shows_its_outcome_and_the_transcript(self):
        class Broken(samples.PongCase):
            stop_timeouts = samples.SHORT_STOPS

            def send_shutdown(self, sock):
                raise ConnectionError("signing key missing")

            def test_it(self):
                self.set_stop_event(self.proc, ("send_shutdown", self.req))
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req)

        text = only_problem(self, run_case(Broken))
        self.assertIn("the polite stop of 'pongproc' failed: signing key missing", text)
        self.assertIn("did not stop politely (stop event ('send_shutdown', <TestSocket", text)
        self.assertIn("polite stop: stop event ('send_shutdown'", text)
        self.assertIn("-> failed: ConnectionError: signing key missing", text)
        self.assertIn("Timeline (", text)
        self.assertRegex(text, r"req +-> \[\['ping', 1\]\]")

    def test_a_stop_message_that_gets_no_reaction_shows_what_was_sent(self):
        class Ignored(ProcessTestCase):
            stop_timeouts = samples.SHORT_STOPS

            def test_it(self):
                proc = self.start_process(PongProc, self.endpoint)
                dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")
                self.set_stop_message(proc, dealer, ["not-a-stop", None], header=[b""])
                yield ("send", dealer, [b""], ["ping", 1])
                yield ("recv", dealer)

        text = only_problem(self, run_case(Ignored))
        self.assertIn("did not stop politely (stop message ['not-a-stop', None] on socket 'dealer'", text)
        self.assertIn("polite stop: stop message ['not-a-stop', None] on socket 'dealer'", text)
        self.assertIn("-> sent; what came back: [b'', b'[\"error\", \"unknown message type: not-a-stop\"]']", text)

    def test_a_bad_stop_event_is_refused_at_once(self):
        class Bad(samples.PongCase):
            def test_it(self):
                self.set_stop_event(self.proc, "send_shutdown")

        self.assertIn("expected an event tuple ('name', *args), got 'send_shutdown'",
                      only_problem(self, run_case(Bad), "error"))


# A command that ignores SIGINT (as a server whose documented stop is SIGTERM).
IGNORES_SIGINT = [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                  "print('up', flush=True); signal.pause()"]


class TestStopMessagePatterns(unittest.TestCase):
    def test_a_request_left_unanswered_does_not_spoil_the_stop_message(self):
        """The REQ socket cannot send (its reply is unread): a stand-in REQ sends the stop."""
        seen = {}

        class LeavesARequest(samples.PongCase):
            def setUp(self):
                super().setUp()
                self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

            def test_it(self):
                yield ("send", self.req, [], ["ping", 1])  # and never reads the reply
                seen["managed"] = self.managed(self.proc)

        self.assertEqual(problems(run_case(LeavesARequest)), [])
        self.assertEqual(seen["managed"].stopped_by, "message")

    def test_a_header_function_is_read_at_stop_time(self):
        """The worker restarts under a new identity during the test: a header function
        addresses the stop message to the new one; a header copied when the stop was
        set goes to the old, gone one, and the stop needs SIGINT."""
        seen = {}

        def worker_case(header_of):
            class Restarts(ProcessTestCase):
                stop_timeouts = samples.SHORT_STOPS

                def setUp(self):
                    self.router = self.socket(zmq.ROUTER, bind=self.endpoint, name="broker")
                    self.proc = self.start_process(PongWorker, self.endpoint)
                    self.worker_id = self.recv(self.router)[0]
                    self.set_stop_message(self.proc, self.router, ["plzdiekthxbye", None], header=header_of(self))

                def test_it(self):
                    self.proc = yield ("restart", self.proc)
                    self.worker_id = (yield ("recv", self.router))[0]  # its new 'ready'
                    seen["managed"] = self.managed(self.proc)
            return Restarts

        self.assertEqual(problems(run_case(worker_case(lambda case: lambda: [case.worker_id, b""]))), [])
        self.assertEqual(seen["managed"].stopped_by, "message")
        text = only_problem(self, run_case(worker_case(lambda case: [case.worker_id, b""])))
        self.assertIn("did not stop politely", text)


class TestStopPlan(unittest.TestCase):
    def test_a_plan_is_validated_when_made_and_fills_in_the_default_bounds(self):
        plan = StopPlan(["SIGTERM"], {"SIGTERM": 0.5})
        self.assertEqual(plan.steps, ("SIGTERM", "SIGKILL"))
        self.assertEqual(dict(plan.timeouts), dict(DEFAULT_STOP_TIMEOUTS, SIGTERM=0.5))
        with self.assertRaises(TypeError):
            plan.timeouts["SIGKILL"] = 1.0  # a value: nobody changes it behind the owner's back
        for bad in ({"SIGTERM": -1}, {"SIGTERM": "2"}, {"SIGTERM": True}):
            with self.subTest(timeouts=bad), self.assertRaisesRegex(ValueError, r"stop_timeouts\['SIGTERM'\]"):
                StopPlan(timeouts=bad)

    def test_plan_for_validates_each_distinct_value_once_and_refuses_bad_ones_every_time(self):
        first = plan_for(["SIGTERM"], {"SIGTERM": 0.5})
        self.assertIs(plan_for(("SIGTERM",), {"SIGTERM": 0.5}), first)  # the same values: the same plan
        self.assertEqual(first, StopPlan(["SIGTERM"], {"SIGTERM": 0.5}))
        self.assertIsNot(plan_for(["SIGTERM"], {"SIGTERM": 0.6}), first)
        self.assertEqual(plan_for(["SIGTERM"], {"SIGTERM": 1}).timeouts["SIGTERM"], 1)
        for _again in range(2):  # never kept: refused each time, True not taken for the 1 above
            with self.assertRaisesRegex(ValueError, r"stop_timeouts\['SIGTERM'\]"):
                plan_for(["SIGTERM"], {"SIGTERM": True})
            with self.assertRaisesRegex(ValueError, "expected stop steps"):
                plan_for("SIGTERM", {})
        with self.assertRaisesRegex(ValueError, r"stop_timeouts\['SIGTERM'\]"):
            plan_for(["SIGTERM"], {"SIGTERM": [1]})  # unhashable: validated (and refused) without the cache

    def test_a_changed_copy_is_not_validated_again(self):
        plan = plan_for(DEFAULT_STOP_STEPS, DEFAULT_STOP_TIMEOUTS)
        polite = PoliteStop(lambda: None, "stop message")
        with mock.patch("zmqprocesstest.stopping.check_stop_timeouts", side_effect=AssertionError("checked again")):
            changed = plan.with_polite(polite).with_steps(["message", "SIGTERM"])
        self.assertEqual((changed.polite, changed.steps, changed.timeouts), (polite, ("message", "SIGTERM", "SIGKILL"),
                                                                             plan.timeouts))
        self.assertIsNone(plan.polite)  # the original is unchanged
        with self.assertRaisesRegex(TypeError, "expected polite to be a PoliteStop"):
            plan.with_polite("stop")  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "expected stop steps"):
            plan.with_steps(["SIGTERM", "SIGINT"])

    def test_a_misspelled_stop_timeouts_key_names_the_valid_keys(self):
        with self.assertRaises(ValueError) as caught:
            StopPlan(timeouts={"SIGINTT": 1.0})
        self.assertEqual(str(caught.exception), "expected stop_timeouts keys from ['message', 'SIGINT', 'SIGTERM', "
                                                "'SIGKILL'], got 'SIGINTT' in {'SIGINTT': 1.0}")

    def test_a_misspelled_key_on_the_class_fails_before_the_process_starts(self):
        seen = {}

        class Misspelled(ProcessTestCase):
            stop_timeouts = {"SIGTREM": 0.5}

            def test_it(self):
                seen["reached"] = True
                self.start_command(IGNORES_SIGINT)
                seen["started"] = True

        text = only_problem(self, run_case(Misspelled), kind="error")
        self.assertIn("ValueError: expected stop_timeouts keys from ['message', 'SIGINT', 'SIGTERM', 'SIGKILL'], "
                      "got 'SIGTREM'", text)
        self.assertEqual(seen, {"reached": True})

    def test_add_process_gets_the_cases_stop_steps_and_timeouts(self):
        seen = {}

        class TermServer(ProcessTestCase):
            stop_steps = ("SIGTERM",)
            stop_timeouts = samples.SHORT_STOPS

            def test_it(self):
                proc = self.add_process(CommandProcess.start(IGNORES_SIGINT, name="server"))
                yield ("wait_output", proc, "up")
                seen["managed"] = proc

        self.assertEqual(problems(run_case(TermServer)), [])
        managed = seen["managed"]
        self.assertEqual((managed.stop_plan.steps, managed.stop_plan.timeouts["SIGTERM"]),
                         (("SIGTERM", "SIGKILL"), 0.5))
        self.assertEqual(managed.stop_result.stopped_by, "SIGTERM")

    def test_restart_carries_the_whole_plan_over(self):
        seen = {}

        class Restarts(ProcessTestCase):
            stop_timeouts = samples.SHORT_STOPS

            def test_it(self):
                proc = self.start_command(IGNORES_SIGINT, name="server")
                self.set_stop_steps(proc, ["SIGTERM"])
                yield ("wait_output", proc, "up")
                old = self.managed(proc)
                proc = yield ("restart", proc)
                seen["old"], seen["new"] = old, self.managed(proc)
                yield ("wait_output", proc, "up")

        self.assertEqual(problems(run_case(Restarts)), [])
        self.assertIs(seen["new"].stop_plan, seen["old"].stop_plan)
        self.assertEqual([m.stop_result.stopped_by for m in (seen["old"], seen["new"])], ["SIGTERM", "SIGTERM"])


class TestStopResult(unittest.TestCase):
    def test_one_value_says_how_the_stop_went(self):
        seen = {}

        class Stops(samples.PongCase):
            def test_it(self):
                ctl = self.socket(zmq.DEALER, connect=self.endpoint, name="ctl")
                self.set_stop_message(self.proc, ctl, ["plzdiekthxbye", None], header=[b""])
                seen["managed"] = self.managed(self.proc)
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req)

        self.assertEqual(problems(run_case(Stops)), [])
        result = seen["managed"].stop_result
        self.assertEqual((result.stopped_by, result.exitcode, result.polite_outcome, result.problems, result.ok),
                         ("message", 0, "sent", (), True))
        self.assertEqual([step for step, _seconds in result.durations], ["message"])
        self.assertGreaterEqual(result.duration, 0.0)
        self.assertEqual(seen["managed"].stopped_by, "message")  # the read-only view of it

    def test_an_escalated_stop_lists_each_step_and_its_problem(self):
        seen = {}

        class Escalates(ProcessTestCase):
            stop_timeouts = samples.SHORT_STOPS

            def test_it(self):
                proc = self.start_command(IGNORES_SIGINT, name="server")
                yield ("wait_output", proc, "up")
                seen["managed"] = self.managed(proc)

        only_problem(self, run_case(Escalates))
        result = seen["managed"].stop_result
        self.assertEqual([step for step, _seconds in result.durations], ["SIGINT", "SIGTERM"])
        self.assertEqual((result.stopped_by, result.ok), ("SIGTERM", False))
        self.assertIn("did not stop politely (SIGINT); it took SIGTERM", result.problems[0])
