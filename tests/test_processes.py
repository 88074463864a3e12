"""Tests of processes.py: stopping, escalation, crashes, commands, readiness, no orphans."""
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import unittest
from unittest import mock

import zmq

from zmqprocesstest import ProcessTestCase
from zmqprocesstest.processes import _guardian, _reaper
from zmqprocesstest._config import EXIT_DRAIN, scaled

from .samples import cases as samples
from .support import EXAMPLES, ROOT, gone, interruptible, only_problem, problems, run_case


class TestStopProtocol(unittest.TestCase):
    def test_sigint_stops_politely_and_the_test_passes(self):
        result = run_case(samples.CustomEvents)
        self.assertEqual(problems(result), [])

    def test_process_ignoring_sigint_needs_sigterm_and_fails_the_test(self):
        text = only_problem(self, run_case(samples.Stubborn))
        self.assertRegex(text, r"process 'StubbornProc' \(pid \d+, killed by SIGTERM\) did not stop politely "
                               r"\(SIGINT\); it took SIGTERM")

    def test_process_ignoring_sigterm_needs_sigkill(self):
        text = only_problem(self, run_case(samples.Deaf))
        self.assertRegex(text, r"process 'DeafProc' \(pid \d+, killed by SIGKILL\) did not stop politely "
                               r"\(SIGINT\); it took SIGKILL")

    def test_stop_message_is_the_polite_step(self):
        seen = {}

        class WithMessage(samples.PongCase):
            def test_it(self):
                self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req)
                seen["managed"] = self.managed(self.proc)

        self.assertEqual(problems(run_case(WithMessage)), [])
        self.assertEqual(seen["managed"].stopped_by, "message")
        self.assertEqual(seen["managed"].exitcode(), 0)

    def test_nonzero_exit_on_its_own_is_reported(self):
        text = only_problem(self, run_case(samples.ExitsOnItsOwn))
        self.assertRegex(text, r"process 'CrashingProc' \(pid \d+, exit code 7\) exited on its own with exit code 7")

    def test_explicit_stop_process(self):
        class Stops(samples.PongCase):
            def test_it(self):
                self.stop_process(self.proc)
                self.assertFalse(self.proc.is_alive() if False else self.managed(self.proc).alive())

        self.assertEqual(problems(run_case(Stops)), [])


def replies_once_and_exits(endpoint):
    """A process under test that answers one request, then exits at once (cleanly)."""
    import zmq as _zmq
    ctx = _zmq.Context()
    rep = ctx.socket(_zmq.REP)
    rep.bind(endpoint)
    rep.send(rep.recv())
    rep.close(linger=1000)  # the reply is delivered, then the process is gone
    ctx.term()


