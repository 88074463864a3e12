"""Tests that tests/test_own_processes.py runs in child runners (unittest, nose2, pytest).

The test process's own helpers are not daemons of a process under test: the
``start_method``\\ s ``spawn`` and ``forkserver``, a ``ProcessPoolExecutor``,
``shared_memory`` and a module-level pool used by two tests pass. Processes a test
starts itself, and a guardian that was killed or failed to start, are covered when the
runner is SIGKILLed: the processes report their pids on the file descriptor named by
``ZPT_REPORT_FD``, the outer test kills the runner and looks for survivors.
"""
import concurrent.futures
import multiprocessing
import os
import select
import signal
import subprocess
import sys
from multiprocessing import shared_memory

import zmq

from zmqprocesstest import ProcessTestCase
from zmqprocesstest.processes import _guardian

from ..support import EXAMPLES  # noqa: F401  (puts the example app on sys.path)
from pingpong.pongproc import PongProc

# A runner as a terminal starts it, whatever this suite inherited: SIGKILL must kill it.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)

SLEEPER = [sys.executable, "-c", "import signal; signal.pause()"]  # runs until killed
BOUND = 60  # every wait here ends by then


def _report(line):
    fd = os.environ.get("ZPT_REPORT_FD")
    if fd:
        os.write(int(fd), f"{line}\n".encode())


def square(n):
    return n * n


def pause_forever(prefix=""):
    _report(f"{prefix}mp {os.getpid()}")
    while True:
        signal.pause()  # runs until killed


class _Ping:
    timeout = 30  # a spawned process imports everything anew: slow on a loaded machine

    def ping(self):
        req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.start_process(PongProc, self.endpoint)
        yield ("send", req, [], ["ping", 1])
        reply = yield ("recv", req)
        self.assertEqual(reply, [["pong", 1]])


class Spawn(_Ping, ProcessTestCase):
    start_method = "spawn"

    def test_first(self):
        yield from self.ping()

    def test_second(self):
        yield from self.ping()


class Forkserver(_Ping, ProcessTestCase):
    start_method = "forkserver"

    def test_first(self):
        yield from self.ping()

    def test_second(self):
        yield from self.ping()


#: A pool of the code under test, made on first use and kept for the module's tests.
_POOL = []


def module_pool():
    if not _POOL:
        _POOL.append(concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")))
    return _POOL[0]


def tearDownModule():
    for pool in _POOL:
        pool.shutdown()


class Helpers(_Ping, ProcessTestCase):
    """The test process's own helpers, next to a process under test."""

    def test_process_pool(self):
        yield from self.ping()
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            self.assertEqual(list(pool.map(square, [2, 3])), [4, 9])

    def test_shared_memory(self):
        yield from self.ping()
        block = shared_memory.SharedMemory(create=True, size=16)
        self.addCleanup(block.unlink)
        self.addCleanup(block.close)
        block.buf[0] = 7
        self.assertEqual(block.buf[0], 7)

    def test_joined_spawn_process(self):
        yield from self.ping()
        proc = multiprocessing.get_context("spawn").Process(target=square, args=(3,))
        proc.start()
        proc.join(BOUND)
        self.assertEqual(proc.exitcode, 0)



class ModulePool(_Ping, ProcessTestCase):
    """A pool of the code under test, made in the first test and used by the second (run
    without the leak check: a pool kept across tests is what the leak check reports)."""

    def test_module_pool_first(self):
        yield from self.ping()
        self.assertEqual(module_pool().submit(square, 4).result(BOUND), 16)

    def test_module_pool_second(self):
        yield from self.ping()
        self.assertEqual(module_pool().submit(square, 5).result(BOUND), 25)


def _own_processes(case, prefix=""):
    """Start a Popen, an os.fork child and a multiprocessing Process, each reporting."""
    popen = subprocess.Popen(SLEEPER)
    case.addCleanup(setattr, popen, "returncode", 0)  # left running on purpose: no ResourceWarning
    _report(f"{prefix}popen {popen.pid}")
    pid = os.fork()
    if pid == 0:
        try:
            _report(f"{prefix}fork {os.getpid()}")
            while True:
                signal.pause()  # runs until killed
        finally:
            os._exit(0)
    proc = multiprocessing.get_context("fork").Process(target=pause_forever, args=(prefix,))
    proc.start()


class OwnProcesses(ProcessTestCase):
    run_timeout = 120

    def test_own_processes(self):
        """The runner is SIGKILLed while the test's own processes run."""
        self.start_command(SLEEPER)  # a process under test too: the guardian runs
        _own_processes(self)
        select.select([], [], [], BOUND)  # wait to be killed

    def test_own_processes_only(self):
        """No process under test at all: the guardian starts with the test."""
        _own_processes(self)
        select.select([], [], [], BOUND)  # wait to be killed


class GuardianKilled(ProcessTestCase):
    """The guardian is killed in the first test; the second waits to be killed."""

    run_timeout = 120

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shared = cls.start_command(SLEEPER)  # registered with the first guardian

    def test_a_kill_the_guardian(self):
        _own_processes(self, "early")  # registered with the guardian about to die
        guardian = _guardian.guardian_pid()
        exited = os.pidfd_open(guardian)
        os.kill(guardian, signal.SIGKILL)
        self.assertTrue(select.select([exited], [], [], BOUND)[0], "the guardian survived SIGKILL")
        os.close(exited)
        _report(f"shared {self.shared.pid}")

    def test_b_later(self):
        _own_processes(self)
        select.select([], [], [], BOUND)  # wait to be killed


class _FailOnce:
    """subprocess.Popen that fails once (or *always*) with EMFILE when it starts the guardian."""

    def __init__(self, real, always=False):
        self.real, self.failed, self.always = real, False, always

    def __call__(self, args, *rest, **kwargs):
        if (self.always or not self.failed) and any("_guardian_process" in str(a) for a in args):
            self.failed = True
            raise OSError(24, "Too many open files (simulated)")
        return self.real(args, *rest, **kwargs)


class GuardianStartFails(ProcessTestCase):
    """The guardian's first start fails (once); the next process start starts it."""

    run_timeout = 120

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fail = _FailOnce(subprocess.Popen)
        subprocess.Popen = cls.fail  # the first test's set-up starts the guardian

    def test_a_first(self):
        subprocess.Popen = self.fail.real
        _report(f"failed {int(self.fail.failed)}")

    def test_b_later(self):
        proc = self.start_command(SLEEPER)
        _report(f"command {proc.pid}")
        _own_processes(self)
        select.select([], [], [], BOUND)  # wait to be killed


class GuardianNeverStarts(ProcessTestCase):
    """The guardian cannot be started at all: a test whose processes are unguarded fails."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fail = _FailOnce(subprocess.Popen, always=True)
        subprocess.Popen = cls.fail  # before the first test's set-up starts the guardian

    @classmethod
    def tearDownClass(cls):
        subprocess.Popen = cls.fail.real
        super().tearDownClass()

    def test_unguarded(self):
        proc = self.start_command(SLEEPER)
        _report(f"command {proc.pid}")
