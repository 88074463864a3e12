"""Coroutine tests: ``async def`` and async generator tests in a ProcessTestCase keep every guarantee."""
import asyncio
import gc
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

import zmq
import zmq.asyncio

import zmqprocesstest
from zmqprocesstest import ProcessTestCase, SystemTestCase, override_event

from .samples import async_sample as samples
from .support import EXAMPLES, ROOT, only_problem, problems, run_case

SAMPLE = samples.__file__.replace(".pyc", ".py")


def last_line(text, exc_name):
    """The last ``line N, in name`` of the traceback in *text*, before the exception *exc_name*."""
    tb = text.split("Traceback (most recent call last):")[1].split(exc_name)[0]
    return re.findall(r"line \d+, in \w+", tb)[-1]


def line_of(marker):
    with open(SAMPLE) as f:
        return [n for n, text in enumerate(f, 1) if text.rstrip().endswith(marker)][0]


class Runs(unittest.TestCase):
    def test_phases_run_in_the_order_of_isolated_asyncio_test_case(self):
        samples.ORDER.clear()
        result = run_case(samples.Order, "test_order")
        self.assertEqual(problems(result), [])
        self.assertEqual(samples.ORDER, ["setUp", "asyncSetUp", "test", "asyncTearDown", "tearDown",
                                         "async cleanup from test", "cleanup from test",
                                         "async cleanup from asyncSetUp", "async cleanup from setUp"])
        self.assertTrue(samples.TIMES["loop"].is_closed())  # one loop per test, closed after it

    def test_a_failing_coroutine_test_fails_and_tears_down(self):
        samples.ORDER.clear()
        text = only_problem(self, run_case(samples.Order, "test_fails"))
        self.assertIn("on purpose", text)
        self.assertEqual(samples.ORDER[:5], ["setUp", "asyncSetUp", "test", "asyncTearDown", "tearDown"])

    def test_async_set_up_runs_for_plain_and_generator_tests_too(self):
        for name in ("test_plain", "test_generator"):
            with self.subTest(name=name):
                samples.ORDER.clear()
                self.assertEqual(problems(run_case(samples.Order, name)), [])
                self.assertEqual(samples.ORDER, ["setUp", "asyncSetUp", name.replace("test_", "") + " test",
                                                 "asyncTearDown", "tearDown", "async cleanup from asyncSetUp",
                                                 "async cleanup from setUp"])

    def test_a_coroutine_test_that_returns_a_value_errors(self):
        text = only_problem(self, run_case(samples.Order, "test_returns"), "error")
        self.assertIn("expected the test to return None, got 5", text)

    def test_a_fresh_loop_per_test_and_none_left_set(self):
        loops = []

        class Two(ProcessTestCase):
            async def test_a(self):
                loops.append(asyncio.get_running_loop())

            async def test_b(self):
                loops.append(asyncio.get_running_loop())

        self.assertEqual(problems(run_case(Two)), [])
        self.assertEqual(len(loops), 2)
        self.assertIsNot(loops[0], loops[1])
        self.assertTrue(all(loop.is_closed() for loop in loops))

    def test_loop_factory_chooses_the_loop(self):
        made = []

        class MyLoop(asyncio.SelectorEventLoop):
            pass

        def factory():
            made.append(MyLoop())
            return made[-1]

        class Chosen(ProcessTestCase):
            loop_factory = staticmethod(factory)

            async def test_loop(self):
                self.assertIsInstance(asyncio.get_running_loop(), MyLoop)

        self.assertEqual(problems(run_case(Chosen)), [])
        self.assertEqual(len(made), 1)
        self.assertTrue(made[0].is_closed())

    def test_a_bad_loop_factory_is_a_clear_error(self):
        class Bad(ProcessTestCase):
            loop_factory = staticmethod(lambda: "not a loop")

            async def test_loop(self):
                pass

        text = only_problem(self, run_case(Bad), "error")
        self.assertIn("expected loop_factory of", text)
        self.assertIn("to return an asyncio event loop, got 'not a loop'", text)

    def test_smoke_passes_under_unittest(self):
        result = run_case(samples.Smoke)
        self.assertEqual(problems(result), [])
        self.assertEqual(result.testsRun, 5)
        self.assertEqual(problems(run_case(samples.SystemSmoke)), [])

    def test_an_async_test_never_passes_without_running(self):
        class Late(ProcessTestCase):
            pass

        async def test_late(self):
            pass
        Late.test_late = test_late  # set after class creation: not converted
        text = only_problem(self, run_case(Late), "error")
        self.assertIn("is a coroutine function that was not converted", text)

        # a plain method returning a coroutine (not an async def) is refused, not passed
        class Returns(ProcessTestCase):
            def test_returns_coroutine(self):
                return asyncio.sleep(0)
        text = only_problem(self, run_case(Returns), "error")
        self.assertIn("which never ran", text)


