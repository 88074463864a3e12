"""Tests of events.py: which methods are events, argument messages, recv_nothing's ignore."""
import os
import re
import time
import unittest

import zmq

from zmqprocesstest import ProcessTestCase, SystemTestCase, override_event
from zmqprocesstest.events import Events, event
from zmqprocesstest.faults import FaultLink
from zmqprocesstest.faults.events import faults_of
from zmqprocesstest.loop import builtin_events, dispatch, known_events

from .samples import cases as samples
from .support import only_problem, problems, run_case


class TestWhichMethodsAreEvents(unittest.TestCase):
    def test_builtin_events_are_the_marked_methods(self):
        marked = {name for name, value in vars(Events).items() if getattr(value, "__zmqprocesstest_event__", False)}
        self.assertEqual(marked, {"send", "recv", "recv_nothing", "log", "signal", "wait_exit", "wait_output",
                                  "wait_endpoint", "send_raw", "recv_raw", "wait_subscribed", "freeze", "thaw",
                                  "restart", "until", "replay"})
        faults = {name for name, _method in faults_of(FaultLink)}  # one event per fault of the link
        self.assertGreaterEqual(faults, {"partition", "heal", "reset", "refuse", "delay", "drop", "loss", "duplicate",
                                         "jitter", "rate", "close_after"})
        monitor = {"wait_connected", "wait_disconnected", "wait_handshake"}
        self.assertEqual(known_events(ProcessTestCase), frozenset(marked | faults | monitor))

    def test_library_methods_of_system_test_case_are_not_events(self):
        class Golden(SystemTestCase):
            pass

        events = known_events(Golden)
        for name in ("run_program", "assertGolden", "assertProgramOutput", "golden_directory", "socket",
                     "start_process", "set_stop_event", "setUp", "run_events"):
            self.assertNotIn(name, events)

    def test_users_public_methods_are_events_but_overrides_are_not(self):
        class Mine(ProcessTestCase):
            def setUp(self):
                pass

            def socket(self, *args, **kwargs):  # overrides a resource method
                return super().socket(*args, **kwargs)

            def send_signed(self, sock, body):
                pass

            def _private(self):
                pass

            def test_x(self):
                pass

        events = known_events(Mine)
        self.assertIn("send_signed", events)
        for name in ("setUp", "socket", "_private", "test_x"):
            self.assertNotIn(name, events)

    def test_a_marked_method_on_a_user_mixin_is_an_event(self):
        class Mixin:
            @event
            def ping(self):
                return "pong"

            @classmethod
            def factory(cls):
                return cls

        class Mine(Mixin, ProcessTestCase):
            pass

        self.assertIn("ping", known_events(Mine))
        self.assertNotIn("factory", known_events(Mine))

    def test_yielding_a_library_method_is_refused(self):
        class YieldsRunProgram(SystemTestCase):
            def test_it(self):
                yield ("run_program", ["true"])

        text = only_problem(self, run_case(YieldsRunProgram), "error")
        self.assertIn("unknown event 'run_program'", text)