class TestCrashDetection(unittest.TestCase):
    def test_a_reply_sent_just_before_a_clean_exit_is_received(self):
        """The exit and the reply arrive together: the reply wins (EXIT_DRAIN)."""
        class LastWords(ProcessTestCase):
            def test_it(self):
                for n in range(30):
                    endpoint = self.new_endpoint()
                    req = self.socket(zmq.REQ, connect=endpoint)
                    proc = self.start_process(replies_once_and_exits, endpoint)
                    yield ("send_raw", req, [str(n).encode()])
                    self.assertEqual((yield ("recv_raw", req)), [str(n).encode()])
                    yield ("wait_exit", proc)

        self.assertEqual(problems(run_case(LastWords)), [])

    def test_only_an_exit_with_a_code_gives_the_socket_a_grace(self):
        """A process killed by a signal crashed: its death is reported without draining its connections."""
        seen = {}

        class Graces(ProcessTestCase):
            def grace_after_exit(self, name, code):
                endpoint = self.new_endpoint()
                proc = self._zpt.find(self.start_process(replies_once_and_exits, endpoint))
                req = self.socket(zmq.REQ, connect=endpoint)
                if code == -signal.SIGKILL:
                    os.kill(proc.pid, signal.SIGKILL)
                else:
                    req.send(b"bye")
                    req.recv()
                self.assertTrue(select.select([proc.fd], [], [], 5)[0], "the process did not exit")
                self.assertEqual(proc.exitcode(), code)
                seen[name] = self._zpt.exit_grace()  # as the wait that the exit ended asks
                yield ("wait_exit", proc.obj, None, code)

            def test_it(self):
                yield from self.grace_after_exit("killed", -signal.SIGKILL)
                yield from self.grace_after_exit("exited", 0)

        self.assertEqual(problems(run_case(Graces)), [])
        self.assertEqual(seen, {"killed": 0.0, "exited": scaled(EXIT_DRAIN)})

    def test_crash_ends_the_wait_at_once_with_code_and_output(self):
        start = time.monotonic()
        text = only_problem(self, run_case(samples.Crash))
        self.assertLess(time.monotonic() - start, 5.0)  # the recv timeout is 10 s
        self.assertIn("ProcessDied: 'CrashingProc' died while the test was waiting: process 'CrashingProc'", text)
        self.assertIn("exit code 3", text)
        self.assertIn("| CrashingProc: crashing with exit code 3", text)
        self.assertIn('yield ("recv", req)', text)

    def test_crash_of_a_command_is_detected_too(self):
        class CommandCrash(ProcessTestCase):
            timeout = 10.0

            def test_it(self):
                self.start_command([sys.executable, "-m", "pingpong.faulty", self.endpoint], cwd=EXAMPLES)
                req = self.socket(zmq.REQ, connect=self.endpoint)
                yield ("send", req, [], ["crash", 4])
                yield ("recv", req)

        start = time.monotonic()
        text = only_problem(self, run_case(CommandCrash))
        self.assertLess(time.monotonic() - start, 5.0)
        self.assertIn("died while the test was waiting", text)
        self.assertIn("exit code 4", text)
        self.assertIn("| CrashingProc: crashing with exit code 4", text)


class TestCommands(unittest.TestCase):
    def test_output_that_would_fill_a_pipe_does_not_block_the_child(self):
        class Chatty(ProcessTestCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-c", "import sys\nfor i in range(20000): print('x' * 100)\n"
                                           "print('done')"])
                yield ("wait_exit", proc, 10.0)
                self.assertTrue(self.output_of(proc).endswith("done\n"))

        self.assertEqual(problems(run_case(Chatty)), [])

    def test_one_thread_drains_the_output_of_every_process(self):
        class Many(ProcessTestCase):
            def test_it(self):
                procs = [self.start_command([sys.executable, "-c", f"print('hello from {i}')"]) for i in range(4)]
                for i, proc in enumerate(procs):
                    yield ("wait_output", proc, f"hello from {i}")
                drainers = [t for t in threading.enumerate() if t.name == "zmqprocesstest-output"]
                self.assertEqual(len(drainers), 1, drainers)

        self.assertEqual(problems(run_case(Many)), [])

    def test_output_still_held_by_another_writer_is_released_within_the_bound(self):
        from zmqprocesstest.processes._output import Output

        output = Output()
        holder = subprocess.Popen([sys.executable, "-c", "import sys, time; print('held', flush=True); time.sleep(30)"],
                                  stdout=output.write_fd, pass_fds=(output.write_fd,))
        try:
            output.start()
            self.assertIsNotNone(output.wait_for(re.compile("held"), 10.0))
            start = time.monotonic()
            output.close(timeout=0.2)
            self.assertLess(time.monotonic() - start, 2.0)
            self.assertTrue(output.closed)
            self.assertEqual(output.read_fd, -1)  # the drainer closed its end
            self.assertEqual(output.tail(), "held")
        finally:
            holder.kill()
            holder.wait(10)

    def test_string_argv_is_refused(self):
        class Wrong(ProcessTestCase):
            def test_it(self):
                self.start_command("python -m pingpong.pongproc")

        text = only_problem(self, run_case(Wrong), "error")
        self.assertIn("expected an argument list, got the string 'python -m pingpong.pongproc'; "
                      "split it with shlex.split()", text)

    def test_signal_to_a_command(self):
        class Signals(ProcessTestCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-c", "import signal, sys\n"
                                           "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(9))\n"
                                           "print('armed', flush=True)\nsignal.pause()"])
                yield ("wait_output", proc, "armed", 5.0)
                yield ("signal", proc, signal.SIGUSR1)
                code = yield ("wait_exit", proc, 5.0, 9)
                self.assertEqual(code, 9)

        self.assertEqual(problems(run_case(Signals)), [])