class AsyncGenerators(unittest.TestCase):
    def test_events_send_back_and_throw_back(self):
        samples.TIMES.clear()
        self.assertEqual(problems(run_case(samples.Events, "test_send_back_and_throw_back")), [])
        self.assertEqual(samples.TIMES["reply"], [["pong", 7]])
        self.assertEqual(samples.TIMES["thrown"], "EventError")

    def test_the_traceback_ends_at_the_yield(self):
        text = only_problem(self, run_case(samples.Events, "test_fails_at_yield"), "error")
        self.assertIn("unknown event 'no_such_event'", text)
        self.assertEqual(last_line(text, "EventError"), f'line {line_of("# BAD EVENT")}, in test_fails_at_yield')
        tb = text.split("Traceback (most recent call last):")[1].split("EventError")[0]
        self.assertNotIn("zmqprocesstest/", tb)


class SocketWaits(unittest.TestCase):
    """Test sockets awaited on the loop: the loop's other tasks run while a coroutine test waits."""

    def test_an_awaited_recv_lets_a_background_task_run(self):
        samples.TIMES.clear()
        self.assertEqual(problems(run_case(samples.SocketWaits, "test_await_recv")), [])
        self.assertEqual(samples.TIMES["reply"], {"n": 1})

    def test_a_yielded_recv_lets_a_background_task_run(self):
        samples.TIMES.clear()
        self.assertEqual(problems(run_case(samples.SocketWaits, "test_yield_recv")), [])
        self.assertEqual(samples.TIMES["reply"], [["x", 2]])

    def test_an_async_event_of_the_test_case_is_awaited(self):
        samples.TIMES.clear()
        self.assertEqual(problems(run_case(samples.SocketWaits, "test_own_async_event")), [])
        self.assertEqual(samples.TIMES["reply"], ["pong", 5])
        self.assertEqual(samples.TIMES["taken"], ["from", "a task"])  # the loop ran while the event waited

    def test_sends_receives_and_polls_are_in_the_timeline(self):
        class Fails(samples.SocketWaits):
            async def test_send_and_poll(self):
                await self.b.asyncio.send_json(["to", "a"])
                await self.a.asyncio.recv_json()
                self.fail("after the messages")
        text = only_problem(self, run_case(Fails, "test_send_and_poll"))
        timeline = text.split("Timeline (")[1]
        self.assertIn('b -> [b\'["to", "a"]\']', timeline)
        self.assertIn('a <- [b\'["to", "a"]\']', timeline)
        self.assertEqual(problems(run_case(samples.SocketWaits, "test_send_and_poll")), [])

    def test_an_awaited_timeout_is_a_socket_timeout_at_the_await(self):
        started = time.monotonic()
        text = only_problem(self, run_case(samples.SocketWaits, "test_await_times_out"))
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertIn("SocketTimeout: recv_multipart on socket 'a' (PAIR, bind ipc://", text)
        self.assertIn("timed out after 0.2 s; last received on it: nothing", text)
        self.assertEqual(last_line(text, "zmqprocesstest.SocketTimeout"),
                         f'line {line_of("# AWAIT TIMES OUT")}, in test_await_times_out')
        self.assertRegex(text.split("Timeline (")[1], r"a TIMED OUT: recv_multipart after 0.2 s")

    def test_a_yielded_timeout_names_its_event_at_the_yield(self):
        text = only_problem(self, run_case(samples.SocketWaits, "test_yield_times_out"))
        self.assertIn("(event 'recv') timed out after 0.2 s", text)
        self.assertEqual(last_line(text, "zmqprocesstest.SocketTimeout"),
                         f'line {line_of("# YIELD TIMES OUT")}, in test_yield_times_out')

    def test_a_req_socket_in_the_wrong_state_is_told_at_once(self):
        started = time.monotonic()
        text = only_problem(self, run_case(samples.SocketWaits, "test_a_wrong_state_is_told_at_once"), "error")
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertIn("cannot recv on socket", text)
        self.assertIn("REQ must alternate send, recv", text)

    def test_two_tasks_awaiting_one_socket_is_a_clear_error(self):
        text = only_problem(self, run_case(samples.SocketWaits, "test_two_waiters_on_one_socket"), "error")
        self.assertIn("another task awaits this socket already", text)

    def test_the_awaitable_face_refuses_pickles_and_unknown_waits(self):
        class Refuses(ProcessTestCase):
            async def test_it(self):
                sock = self.socket(zmq.PAIR, bind=self.endpoint).asyncio
                self.assertIs(sock, sock.test_socket.asyncio)
                self.assertEqual(sock.name, "PAIR")  # the test socket's attributes
                with self.assertRaisesRegex(TypeError, "it unpickles received data"):
                    sock.recv_pyobj()
                with self.assertRaisesRegex(TypeError, "send_pyobj on socket 'PAIR' .* is refused"):
                    sock.send_pyobj([1])
                with self.assertRaisesRegex(AttributeError, "recv_into has no awaitable form"):
                    sock.recv_into  # noqa: B018 - the attribute is the test
        self.assertEqual(problems(run_case(Refuses)), [])


    def test_a_message_nobody_awaits_does_not_spin_the_loop(self):
        spent = []

        class Idle(ProcessTestCase):
            async def test_it(self):
                a = self.socket(zmq.PAIR, bind=self.endpoint)
                b = self.socket(zmq.PAIR, connect=self.endpoint)
                b.send(b"first")
                self.assertEqual(await a.asyncio.recv(), b"first")  # a's fd is a reader of the loop now
                self.assertFalse(await a.asyncio.poll(0.01))  # libzmq signals the next message on the fd
                b.send(b"unread")  # its fd becomes readable, and nobody awaits a
                cpu = time.thread_time()
                await asyncio.sleep(0.1)
                spent.append(time.thread_time() - cpu)
                self.assertEqual(await a.asyncio.recv(timeout=1), b"unread")
        self.assertEqual(problems(run_case(Idle)), [])
        self.assertLess(spent[0], 0.01)  # a loop woken again and again for the fd would burn the 0.1 s

    def test_a_socket_the_class_shares_is_awaited_from_each_tests_loop(self):
        class Shared(ProcessTestCase):
            @classmethod
            def setUpClass(cls):
                super().setUpClass()
                endpoint = cls.new_endpoint()
                cls.a = cls.socket(zmq.PAIR, bind=endpoint, name="a")
                cls.b = cls.socket(zmq.PAIR, connect=endpoint, name="b")

            async def test_1(self):
                asyncio.get_running_loop().call_later(0.01, self.b.send, b"one")
                self.assertEqual(await self.a.asyncio.recv(timeout=2), b"one")

            async def test_2(self):
                asyncio.get_running_loop().call_later(0.01, self.b.send, b"two")
                self.assertEqual(await self.a.asyncio.recv(timeout=2), b"two")
        result = run_case(Shared)
        self.assertEqual(problems(result), [])
        self.assertEqual(result.testsRun, 2)

    def test_closing_a_socket_a_task_awaits_is_told_at_once(self):
        class Closes(ProcessTestCase):
            async def test_it(self):
                a = self.socket(zmq.PAIR, bind=self.endpoint, name="a")
                asyncio.get_running_loop().call_later(0.05, a.close)
                await a.asyncio.recv(timeout=10)  # CLOSED UNDER IT
        started = time.monotonic()
        text = only_problem(self, run_case(Closes), "error")
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertIn("ValueError: socket 'a' (PAIR, bind ipc://", text)
        self.assertIn("was closed while recv awaited it", text)

    def test_an_overridden_socket_event_is_the_test_cases_own(self):
        class Overrides(samples.SocketWaits):
            @override_event
            def recv(self, sock, *args):
                return ["mine"]

            async def test_it(self):
                self.assertEqual((yield ("recv", self.a, -1, 0.01)), ["mine"])
        self.assertEqual(problems(run_case(Overrides, "test_it")), [])


