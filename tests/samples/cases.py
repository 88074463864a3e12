"""Deliberately passing and failing test cases that the library's tests run inside.

Not collected directly: the module name does not start with ``test``, and the tests
import the module, not its classes.
"""
import unittest

import zmq

from zmqprocesstest import ProcessTestCase, mark, process

from ..support import EXAMPLES  # noqa: F401  (puts the example app on sys.path)
from pingpong.faulty import CrashingProc, DeafProc, StubbornProc
from pingpong.pongproc import PongProc

SHORT_STOPS = {"message": 0.5, "SIGINT": 0.5, "SIGTERM": 0.5, "SIGKILL": 2.0}


class PongCase(ProcessTestCase):
    timeout = 0.3

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)


class Failures(PongCase):
    def test_wrong_reply(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 2]])

    def test_timeout(self):
        dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")
        yield ("send", dealer, [b""], ["spam", 1])
        yield ("recv", dealer)
        yield ("recv", dealer)  # nothing more comes

    def test_catches_timeout(self):
        yield ("send", self.req, [], ["plzdiekthxbye", None])
        yield ("wait_exit", self.proc)
        try:
            yield ("recv", self.req, -1, 0.05)
        except AssertionError as exc:
            self.caught = exc
        self.assertIn("timed out after 0.05 s", str(self.caught))

    def test_not_a_tuple(self):
        yield ["send", self.req, [], 1]

    def test_empty_tuple(self):
        yield ()

    def test_name_not_str(self):
        yield (42, 1)

    def test_unknown_event(self):
        yield ("pingg", self.req)

    def test_bad_arguments(self):
        yield ("send", self.req)

    def test_returns_value(self):
        yield ("send", self.req, [], ["ping", 1])
        return 42

    def test_handler_raises_typeerror_inside(self):
        yield ("explode",)

    def explode(self):
        return len(42)  # a TypeError inside a handler is not an argument error


class CustomEvents(PongCase):
    """A user-defined event and a helper generator that is not a test."""

    def ping(self, n):
        self.send(self.req, [], ["ping", n])
        return self.recv(self.req)

    def helper_generator(self):
        yield 1

    def test_custom_event(self):
        """Custom events are methods."""
        reply = yield ("ping", 5)
        self.assertEqual(reply, [["pong", 5]])
        self.assertEqual(list(self.helper_generator()), [1])


class Mixin:
    """A mixin that is not a TestCase contributes a generator test."""

    def test_from_mixin(self):
        yield ("send", self.req, [], ["ping", 9])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 9]])


class WithMixin(Mixin, PongCase):
    pass


class Decorated(PongCase):
    @unittest.skip("skipped on purpose")
    def test_skipped(self):
        yield ("recv", self.req)

    @unittest.expectedFailure
    def test_expected_failure(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, "not this")

    def test_subtests(self):
        for n in range(3):
            with self.subTest(n=n):
                yield ("send", self.req, [], ["ping", n])
                reply = yield ("recv", self.req)
                self.assertEqual(reply, [["pong", n]])

    def test_plain(self):
        self.assertTrue(self.proc.is_alive())


@unittest.skip("probe")
class SkipProbe(unittest.TestCase):
    """Plain unittest: Python 3.12.1 leaves a skipped test out of testsRun (gh-106584)."""

    def test_probe(self):
        pass


class RunTimeout(ProcessTestCase):
    run_timeout = 0.2

    def test_loops_forever(self):
        while True:
            try:
                yield ("no_such_event",)
            except TypeError:
                pass


class Stubborn(ProcessTestCase):
    stop_timeouts = SHORT_STOPS

    def test_needs_sigterm(self):
        self.start_process(StubbornProc, self.endpoint)
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["ping", 1])
        yield ("recv", req)


class Deaf(ProcessTestCase):
    stop_timeouts = SHORT_STOPS

    def test_needs_sigkill(self):
        self.start_process(DeafProc, self.endpoint)
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["ping", 1])
        yield ("recv", req)


