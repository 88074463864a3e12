"""The guardian: nothing started by a test outlives the runner, however the runner dies.

Each test runs tests/samples/guardian_runner.py as a stand-in runner in a child process, so the
suite's own process never becomes a subreaper nor gets a guardian from these tests.
"""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from .support import interruptible

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "samples", "guardian_runner.py")
GUARANTEE = 2.0  # seconds after the runner's death by which everything must be gone
BOUND = 60.0  # every other wait of these tests ends by then

LINUX = sys.platform.startswith("linux") and hasattr(os, "pidfd_open")


def start_time(pid):
    """(state, start time) of *pid* from /proc/PID/stat, or None if there is no such pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def alive(pid, started):
    """True if the process *pid* that started at *started* still runs (a zombie does not)."""
    now = start_time(pid)
    return now is not None and now[1] == started and now[0] not in ("Z", "X", "x")


def wait_all_exited(pids, deadline):
    """Wait (pidfds, no sleeping) until every pid has exited or *deadline* passes."""
    fds = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                pass
        pending = list(fds)
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready = select.select(pending, [], [], remaining)[0]
            pending = [fd for fd in pending if fd not in ready]
    finally:
        for fd in fds:
            os.close(fd)


def read_line(stream, timeout=BOUND):
    if not select.select([stream], [], [], timeout)[0]:
        raise AssertionError(f"no line within {timeout} s")
    return stream.readline()


def reap_if_ours(pids):
    """Orphans may have been reparented to this process if it is a subreaper: reap them."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