class OneTimerPerSocket(ProcessTestCase):
    """An awaited test socket's waits share one timer of the loop, moved on lazily."""

    def setUp(self):
        self.a = self.socket(zmq.PAIR, bind=self.endpoint, name="a")
        self.b = self.socket(zmq.PAIR, connect=self.endpoint, name="b")

    async def send_later(self, seconds, data):
        await asyncio.sleep(seconds)
        await self.b.asyncio.send(data)

    async def test_a_shorter_wait_after_a_longer_one_times_out_on_time(self):
        task = asyncio.ensure_future(self.send_later(0.01, b"x"))
        self.assertEqual(await self.a.asyncio.recv(timeout=30), b"x")  # its timer is left for 30 s
        await task
        began = time.monotonic()
        with self.assertRaises(zmqprocesstest.SocketTimeout):
            await self.a.asyncio.recv(timeout=0.2)
        self.assertLess(time.monotonic() - began, 2.0)

    async def test_a_longer_wait_after_a_shorter_one_waits_its_whole_timeout(self):
        task = asyncio.ensure_future(self.send_later(0.01, b"x"))
        self.assertEqual(await self.a.asyncio.recv(timeout=0.1), b"x")  # its timer fires during the next wait
        await task
        task = asyncio.ensure_future(self.send_later(0.3, b"y"))
        self.assertEqual(await self.a.asyncio.recv(timeout=5), b"y")
        await task


