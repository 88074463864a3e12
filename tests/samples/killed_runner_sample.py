"""A test that starts processes, a daemon and a child of its own, then blocks.

tests/test_guarantees.py runs it in a child runner and kills that runner mid-test; it
prints one JSON line with what it started, then waits to be killed.
"""
import json
import os
import select
import signal
import sys
import time

from zmqprocesstest import ProcessTestCase

from ..support import EXAMPLES  # noqa: F401  (puts the example app on sys.path)
from pingpong.pongproc import PongProc

# A runner as a terminal starts it, whatever this suite inherited (nohup, a background
# job): the signals it is killed with in the tests must kill it.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_DFL)

#: A command that daemonizes a grandchild (double fork, setsid) and prints its pid.
DAEMONIZING = """
import os, signal
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        os.close(w)
        while True:
            signal.pause()  # runs until killed
    os._exit(0)
os.close(w)
print("daemon", os.read(r, 20).decode(), flush=True)
while True:
    signal.pause()  # serves until stopped
"""


def child_with_grandchild(endpoint):
    """A forked process under test that starts a child of its own."""
    import subprocess
    subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])  # runs until killed
    PongProc(endpoint).run()


def members(pgid):
    """Pids of the processes in process group *pgid*."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                if entry.isdigit() and int(f.read().rsplit(b")", 1)[1].split()[2]) == pgid:
                    found.append(int(entry))
        except (OSError, ValueError):
            pass
    return found


class Blocks(ProcessTestCase):
    run_timeout = 120

    def test_blocks_until_killed(self):
        forked = self.start_process(child_with_grandchild, self.endpoint)
        command = self.start_command([sys.executable, "-c", DAEMONIZING])
        daemon = (yield ("wait_output", command, r"daemon (\d+)"))[1]
        group = members(forked.pid)
        deadline = time.monotonic() + 10
        while len(group) < 2 and time.monotonic() < deadline:  # its own child may take a moment
            select.select([], [], [], 0.01)  # nothing to poll for a process appearing
            group = members(forked.pid)
        print(json.dumps({"forked": forked.pid, "command": command.pid, "daemon": int(daemon),
                          "group": group, "tmpdir": os.path.dirname(self.endpoint[len("ipc://"):]),
                          "runner": os.getpid()}), flush=True)
        select.select([], [], [], 100)  # wait to be killed
