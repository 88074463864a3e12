"""Processes under test: start, watch, signal and stop them, and never leave one behind.

Every process started through a test case runs in a *process group of its own*
(``os.setpgid`` for :mod:`multiprocessing` children, ``start_new_session`` for
commands). Signals go to the whole group, so the process's own children are stopped
with it, and after the process is reaped any member of its group still running is
killed and reported. A child that leaves its group on purpose (``setsid``) is outside
this net; track it yourself.

Each process is watched through a Linux ``pidfd`` (or the multiprocessing sentinel
elsewhere), which :class:`~zmqprocesstest.sockets.TestSocket` polls together with its
socket: a crash ends a wait at once.
"""
from __future__ import annotations

import atexit
import functools
import multiprocessing
import multiprocessing.util
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .sockets import scaled

__unittest = True
__tracebackhide__ = True

__all__ = [
    "ProcessError",
    "ProcessDied",
    "ProcessStopError",
    "ManagedProcess",
    "DEFAULT_STOP_TIMEOUTS",
]

#: Bounds in seconds (before scaling) for each stop step, in escalation order.
DEFAULT_STOP_TIMEOUTS: Dict[str, float] = {
    "message": 2.0,
    "SIGINT": 2.0,
    "SIGTERM": 2.0,
    "SIGKILL": 5.0,
}

#: How much captured output a report shows.
TAIL_LINES = 20
_CAPTURE_LIMIT = 4 * 1024 * 1024


class ProcessError(AssertionError):
    """Something went wrong with a process under test (a test failure)."""


class ProcessDied(ProcessError):
    """A process under test exited while the test was waiting for it."""

    #: The :class:`ManagedProcess` that died, where known.
    process: Optional["ManagedProcess"] = None


class ProcessStopError(ProcessError):
    """A process under test did not stop politely, or exited with an error."""


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _describe_exit(code: Optional[int]) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Output:
    """Drains a pipe on a daemon thread so the child can never block on a full pipe."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.data = bytearray()
        self.dropped = 0
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._drain, name="zmqprocesstest-output", daemon=True)

    def start(self) -> None:
        os.close(self.write_fd)
        self.write_fd = -1
        self.thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                if len(self.data) > _CAPTURE_LIMIT:
                    cut = len(self.data) - _CAPTURE_LIMIT
                    del self.data[:cut]
                    self.dropped += cut
                self.cond.notify_all()

    def settle(self, timeout: float) -> None:
        """Wait, at most *timeout* seconds, until everything written has been read.

        For a process that has exited: the pipe ends when the last writer (it, or a
        child that inherited its output) is gone.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed and self.thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(remaining)

    def text(self) -> str:
        with self.cond:
            return self.data.decode("utf-8", "replace")

    def tail(self, lines: int = TAIL_LINES) -> str:
        text = self.text().rstrip("\n")
        if not text:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, pattern: "re.Pattern[str]", timeout: float, alive: Callable[[], bool]) -> Optional["re.Match[str]"]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                match = pattern.search(self.data.decode("utf-8", "replace"))
                if match or self.closed:
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                # Woken by new output; the bound also lets a dead process be noticed.
                self.cond.wait(min(remaining, 0.05))
                if not alive() and not self.thread.is_alive():
                    return pattern.search(self.data.decode("utf-8", "replace"))

    def close(self, timeout: float = 1.0) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1
        if self.thread.is_alive():
            self.thread.join(timeout)
        if not self.thread.is_alive() and self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1


# -- multiprocessing children: own group and captured output, set up in the child ------
_pending = threading.local()


def _in_forked_child(_: object) -> None:
    output = getattr(_pending, "output", None)
    if getattr(_pending, "active", False):
        _pending.active = False
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
        started_r, started_w = _pending.started
        os.close(started_r)
        os.write(started_w, b"!")  # signals sent from now on are not lost in the fork
        os.close(started_w)
        if output is not None:
            os.dup2(output.write_fd, 1)
            os.dup2(output.write_fd, 2)
            os.close(output.write_fd)
            os.close(output.read_fd)
            # The runner may have replaced sys.stdout (pytest's capture does): write to
            # the pipe, a line at a time, so waits on output see each line at once.
            sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
            sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)


class _Hook:
    """Anchor for multiprocessing's after-fork registry (it holds weak references)."""


_HOOK = _Hook()
multiprocessing.util.register_after_fork(_HOOK, _in_forked_child)

# Every live managed process, for the last-resort clean-up at interpreter exit.
_LIVE: "weakref.WeakSet[ManagedProcess]" = weakref.WeakSet()