class AsyncioContext(unittest.TestCase):
    def test_the_tests_asyncio_context_shadows_its_context(self):
        samples.TIMES.clear()
        self.assertEqual(problems(run_case(samples.AsyncioContext, "test_own_sockets")), [])
        self.assertEqual(samples.TIMES["reply"], [b'["pong", 8]'])
        self.assertIsInstance(samples.TIMES["ctx"], zmq.asyncio.Context)

    def test_a_socket_left_open_is_closed_and_fails_the_test_without_a_resource_warning(self):
        samples.TIMES.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run_case(samples.AsyncioContext, "test_left_open")
            self.assertTrue(samples.TIMES["sock"].closed)
            samples.TIMES.clear()
            gc.collect()
        text = only_problem(self, result)
        self.assertIn("1 socket(s) made with asyncio_context.socket() were left open; closed them", text)
        self.assertEqual([w for w in caught if issubclass(w.category, ResourceWarning)], [])


class Refused(unittest.TestCase):
    def test_async_set_up_and_tear_down_are_refused(self):
        for name, instead in (("setUp", "asyncSetUp"), ("tearDown", "asyncTearDown")):
            with self.subTest(name=name), self.assertRaises(TypeError) as caught:
                async def phase(self):
                    pass
                type(ProcessTestCase)("T", (ProcessTestCase,), {name: phase, "__module__": __name__})
            self.assertIn(f"T.{name} is a coroutine function", str(caught.exception))
            self.assertIn(f"async def {instead}(self)", str(caught.exception))
        with self.assertRaises(TypeError) as caught:
            class C(ProcessTestCase):
                @classmethod
                async def setUpClass(cls):
                    pass
        self.assertIn("C.setUpClass is a coroutine function", str(caught.exception))

    def test_a_plain_async_set_up_is_refused(self):
        with self.assertRaises(TypeError) as caught:
            class P(ProcessTestCase):
                def asyncSetUp(self):
                    pass
        self.assertIn("P.asyncSetUp must be a coroutine function ('async def asyncSetUp(self)')", str(caught.exception))

    def test_both_orders_of_the_mix_with_isolated_asyncio_test_case_are_refused(self):
        for bases in ((unittest.IsolatedAsyncioTestCase, ProcessTestCase),
                      (ProcessTestCase, unittest.IsolatedAsyncioTestCase),
                      (unittest.IsolatedAsyncioTestCase, SystemTestCase)):
            with self.subTest(bases=bases), self.assertRaises(TypeError) as caught:
                type("Mixed", bases, {"__module__": __name__})
            self.assertIn("drop IsolatedAsyncioTestCase", str(caught.exception))