class TestBuiltinNamesCannotBeShadowed(unittest.TestCase):
    """A user's name that is a built-in event is refused when the class is defined."""

    def test_a_helper_named_reset_is_refused_at_class_definition(self):
        with self.assertRaises(TypeError) as caught:
            class Helpers(ProcessTestCase):
                def reset(self, what=None):  # a helper of the user's: would hide the fault event
                    pass

        self.assertEqual(str(caught.exception),
                         "TestBuiltinNamesCannotBeShadowed.test_a_helper_named_reset_is_refused_at_class_definition."
                         "<locals>.Helpers.reset has the name of the built-in event 'reset': yield ('reset', ...) "
                         "would call it instead of the event, with no error. Rename it, or, to replace the event on "
                         "purpose, decorate it with @override_event (from zmqprocesstest import override_event); "
                         "the built-in one stays super().reset(...)")

    def test_a_class_attribute_and_a_mixin_method_are_refused_too(self):
        with self.assertRaisesRegex(TypeError, r"Settings\.delay = 0\.5 has the name of the built-in event "
                                               r"'delay'.*only a method decorated with @override_event"):
            class Settings(ProcessTestCase):
                delay = 0.5

        class Logging:  # a mixin written for plain unittest
            def log(self, text):
                pass

        with self.assertRaisesRegex(TypeError, r"Mine: its base .*Logging\.log has the name of the built-in "
                                               r"event 'log'"):
            class Mine(Logging, ProcessTestCase):
                pass

    def test_the_event_marker_alone_does_not_replace_a_builtin(self):
        with self.assertRaisesRegex(TypeError, r"Marked\.send has the name of the built-in event 'send'"):
            class Marked(ProcessTestCase):
                @event
                def send(self, *args):
                    pass

    def test_every_builtin_event_name_is_guarded(self):
        self.assertEqual(builtin_events(ProcessTestCase), known_events(ProcessTestCase))
        for name in sorted(builtin_events(ProcessTestCase)):
            with self.subTest(event=name), self.assertRaises(TypeError):
                type("Shadows", (ProcessTestCase,), {name: lambda self: None})

    def test_custom_events_and_library_overrides_still_define(self):
        class Mixin:
            @event
            def ping(self):
                return "pong"

        class Mine(Mixin, ProcessTestCase):
            def socket(self, *args, **kwargs):
                return super().socket(*args, **kwargs)

            def send_signed(self, sock, body):
                pass

            def log_line(self, text):
                pass

        self.assertTrue({"ping", "send_signed", "log_line"} <= known_events(Mine))

    def test_an_attribute_set_in_setup_does_not_hijack_the_event(self):
        seen = {}

        class SetsDelay(ProcessTestCase):
            def setUp(self):
                self.delay = 0.5  # a setting of the test, named like the fault event

            def test_it(self):
                self.socket(zmq.REP, bind=self.endpoint)
                link = seen["link"] = self.fault_link(self.endpoint)
                yield ("delay", link, 0.1)
                seen["history"] = [what for _, what in link.history]
                seen["state"] = link.state

        self.assertEqual(problems(run_case(SetsDelay)), [])
        self.assertEqual(seen["history"], ["delay 0.1 s"])
        self.assertIn("0.1", seen["state"])

    def test_a_marked_override_is_the_events_handler(self):
        calls = []

        class CountsResets(ProcessTestCase):
            @override_event
            def reset(self, link):
                calls.append(link)
                return super().reset(link)

        class Sub(CountsResets):  # inherits the override: nothing to mark again
            def test_it(self):
                self.socket(zmq.REP, bind=self.endpoint)
                link = self.fault_link(self.endpoint)
                closed = yield ("reset", link)
                self.assertEqual(closed, 0)
                self.assertEqual(calls, [link])
                self.assertEqual([what for _, what in link.history], ["reset"])

        self.assertEqual(problems(run_case(Sub)), [])
        self.assertEqual(len(calls), 1)
        self.assertIn("reset", known_events(Sub))
        with self.assertRaisesRegex(TypeError, r"Again\.reset has the name of the built-in event 'reset'"):
            class Again(CountsResets):  # replacing the override unmarked hides the event again
                def reset(self, link):
                    pass

    def test_a_shared_stop_event_still_binds_to_the_class(self):
        class Shared(ProcessTestCase):
            def ping(self):
                return self

        self.assertIs(dispatch(Shared, ("ping",)), Shared)
        case = Shared("ping")
        self.assertIs(dispatch(case, ("ping",)), case)


class TestArgumentMessages(unittest.TestCase):
    def test_arguments_in_the_wrong_order_name_the_expected_order(self):
        class WrongOrder(samples.PongCase):
            def test_it(self):
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req, 5.0)  # meant the timeout

        text = only_problem(self, run_case(WrongOrder), "error")
        self.assertIn("expected json_index to be a frame index (int) or None, got 5.0; event 'recv' takes "
                      "('recv', sock, json_index=-1, timeout=None, frames=None, ignore=None)", text)
        self.assertIn('yield ("recv", self.req, 5.0)', text)

    def test_signal_accepts_signal_enum_members(self):
        class Signals(samples.PongCase):
            def test_it(self):
                import signal
                # Signalled once it serves, as the examples do: a process signalled the
                # moment it has started can still miss a SIGINT (1 in 10 under load).
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req, -1, 10.0)  # not the class's 0.3 s: a loaded machine is slow
                yield ("signal", self.proc, signal.SIGINT)
                yield ("wait_exit", self.proc, 10.0)

        self.assertEqual(problems(run_case(Signals)), [])


