"""Processes under test: start, watch, signal and stop them, and never leave one behind.

A :class:`ManagedProcess` is one process under test as the test case tracks it. There is
one subclass per way of starting one (:class:`CommandProcess` here for command lines,
``ForkedProcess`` in :mod:`zmqprocesstest.processes._forked` for :mod:`multiprocessing`
processes); each supplies its own launcher and the few operations that differ, and the
base class does the rest.

Every process runs in a *session and process group of its own* (``os.setsid`` in a
forked child, ``start_new_session`` for commands) and starts with default dispositions
of SIGINT, SIGTERM, SIGHUP and SIGCHLD and an empty signal mask, whatever the runner
inherited. Signals go to the whole group, so the process's own children are stopped
with it, and after the process is reaped any member of its group still running is
killed and reported. :meth:`ManagedProcess.stop` walks the stop protocol
(:mod:`zmqprocesstest.stopping`) as its :attr:`~ManagedProcess.stop_plan` says, and
keeps how it went in :attr:`~ManagedProcess.stop_result`.

Each process is watched through a Linux ``pidfd`` (or the multiprocessing sentinel
elsewhere), which :class:`~zmqprocesstest.TestSocket` polls together with its socket: a
crash ends a wait at once.
"""
from __future__ import annotations

import os
import re
import select
import shutil
import signal
import _signal  # type: ignore[import-not-found]  # the C module behind signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Collection, Dict, Iterable, List, Optional, Sequence, Tuple

from . import _guardian
from .. import _perturb
from ..report import timeline as _timeline
from ._os import EXITED, exit_status, group_members, open_pidfd, proc_stat, signal_main_thread, thread_state
from ._leftovers import LIVE
from ._reaper import other_reapers_held, prepare_runner, wait_group_gone
from .._config import (GROUP_GRACE, GROUP_KILL_WAIT, KILL_NOW_WAIT, REPORT_SETTLE, SETTLE_BEFORE_SIGNAL, WAIT_SLICE,
                      scaled)
from ._output import Output
from .stopping import DEFAULT_PLAN, StopPlan, StopResult, describe_exit, signal_name, stop

__unittest = True
__tracebackhide__ = True

__all__ = [
    "CommandProcess",
    "ManagedProcess",
    "ExitStatusLost",
    "ProcessDied",
    "ProcessError",
    "ProcessStopError",
    "default_signals",
    "endpoints_in",
    "launch",
    "program_name",
    "unique_name",
]


class ProcessError(AssertionError):
    """Something went wrong with a process under test (a test failure)."""


class ProcessDied(ProcessError):
    """A process under test exited while the test was waiting for it."""

    #: The :class:`ManagedProcess` that died, where known.
    process: Optional["ManagedProcess"] = None

    def __reduce__(self) -> Any:
        # Without the process record (it holds a multiprocessing object that cannot be
        # pickled): parallel runners pickle a failure to carry it to their controller,
        # and nose2's mp plugin drops the result of one that fails to pickle.
        return type(self), self.args, {k: v for k, v in self.__dict__.items() if k != "process"}


class ProcessStopError(ProcessError):
    """A process under test did not stop politely, or exited with an error."""


class ExitStatusLost(ProcessError):
    """A process under test has exited, but another reaper in the test process (a
    ``SIGCHLD`` handler or an ``os.wait()`` loop) took its exit status first, and this
    kernel cannot tell how it ended (before Linux 6.15): neither a pass nor a "survived
    SIGKILL" can be said of it."""

    def __init__(self, proc: "ManagedProcess") -> None:
        super().__init__(f"process {proc.name!r} (pid {proc.pid}) has exited, but its exit status was taken by "
                         "another reaper in the test process (a SIGCHLD handler or os.wait()/os.waitpid(-1, ...) "
                         "loop?) before zmqprocesstest could read it: how it ended is unknown; reap only the "
                         "children you started yourself (os.waitpid(pid, ...))")