class Timeouts(unittest.TestCase):
    def check_ends(self, name, marker):
        started = time.monotonic()
        text = only_problem(self, run_case(samples.Stuck, name))
        took = time.monotonic() - started
        self.assertLess(took, samples.Stuck.run_timeout + 2.0, text)
        self.assertIn("TestTimeout", text)
        self.assertIn(f"ran longer than run_timeout ({samples.Stuck.run_timeout:g} s)", text)
        if marker:
            self.assertEqual(last_line(text, "TestTimeout"), f"line {line_of(marker)}, in {name}", text)
        return text

    def test_stuck_in_an_await(self):
        text = self.check_ends("test_await", "# STUCK AWAIT")
        self.assertIn("The test's coroutine was suspended at:", text)

    def test_blocking_the_loop(self):
        self.check_ends("test_blocks", "# STUCK BLOCK")

    def test_swallowing_cancellation(self):
        text = self.check_ends("test_swallows", "# STUCK SWALLOW")
        self.assertIn("swallowed CancelledError", text)

    def test_an_async_generator_stuck_between_yields(self):
        self.check_ends("test_async_generator_awaits", "# STUCK BETWEEN YIELDS")


    def test_a_plain_callback_blocking_the_loop(self):
        self.check_ends("test_callback_blocks", "# STUCK BEHIND CALLBACK")

    def test_a_background_task_blocking_the_loop(self):
        self.check_ends("test_background_task_blocks", "# STUCK BEHIND TASK")


    def test_async_set_up_and_async_cleanups_are_bounded(self):
        for name, phase, marker, func in (("test_set_up", "(setUp)", "# STUCK ASYNCSETUP", "asyncSetUp"),
                                          ("test_cleanup", "(cleanup StuckPhases.stuck_cleanup)", "# STUCK CLEANUP",
                                           "stuck_cleanup")):
            with self.subTest(name=name):
                started = time.monotonic()
                result = run_case(samples.StuckPhases, name)
                self.assertLess(time.monotonic() - started, samples.StuckPhases.run_timeout + 2.0)
                self.assertEqual(len(result.failures + result.errors), 1, problems(result))
                text = (result.failures + result.errors)[0][1]
                self.assertIn(f"tests.samples.async_sample.StuckPhases.{name} {phase} ran longer than run_timeout",
                              text)
                self.assertEqual(last_line(text, "TestTimeout"), f"line {line_of(marker)}, in {func}")