class TestTimeoutMessages(unittest.TestCase):
    def test_a_custom_event_with_an_overall_deadline_reports_it(self):
        """Its last inner wait had 0.15 s left; the event was given 0.4 s."""
        class OverallDeadline(samples.PongCase):
            def recv_within(self, sock, total):
                deadline = time.monotonic() + total
                self.recv_nothing(sock, 0.25)  # something else it waits for first
                return self.recv(sock, -1, deadline - time.monotonic())

            def test_it(self):
                yield ("recv_within", self.socket(zmq.SUB, bind=self.new_endpoint(), subscribe=b""), 0.4)

        text = only_problem(self, run_case(OverallDeadline))
        found = re.search(r"\(event 'recv_within'\) timed out after ([\d.]+) s into the event "
                          r"\(its last wait, of ([\d.]+) s, ran out\)", text)
        self.assertIsNotNone(found, text)
        self.assertGreaterEqual(float(found.group(1)), 0.4)
        self.assertLess(float(found.group(2)), 0.2)

    def test_a_single_wait_reports_its_own_timeout(self):
        class OneWait(samples.PongCase):
            def test_it(self):
                yield ("recv", self.socket(zmq.SUB, bind=self.new_endpoint(), subscribe=b""), -1, 0.2)

        self.assertRegex(only_problem(self, run_case(OneWait)),
                         r"\(event 'recv'\) timed out after 0.2 s; last received")


class TestRecvNothing(unittest.TestCase):
    def run_with(self, ignore, sent):
        seen = {}

        class Heartbeats(ProcessTestCase):
            timeout = 0.5

            def test_it(self):
                pub = self.socket(zmq.PUB, bind=self.endpoint)
                sub = self.socket(zmq.SUB, connect=self.endpoint)
                # the slow joiner: publish until the subscriber gets one
                for _ in range(300):
                    pub.send_multipart([b"hello", b"0"])
                    if sub.poll(0.01):
                        break
                while sub.poll(0.05):
                    sub.recv_multipart()  # the hellos
                for frames in sent:
                    pub.send_multipart(frames)
                yield ("recv_nothing", sub, 0.2, ignore)
                seen["done"] = True

        return run_case(Heartbeats), seen

    def test_heartbeats_are_passed_over_by_topic(self):
        result, seen = self.run_with(b"hb", [[b"hb", b"1"], [b"hb", b"2"]])
        self.assertEqual((problems(result), seen), ([], {"done": True}))

    def test_by_a_list_of_topics_or_a_predicate(self):
        for ignore in (["hb", "tick"], lambda frames: frames[0] in (b"hb", b"tick")):
            # A picklable subTest parameter: nose2's mp plugin drops a test whose isn't.
            with self.subTest(ignore="a predicate" if callable(ignore) else ignore):
                result, seen = self.run_with(ignore, [[b"tick", b"1"], [b"hb", b"2"]])
                self.assertEqual((problems(result), seen), ([], {"done": True}))

    def test_a_message_that_counts_still_fails_the_test(self):
        result, seen = self.run_with(b"hb", [[b"hb", b"1"], [b"order", b"2"]])
        text = only_problem(self, result)
        self.assertIn("expected no message on socket 'SUB'", text)
        self.assertIn("got [b'order', b'2']", text)
        self.assertEqual(seen, {})

    def test_a_bad_ignore_rule_is_a_clear_error(self):
        result, _ = self.run_with(42, [])
        self.assertIn("expected ignore to be a topic prefix, a list of them or a function of the frames, got 42",
                      only_problem(self, result, "error"))


class TestRawFramesAndTheSlowJoiner(unittest.TestCase):
    def test_send_raw_and_recv_raw_skip_the_json_codec(self):
        seen = {}

        class Raw(samples.PongCase):
            def test_it(self):
                yield ("send_raw", self.req, [b'["ping", 5]'])
                seen["reply"] = yield ("recv_raw", self.req)

        self.assertEqual(problems(run_case(Raw)), [])
        self.assertEqual(seen["reply"], [b'["pong", 5]'])

    def test_wait_subscribed_repeats_the_trigger_until_the_first_message(self):
        seen = {}

        class SlowJoiner(ProcessTestCase):
            def test_it(self):
                pub = self.socket(zmq.PUB, bind=self.endpoint)
                sub = self.socket(zmq.SUB, connect=self.endpoint, subscribe=b"hello")
                first = yield ("wait_subscribed", sub, ("send_raw", pub, [b"hello", b"?"]))
                yield ("send_raw", pub, [b"news", b"1"])
                seen["first"] = first

        self.assertEqual(problems(run_case(SlowJoiner)), [])
        self.assertEqual(seen["first"], [b"hello", b"?"])

    def test_wait_subscribed_refuses_a_trigger_that_cannot_be_repeated(self):
        class ReqTrigger(samples.PongCase):
            def test_it(self):
                sub = self.socket(zmq.SUB, connect=self.new_endpoint(), subscribe=b"")
                yield ("wait_subscribed", sub, ("send", self.req, [], ["ping", 1]))

        text = only_problem(self, run_case(ReqTrigger), "error")
        self.assertRegex(text, r"expected a trigger that can be repeated, got a 'send' on socket 'req' \(REQ, .*\), "
                               r"which cannot send twice without a receive in between")

    def test_wait_subscribed_is_bounded_and_says_what_it_repeated(self):
        class NeverJoins(ProcessTestCase):
            def test_it(self):
                pub = self.socket(zmq.PUB, bind=self.endpoint)
                sub = self.socket(zmq.SUB, connect=self.endpoint, subscribe=b"other")
                yield ("wait_subscribed", sub, ("send_raw", pub, [b"hello"]), 0.2)

        text = only_problem(self, run_case(NeverJoins))
        self.assertRegex(text, r"expected a message on socket 'SUB' .* within 0.2 s while repeating "
                               r"\('send_raw', .*\) \(\d+ times\); none came")