_WHOLE_PROCESS = frozenset({signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT})
# Thread states in which a signal is acted on at once: sleeping, exited, stopped ("" unknown).
_SETTLED = frozenset({"", "S", "T", "t"}) | EXITED



class ManagedProcess:
    """A process under test, as the test case tracks it.

    Wraps the started process object (:attr:`obj`) with what the tests need: a name, its
    process group, captured output, a pollable file descriptor that becomes readable
    when it exits, and the stop protocol. Subclasses say how to start one and how to ask
    the object for its exit code, wait for it and release it.
    """

    def __init__(self, obj: Any, name: str, output: Optional[Output], *, pgid: Optional[int] = None) -> None:
        #: The :class:`multiprocessing.Process` or :class:`subprocess.Popen`.
        self.obj = obj
        #: Name used in messages and reports (unique among the processes of a test).
        self.name = name
        #: The endpoints it is known to use: those given at its start, and those it was
        #: seen listening on before it was stopped; a report draws the messages of a
        #: test socket that uses one of them to its lane.
        self.endpoints: List[str] = []
        #: Its captured output (``None`` if not captured).
        self.output = output
        #: Process id.
        self.pid: int = obj.pid
        #: Its own process group (``None`` if it could not have one).
        self.pgid: Optional[int] = None
        #: How it is stopped (:class:`~zmqprocesstest.stopping.StopPlan`): attached by its
        #: owner (the test case), carried over by :meth:`restart`.
        self.stop_plan: StopPlan = DEFAULT_PLAN
        #: How its stop went (:class:`~zmqprocesstest.stopping.StopResult`), once stopped.
        self.stop_result: Optional[StopResult] = None
        #: Watched processes end socket waits when they die; an expected exit unwatches.
        self.watched = True
        #: Its exit was asked for (a ``signal`` event): it does not interrupt a blocking
        #: call of the test's own (a test socket's wait still reports it).
        self.exit_allowed = False
        #: Starts the same process again (same arguments), for ``restart``; set by ``start``.
        self.relaunch: Optional[Callable[[], "ManagedProcess"]] = None
        #: Whether it (its process group) is frozen with SIGSTOP (the ``freeze`` event).
        self.frozen = False
        #: The test that froze it, shared, and left it frozen: thawed at that test's end
        #: (the next test's timeline says so).
        self.thawed_after: Optional[str] = None
        #: Whether a pause of ``--stress`` has its group stopped right now.
        self.stress_paused = False
        #: For a shared process that died: the test during which it died (or when).
        self.died_during: Optional[str] = None
        self.closed = False
        self._code: Optional[int] = None
        self._lost = False  # another reaper took its status (ExitStatusLost)
        # Only a child of ours has a status to read (a forkserver's child is the server's).
        stat = proc_stat(self.pid)
        self._own_child = stat is None or stat.ppid == os.getpid()
        self.pidfd: Optional[int] = open_pidfd(self.pid)
        if pgid is not None:
            self.pgid = pgid  # the launcher made it (a forked child's own session)
        else:
            try:
                os.setpgid(self.pid, self.pid)
            except OSError:
                pass  # a session leader already (commands)
            try:
                self.pgid = os.getpgid(self.pid)
            except OSError:
                self.pgid = None
        if self.pgid == os.getpgrp():
            self.pgid = None  # never signal our own group
        if self.pgid is not None and pgid is None:  # (a launcher that made the group registered it)
            _guardian.watch_group(self.pgid)  # killed even if the runner dies (SIGKILL too)
        LIVE.add(self)  # killed at exit if still running (_leftovers.py)
        _timeline.record("start", name, f"pid {self.pid}")

    # -- what subclasses supply ------------------------------------------------------------
    def _poll(self) -> Optional[int]:
        """The exit code if it has exited (reaping it), else ``None``; never blocks."""
        raise NotImplementedError

    def _reaped(self, code: Optional[int]) -> Optional[int]:
        """Reap the process through its object, which must then know it exited with *code*
        (read through the pidfd; ``None``: it was reaped elsewhere with a status nobody
        can tell). Returns the code the object itself had, if it reaped the process
        earlier by itself, else *code*."""
        raise NotImplementedError

    def _block(self, timeout: float) -> None:
        """Wait at most *timeout* seconds for the exit, where there is no pidfd."""
        raise NotImplementedError

    def _exit_fd(self) -> Optional[int]:
        """A file descriptor readable at exit, where there is no pidfd."""
        return None

    def _release(self) -> None:
        """Release what the process object holds (pipes, multiprocessing resources)."""

    # -- state -------------------------------------------------------------------------------
    def exitcode(self) -> Optional[int]:
        """The exit code (negative: killed by that signal), or ``None`` if running.

        Read through the pidfd, where there is one, before the process object reaps the
        process: a ``SIGCHLD`` handler of the test process that reaps every child cannot
        take it first (:func:`~zmqprocesstest.processes._os.exit_status`).

        :raises ExitStatusLost: it exited, and another reaper took its status first on a
            kernel that does not keep it.
        """
        if self._lost:
            raise ExitStatusLost(self)
        if self._code is None:
            self._code = self._status()
            if self._code is not None:
                _timeline.record("exit", self.name, describe_exit(self._code))  # when it was seen
        return self._code

    def _status(self) -> Optional[int]:
        if self.pidfd is None or not self._own_child:
            return self._poll()
        try:
            code = exit_status(self.pidfd)
        except ChildProcessError:  # reaped: by its own object (join, wait), or by someone else
            code = self._reaped(None)
            if code is None:
                self._lost = True
                _timeline.record("exit", self.name, "exit status taken by another reaper")
                raise ExitStatusLost(self) from None
            return code
        return None if code is None else self._reaped(code)

    def alive(self) -> bool:
        """Whether the process is still running."""
        try:
            return self.exitcode() is None
        except ExitStatusLost:
            return False

    @property
    def fd(self) -> Optional[int]:
        """A file descriptor that becomes readable when the process exits."""
        return self.pidfd if self.pidfd is not None else self._exit_fd()

    @property
    def stopped_by(self) -> Optional[str]:
        """The stop step that ended it (``"message"``, ``"SIGINT"``... or ``"itself"``), once stopped."""
        return self.stop_result.stopped_by if self.stop_result is not None else None

    def describe(self) -> str:
        """``process 'pong' (pid 123, exit code 1)`` (or ``still running``, or ``frozen``)."""
        try:
            code = self.exitcode()
        except ExitStatusLost:
            return f"process {self.name!r} (pid {self.pid}, exited, its exit status taken by another reaper)"
        state = "frozen" if code is None and self.stopped() else describe_exit(code)
        if state == "frozen" and not self.frozen and self.stress_paused:
            state = "paused by --stress for a moment"
        return f"process {self.name!r} (pid {self.pid}, {state})"

    def stopped(self) -> bool:
        """Whether it is frozen: by the ``freeze`` event, or stopped by a signal (its
        state ``T``) by anyone else."""
        return self.frozen or thread_state(self.pid) == "T"

    def report(self) -> str:
        """State plus the tail of captured output, for failure messages."""
        text = self.describe()
        result, polite = self.stop_result, self.stop_plan.polite
        if result is not None and result.stopped_by:
            text += f", stopped by {result.stopped_by}"
        if result is not None and polite is not None and result.polite_outcome is not None \
                and result.stopped_by != "message":
            text += f"\n  polite stop: {polite.description} -> {result.polite_outcome}"
        if self.output is not None and not self.alive():
            self.output.settle(REPORT_SETTLE)  # the last lines it wrote may still be in the pipe
        tail = self.output.tail() if self.output is not None else ""
        if tail:
            indented = "\n".join("    | " + line for line in tail.splitlines())
            text += f"\n  last output of {self.name!r}:\n{indented}"
        elif self.output is None:
            text += " (output not captured)"
        if self.output is not None and self.output.spill_path is not None:
            text += f"\n  all of its output ({self.output.total} bytes, kept after the test): {self.output.keep()}"
        if self.output is not None and self.output.spill_error is not None:
            text += f"\n  all of its output is kept in memory ({self.output.spill_error})"
        return text

    # -- waiting and signals -----------------------------------------------------------------
    def wait(self, timeout: float) -> Optional[int]:
        """Wait at most *timeout* seconds for the process to exit; return its exit code.

        It blocks for at most :data:`WAIT_SLICE` seconds at a time: CPython runs a signal
        handler (the runner's Ctrl-C) only between blocking calls, so a signal that
        arrives just before one would otherwise wait until the whole wait is over.
        """
        deadline = time.monotonic() + timeout
        code = self.exitcode()
        while code is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self.pidfd is not None:
                ready = select.select([self.pidfd], [], [], min(remaining, WAIT_SLICE))[0]
            else:
                self._block(min(remaining, WAIT_SLICE))
                ready = []
            code = self.exitcode()
            if ready:
                break
        return code

    def send_signal(self, sig: int, group: bool = True) -> None:
        """Send *sig* to the process (and, by default, its whole process group).

        Sent once the process can act on it (:meth:`wait_until_blocked`).
        """
        if self.exitcode() is not None:
            raise ProcessDied(f"cannot send {signal_name(sig)} to {self.describe()}: it is not running")
        if _perturb.let_go is not None:
            _perturb.let_go()  # stress: held starts go first (a signal is for the process's own code)
        self.wait_until_blocked()
        self._deliver(sig, group)

    def freeze(self) -> None:
        """Stop the whole process group with SIGSTOP (a hang, as far as its peers can tell)."""
        if self.exitcode() is not None:
            raise ProcessDied(f"cannot freeze {self.describe()}: it is not running")
        with _perturb.signals:  # a stress pause of it never resumes it now
            self.signal_quietly(signal.SIGSTOP)
            self.frozen = True
        _timeline.record("fault", self.name, "freeze (SIGSTOP)")

    def thaw(self) -> None:
        """Let a frozen process group go on (SIGCONT)."""
        with _perturb.signals:
            self.signal_quietly(signal.SIGCONT)
            self.frozen = False
        _timeline.record("fault", self.name, "thaw (SIGCONT)")

    def restart(self) -> Tuple["ManagedProcess", List[str]]:
        """Stop it with its stop protocol and start it again with the same arguments.

        Returns the new record (with the same :attr:`stop_plan`) and the problems of the stop.
        """
        if self.relaunch is None:
            raise ValueError(f"cannot restart {self.describe()}: it was not started by a launcher that can "
                             "start it again")
        _timeline.record("fault", self.name, "restart")
        problems = self.stop()
        new = self.relaunch()
        new.stop_plan = self.stop_plan
        return new, problems

    def signal_quietly(self, sig: int) -> None:
        """Send *sig* to its group (or to it), ignoring that it may be gone already."""
        try:
            self._deliver(sig, group=True)
        except ProcessLookupError:
            pass

    def _deliver(self, sig: int, group: bool) -> None:
        """Send *sig* to the main thread of each process (see :func:`_os.signal_main_thread`).

        SIGKILL, SIGSTOP and SIGCONT act on whole processes whatever thread gets them,
        and go to the group in one call.
        """
        if sig not in (signal.SIGSTOP, signal.SIGCONT):  # freeze and thaw are recorded as faults
            _timeline.record("signal", self.name, signal_name(sig) + (" (group)" if group else ""))
        if group and self.pgid is not None and sig in _WHOLE_PROCESS:
            os.killpg(self.pgid, sig)
            return
        members = group_members(self.pgid) if group and self.pgid is not None else []
        for pid in members or [self.pid]:
            try:
                signal_main_thread(pid, sig)
            except ProcessLookupError:
                if pid == self.pid:
                    raise

    def wait_until_blocked(self, timeout: float = SETTLE_BEFORE_SIGNAL) -> None:
        """Wait, at most *timeout* seconds, until the process can act on a signal at once.

        A Python process can miss a signal: one taken between two blocking calls (just
        replied, on its way back into ``recv``), or one that lands on a libzmq thread in
        the instant before it masks signals, only sets a flag, and the main thread then
        blocks in ``poll`` without running the handler. So wait until its main thread is
        blocked (state ``S``), where a signal interrupts the call and is handled at once.
        """
        deadline = time.monotonic() + scaled(timeout)
        while thread_state(self.pid) not in _SETTLED and time.monotonic() < deadline:
            if self.wait(0.0002) is not None:  # fine-grained: it is usually a matter of microseconds
                return

    def _group_alive(self) -> bool:
        if self.pgid is None:
            return False
        try:
            os.killpg(self.pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _kill_group(self) -> bool:
        """After the process is reaped: wait briefly for its group, then kill it.

        Returns whether members had to be killed.
        """
        if self.pgid is None or wait_group_gone(self.pgid, scaled(GROUP_GRACE)):
            return False
        self.signal_quietly(signal.SIGKILL)
        wait_group_gone(self.pgid, scaled(GROUP_KILL_WAIT))
        return True

    # -- stopping ------------------------------------------------------------------------------
    def stop(self, close: bool = True) -> List[str]:
        """Stop the process with the stop protocol (:func:`~zmqprocesstest.stopping.stop`).

        Returns a list of problems (empty if it stopped politely and cleanly). With
        *close* false, :meth:`close` is left to the caller (who first ends descendants
        that left the group and may still hold the output pipe).
        """
        if self.closed or self.stop_result is not None:
            return []  # stopped already (stop_process)
        if _perturb.ended is not None:
            _perturb.ended([self])  # stress: a held start goes and a pause ends before the stop
        try:
            result = stop(self, self.stop_plan)
        except ExitStatusLost as lost:  # never a pass, never a false "survived SIGKILL"
            result = StopResult(None, None, problems=(str(lost),))
        if self._kill_group():
            result = result.adding(f"children of {self.name!r} (process group {self.pgid}) were still running "
                                   "and were killed")
        self.stop_result = result  # the one place a stop's state is written
        if close:
            self.close()
        return list(result.problems)

    def kill_now(self) -> None:
        """Last resort (interpreter exit, Ctrl-C of the runner): SIGKILL and reap."""
        if self.alive() or self._group_alive():
            self.signal_quietly(signal.SIGKILL)  # the process and its whole group
            self.wait(KILL_NOW_WAIT)
            if self.pgid is not None:
                wait_group_gone(self.pgid, KILL_NOW_WAIT)
        self.close()

    def close(self) -> None:
        """Release the pidfd, the output pipe and what the process object holds."""
        LIVE.discard(self)
        if self.pgid is not None and not self.closed:
            _guardian.forget_group(self.pgid)
        self.closed = True
        self.watched = False
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        if self.output is not None:
            self.output.close()
        self._release()


_ENDPOINT = re.compile(r"\b(?:tcp|ipc|ws|wss|udp)://[^\s,;'\"]+")


def endpoints_in(values: Iterable[Any]) -> List[str]:
    """The endpoints written in *values* (a process's start arguments: strings, and the
    strings in lists, tuples and dict values one level down), in order, each once."""
    found: List[str] = []
    for value in values:
        inner = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else (value,)
        for item in inner:
            if isinstance(item, str):
                found.extend(e for e in _ENDPOINT.findall(item) if e not in found)
    return found


def unique_name(name: str, taken: Collection[str]) -> str:
    """*name*, or ``name#2``, ``name#3``... the first that is not in *taken*."""
    if name not in taken:
        return name
    number = 2
    while f"{name}#{number}" in taken:
        number += 1
    return f"{name}#{number}"


def program_name(argv: Sequence[str]) -> str:
    """The name a command line is known by: its program's (``pongproc`` for ``pongproc
    --fast``), or for a Python interpreter its module or script (``python -m pongproc``,
    ``python3 pongproc.py``: ``pongproc``)."""
    program = os.path.basename(str(argv[0]))
    if re.fullmatch(r"python[0-9.]*|pypy[0-9.]*", program) or os.path.realpath(str(argv[0])) == \
            os.path.realpath(sys.executable):
        rest = [str(arg) for arg in argv[1:]]
        for at, arg in enumerate(rest):
            if arg == "-m" and at + 1 < len(rest):
                return rest[at + 1]
            if arg.startswith("-m") and len(arg) > 2:
                return arg[2:]
            if arg == "-c":
                return program
            if not arg.startswith("-"):
                return re.sub(r"\.pyw?$", "", os.path.basename(arg)) or program
    return program


# -- forked multiprocessing processes --------------------------------------------------------
_SIGINT, _SIG_DFL, _SIG_SETMASK = int(signal.SIGINT), int(signal.SIG_DFL), int(signal.SIG_SETMASK)
_DEFAULT_SIGNALS = tuple(int(sig) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD))