class LeftBehind(unittest.TestCase):
    def test_a_pending_task_fails_the_test_naming_its_line(self):
        text = only_problem(self, run_case(samples.Left, "test_pending_task"))
        self.assertIn("1 task(s) still pending when the test ended", text)
        self.assertIn(f"running sleep(), created at {SAMPLE}:{line_of('# CREATES PENDING')} in test_pending_task",
                      text)

    def test_a_background_exception_fails_the_test(self):
        text = only_problem(self, run_case(samples.Left, "test_background_exception"))
        self.assertIn("Task exception was never retrieved", text)
        self.assertIn("boom in the background", text)
        self.assertIn(f"{SAMPLE}:{line_of('# CREATES FAILING')}", text)

    def test_a_coroutine_never_awaited_fails_the_test_with_its_line(self):
        text = only_problem(self, run_case(samples.Left, "test_never_awaited"))
        self.assertIn("coroutine 'sleep' was never awaited", text)
        self.assertIn(f'line {line_of("# NEVER AWAITED")}, in test_never_awaited', text)
        self.assertNotIn("zmqprocesstest/", text.split("never awaited")[1])

    def test_an_exception_in_a_callback_fails_the_test(self):
        text = only_problem(self, run_case(samples.Left, "test_handler_exception"))
        self.assertIn("invalid literal for int()", text)

    def test_what_the_loop_reports_after_the_test_is_a_warning_naming_it(self):
        self.assertEqual(problems(run_case(samples.Late)), [])
        late = (r"after tests\.samples\.async_sample\.Late\.test_keeps_a_failed_task ended, "
                r"its event loop reported: Task exception was never retrieved")
        with self.assertWarnsRegex(RuntimeWarning, late):
            samples.KEPT.clear()
            gc.collect()

    def test_a_clean_test_passes(self):
        self.assertEqual(problems(run_case(samples.Left, "test_clean")), [])


class Deaths(unittest.TestCase):
    def test_a_crash_ends_an_await_on_the_users_own_socket(self):
        samples.TIMES.clear()
        started = time.monotonic()
        text = only_problem(self, run_case(samples.Deaths, "test_crash_in_own_socket_recv"))
        self.assertLess(time.monotonic() - started, 5.0)
        took = samples.TIMES["ended"] - samples.TIMES["sent"]
        self.assertLess(took, 1.0, text)
        self.assertIn("ProcessDied", text)
        self.assertIn("'CrashingProc' died while the test was waiting", text)
        self.assertEqual(last_line(text, "ProcessDied"),
                         f'line {line_of("# DIES HERE")}, in test_crash_in_own_socket_recv')

    def test_a_kill_ends_an_asyncio_sleep_at_once(self):
        samples.TIMES.clear()
        text = only_problem(self, run_case(samples.Deaths, "test_killed_in_sleep"))
        took = samples.TIMES["ended"] - samples.TIMES["killed"]
        self.assertLess(took, 0.5, text)  # 50 ms unloaded; a shared machine may be slower
        self.assertIn("ProcessDied", text)
        self.assertEqual(last_line(text, "ProcessDied"), f'line {line_of("# KILLED HERE")}, in test_killed_in_sleep')


    def test_a_reply_sent_just_before_a_clean_exit_is_received(self):
        for _ in range(5):
            samples.TIMES.clear()
            self.assertEqual(problems(run_case(samples.Deaths, "test_reply_before_a_clean_exit")), [])
            self.assertEqual(samples.TIMES["reply"], b"last words")

    def test_a_kill_ends_an_await_on_a_test_socket_at_once(self):
        samples.TIMES.clear()
        text = only_problem(self, run_case(samples.SocketDeaths, "test_killed_in_await"))
        self.assertLess(samples.TIMES["ended"] - samples.TIMES["killed"], 0.5, text)
        self.assertIn("'CrashingProc' died while the test was waiting", text)
        self.assertEqual(last_line(text, "ProcessDied"),
                         f'line {line_of("# TEST SOCKET DIES HERE")}, in test_killed_in_await')

    def test_a_kill_during_a_yielded_recv_is_thrown_in_at_the_yield(self):
        samples.TIMES.clear()
        text = only_problem(self, run_case(samples.SocketDeaths, "test_killed_at_yield"))
        self.assertLess(samples.TIMES["ended"] - samples.TIMES["killed"], 0.5, text)
        self.assertEqual(samples.TIMES["caught"], "ProcessDied")  # the test could catch it, as in a generator test
        self.assertEqual(last_line(text, "ProcessDied"),
                         f'line {line_of("# YIELD DIES HERE")}, in test_killed_at_yield')

    def test_a_reply_just_before_a_clean_exit_reaches_an_awaited_test_socket(self):
        for _ in range(5):
            samples.TIMES.clear()
            self.assertEqual(problems(run_case(samples.SocketCleanExit, "test_reply_before_a_clean_exit")), [])
            self.assertEqual(samples.TIMES["reply"], b"last words")

    def test_a_process_the_class_shares_is_watched_too(self):
        started = time.monotonic()
        text = only_problem(self, run_case(samples.SharedDeath))
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertIn("shared 'CrashingProc' died while the test was waiting", text)
        self.assertEqual(last_line(text, "ProcessDied"), f'line {line_of("# SHARED KILLED HERE")}, '
                                                          'in test_shared_process_killed')


