"""Tests of events.py: which methods are events, argument messages, recv_nothing's ignore."""
import re
import time
import unittest

import zmq

from zmqprocesstest import ProcessTestCase, SystemTestCase
from zmqprocesstest.events import Events, event
from zmqprocesstest.loop import known_events

from .samples import cases as samples
from .support import only_problem, problems, run_case


class TestWhichMethodsAreEvents(unittest.TestCase):
    def test_builtin_events_are_the_marked_methods(self):
        marked = {name for name, value in vars(Events).items() if getattr(value, "__zmqprocesstest_event__", False)}
        self.assertEqual(marked, {"send", "recv", "recv_nothing", "log", "signal", "wait_exit", "wait_output",
                                  "wait_endpoint", "send_raw", "recv_raw", "wait_subscribed", "freeze", "thaw",
                                  "restart"})
        faults = {"partition", "heal", "reset", "refuse", "delay", "drop", "loss", "duplicate", "jitter", "rate",
                  "close_after", "wait_connected", "wait_disconnected", "wait_handshake"}
        self.assertEqual(known_events(ProcessTestCase), frozenset(marked | faults))

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


class TestArgumentMessages(unittest.TestCase):
    def test_arguments_in_the_wrong_order_name_the_expected_order(self):
        class WrongOrder(samples.PongCase):
            def test_it(self):
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req, 5.0)  # meant the timeout

        text = only_problem(self, run_case(WrongOrder), "error")
        self.assertIn("expected json_index to be a frame index (int) or None, got 5.0; event 'recv' takes "
                      "('recv', sock, json_index=-1, timeout=None, frames=None)", text)
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