def default_signals() -> None:
    """Give this (new) process default signal dispositions and an empty signal mask.

    SIGINT raises KeyboardInterrupt as in a fresh interpreter; SIGTERM and SIGHUP
    terminate; SIGCHLD keeps its children's exit statuses. A runner started with SIGINT
    ignored (a background job, ``trap '' INT``) would otherwise pass that on, and the
    polite SIGINT step could never work.
    """
    # The C functions: the signal module's enum conversions would cost a forked child
    # (whose every first write to a page copies it) more than the calls themselves.
    if threading.current_thread() is threading.main_thread():
        _signal.signal(_SIGINT, signal.default_int_handler)
        for sig in _DEFAULT_SIGNALS:
            _signal.signal(sig, _SIG_DFL)
    _signal.pthread_sigmask(_SIG_SETMASK, ())


# -- command lines ------------------------------------------------------------------------------
def launch(argv: Sequence[str], *, env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
           **popen: Any) -> "subprocess.Popen[bytes]":
    """Start a command line the way every command under test starts.

    In a new session (its own process group), with default signal dispositions and an
    empty signal mask, ``PYTHONUNBUFFERED=1`` unless *env* says otherwise, and no file
    descriptors of ours. *popen* goes to :class:`subprocess.Popen` (stdin, stdout...).
    """
    if isinstance(argv, str):
        raise TypeError(f"expected an argument list, got the string {argv!r}; split it with shlex.split()")
    if isinstance(argv, bytes) or not isinstance(argv, Sequence) or not argv:
        raise TypeError(f"expected a non-empty argument list such as ['prog', '--flag'], got {argv!r}")
    prepare_runner()  # subreaper, exit statuses and guardian, before the fork
    full_env = _guardian.child_env(env)  # carries the guardian's token to every descendant
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.Popen(list(argv), env=full_env, cwd=cwd, start_new_session=True, close_fds=True,
                            preexec_fn=default_signals, **popen)