class ChildRunners(unittest.TestCase):
    """The smoke cases under nose2 and pytest (and pytest with pytest-asyncio, if installed)."""

    def pytest(self, *args):
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
        if importlib.util.find_spec("pytest_asyncio") is not None:  # its own deprecation warning, unrelated
            command += ["-o", "asyncio_default_fixture_loop_scope=function"]
        return self.run_child(command + ["test_async_sample.py"])

    def run_child(self, command):
        work = tempfile.mkdtemp(prefix="async-")
        self.addCleanup(shutil.rmtree, work, True)
        shutil.copy(SAMPLE, os.path.join(work, "test_async_sample.py"))
        env = dict(os.environ, ASYNC_SAMPLE_SMOKE="1",
                   PYTHONPATH=os.pathsep.join(p for p in (ROOT, EXAMPLES, os.environ.get("PYTHONPATH")) if p))
        for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
            env.pop(name, None)
        proc = subprocess.run(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=120, text=True)
        return proc.returncode, proc.stdout

    def test_nose2(self):
        if importlib.util.find_spec("nose2") is None:
            self.skipTest("nose2 is not installed")
        code, out = self.run_child([sys.executable, "-m", "nose2", "-s", ".", "-t", ".", "-v"])
        self.assertEqual(code, 0, out)
        self.assertIn("Ran 6 tests", out)

    def test_pytest(self):
        if importlib.util.find_spec("pytest") is None:
            self.skipTest("pytest is not installed")
        code, out = self.pytest()
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"\b6 passed\b")
        self.assertNotIn("warning", out.lower())

    def check_pytest_plugin(self, module, *args):
        if importlib.util.find_spec(module) is None:
            self.skipTest(f"{module} is not installed (the test extra installs it: pip install -e '.[test]')")
        self.assertIn(module, installed_pytest_plugins(),
                      f"{module}'s pytest plugin is not registered: it would not load")
        code, out = self.pytest(*args)
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"\b6 passed\b")
        self.assertNotIn("warning", out.lower())

    def test_pytest_asyncio_auto_mode_does_not_take_over(self):
        self.check_pytest_plugin("pytest_asyncio", "-o", "asyncio_mode=auto")

    def test_pytest_asyncio_strict_mode(self):
        self.check_pytest_plugin("pytest_asyncio", "-o", "asyncio_mode=strict")

    def test_anyio_plugin(self):
        self.check_pytest_plugin("anyio")


def installed_pytest_plugins():
    """The modules of the pytest plugins installed (entry points of group pytest11)."""
    from importlib import metadata
    found = metadata.entry_points()
    points = found.select(group="pytest11") if hasattr(found, "select") else found.get("pytest11", ())
    return {point.value.split(":")[0].split(".")[0] for point in points}


if __name__ == "__main__":
    unittest.main()
