"""Tests that each start a process under test, report it, then block until killed.

tests/test_controllers.py runs this module under a parallel runner (pytest-xdist,
unittest-parallel) and kills the runner's controller or a worker. Each test writes one
JSON line (its worker's pid, the worker's guardian, the process under test) to the FIFO
named by ZMQPROCESSTEST_SENTINEL once its process runs, then waits to be killed.
"""
import json
import os
import select
import sys

from zmqprocesstest import ProcessTestCase
from zmqprocesstest.processes import _guardian

SENTINEL = "ZMQPROCESSTEST_SENTINEL"


class Blocks(ProcessTestCase):
    run_timeout = 120

    def block(self):
        command = self.start_command([sys.executable, "-c", "import signal; signal.pause()"])
        line = json.dumps({"runner": os.getpid(), "controller": os.getppid(), "command": command.pid,
                           "guardian": _guardian.guardian_pid(),
                           "tmpdir": os.path.dirname(self.endpoint[len("ipc://"):])})
        fd = os.open(os.environ[SENTINEL], os.O_WRONLY)  # the test holds the read end open
        try:
            os.write(fd, line.encode() + b"\n")  # under PIPE_BUF: one write, never interleaved
        finally:
            os.close(fd)
        select.select([], [], [], 100)  # wait to be killed

    def test_1(self):
        self.block()

    def test_2(self):
        self.block()

    def test_3(self):
        self.block()

    def test_4(self):
        self.block()