class TestReadiness(unittest.TestCase):
    def test_wait_output_times_out_with_the_output_tail(self):
        class Waits(ProcessTestCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-m", "pingpong.pongproc", self.endpoint], cwd=EXAMPLES)
                yield ("wait_output", proc, "serving on", 10.0)  # the tail to show, however slow the start
                yield ("wait_output", proc, "never printed", 0.3)

        text = only_problem(self, run_case(Waits))
        # A command is named after its program: for an interpreter, the module it runs.
        self.assertIn("expected output of 'pingpong.pongproc' to match 'never printed'; not within 0.3 s", text)
        self.assertIn("| pong: serving on ipc://", text)

    def test_wait_endpoint(self):
        class Listens(ProcessTestCase):
            def test_ipc(self):
                self.start_process(samples.PongProc, self.endpoint)
                yield ("wait_endpoint", self.endpoint, 5.0)

            def test_tcp(self):
                endpoint = self.new_endpoint("tcp")
                self.start_process(samples.PongProc, endpoint)
                yield ("wait_endpoint", endpoint, 5.0)

            def test_nobody(self):
                yield ("wait_endpoint", self.new_endpoint(), 0.1)

        result = run_case(Listens)
        self.assertEqual(result.testsRun, 3)
        text = only_problem(self, result)
        self.assertIn("expected something to listen on ipc://", text)
        self.assertIn("within 0.1 s", text)


class TestNoOrphans(unittest.TestCase):
    def assertAllGone(self, cls):
        cls.pids = []
        result = run_case(cls)
        self.assertTrue(cls.pids, "the sample recorded no pid")
        for pid in cls.pids:
            self.assertTrue(gone(pid), f"process {pid} of {cls.__name__} is still there")
        return result

    def test_after_a_passing_test(self):
        self.assertEqual(problems(self.assertAllGone(samples.PassingRecorder)), [])

    def test_after_a_failing_test(self):
        self.assertEqual(len(self.assertAllGone(samples.FailingRecorder).failures), 1)

    def test_after_an_error_in_setup(self):
        self.assertEqual(len(self.assertAllGone(samples.SetUpErrorRecorder).errors), 1)

    def test_after_a_crash(self):
        self.assertEqual(len(self.assertAllGone(samples.CrashRecorder).failures), 1)

    def test_children_of_the_process_under_test(self):
        result = self.assertAllGone(samples.ManagerRecorder)
        self.assertEqual(problems(result), [])
        self.assertEqual(len(samples.ManagerRecorder.pids), 2, "manager and worker")

    def test_after_ctrl_c_of_the_runner(self):
        runner = subprocess.Popen([sys.executable, "-m", "unittest", "tests.samples.cases.Hanging"], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                  preexec_fn=interruptible)
        try:
            ready, _, _ = select.select([runner.stdout], [], [], 20.0)
            self.assertTrue(ready, "the runner did not report READY in time")
            line = runner.stdout.readline().decode()
            self.assertTrue(line.startswith("READY "), line)
            pid = int(line.split()[1])
            runner.send_signal(signal.SIGINT)
            runner.wait(20.0)
            self.assertNotEqual(runner.returncode, 0)
            self.assertIn("KeyboardInterrupt", runner.stderr.read().decode())
            self.assertTrue(gone(pid), f"the process under test ({pid}) outlived the interrupted runner")
        finally:
            if runner.poll() is None:
                os.killpg(runner.pid, signal.SIGKILL)
                runner.wait()
            runner.stdout.close()
            runner.stderr.close()


class TestTheStartSideDoesItsWorkOnce(unittest.TestCase):
    def test_one_registration_and_no_second_preparation_per_start(self):
        counts = {}

        def counting(name, real):
            def call(*args, **kwargs):
                counts[name] = counts.get(name, 0) + 1
                return real(*args, **kwargs)
            return call

        class TwoStarts(ProcessTestCase):
            def test_it(self):
                for name in ("first", "second"):
                    endpoint = self.new_endpoint()
                    req = self.socket(zmq.REQ, connect=endpoint, name=name)
                    self.set_stop_message(self.start_process(samples.PongProc, endpoint), req, ["plzdiekthxbye", None])
                    yield ("send", req, [], ["ping", 1])
                    self.assertEqual((yield ("recv", req)), [["pong", 1]])

        _reaper.prepare_runner()  # this runner is prepared (the first process start of the run does it)
        with mock.patch.object(_guardian, "watch_group", counting("watch_group", _guardian.watch_group)), \
                mock.patch.object(_reaper, "start_guardian", counting("start_guardian", _reaper.start_guardian)), \
                mock.patch.object(_reaper, "become_subreaper", counting("subreaper", _reaper.become_subreaper)):
            self.assertEqual(problems(run_case(TwoStarts)), [])
        self.assertEqual(counts, {"watch_group": 2})  # one registration per process, no second preparation


class Interrupted(Exception):
    """Raised by the SIGUSR1 handler of TestSignalsForTheRunner."""


class TestSignalsForTheRunner(unittest.TestCase):
    """A signal whose Python handler has not run when a wait blocks (it arrived a moment
    before the blocking call, or on another thread) is acted on within WAIT_SLICE, not
    when the wait ends: the runner's Ctrl-C is never held up by a long wait.

    The signal is sent to a helper thread, so the kernel never interrupts the main
    thread's blocking call: only the wait's slices let the handler run.
    """

    WAIT = 30.0

    def setUp(self):
        def on_signal(signum, frame):
            raise Interrupted()

        previous = signal.signal(signal.SIGUSR1, on_signal)
        self.addCleanup(signal.signal, signal.SIGUSR1, previous)

    def signal_soon(self):
        def send():
            time.sleep(0.2)
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # lands on this thread

        thread = threading.Thread(target=send)
        thread.start()
        self.addCleanup(thread.join, 10)

    def check_interrupted(self, wait, with_process=True):
        seen = {}
        test = self

        class Waits(ProcessTestCase):
            def test_it(self):
                argv = [sys.executable, "-c", "import time; time.sleep(60)"]
                proc = self.start_command(argv) if with_process else None
                req = self.socket(zmq.PULL, bind=self.endpoint)
                test.signal_soon()
                start = time.monotonic()
                try:
                    wait(self.managed(proc) if proc is not None else None, req)
                except Interrupted:
                    seen["after"] = time.monotonic() - start

        self.assertEqual(problems(run_case(Waits)), [])
        self.assertIn("after", seen, "the handler never ran in the wait")
        self.assertLess(seen["after"], self.WAIT / 3)  # WAIT_SLICE after the signal; not WAIT

    def test_during_a_wait_for_a_process(self):
        self.check_interrupted(lambda proc, sock: proc.wait(self.WAIT))

    def test_during_a_recv(self):
        self.check_interrupted(lambda proc, sock: sock.recv(timeout=self.WAIT))

    def test_during_a_recv_with_no_process_to_watch(self):  # libzmq's blocking recv, in slices
        self.check_interrupted(lambda proc, sock: sock.recv(timeout=self.WAIT), with_process=False)


class TestAKindOfProcessOfYourOwn(unittest.TestCase):
    def test_a_managed_process_subclass_is_owned_through_add_process(self):
        from zmqprocesstest.processes import CommandProcess
        seen = {}

        class ShellProcess(CommandProcess):
            """A shell line as a process under test: one subclass, nothing else to touch."""

            @classmethod
            def start_line(cls, line):
                return cls.start(["sh", "-c", line], name="sh")

        class UsesShell(ProcessTestCase):
            def test_it(self):
                proc = self.add_process(ShellProcess.start_line("echo up; exec sleep 30"))
                yield ("wait_output", proc, "up")
                seen["proc"] = proc

        self.assertEqual(problems(run_case(UsesShell)), [])
        self.assertEqual((seen["proc"].stopped_by, seen["proc"].exitcode()), ("SIGINT", -signal.SIGINT))


def _greet(who, punctuation="!"):
    print(f"hello {who}{punctuation}", flush=True)


class TestStartProcessArguments(unittest.TestCase):
    def test_a_process_class_takes_target_args_and_name(self):
        import multiprocessing
        seen = {}

        class StartsAProcess(ProcessTestCase):
            def test_it(self):
                proc = self.start_process(multiprocessing.Process, target=_greet, args=("world",),
                                          kwargs={"punctuation": "?"}, name="greeter")
                yield ("wait_exit", proc, 5, 0)
                seen["name"], seen["managed"] = proc.name, self.managed(proc).name
                seen["output"] = self.output_of(proc)

        self.assertEqual(problems(run_case(StartsAProcess)), [])
        self.assertEqual((seen["name"], seen["managed"]), ("greeter", "greeter"))
        self.assertIn("hello world?", seen["output"])

    def test_a_function_still_takes_its_own_arguments(self):
        seen = {}

        class StartsAFunction(ProcessTestCase):
            def test_it(self):
                proc = self.start_process(_greet, "you", punctuation=".")
                yield ("wait_exit", proc, 5, 0)
                seen["output"] = self.output_of(proc)

        self.assertEqual(problems(run_case(StartsAFunction)), [])
        self.assertIn("hello you.", seen["output"])


class TestProcessFaults(unittest.TestCase):
    def test_a_frozen_process_hangs_but_is_not_dead_and_thaws(self):
        seen = {}

        class Freezes(samples.PongCase):
            def test_it(self):
                yield ("freeze", self.proc)
                yield ("send", self.req, [], ["ping", 1])
                try:
                    yield ("recv", self.req, -1, 0.2)
                except AssertionError as exc:
                    seen["while frozen"] = type(exc).__name__
                yield ("thaw", self.proc)
                seen["after thaw"] = yield ("recv", self.req, -1, 2.0)
                yield ("freeze", self.proc)  # left frozen: thawed before it is stopped
                seen["managed"] = self.managed(self.proc)

        self.assertEqual(problems(run_case(Freezes)), [])
        self.assertEqual(seen["while frozen"], "SocketTimeout")  # a hang, not ProcessDied
        self.assertEqual(seen["after thaw"], [["pong", 1]])
        self.assertEqual((seen["managed"].stopped_by, seen["managed"].exitcode()), ("SIGINT", 0))

    def test_a_frozen_process_is_reported_frozen_not_still_running(self):
        seen = {}

        class Frozen(samples.PongCase):
            def test_it(self):
                yield ("freeze", self.proc)
                seen["report"] = self._resources().report()

        self.assertEqual(problems(run_case(Frozen)), [])
        self.assertRegex(seen["report"], r"process 'pongproc' \(pid \d+, frozen\)")
        self.assertNotIn("still running", seen["report"])

    def test_restart_gives_a_new_process_on_the_same_endpoint(self):
        seen = {}

        class Restarts(samples.PongCase):
            def test_it(self):
                ctl = self.socket(zmq.DEALER, connect=self.endpoint, name="ctl")  # a REQ would wait for a reply
                self.set_stop_message(self.proc, ctl, ["plzdiekthxbye", None], header=[b""])
                yield ("send", self.req, [], ["ping", 1])
                yield ("recv", self.req)
                old, old_pid = self.managed(self.proc), self.proc.pid
                self.proc = yield ("restart", self.proc)
                seen["pids"] = (old_pid, self.proc.pid)
                yield ("send", self.req, [], ["ping", 2])
                seen["reply"] = yield ("recv", self.req, -1, 2.0)
                seen["old"], seen["new"] = old.exitcode(), self.managed(self.proc)

        self.assertEqual(problems(run_case(Restarts)), [])
        self.assertNotEqual(*seen["pids"])
        self.assertEqual((seen["reply"], seen["old"]), ([["pong", 2]], 0))
        self.assertEqual(seen["new"].stopped_by, "message")  # the polite stop carried over

    def test_restart_a_command(self):
        seen = {}

        class RestartsCommand(ProcessTestCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-m", "pingpong.pongproc", self.endpoint], cwd=EXAMPLES)
                req = self.socket(zmq.REQ, connect=self.endpoint)
                yield ("send", req, [], ["ping", 1])
                yield ("recv", req, -1, 5.0)
                new = yield ("restart", proc)
                yield ("send", req, [], ["ping", 2])
                seen["reply"] = yield ("recv", req, -1, 5.0)
                seen["pids"] = (proc.pid, new.pid)

        self.assertEqual(problems(run_case(RestartsCommand)), [])
        self.assertEqual(seen["reply"], [["pong", 2]])
        self.assertNotEqual(*seen["pids"])


_TICKS = ("import signal, sys\n"
          "signal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
          "n = [1]\n"
          "def tick(*a):\n"
          "    n[0] += 1\n"
          "    print('tick', n[0], flush=True)\n"
          "signal.signal(signal.SIGUSR1, tick)\n"
          "print('tick 1', flush=True)\n"
          "while True:\n"
          "    signal.pause()\n")

_LOUD = ("import sys\n"
         "print('READY', flush=True)\n"
         "line = b'x' * 1000 + b'\\n'\n"
         "for i in range(8 * 1024 + 10):\n"
         "    sys.stderr.buffer.write(b'log %06d ' % i + line)\n"
         "sys.stderr.flush()\n"
         "print('DONE', flush=True)\n")


class TestOutputWaits(unittest.TestCase):
    """wait_output consumes what it matched; nothing of the output is lost (issue 32, items 5-6)."""

    def test_a_second_wait_output_waits_for_the_next_line(self):
        seen = {}

        class Ticks(ProcessTestCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-c", _TICKS])
                seen["first"] = (yield ("wait_output", proc, r"tick \d+", 5.0))[0]
                yield ("signal", proc, signal.SIGUSR1)
                seen["second"] = (yield ("wait_output", proc, r"tick \d+", 5.0))[0]
                seen["again"] = (yield ("wait_output", proc, r"tick \d+", 5.0, True))[0]  # from the start

        self.assertEqual(problems(run_case(Ticks)), [])
        self.assertEqual((seen["first"], seen["second"], seen["again"]), ("tick 1", "tick 2", "tick 1"))

    def test_lines_printed_at_once_are_matched_in_turn_and_no_more(self):
        seen = {}

        class Lines(ProcessTestCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-c", "print('n 1\\nn 2\\nn 3', flush=True)"])
                yield ("wait_exit", proc, 5.0)
                seen["matched"] = []
                for _ in range(3):
                    seen["matched"].append((yield ("wait_output", proc, r"n \d"))[0])
                yield ("wait_output", proc, r"n \d", 0.2)

        text = only_problem(self, run_case(Lines))
        self.assertEqual(seen["matched"], ["n 1", "n 2", "n 3"])
        self.assertIn("to match 'n \\\\d'; it exited; it matches earlier output, consumed by a previous wait "
                      "(from_start=True searches all of it)", text)

    def test_ready_followed_by_8_mib_of_log_is_matched_and_all_of_it_kept(self):
        from zmqprocesstest.processes._output import CAPTURE_LIMIT

        seen = {}

        class Loud(ProcessTestCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-c", _LOUD])
                yield ("wait_exit", proc, 30.0)  # all of it written before the first wait
                seen["ready"] = (yield ("wait_output", proc, "READY"))[0]
                seen["done"] = (yield ("wait_output", proc, "DONE"))[0]
                output = self.managed(proc).output
                seen["text"] = self.output_of(proc)
                seen["in memory"] = len(output.data)
                seen["file"] = output.spill_path
                seen["file there"] = os.path.isfile(output.spill_path or "")
                seen["report"] = self.managed(proc).report()

        self.assertEqual(problems(run_case(Loud)), [])
        self.assertEqual((seen["ready"], seen["done"]), ("READY", "DONE"))
        lines = seen["text"].splitlines()
        self.assertEqual((lines[0], lines[-1], len(lines)), ("READY", "DONE", 8 * 1024 + 12))
        self.assertEqual(lines[1:-1], [f"log {i:06d} " + "x" * 1000 for i in range(8 * 1024 + 10)])
        self.assertLessEqual(seen["in memory"], CAPTURE_LIMIT)
        self.assertTrue(seen["file there"], seen["file"])
        # A report named the file: it names where the file is kept after the test, and it is there.
        kept = re.search(r"all of its output \((\d+) bytes, kept after the test\): (\S+)", seen["report"])
        self.assertIsNotNone(kept, seen["report"])
        self.addCleanup(lambda: os.path.exists(kept.group(2)) and os.remove(kept.group(2)))
        self.assertEqual(int(kept.group(1)), len(seen["text"]))
        self.assertFalse(os.path.exists(seen["file"]))  # its first place went with the test's private directory
        with open(kept.group(2), encoding="utf-8") as f:
            self.assertEqual(f.read(), seen["text"])

    def test_a_spilled_output_no_report_named_goes_with_the_test(self):
        seen = {}

        class Loud(ProcessTestCase):
            def test_it(self):
                proc = self.start_command([sys.executable, "-c", _LOUD])
                yield ("wait_exit", proc, 30.0)
                yield ("wait_output", proc, "DONE")
                seen["file"] = self.managed(proc).output.spill_path
                seen["kept"] = self.managed(proc).output.kept_path

        self.assertEqual(problems(run_case(Loud)), [])
        self.assertIsNotNone(seen["file"])
        self.assertIsNone(seen["kept"])
        self.assertFalse(os.path.exists(seen["file"]))  # nobody was told of it: removed with the directory


def logs_at_info():
    import logging
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
    logging.getLogger("broker").info("broker is active")
    while True:
        signal.pause()  # until the stop's SIGINT


class TestForkedLogging(unittest.TestCase):
    """A forked process starts with the logging of a fresh interpreter (issue 32, item 6)."""

    def test_a_forked_process_logs_as_configured_whatever_the_runner_did_to_logging(self):
        import logging

        seen = {}

        class Logs(ProcessTestCase):
            def test_it(self):
                proc = self.start_process(logs_at_info)
                seen["line"] = (yield ("wait_output", proc, r"INFO broker is active", 5.0))[0]

        root = logging.getLogger()
        handler, level = logging.NullHandler(), root.level
        root.addHandler(handler)  # as pytest's and nose2's log capture do in the test process
        root.setLevel(logging.WARNING)
        try:
            result = run_case(Logs)
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        self.assertEqual(problems(result), [])
        self.assertEqual(seen["line"], "INFO broker is active")

    def test_a_forked_process_logs_under_this_runner(self):
        seen = {}

        class Logs(ProcessTestCase):
            def test_it(self):
                proc = self.start_process(logs_at_info)
                seen["line"] = (yield ("wait_output", proc, r"INFO broker is active", 5.0))[0]

        self.assertEqual(problems(run_case(Logs)), [])
        self.assertEqual(seen["line"], "INFO broker is active")


if __name__ == "__main__":
    unittest.main()