def word(fd: int, data: bytes) -> Callable[[], None]:
    """The function that writes *data* to *fd* and closes it, once, from any thread: the
    runner's word to a held process under test. Until then *fd* is in
    :data:`zmqprocesstest._perturb.held_fds` (closed in the processes forked meanwhile)."""
    lock, given = threading.Lock(), []  # type: threading.Lock, List[bool]
    _perturb.held_fds.append(fd)

    def give() -> None:
        with lock:
            if given:
                return
            given.append(True)
            _perturb.held_fds.remove(fd)
            try:
                os.write(fd, data)
            except OSError:
                pass  # it is gone already (stopped, or its runner's start failed)
            finally:
                os.close(fd)
    return give


#: A command held by the stress: ``/bin/sh`` waits for the runner's word on its stdin,
#: then execs the command with stdin from ``/dev/null`` (as unheld); end-of-file (the
#: runner is gone) exits with the status of a forked process orphaned at its start.
_HELD = ["/bin/sh", "-c", 'read -r _ || exit 70; exec "$@" </dev/null', "sh"]


def _runnable(argv: Sequence[str], env: Optional[Dict[str, str]], cwd: Optional[str]) -> bool:
    """Whether *argv*'s program is there to exec: only such a command is held by the stress
    (one that is not fails to start at once, as without it)."""
    if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
        return False
    program = argv[0]
    if "/" in program:
        return os.access(os.path.join(cwd or "", program), os.X_OK)
    return shutil.which(program, path=(env if env is not None else os.environ).get("PATH")) is not None


