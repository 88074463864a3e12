"""Tests of case.py: the metaclass, the send-back loop and the test's resources."""
import inspect
import math
import os
import socket
import sys
import time
import unittest

import zmq

from zmqprocesstest import ProcessTestCase, make_sock
from zmqprocesstest.systemtests import run_program
from zmqprocesstest.timeout import hard_timeout
from zmqprocesstest.loop import known_events

from .samples import cases as samples
from .support import only_problem, problems, run_case


class TestMetaclass(unittest.TestCase):
    def test_wrapper_is_a_plain_function_that_keeps_metadata(self):
        method = samples.CustomEvents.__dict__["test_custom_event"]
        self.assertFalse(inspect.isgeneratorfunction(method))
        self.assertEqual(method.__name__, "test_custom_event")
        self.assertEqual(method.__qualname__, "CustomEvents.test_custom_event")
        self.assertEqual(method.__doc__, "Custom events are methods.")
        self.assertTrue(inspect.isgeneratorfunction(method.__wrapped__))

    def test_helper_generators_are_left_alone(self):
        self.assertTrue(inspect.isgeneratorfunction(samples.CustomEvents.helper_generator))

    def test_generator_test_from_a_mixin_is_converted_and_runs(self):
        self.assertFalse(inspect.isgeneratorfunction(samples.WithMixin.test_from_mixin))
        self.assertTrue(inspect.isgeneratorfunction(samples.Mixin.test_from_mixin))
        result = run_case(samples.WithMixin)
        self.assertEqual((result.testsRun, problems(result)), (1, []))

    def test_skip_expected_failure_subtests_and_plain_tests_work(self):
        result = run_case(samples.Decorated)
        # 3 run + the skipped one, if this unittest counts skipped tests (3.12.1 does not)
        self.assertEqual(result.testsRun, 3 + run_case(samples.SkipProbe).testsRun)
        self.assertEqual(len(result.skipped), 1)
        self.assertEqual(len(result.expectedFailures), 1)
        self.assertEqual(problems(result), [])

    def test_generator_set_after_class_creation_is_refused(self):
        class Late(ProcessTestCase):
            pass

        def test_late(self):
            yield ("recv", None)

        Late.test_late = test_late
        text = only_problem(self, run_case(Late, "test_late"), "error")
        self.assertIn("is a generator function that was not converted", text)