class ManagedProcess:
    """A process under test, as the test case tracks it.

    Wraps a :class:`multiprocessing.Process` or a :class:`subprocess.Popen` (:attr:`obj`)
    with what the tests need: a name, its process group, captured output, a pollable
    file descriptor that becomes readable when it exits, and the stop protocol.
    """

    def __init__(self, obj: Union[multiprocessing.process.BaseProcess, "subprocess.Popen[bytes]"], name: str,
                 output: Optional[_Output], stop_timeouts: Dict[str, float]) -> None:
        #: The :class:`multiprocessing.Process` or :class:`subprocess.Popen`.
        self.obj = obj
        #: Name used in messages.
        self.name = name
        self.output = output
        #: Process id.
        self.pid: int = obj.pid  # type: ignore[assignment]
        #: Its own process group (``None`` if it could not have one).
        self.pgid: Optional[int] = None
        self.stop_timeouts = dict(stop_timeouts)
        #: ``(send, description)``: how to send the stop message, if any.
        self.stop_message: Optional[Tuple[Callable[[], None], str]] = None
        #: Watched processes end socket waits when they die; an expected exit unwatches.
        self.watched = True
        #: The stop step that ended it (``"message"``, ``"SIGINT"``... or ``"itself"``).
        self.stopped_by: Optional[str] = None
        self._code: Optional[int] = None
        self.closed = False
        # Readable once a forked child has passed the point where signals get lost.
        self._started_fd: Optional[int] = None
        self.pidfd: Optional[int] = None
        try:
            self.pidfd = os.pidfd_open(self.pid)  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            self.pidfd = None
        try:
            os.setpgid(self.pid, self.pid)
        except OSError:
            pass  # already did it itself (fork hook), or a session leader (commands)
        try:
            self.pgid = os.getpgid(self.pid)
        except OSError:
            self.pgid = None
        if self.pgid == os.getpgrp():
            self.pgid = None  # never signal our own group
        _LIVE.add(self)

    # -- state ------------------------------------------------------------------------
    @property
    def is_command(self) -> bool:
        return isinstance(self.obj, subprocess.Popen)

    def exitcode(self) -> Optional[int]:
        """The exit code (negative: killed by that signal), or ``None`` if running.

        Reaps the process with ``waitpid(WNOHANG)`` (never blocks).
        """
        if self._code is None:
            if isinstance(self.obj, subprocess.Popen):
                self._code = self.obj.poll()
            else:
                self._code = self.obj.exitcode
        return self._code

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.exitcode() is None

    @property
    def fd(self) -> Optional[int]:
        """A file descriptor that becomes readable when the process exits."""
        if self.pidfd is not None:
            return self.pidfd
        if not self.is_command:
            return self.obj.sentinel  # type: ignore[union-attr]
        return None

    def describe(self) -> str:
        """``process 'pong' (pid 123, exit code 1)``."""
        return f"process {self.name!r} (pid {self.pid}, {_describe_exit(self.exitcode())})"

    def report(self) -> str:
        """State plus the tail of captured output, for failure messages."""
        text = self.describe()
        if self.stopped_by:
            text += f", stopped by {self.stopped_by}"
        if self.output is not None and self.exitcode() is not None:
            self.output.settle(0.2)  # the last lines it wrote may still be in the pipe
        tail = self.output.tail() if self.output is not None else ""
        if tail:
            indented = "\n".join("    | " + line for line in tail.splitlines())
            text += f"\n  last output of {self.name!r}:\n{indented}"
        elif self.output is None:
            text += " (output not captured)"
        return text

    # -- waiting and signals ---------------------------------------------------------
    def wait(self, timeout: float) -> Optional[int]:
        """Wait at most *timeout* seconds for the process to exit; return its exit code."""
        code = self.exitcode()
        if code is not None or timeout <= 0:
            return code
        if self.pidfd is not None:
            select.select([self.pidfd], [], [], timeout)
            return self.exitcode()
        if isinstance(self.obj, subprocess.Popen):
            try:
                return self.obj.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        self.obj.join(timeout)
        return self.exitcode()

    def send_signal(self, sig: int, group: bool = True) -> None:
        """Send *sig* to the process (and, by default, its whole process group).

        Sent once the process can act on it (:meth:`wait_until_blocked`).
        """
        if self.exitcode() is not None:
            raise ProcessDied(f"cannot send {_signal_name(sig)} to {self.describe()}: it is not running")
        self.wait_until_blocked()
        if group and self.pgid is not None:
            os.killpg(self.pgid, sig)
        else:
            os.kill(self.pid, sig)

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
        deadline = time.monotonic() + scaled(0.5)
        while self._group_alive():
            if time.monotonic() > deadline:
                try:
                    os.killpg(self.pgid, signal.SIGKILL)  # type: ignore[arg-type]
                except OSError:
                    pass
                return True
            # Orphans are not our children: there is nothing to wait on but the clock.
            time.sleep(0.005)
        return False

    # -- the stop protocol -----------------------------------------------------------------
    def stop(self) -> List[str]:
        """Stop the process: stop message, SIGINT, SIGTERM, SIGKILL, each bounded.

        Returns a list of problems (empty if it stopped politely and cleanly).
        """
        problems: List[str] = []
        if self.closed:
            return problems  # stopped already (stop_process)
        code = self.exitcode()
        polite = "message" if self.stop_message else "SIGINT"
        if code is not None:
            self.stopped_by = "itself"
            if code != 0 and self.watched:
                problems.append(f"{self.describe()} exited on its own with {_describe_exit(code)}")
        else:
            steps: List[Tuple[str, Callable[[], None]]] = []
            if self.stop_message is not None:
                steps.append(("message", self.stop_message[0]))
            steps.append(("SIGINT", self._interrupt))
            steps.append(("SIGTERM", functools.partial(self._signal_quietly, signal.SIGTERM)))
            steps.append(("SIGKILL", functools.partial(self._signal_quietly, signal.SIGKILL)))
            for step, action in steps:
                try:
                    action()
                except Exception as exc:  # the stop message could not be sent
                    problems.append(f"could not send the stop message to {self.name!r}: {exc}")
                    continue
                # The SIGINT step waits its bound itself (it may resend); the others here.
                code = self.exitcode() if step == "SIGINT" else self.wait(scaled(self.stop_timeouts.get(step, 2.0)))
                if code is not None:
                    self.stopped_by = step
                    break
            if code is None:
                problems.append(f"{self.describe()} survived SIGKILL")
            elif self.stopped_by != polite:
                problems.append(
                    f"{self.describe()} did not stop politely ({polite}); it took {self.stopped_by}"
                )
            elif code not in (0, -signal.SIGINT, 128 + signal.SIGINT):
                problems.append(f"{self.describe()} exited with {_describe_exit(code)} after {self.stopped_by}")
        if self._kill_group():
            problems.append(f"children of {self.name!r} (process group {self.pgid}) were still running and were killed")
        self.close()
        return problems

    def _main_thread_state(self) -> str:
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return ""
        return stat[stat.rfind(b")") + 2:][:1].decode()

    def wait_until_blocked(self, timeout: float = 0.5) -> None:
        """Wait, at most *timeout* seconds, until the process can act on a signal at once.

        A Python process can miss a signal: one taken between two blocking calls (just
        replied, on its way back into ``recv``), or one that lands on a libzmq thread in
        the instant before it masks signals, only sets a flag, and the main thread then
        blocks in ``poll`` without running the handler. So wait until a forked child
        has passed the point where signals are reset, and its main thread is blocked
        (state ``S``), where a signal interrupts the call and is handled at once.
        """
        deadline = time.monotonic() + scaled(timeout)
        if self._started_fd is not None:
            # The fork hook writes this (or it closes on exit) once the child can take signals.
            select.select([self._started_fd], [], [], scaled(timeout))
        while self._main_thread_state() not in ("", "S", "Z", "X", "T", "t") and time.monotonic() < deadline:
            if self.wait(0.001) is not None:
                return

    def _interrupt(self) -> None:
        """The SIGINT stop step: sent when it will be acted on, and again while ignored.

        If the process is still alive and blocked 100 ms after the SIGINT, the signal
        was missed (see :meth:`wait_until_blocked`), so it is sent again; a process
        that is busy, say with its clean-up, is left alone.
        """
        deadline = time.monotonic() + scaled(self.stop_timeouts.get("SIGINT", 2.0))
        self.wait_until_blocked()
        resend = True
        while True:
            if resend:
                self._signal_quietly(signal.SIGINT)
            remaining = deadline - time.monotonic()
            if self.wait(min(0.1, max(0.0, remaining)) if resend else max(0.0, remaining)) is not None:
                return
            if time.monotonic() >= deadline:
                return
            # Still blocked: it missed the signal, send it again; busy: let it finish.
            resend = self._main_thread_state() == "S"

    def _signal_quietly(self, sig: int) -> None:
        try:
            if self.pgid is not None:
                os.killpg(self.pgid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill_now(self) -> None:
        """Last resort (interpreter exit, Ctrl-C of the runner): SIGKILL and reap."""
        if self.exitcode() is None:
            self._signal_quietly(signal.SIGKILL)
            self.wait(1.0)
        if self.pgid is not None and self._group_alive():
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        """Release the pidfd, the output pipe and multiprocessing's resources."""
        _LIVE.discard(self)
        self.closed = True
        self.watched = False
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        if self._started_fd is not None:
            os.close(self._started_fd)
            self._started_fd = None
        if self.output is not None:
            self.output.close()
        if isinstance(self.obj, subprocess.Popen):
            for stream in (self.obj.stdin, self.obj.stdout, self.obj.stderr):
                if stream is not None:
                    stream.close()
        elif self.exitcode() is not None:
            self.obj.close()


def start_process(target: Any, args: Sequence[Any], kwargs: Dict[str, Any], *, name: Optional[str],
                  capture: bool, stop_timeouts: Dict[str, float], start_method: Optional[str] = "fork") -> ManagedProcess:
    """Start a :class:`multiprocessing.Process` subclass or a target function.

    With the fork start method (the default here, whatever multiprocessing's default
    is) the child moves into its own process group and its stdout/stderr go to a pipe
    the parent drains, before any of its code runs; a :class:`~zmqprocesstest.ProcessMock`
    patched in the test is inherited. A class made for an explicit context
    (``get_context("spawn").Process``) keeps its own method.
    """
    context = multiprocessing.get_context(start_method) if start_method else None
    output = _Output() if capture else None
    started_r, started_w = os.pipe()
    _pending.active, _pending.output, _pending.started = True, output, (started_r, started_w)
    # Parallel runners run tests in daemonic pool workers, which multiprocessing forbids
    # to have children (they could be orphaned). The test case stops and reaps its
    # processes itself, and kills leftovers at exit, so lift the rule while the process
    # is made (so it does not inherit the flag) and started.
    me = multiprocessing.current_process()
    daemonic = me.daemon
    try:
        if daemonic:
            me.daemon = False
        if isinstance(target, type) and issubclass(target, multiprocessing.process.BaseProcess):
            proc = target(*args, **kwargs)
            if context is not None and getattr(proc, "_start_method", None) is None:
                proc._Popen = context.Process._Popen  # type: ignore[attr-defined]
                if hasattr(context.Process, "_after_fork"):  # type: ignore[attr-defined]  # 3.10+ only
                    proc._after_fork = context.Process._after_fork  # type: ignore[attr-defined]
        elif callable(target):
            make = context.Process if context is not None else multiprocessing.Process  # type: ignore[attr-defined]
            proc = make(target=target, args=tuple(args), kwargs=kwargs)
        else:
            raise TypeError(f"expected a multiprocessing.Process subclass or a callable, got {target!r}")
        with warnings.catch_warnings():
            # Python 3.12+ warns that fork() in a process with threads may deadlock the
            # child. The test's zmq context has libzmq threads by design, and forking
            # here is the documented choice (start_method); the child never uses them.
            warnings.filterwarnings("ignore", r"This process .* is multi-threaded, use of fork\(\)",
                                    DeprecationWarning)
            proc.start()
    except BaseException:
        if output is not None:
            os.close(output.write_fd)
            os.close(output.read_fd)
        os.close(started_r)
        raise
    finally:
        if daemonic:
            me.daemon = True
        _pending.active, _pending.output, _pending.started = False, None, None
        os.close(started_w)
    if output is not None:
        output.start()
    managed = ManagedProcess(proc, name or proc.name, output, stop_timeouts)
    managed._started_fd = started_r
    return managed


def start_command(argv: Sequence[str], *, name: Optional[str], env: Optional[Dict[str, str]],
                  cwd: Optional[str], capture: bool, stop_timeouts: Dict[str, float]) -> ManagedProcess:
    """Start a command line in a new session with stdout+stderr drained from a pipe."""
    if isinstance(argv, str):
        raise TypeError(f"expected an argument list, got the string {argv!r}; split it with shlex.split()")
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    output = _Output() if capture else None
    try:
        popen = subprocess.Popen(
            list(argv), env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=output.write_fd if output else None, stderr=subprocess.STDOUT if output else None,
            start_new_session=True, close_fds=True,
        )
    except BaseException:
        if output is not None:
            os.close(output.write_fd)
            os.close(output.read_fd)
        raise
    if output is not None:
        output.start()
    return ManagedProcess(popen, name or os.path.basename(argv[0]), output, stop_timeouts)


@atexit.register
def _kill_leftovers() -> None:
    leftovers = list(_LIVE)
    for proc in leftovers:
        proc.kill_now()
    if leftovers:
        print(f"zmqprocesstest: killed {len(leftovers)} process(es) left running at exit: "
              + ", ".join(p.name for p in leftovers), file=sys.stderr)