class CommandProcess(ManagedProcess):
    """A command line (any program) under test, as a :class:`subprocess.Popen`."""

    @classmethod
    def start(cls, argv: Sequence[str], *, name: Optional[str] = None, env: Optional[Dict[str, str]] = None,
              cwd: Optional[str] = None, capture: bool = True, taken: Collection[str] = ()) -> "CommandProcess":
        """Start *argv* with :func:`launch`, stdout and stderr drained from one pipe.

        It is named *name*, by default its program's name (:func:`program_name`), made
        unique among the names *taken* (``name#2``...). How it is stopped is up to its
        owner (:attr:`ManagedProcess.stop_plan`).
        """
        if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence) or not argv:
            launch(argv)  # its clear TypeError
        name = unique_name(name or program_name(argv), taken)
        with other_reapers_held():  # until it has a pidfd
            return cls._start(argv, name=name, env=env, cwd=cwd, capture=capture)

    @classmethod
    def _start(cls, argv: Sequence[str], *, name: str, env: Optional[Dict[str, str]], cwd: Optional[str],
               capture: bool) -> "CommandProcess":
        output = Output() if capture else None
        held = _perturb.hold is not None and _runnable(argv, env, cwd)
        go_r, go_w = os.pipe() if held else (-1, -1)
        try:
            popen = launch(_HELD + list(argv) if held else argv, env=env, cwd=cwd,
                           stdin=go_r if held else subprocess.DEVNULL,
                           stdout=output.write_fd if output else None, stderr=subprocess.STDOUT if output else None)
        except BaseException:
            if output is not None:
                output.discard()
            if held:
                os.close(go_w)
            raise
        finally:
            if held:
                os.close(go_r)
        if held and _perturb.hold is not None:
            _perturb.hold(name or os.path.basename(argv[0]), word(go_w, b"!\n"))
        if output is not None:
            output.start(name)
        managed = cls(popen, name, output)
        managed.endpoints = endpoints_in(argv)
        managed.relaunch = lambda: cls.start(argv, name=name, env=env, cwd=cwd, capture=capture)
        return managed

    def _poll(self) -> Optional[int]:
        return self.obj.poll()

    def _reaped(self, code: Optional[int]) -> Optional[int]:
        popen = self.obj
        if code is None:
            # Reaped elsewhere. Popen takes a child someone else reaped (ECHILD) for exit
            # code 0, so only another code it holds is its own (its wait() was called).
            return popen.returncode or None
        known = popen.returncode
        if known is None:
            popen.poll()  # reap it (or, if taken meanwhile, Popen's false 0)
            popen.returncode = code
            return code
        return known

    def _block(self, timeout: float) -> None:
        try:
            self.obj.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def _release(self) -> None:
        if self._lost and self.obj.returncode is None:
            self.obj.returncode = -1  # reaped by another reaper (ExitStatusLost, reported): not running
        for stream in (self.obj.stdin, self.obj.stdout, self.obj.stderr):
            if stream is not None:
                stream.close()