class TestSendBackLoop(unittest.TestCase):
    def test_custom_event_result_is_sent_back(self):
        result = run_case(samples.CustomEvents)
        self.assertEqual((result.testsRun, problems(result)), (1, []))

    def test_assertion_failure_shows_the_test_line_and_transcript(self):
        text = only_problem(self, run_case(samples.Failures, "test_wrong_reply"))
        self.assertIn('self.assertEqual(reply, [["pong", 2]])', text)
        self.assertIn("Timeline (", text)
        self.assertRegex(text, r"req +-> \[\['ping', 1\]\]")
        self.assertRegex(text, r"req +<- \[\['pong', 1\]\]")
        self.assertIn("process 'pongproc'", text)

    def test_timeout_points_at_the_yield_line_and_names_everything(self):
        text = only_problem(self, run_case(samples.Failures, "test_timeout"))
        last_frame = text.split("Traceback (most recent call last):")[1].split("SocketTimeout")[0]
        self.assertIn('yield ("recv", dealer)  # nothing more comes', last_frame)
        self.assertNotIn("zmqprocesstest/", last_frame)  # no frame of the library itself
        self.assertIn("recv_multipart on socket 'dealer' (DEALER, connect ipc://", text)
        self.assertIn("(event 'recv') timed out after 0.3 s", text)
        self.assertIn("last received on it: [b'', ['error', 'unknown message type: spam']]", text)

    def test_a_test_can_catch_a_thrown_error(self):
        result = run_case(samples.Failures, "test_catches_timeout")
        self.assertEqual(problems(result), [])

    def assertBadYield(self, name, *expected):
        text = only_problem(self, run_case(samples.Failures, name), "error")
        self.assertIn("EventError", text)
        for part in expected:
            self.assertIn(part, text)
        return text

    def test_not_a_tuple(self):
        self.assertBadYield("test_not_a_tuple", "expected a tuple ('event', *args) to be yielded, got list",
                            'yield ["send", self.req, [], 1]')

    def test_empty_tuple(self):
        self.assertBadYield("test_empty_tuple", "got an empty tuple", "yield ()")

    def test_name_not_a_string(self):
        self.assertBadYield("test_name_not_str", "expected an event name (str) first in the yielded tuple, got 42")

    def test_unknown_event_lists_known_ones(self):
        known = sorted(known_events(samples.Failures))  # the built-in ones and the case's own explode
        self.assertIn("explode", known)
        self.assertGreaterEqual(set(known), {"send", "recv", "partition", "heal", "loss"})
        self.assertBadYield("test_unknown_event", "unknown event 'pingg'", f"known events: {', '.join(known)}.",
                            "Add one by defining a method pingg(self, ...)")

    def test_wrong_arguments_for_a_handler(self):
        self.assertBadYield("test_bad_arguments", "bad arguments for event 'send': missing a required argument: "
                            "'header'", "expected ('send', sock, header, body, extra_frames=(), timeout=None)",
                            'yield ("send", self.req)')

    def test_typeerror_inside_a_handler_is_not_called_an_argument_error(self):
        text = only_problem(self, run_case(samples.Failures, "test_handler_raises_typeerror_inside"), "error")
        self.assertIn("object of type 'int' has no len()", text)
        self.assertIn("return len(42)", text)
        self.assertNotIn("bad arguments", text)

    def test_returning_a_value_is_an_error(self):
        text = only_problem(self, run_case(samples.Failures, "test_returns_value"), "error")
        self.assertIn("expected the test to return None, got 42", text)

    def test_plain_test_returning_a_value_is_an_error(self):
        class Returns(ProcessTestCase):
            def test_returns(self):
                return 1

        text = only_problem(self, run_case(Returns, "test_returns"), "error")
        self.assertIn("expected the test to return None, got 1", text)

    def test_run_timeout_stops_a_test_that_never_ends(self):
        text = only_problem(self, run_case(samples.RunTimeout))
        self.assertIn("TestTimeout", text)
        self.assertIn("ran longer than run_timeout (0.2 s)", text)