def _exit_with(code):
    os._exit(code)


class TestUntil(unittest.TestCase):
    """``until`` repeats an event, paced and bounded, until its result is truthy."""

    def test_it_returns_the_first_result_its_predicate_accepts(self):
        seen = {}

        class Heartbeats(ProcessTestCase):
            def test_it(self):
                pull = self.socket(zmq.PULL, bind=self.endpoint)
                push = self.socket(zmq.PUSH, connect=self.endpoint)
                for frame in (b"HEARTBEAT", b"HEARTBEAT", b"READY"):
                    yield ("send_raw", push, [frame])
                seen["got"] = yield ("until", ("recv_raw", pull), lambda msg: msg[0] != b"HEARTBEAT")

        self.assertEqual(problems(run_case(Heartbeats)), [])
        self.assertEqual(seen["got"], [b"READY"])

    def test_without_a_predicate_the_result_itself_must_be_truthy_and_tries_are_paced(self):
        seen = {}

        class Counting(ProcessTestCase):
            count = 0

            def counter(self):
                self.count += 1
                seen.setdefault("at", []).append(time.monotonic())
                return self.count >= 4 and self.count

            def test_it(self):
                seen["got"] = yield ("until", ("counter",), None, 5, 0.02)

        self.assertEqual(problems(run_case(Counting)), [])
        self.assertEqual(seen["got"], 4)
        gaps = [b - a for a, b in zip(seen["at"], seen["at"][1:])]
        self.assertGreaterEqual(min(gaps), 0.015, gaps)

    def test_its_timeout_names_the_event_the_tries_and_the_last_result(self):
        class Never(ProcessTestCase):
            def never(self):
                return []

            def test_it(self):
                yield ("until", ("never",), None, 0.1)

        started = time.monotonic()
        text = only_problem(self, run_case(Never))
        self.assertLess(time.monotonic() - started, 1.0)
        match = re.search(r"Timeout: expected a truthy result of \('never',\) within 0.1 s; (\d+) tries, the last "
                          r"gave \[\]", text)
        self.assertIsNotNone(match, text)
        self.assertLessEqual(int(match.group(1)), 12)  # paced: at most one try per 10 ms
        self.assertRegex(text, r'yield \("until"')

    def test_a_try_that_times_out_is_not_there_yet(self):
        class Quiet(ProcessTestCase):
            def test_it(self):
                pull = self.socket(zmq.PULL, bind=self.endpoint)
                yield ("until", ("recv_raw", pull, 0.01), len, 0.1)

        text = only_problem(self, run_case(Quiet))
        self.assertRegex(text, r"within 0.1 s; \d+ tries, the last gave its try timed out: recv_multipart on "
                               r"socket 'PULL'")

    def test_a_death_ends_it_at_once(self):
        class Dies(ProcessTestCase):
            def nothing(self):
                return None

            def test_it(self):
                self.start_process(_exit_with, 3)
                yield ("until", ("nothing",), None, 10)

        started = time.monotonic()
        text = only_problem(self, run_case(Dies))
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertIn("ProcessDied", text)
        self.assertIn("exit code 3", text)

    def test_bad_arguments_say_what_was_expected(self):
        class Bad(ProcessTestCase):
            def test_event(self):
                yield ("until", "recv_raw")

            def test_predicate(self):
                yield ("until", ("recv_raw",), 3)

        result = run_case(Bad)
        texts = " ".join(text for _test, text in result.errors)
        self.assertIn("expected event to be an event tuple ('name', *args), got 'recv_raw'", texts)
        self.assertIn("expected predicate to be a function of the result, or None, got 3", texts)