class ExitsOnItsOwn(ProcessTestCase):
    def test_crash_unnoticed_by_the_test(self):
        proc = self.start_process(CrashingProc, self.endpoint)
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["crash", 7])
        yield ("wait_output", proc, "crashing")
        self.managed(proc).wait(2.0)


class Crash(ProcessTestCase):
    timeout = 10.0

    def test_crash_while_waiting(self):
        self.start_process(CrashingProc, self.endpoint)
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["crash", 3])
        yield ("recv", req)


class SetUpError(ProcessTestCase):
    pids = []

    def setUp(self):
        proc = self.start_process(PongProc, self.endpoint)
        self.pids.append(proc.pid)
        raise RuntimeError("setUp broke after starting the process")

    def test_never_runs(self):
        yield ("recv", None)


@process
class Marked(ProcessTestCase):
    def test_process_only(self):
        pass

    @mark("slow")
    def test_slow(self):
        yield from ()


class Recorder(ProcessTestCase):
    """Records the pids it started (class attribute ``pids``) for orphan checks."""

    pids: list = []

    def start_pong(self):
        proc = self.start_process(PongProc, self.endpoint)
        self.pids.append(proc.pid)
        return proc


class PassingRecorder(Recorder):
    def test_pass(self):
        self.start_pong()
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["ping", 1])
        yield ("recv", req)


class FailingRecorder(Recorder):
    def test_fail(self):
        self.start_pong()
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["ping", 1])
        reply = yield ("recv", req)
        self.assertEqual(reply, "something else")


class SetUpErrorRecorder(Recorder):
    def setUp(self):
        self.start_pong()
        raise RuntimeError("setUp broke after starting the process")

    def test_never_runs(self):
        pass


class CrashRecorder(Recorder):
    def test_crash(self):
        proc = self.start_process(CrashingProc, self.endpoint)
        self.pids.append(proc.pid)
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["crash", 5])
        yield ("recv", req, -1, 10.0)


class ManagerRecorder(Recorder):
    """The manager starts a worker child: both must be gone after the test."""

    def test_manager(self):
        from pingpong.manager import Manager
        from zmqprocesstest.processes._os import child_pids
        proc = self.start_process(Manager, self.endpoint)
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["double", 2])
        reply = yield ("recv", req)
        self.assertEqual(reply, [["doubled", 4]])
        self.pids.append(proc.pid)
        self.pids.extend(child_pids(proc.pid))


class Hanging(ProcessTestCase):
    """Run by a separate runner process that the test interrupts with SIGINT."""

    def test_hang(self):
        proc = self.start_process(PongProc, self.endpoint)
        req = self.socket(zmq.REQ, connect=self.endpoint)
        yield ("send", req, [], ["ping", 1])
        yield ("recv", req)
        print("READY", proc.pid, flush=True)
        yield ("wait_exit", proc, 60.0)  # waits until the runner is interrupted


def slow_clean_up(endpoint):
    """Stops on SIGINT, with a clean-up that blocks longer than the SIGINT step's resend
    interval (it waits, bounded, for a straggling request); a second SIGINT in it would
    make it exit 3."""
    import sys
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind(endpoint)
    try:
        sock.recv()
    except KeyboardInterrupt:
        try:
            sock.poll(500)  # nothing comes: 0.5 s in a clean-up's own blocking call
        except KeyboardInterrupt:
            sys.exit(3)
    sock.close(linger=0)
    ctx.term()


def shrugs_off_one_sigint(endpoint):
    """Goes back into the very same recv after its first KeyboardInterrupt (as a SIGINT
    that came just before the call and was missed leaves it); stops on the second."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind(endpoint)
    interrupted = 0
    while interrupted < 2:
        try:
            sock.recv()
        except KeyboardInterrupt:
            interrupted += 1
    sock.close(linger=0)
    ctx.term()