class TestResources(unittest.TestCase):
    def test_fixed_port_can_be_bound_again_by_the_next_test(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            number = probe.getsockname()[1]

        class Binds(ProcessTestCase):
            def test_a(self):
                self.socket(zmq.REP, bind=f"tcp://127.0.0.1:{number}")
                yield from ()

            test_b = test_a

        result = run_case(Binds, "test_a", "test_b")
        self.maxDiff = None
        self.assertEqual((result.testsRun, problems(result)), (2, []))

    def test_a_context_that_does_not_terminate_costs_a_bounded_wait_and_is_reported(self):
        from zmqprocesstest.resources import _terminate

        hung = zmq.Context()
        untracked = zmq.Socket(hung, zmq.PUSH)  # not made by hung.socket(): destroy() cannot close it
        try:
            start = time.monotonic()
            self.assertEqual(_terminate(hung, 0.2),
                             ["the zmq context did not terminate within 0.2 s (a socket is still in use)"])
            self.assertLess(time.monotonic() - start, 1.5)
            fine = zmq.Context()
            fine.socket(zmq.PUSH).close()
            self.assertEqual(_terminate(fine, 2.0), [])  # a new thread takes it: not stuck behind the first
            self.assertTrue(fine.closed)
        finally:
            untracked.close(linger=0)

    def test_endpoints_are_private_and_removed(self):
        seen = {}

        class Endpoints(ProcessTestCase):
            def test_it(self):
                seen["first"] = self.endpoint
                seen["again"] = self.endpoint
                seen["second"] = self.new_endpoint()
                seen["tcp"] = self.new_endpoint("tcp")
                seen["mode"] = os.stat(self.endpoint[len("ipc://"):].rsplit("/", 1)[0]).st_mode & 0o777

        self.assertEqual(problems(run_case(Endpoints)), [])
        self.assertEqual(seen["first"], seen["again"])
        self.assertNotEqual(seen["first"], seen["second"])
        self.assertTrue(seen["tcp"].startswith("tcp://127.0.0.1:"))
        self.assertEqual(seen["mode"], 0o700)
        self.assertFalse(os.path.exists(seen["first"][len("ipc://"):].rsplit("/", 1)[0]))

    def test_sockets_and_context_are_closed_even_when_setup_fails(self):
        kept = {}

        class Broken(ProcessTestCase):
            def setUp(self):
                kept["sock"] = self.socket(zmq.PUB, bind=self.endpoint)
                kept["ctx"] = self.context
                raise RuntimeError("broken setUp")

            def test_it(self):
                pass

        text = only_problem(self, run_case(Broken), "error")
        self.assertIn("broken setUp", text)
        self.assertTrue(kept["sock"].closed)
        self.assertTrue(kept["ctx"].closed)

    def test_raw_context_sockets_left_open_are_closed_and_reported(self):
        class Raw(ProcessTestCase):
            def test_it(self):
                self.raw = self.context.socket(zmq.PUB)

        text = only_problem(self, run_case(Raw))
        self.assertIn("1 socket(s) made with context.socket() directly were left open; closed them", text)

    def test_socket_of_another_test_is_refused(self):
        holder = {}

        class First(ProcessTestCase):
            def test_it(self):
                holder["closed"] = self.socket(zmq.PUB, bind=self.endpoint)

        class Second(ProcessTestCase):
            def test_closed(self):
                yield ("send", holder["closed"], [], 1)

            def test_foreign(self):
                other = First("test_it")
                self.addCleanup(other.doCleanups)
                yield ("send", other.socket(zmq.PUB), [], 1)

            def test_raw(self):
                sock = self.context.socket(zmq.PUSH)
                try:
                    yield ("send", sock, [], 1)
                finally:
                    sock.close()

        run_case(First)
        texts = {test_id.rsplit(".", 1)[1]: text for test_id, text in problems(run_case(Second))}
        self.assertEqual(sorted(texts), ["test_closed", "test_foreign", "test_raw"])
        self.assertIn("is closed; make a new one with self.socket()", texts["test_closed"])
        self.assertIn("belongs to another test (tests.test_case.TestResources.", texts["test_foreign"])
        self.assertIn("make it with self.socket()", texts["test_foreign"])
        self.assertIn("expected a TestSocket (made by self.socket() or make_sock()), got Socket", texts["test_raw"])


if __name__ == "__main__":
    unittest.main()


class TestUnittestHooks(unittest.TestCase):
    """ProcessTestCase overrides unittest's private _callSetUp and _callTestMethod.

    If a Python release drops or renames them, deselection, the leak check and the
    failure report would silently stop working: this test fails loudly instead.
    """

    def test_the_private_hooks_exist_with_the_signatures_we_override(self):
        for name, params in (("_callSetUp", ["self"]), ("_callTestMethod", ["self", "method"]),
                             ("_callTearDown", ["self"]), ("_callCleanup", ["self", "function", "args", "kwargs"])):
            with self.subTest(hook=name):
                hook = getattr(unittest.TestCase, name, None)
                self.assertTrue(callable(hook),
                                f"unittest.TestCase.{name} is gone: zmqprocesstest/case.py overrides it")
                self.assertEqual(list(inspect.signature(hook).parameters), params)

    def test_unittest_calls_them_for_each_test(self):
        calls = []

        class Probe(unittest.TestCase):
            def _callSetUp(self):
                calls.append("setUp")

            def _callTestMethod(self, method):
                calls.append("test")

            def test_it(self):
                pass

        unittest.TestSuite([Probe("test_it")]).run(unittest.TestResult())
        self.assertEqual(calls, ["setUp", "test"])

    def test_tear_down_and_cleanups_go_through_them_too(self):
        calls = []

        class Probe(unittest.TestCase):
            def _callTearDown(self):
                calls.append("tearDown")

            def _callCleanup(self, function, /, *args, **kwargs):
                calls.append("cleanup")

            def test_it(self):
                self.addCleanup(print)

        unittest.TestSuite([Probe("test_it")]).run(unittest.TestResult())
        self.assertEqual(calls, ["tearDown", "cleanup"])

    def test_class_and_module_cleanups_are_where_the_phases_find_them(self):
        # zmqprocesstest/case.py replaces doClassCleanups (it pops _class_cleanups), and
        # zmqprocesstest/_phases.py bounds the entries of unittest.case._module_cleanups.
        self.assertIsInstance(getattr(unittest.case, "_module_cleanups", None), list)
        self.assertEqual(list(inspect.signature(unittest.TestCase.doClassCleanups).parameters), [])

        class Probe(unittest.TestCase):
            pass

        Probe.addClassCleanup(print)
        self.assertEqual(Probe._class_cleanups, [(print, (), {})])

    def test_the_report_reaches_setup_and_test_failures_through_them(self):
        text = only_problem(self, run_case(samples.Failures, "test_wrong_reply"))
        self.assertIn("Processes under test:", text)
        text = only_problem(self, run_case(samples.SetUpError), "error")
        self.assertIn("Processes under test:", text)


class BadTimeouts(unittest.TestCase):
    """Every timeout the library takes is checked where it is given: a clear error naming
    what was expected and what came, never a TypeError deep inside a wait."""

    BAD = (("1", TypeError), (True, TypeError), (None, TypeError), (-1, ValueError), (math.nan, ValueError),
           (math.inf, ValueError))

    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, 0)

    def assertNamed(self, caught, what, value):
        self.assertIn(f"expected {what} to be a finite number of seconds", str(caught.exception))
        self.assertIn(f"got {value!r}", str(caught.exception))

    def test_sockets(self):
        for index, (value, error) in enumerate(self.BAD[:2] + self.BAD[3:]):
            with self.subTest(value=value):
                with self.assertRaises(error) as caught:
                    make_sock(self.ctx, zmq.PAIR, timeout=value)
                self.assertNamed(caught, "the timeout of a TestSocket", value)
                sock = make_sock(self.ctx, zmq.PUSH, bind=f"inproc://bad-timeouts-{index}")
                self.addCleanup(sock.close)
                pull = make_sock(self.ctx, zmq.PULL, connect=f"inproc://bad-timeouts-{index}")
                self.addCleanup(pull.close)
                with self.assertRaises(error) as caught:
                    sock.send(b"x", timeout=value)  # would be sent at once: still refused
                self.assertNamed(caught, "the timeout of send", value)
                for name in ("recv_multipart", "poll"):
                    with self.assertRaises(error) as caught:
                        getattr(pull, name)(timeout=value)
                    self.assertNamed(caught, f"the timeout of {name}", value)

    def test_class_attributes(self):
        for attr in ("timeout", "run_timeout"):
            for value, error in self.BAD:
                with self.subTest(attr=attr, value=value), self.assertRaises(error) as caught:
                    type("BadTimeout", (ProcessTestCase,), {attr: value, "__module__": __name__})
                self.assertNamed(caught, f"{attr} of BadTimeout", value)
        with self.assertRaises(ValueError) as caught:
            type("ZeroRunTimeout", (ProcessTestCase,), {"run_timeout": 0, "__module__": __name__})
        self.assertIn("expected run_timeout of ZeroRunTimeout to be a finite number of seconds > 0, got 0",
                      str(caught.exception))

    def test_set_on_the_test_and_given_to_an_event(self):
        class Case(ProcessTestCase):
            def test_socket(self):
                self.timeout = "2"
                self.socket(zmq.PAIR)

            def test_run_timeout(self):
                self.run_timeout = math.nan

            def test_event(self):
                proc = self.start_command([sys.executable, "-c", "pass"])
                yield ("wait_exit", proc, -1)

            def test_mock(self):
                self.process_mock(timeout="1")

        result = run_case(Case)
        texts = dict((test_id.rsplit(".", 1)[1], text) for test_id, text in problems(result))
        self.assertRegex(texts["test_socket"], r"TypeError: expected timeout of \S+<locals>\.Case to be a finite "
                                               r"number of seconds >= 0, got '2'")
        self.assertIn("expected timeout to be a finite number of seconds >= 0 or None, got -1", texts["test_event"])
        self.assertIn("expected the timeout of a ProcessMock to be a finite number of seconds >= 0 or None, got '1'",
                      texts["test_mock"])
        self.assertRegex(texts["test_run_timeout"], r"ValueError: expected run_timeout of \S+\.Case to be a finite "
                                                    r"number of seconds > 0, got nan")

    def test_run_program_and_hard_timeout(self):
        with self.assertRaises(ValueError) as caught:
            run_program([sys.executable, "-c", "pass"], timeout=math.nan)
        self.assertNamed(caught, "the timeout of run_program", math.nan)
        with self.assertRaisesRegex(TypeError, r"expected a positive number of seconds \(or None for no limit\), "
                                               r"got '1'"):
            hard_timeout("1", "x")