@unittest.skipUnless(LINUX, "the guardian needs Linux (/proc, pidfd)")
class TestRunnerDeath(unittest.TestCase):
    """Kill a runner mid-test; 2 s later nothing it started runs and its directory is gone."""

    def start_runner(self, mode="tree"):
        errors = tempfile.TemporaryFile()
        self.addCleanup(errors.close)
        runner = subprocess.Popen([sys.executable, RUNNER, mode], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=errors, start_new_session=True,
                                  preexec_fn=interruptible)
        self.addCleanup(self.stop_runner, runner)
        line = read_line(runner.stdout)
        if not line:
            runner.wait(BOUND)
            errors.seek(0)
            self.fail(f"the runner exited with {runner.returncode}: {errors.read().decode(errors='replace')}")
        info = json.loads(line)
        self.started = {}
        for name, pid in list(info["pids"].items()) + [("guardian", info["guardian"])]:
            state = start_time(pid)
            self.assertIsNotNone(state, f"{name} ({pid}) is not running before the runner dies")
            self.assertNotIn(state[0], ("Z", "X"), f"{name} ({pid}) exited before the runner died")
            self.started[name] = (pid, state[1])
        self.assertTrue(os.path.isdir(info["dir"]))
        self.addCleanup(self.kill_leftovers)
        return runner, info

    def stop_runner(self, runner):
        if runner.poll() is None:
            runner.kill()
            runner.wait(BOUND)
        runner.stdin.close()
        runner.stdout.close()

    def kill_leftovers(self):
        """A failed test must not leak its tree into the rest of the suite."""
        pids = [pid for pid, started in self.started.values() if alive(pid, started)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_all_exited(pids, time.monotonic() + BOUND)
        reap_if_ours(pid for pid, _ in self.started.values())

    def kill_runner_and_check(self, runner, info, how):
        guardian = info["guardian"]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(guardian, sig)  # ignored: only the runner's death ends the guardian
        if how == "os._exit":
            runner.stdin.write(b"exit\n")
            runner.stdin.flush()
        else:
            os.killpg(runner.pid, how)  # the runner's group, as a Ctrl-C or a hang-up would
        died = time.monotonic()
        deadline = died + GUARANTEE
        wait_all_exited([runner.pid], died + BOUND)
        runner.wait(BOUND)
        if how == "os._exit":
            self.assertEqual(runner.returncode, 3)
        elif how == signal.SIGINT:
            self.assertIn(runner.returncode, (1, -signal.SIGINT))  # KeyboardInterrupt, unhandled
        else:
            self.assertEqual(runner.returncode, -how)

        wait_all_exited([pid for pid, _ in self.started.values()], deadline)
        # Nobody (not the guardian, not a killed process) keeps the runner's stdout open.
        eof = select.select([runner.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]
        while os.path.exists(info["dir"]) and time.monotonic() < deadline:  # removed after the last kill
            time.sleep(0.01)
        elapsed = time.monotonic() - died
        running = {name: pid for name, (pid, started) in self.started.items() if alive(pid, started)}
        self.assertEqual(running, {}, f"still running {elapsed:.2f} s after the runner died")
        self.assertFalse(os.path.exists(info["dir"]), "the private directory is still there")
        self.assertTrue(eof and runner.stdout.read() == b"", "the runner's stdout is still held open")
        self.assertLessEqual(elapsed, GUARANTEE)
        reap_if_ours(pid for pid, _ in self.started.values())

    def check_death(self, how, mode="tree"):
        runner, info = self.start_runner(mode)
        # A forked process under test must not hold the guardian's pipe (else no end-of-file).
        self.assertNotIn(info["write_end"], info["member_fds"])
        self.kill_runner_and_check(runner, info, how)
        return info

    def test_sigint(self):
        self.check_death(signal.SIGINT)

    def test_the_guardian_is_out_of_reach_of_the_terminal_and_the_capture_pipes(self):
        runner, info = self.start_runner()
        self.assertTrue(info["guardian_session"], "the guardian is not in a session of its own")
        stdin, stdout, stderr = info["guardian_stdio"]
        self.assertEqual(stdin, info["write_end"])  # the other end of the runner's pipe
        self.assertEqual([stdout, stderr], ["/dev/null", "/dev/null"])
        self.assertNotIn(info["my_stdout"], info["guardian_stdio"])
        self.kill_runner_and_check(runner, info, signal.SIGKILL)

    def test_sigterm(self):
        self.check_death(signal.SIGTERM)

    def test_sighup(self):
        self.check_death(signal.SIGHUP)

    def test_sigkill(self):
        self.check_death(signal.SIGKILL)

    def test_os_exit_mid_test(self):
        self.check_death("os._exit")

    def test_a_killed_guardian_is_replaced_and_reaped(self):
        info = self.check_death(signal.SIGKILL, mode="restart")
        self.assertNotEqual(info["first_guardian"], info["guardian"])
        self.assertTrue(info["first_reaped"], "the dead guardian was left a zombie of the runner")


def run_helper(mode):
    """Run guardian_runner.py MODE to its end and return its JSON result."""
    proc = subprocess.run([sys.executable, RUNNER, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=BOUND, start_new_session=True)
    if proc.returncode != 0:
        raise AssertionError(f"guardian_runner.py {mode} exited with {proc.returncode}:\n"
                             + proc.stderr.decode(errors="replace"))
    return json.loads(proc.stdout)


@unittest.skipUnless(LINUX, "the guardian needs Linux (/proc, pidfd)")
class TestInProcess(unittest.TestCase):
    def test_a_forked_child_has_neither_the_pipe_nor_the_guardian(self):
        result = run_helper("fork")
        self.assertEqual(result["fork_warnings"], [])  # the parent's guardian is not "still running" here
        self.assertFalse(result["holds_write_end"])
        self.assertIsNone(result["guardian_before"])
        self.assertEqual(result["fds_before"], [])
        self.assertFalse(result["same_token"])
        self.assertNotIn(result["own_guardian"], (None, result["parent_guardian"]))
        self.assertEqual(result["parent_guardian_after"], result["parent_guardian"])
        self.assertTrue(result["stopped"])

    def test_subreaper_finds_a_daemonized_grandchild(self):
        result = run_helper("subreaper")
        self.assertTrue(result["subreaper"])
        self.assertTrue(result["again"])
        self.assertFalse(result["guardian_listed"])
        self.assertEqual([pid for pid, _ in result["found"]], [result["daemon"]])
        self.assertIn("zmqprocesstest-daemon", result["found"][0][1])
        self.assertTrue(result["middle_reaped"], "the exited middle process was left a zombie")
        self.assertEqual(result["known_skipped"], [])
        self.assertEqual(result["left"], [])
        self.assertTrue(result["daemon_reaped"])
        self.assertEqual(result["after"], [])
        self.assertEqual(result["member_left"], [])
        self.assertEqual(result["member_exitcode"], -signal.SIGKILL)
        self.assertTrue(result["stopped"])

    def test_signals_sent_while_the_guardian_starts_do_not_end_it(self):
        # The root cause of a flake under CPU load: the test's SIGINT/SIGTERM/SIGHUP
        # reached a guardian whose interpreter had not yet set them to be ignored.
        result = run_helper("early_signals")
        self.assertEqual(result, {"stopped": True, "returncode": 0})

    def test_per_test_bookkeeping_is_cheap(self):
        result = run_helper("cost")
        # The budget is 0.5 ms; a loaded CI machine gets four times that before this fails.
        self.assertLess(result["per_test_seconds"], 0.002, result)
        self.assertTrue(result["stopped"])


class TestChildEnv(unittest.TestCase):
    def test_token_is_added_to_tokens_already_there_and_the_own_group_is_refused(self):
        code = ("import json, os, sys\n"
                f"sys.path.insert(0, {os.path.dirname(HERE)!r})\n"
                "from zmqprocesstest.processes import _guardian as g\n"
                "outer = g.child_env({'A': '1', g.ENV_NAME: 'outer'})\n"
                "again = g.child_env(outer)\n"
                "try:\n"
                "    g.watch_group(os.getpgrp())\n"
                "    refused = False\n"
                "except ValueError:\n"
                "    refused = True\n"
                "print(json.dumps([outer, again, g.child_env(None)[g.ENV_NAME], refused, g.stop()]))\n")
        proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, timeout=BOUND,
                              start_new_session=True)
        outer, again, plain, refused, stopped = json.loads(proc.stdout)
        name = "ZMQPROCESSTEST_GUARD"
        self.assertEqual(outer["A"], "1")
        first, token = outer[name].split()
        self.assertEqual(first, "outer")
        self.assertEqual(len(token), 32)
        self.assertEqual(again[name], outer[name])
        self.assertIn(token, plain.split())
        self.assertTrue(refused, "the runner's own process group was accepted")
        self.assertTrue(stopped)


if __name__ == "__main__":
    unittest.main()
