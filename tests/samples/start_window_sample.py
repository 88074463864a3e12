"""Tests that tests/test_adversary.py runs in child runners, to break the guarantees at
the start of a process: each one is the runner's first (or second) process.

The processes report their pids on the file descriptor named by ``ZPT_REPORT_FD``
(inherited through the fork), one line each, so the outer test can kill the runner
the moment a process runs its first line and then look for survivors.
"""
import os
import select
import signal
import sys

from zmqprocesstest import ProcessTestCase

# A runner as a terminal starts it, whatever this suite inherited (nohup, a background
# job): the signals it is killed with in the tests must kill it.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)

SLEEPER = [sys.executable, "-c", "import signal; signal.pause()"]  # runs until stopped


def _report(line):
    os.write(int(os.environ["ZPT_REPORT_FD"]), f"{line}\n".encode())


def reports_then_forks():
    """First line: report; then start a child of its own that reports too; then wait."""
    _report(f"process {os.getpid()}")
    if os.fork() == 0:
        _report(f"grandchild {os.getpid()}")
        while True:
            signal.pause()  # runs until killed
    while True:
        signal.pause()  # serves until stopped


def daemonizes_at_once():
    """Double fork and setsid in its first lines; the daemon reports its pid, then waits."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            _report(f"daemon {os.getpid()}")
            while True:
                signal.pause()  # runs until killed
        os._exit(0)
    os.close(w)
    print("daemon", os.read(r, 20).decode(), flush=True)
    while True:
        signal.pause()  # serves until stopped


def moves_grandchild_away():
    """Starts a child that leaves the process group with ``setpgid`` (but not the
    session), and one that execs a program after ``setsid``; both report, then wait."""
    if os.fork() == 0:
        os.setpgid(0, 0)
        _report(f"setpgid {os.getpid()}")
        while True:
            signal.pause()  # runs until killed
    if os.fork() == 0:
        os.setsid()
        _report(f"setsid {os.getpid()}")
        os.execv(sys.executable, SLEEPER)
    _report(f"process {os.getpid()}")
    while True:
        signal.pause()  # serves until stopped


class StartWindow(ProcessTestCase):
    run_timeout = 60

    def test_first(self):
        """The runner's first process: the guardian starts for it."""
        self.start_process(reports_then_forks)
        select.select([], [], [], 60)  # wait to be killed

    def test_second(self):
        """The guardian runs already (for a command) when the process starts."""
        self.start_command(SLEEPER)
        self.start_process(reports_then_forks)
        select.select([], [], [], 60)  # wait to be killed


class FirstDaemon(ProcessTestCase):
    def test_forked(self):
        proc = self.start_process(daemonizes_at_once)
        yield ("wait_output", proc, r"daemon \d+")

    def test_command(self):
        proc = self.start_command(["sh", "-c", "(setsid sh -c 'echo daemon $$; exec sleep 1000' &); exec sleep 1001"])
        yield ("wait_output", proc, r"daemon \d+")


class Escapes(ProcessTestCase):
    def test_grandchildren(self):
        self.start_process(moves_grandchild_away)
        select.select([], [], [], 60)  # wait to be killed