class TmpdirAndEndpoints(ProcessTestCase):
    """``self.tmpdir`` and ``self.endpoints(n)``: a multi-port program's endpoints and files."""

    def test_tmpdir_is_private_the_same_all_test_long_and_holds_the_ipc_endpoints(self):
        folder = self.tmpdir
        self.assertEqual(os.stat(folder).st_mode & 0o777, 0o700)
        self.assertIs(self.tmpdir, folder)
        self.assertTrue(self.new_endpoint("ipc").startswith(f"ipc://{folder}/"))
        with open(os.path.join(folder, "kernel.json"), "w") as f:
            f.write("{}")

    def test_tmpdir_is_removed_after_the_test(self):
        seen = []

        class Writes(ProcessTestCase):
            def test_it(self):
                seen.append(self.tmpdir)
                with open(os.path.join(self.tmpdir, "connection.json"), "w") as f:
                    f.write("{}")

        result = run_case(Writes)
        self.assertEqual(problems(result), [])
        self.assertFalse(os.path.exists(seen[0]))

    def test_tcp_endpoints_are_distinct_loopback_ports_that_a_zmq_bind_takes_at_once(self):
        endpoints = self.endpoints(5)
        self.assertEqual(len(set(endpoints)), 5)
        for endpoint in endpoints:
            self.assertRegex(endpoint, r"^tcp://127\.0\.0\.1:\d+$")
        ports = {int(e.rsplit(":", 1)[1]) for e in endpoints}
        # Nobody else's bind to port 0 is handed one of them ...
        others = []
        try:
            for _ in range(2000):
                other = socket.socket()
                others.append(other)
                other.bind(("127.0.0.1", 0))
                self.assertNotIn(other.getsockname()[1], ports)
        finally:
            for other in others:
                other.close()
        # ... while the process under test binds each of them at once, as libzmq does.
        for endpoint in endpoints:
            self.socket(zmq.ROUTER, bind=endpoint)

    def test_ipc_endpoints_are_in_the_private_directory(self):
        endpoints = self.endpoints(3, transport="ipc")
        self.assertEqual(len(set(endpoints)), 3)
        for endpoint in endpoints:
            self.assertTrue(endpoint.startswith(f"ipc://{self.tmpdir}/"))
            self.socket(zmq.PULL, bind=endpoint)

    def test_bad_arguments_say_what_was_expected(self):
        for bad in (0, -1, 2.0, True, "3"):
            with self.subTest(n=bad), self.assertRaisesRegex(ValueError, "expected n to be a positive number"):
                self.endpoints(bad)
        with self.assertRaisesRegex(ValueError, "expected transport 'ipc' or 'tcp', got 'udp'"):
            self.endpoints(2, transport="udp")
