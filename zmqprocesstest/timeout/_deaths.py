"""A watched process's death interrupts whatever the test's thread is blocked in.

A test socket's wait watches the processes under test itself. The test's own code does
not: a raw ``zmq.Socket.recv()`` without a timeout, a client library's blocking call,
``select``, ``queue.Queue.get()`` or ``time.sleep()`` would wait on a dead server until
``run_timeout``. While a test's ``setUp`` or body runs in the main thread,
:func:`death_interrupts` has the kept death-watch thread (one per process) poll the
pidfds of the processes the test watches. When one becomes readable and the test did not
ask for that exit (see below), the thread sends a spare real-time signal to the main
thread, as the hard timeout's fallback does; its handler raises
:class:`~zmqprocesstest.ProcessDied` at the line that was blocked, through the test's
resources' own check (so a death is reported once, whoever sees it first).

When the signal is sent:

* not before what the process sent has been read: after an exit with a code, once every
  connection whose peer closed has been read to its end by libzmq (bounded by
  ``EXIT_DRAIN``, as a test socket's wait does); after a death by a signal, at once;
* only while the main thread is blocked: in the very same system call (with the same
  arguments and stack) at two looks :data:`~zmqprocesstest._config.DEATH_LOOK` apart,
  read from ``/proc/self/task/TID/syscall``. A thread that the last reply has just woken
  is running, not blocked, so the reply is the test's; the death is reported where it
  blocks next. A thread that never blocks (a busy loop) gets the signal
  :data:`~zmqprocesstest._config.DEATH_BUSY` after the death.

What the handler does not interrupt: the library's own code (the innermost frame, past
the standard library's and installed packages' frames, is the package's: a test socket's
wait, the loop of a coroutine test, which report the death themselves), and what runs
under :func:`quiet` (a stop plan). It then leaves the death to that code, and the thread
looks again every :data:`~zmqprocesstest._config.DEATH_RETRY`, signalling again only
once the main thread blocks somewhere else. Not interrupted either: a process that is
not watched (``wait_exit``, ``allow_exit``, one stopped or restarted) or whose exit the
test asked for by a ``signal`` event (``exit_allowed``). No signal comes after the block
ends: the handler is inert and the thread silenced first.
"""
from __future__ import annotations

import os
import select
import signal
import sysconfig
import threading
import time
from types import FrameType
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Set

from .._compat import PerProcess
from .._config import DEATH_BUSY, DEATH_LOOK, DEATH_RETRY, EXIT_DRAIN, EXIT_GRACE, scaled
from ..processes import blocking_call, exit_status
from ._watchdog_thread import spare_rt_signal

__unittest = True
__tracebackhide__ = True

__all__ = ["death_interrupts", "death_watch_fds", "deaths_changed", "quiet"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_PATHS = sysconfig.get_paths()
#: Frames here are passed over when deciding whose code the main thread runs: the
#: standard library's and installed packages' (pyzmq's own Python code among them).
_PASSED_OVER = tuple(sorted({os.path.abspath(_PATHS[key]) + os.sep for key in
                             ("stdlib", "platstdlib", "purelib", "platlib") if key in _PATHS}))
_QUIET = [0]
_READABLE = select.POLLIN | select.POLLHUP


@contextmanager
def quiet() -> Iterator[None]:
    """A library section no death may interrupt (a stop plan): its deaths wait for its end."""
    _QUIET[0] += 1
    try:
        yield
    finally:
        _QUIET[0] -= 1


def in_library(frame: Optional[FrameType]) -> bool:
    """Whether *frame* (where the main thread was) is the library's own code: the first
    frame outward that is neither the standard library's nor an installed package's."""
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith("<"):
            path = os.path.abspath(name)
            if path.startswith(_PACKAGE):
                return True
            if not path.startswith(_PASSED_OVER):
                return False  # the test's own code, or code of its project
        frame = frame.f_back
    return False


class _Death:
    """One exit seen on a pidfd: when, and from when the main thread may be signalled."""

    __slots__ = ("seen", "by_signal", "ready_at")

    def __init__(self, seen: float, by_signal: bool) -> None:
        self.seen = seen
        self.by_signal = by_signal
        self.ready_at: Optional[float] = seen if by_signal else None


class _Armed:
    """One armed block: the test, its watched processes (each by a pidfd of our own), the signal."""

    def __init__(self, case: Any) -> None:
        self.case = case
        self.signum = 0  # chosen when the first process is watched
        main = threading.main_thread()
        self.target = main.ident or 0
        self.tid = main.native_id or os.getpid()
        self.active = True  # False once the block ends: the handler is inert
        self.procs: Dict[int, Any] = {}  # our pidfd -> ManagedProcess
        self.deaths: Dict[int, _Death] = {}
        self.previous_handler: Any = None
        self.installed = False
        self.last_line: Optional[str] = None  # the main thread's system call at the previous look
        self.signalled_line: Optional[str] = None
        self.deferred_line: Optional[str] = None  # where the library took the last signal
        self.last_signal = -DEATH_RETRY
        #: Seconds until the thread looks again at the deaths it has seen (``None``: none is due).
        self.next_look: Optional[float] = None


class DeathWatchThread:
    """The kept thread that polls the armed test's pidfds and signals the main thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.armed: Optional[_Armed] = None
        self.generation = 0
        threading.Thread(target=self._run, name="zmqprocesstest death watch", daemon=True).start()

    def fds(self) -> Set[int]:
        with self.lock:
            held = set(self.armed.procs) if self.armed is not None else set()
        return held | {self.wake_r, self.wake_w}

    def wake(self) -> None:
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass  # a wake-up is pending already

    def set_procs(self, armed: _Armed, procs: List[Any]) -> None:
        """The processes *armed* watches now (each with an open pidfd); ours are dups."""
        wanted = {proc.fd: proc for proc in procs if proc.fd is not None}
        with self.lock:
            old = armed.procs
            kept = {fd: proc for fd, proc in old.items() if proc in wanted.values()}
            known = set(kept.values())
            for fd, proc in wanted.items():
                if proc not in known:
                    kept[os.dup(fd)] = proc
            for fd in set(old) - set(kept):
                os.close(fd)
            armed.procs = kept
            armed.deaths = {fd: death for fd, death in armed.deaths.items() if fd in kept}
            self.generation += 1
        self.wake()

    def disarm(self, armed: _Armed) -> None:
        with self.lock:  # the signal is sent under this lock: none can come after this
            armed.active = False
            for fd in armed.procs:
                os.close(fd)
            armed.procs = {}
            armed.deaths = {}
            if self.armed is armed:
                self.armed = None
            self.generation += 1
        self.wake()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self.lock:
                armed, generation = self.armed, self.generation
                polled = [] if armed is None else [fd for fd in armed.procs if fd not in armed.deaths]
                timeout = armed.next_look if armed is not None and armed.deaths else None
            poller = select.poll()  # not select(): a descriptor past 1024 is fine
            for fd in [self.wake_r] + polled:
                poller.register(fd, _READABLE)
            try:
                ready = [fd for fd, events in poller.poll(None if timeout is None else timeout * 1000)
                         if events & _READABLE]  # (POLLNVAL: closed meanwhile, the generation has changed)
            except InterruptedError:
                ready = []
            if self.wake_r in ready:
                try:
                    while os.read(self.wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            if armed is None:
                continue
            now = time.monotonic()
            # Under the lock, so that nothing of it (a descriptor it opens in /proc) outlives
            # the block: the test's leak check comes after it.
            with self.lock:
                if generation != self.generation or not armed.active:
                    continue
                for fd in ready:
                    if fd in armed.procs and fd not in armed.deaths:
                        armed.deaths[fd] = _Death(now, _by_signal(fd))
                if armed.deaths:
                    self._step(armed, now)

    def _step(self, armed: _Armed, now: float) -> None:
        """Decide, for the deaths seen, whether the main thread gets the signal now (and
        when to look again: :attr:`_Armed.next_look`). Called with the lock held."""
        due = [death for fd, death in list(armed.deaths.items())
               if fd in armed.procs and armed.procs[fd].watched and not armed.procs[fd].exit_allowed]
        armed.next_look = None
        if not due:
            return  # asked for, or reported already (the next refresh drops it): nothing to look at
        for death in due:
            if death.ready_at is None:  # an exit with a code: what it sent is read first
                drained = _drained(armed.case)
                if drained is None:
                    death.ready_at = death.seen + scaled(EXIT_GRACE)
                elif drained or now - death.seen >= scaled(EXIT_DRAIN):
                    death.ready_at = now
        waits = [death.ready_at - now if death.ready_at is not None else DEATH_LOOK for death in due]
        if min(waits) > 0:
            armed.next_look = max(min(waits), 0.0)
            return
        armed.next_look = DEATH_LOOK
        since_signal = now - armed.last_signal
        if _QUIET[0] or since_signal < DEATH_RETRY:
            armed.next_look = DEATH_RETRY if _QUIET[0] else DEATH_RETRY - since_signal
            return
        line = blocking_call(armed.tid)  # /proc/TID/task/TID/syscall: the main thread's
        blocked = line is None or (line != "running" and line == armed.last_line)  # None: no /proc to look at
        armed.last_line = line
        busy = now - min(death.seen for death in due) >= scaled(DEATH_BUSY)
        if not blocked and not busy:
            return
        if line is not None and line == armed.deferred_line and not busy:
            armed.next_look = DEATH_RETRY
            return  # still the library's own wait, where the last signal was left to it
        armed.signalled_line = line
        armed.last_signal = now
        armed.next_look = DEATH_RETRY
        signal.pthread_kill(armed.target, armed.signum)


def _by_signal(fd: int) -> bool:
    """Whether the process of pidfd *fd* (exited) was killed by a signal; ``False`` if unknown."""
    try:
        code = exit_status(fd)
    except (ChildProcessError, OSError):
        return False
    return code is not None and code < 0


def _drained(case: Any) -> Optional[bool]:
    res = getattr(case, "_zpt", None)
    if res is None:
        return True
    return res.exit_drained()


_THREAD: PerProcess[DeathWatchThread] = PerProcess(DeathWatchThread)
_ARMED: List[Optional[_Armed]] = [None]
os.register_at_fork(after_in_child=lambda: _ARMED.__setitem__(0, None))


def _on_signal(signum: int, frame: Optional[FrameType]) -> None:
    """The death signal's handler, in the main thread: raise the death where the test is blocked."""
    __tracebackhide__ = True  # read by pytest: hide this frame
    armed = _ARMED[0]
    if armed is None or not armed.active:
        return
    if _QUIET[0] or in_library(frame):
        armed.deferred_line = armed.signalled_line
        return
    res = getattr(armed.case, "_zpt", None)
    if res is None:
        return
    res.check(blocked=True)  # raises the death (once: the process is then no longer watched)
    armed.deferred_line = armed.signalled_line  # nothing due: reported or allowed meanwhile


def _activate(armed: _Armed) -> bool:
    """Install the handler (main thread) before the first process is watched."""
    if armed.installed:
        return True
    signum = spare_rt_signal()
    if signum is None:
        return False  # every real-time signal is taken: nothing can interrupt the test
    armed.signum = signum
    try:
        armed.previous_handler = signal.getsignal(armed.signum)
        signal.signal(armed.signum, _on_signal)
    except ValueError:  # not the main thread after all, or a subinterpreter
        return False
    armed.installed = True
    return True


def _flush_pending_signals() -> None:
    """Calling a Python function lets CPython run a handler whose signal has arrived
    (while the inert handler is still the installed one)."""


@contextmanager
def death_interrupts(case: Any) -> Iterator[None]:
    """While the block runs (the test's ``setUp`` or body, in the main thread), a death
    of a process *case* watches interrupts what the main thread is blocked in."""
    if (threading.current_thread() is not threading.main_thread() or _ARMED[0] is not None
            or not hasattr(signal, "pthread_kill")):
        yield  # no signal can reach another thread; a nested block keeps the outer one's
        return
    armed = _Armed(case)
    _ARMED[0] = armed
    try:
        res = getattr(case, "_zpt", None)
        if res is not None:
            deaths_changed(res)
        yield
    finally:
        _ARMED[0] = None
        thread = _THREAD.current()
        if thread is not None:
            thread.disarm(armed)
        armed.active = False
        if armed.installed:
            _flush_pending_signals()
            previous = armed.previous_handler
            signal.signal(armed.signum, signal.SIG_DFL if previous is None else previous)


def deaths_changed(res: Any) -> None:
    """The processes *res* watches changed (``Resources.refresh``): watch those now."""
    armed = _ARMED[0]
    if armed is None or not armed.active or getattr(res, "owner", None) is not armed.case:
        return  # (a class's resources: the test's own include the processes it shares)
    watched: List[Any] = list(res.watched())
    procs = [proc for proc in watched if proc.watched and proc.fd is not None]
    if not procs and not armed.procs:
        return  # nothing to watch, nothing watched: no thread, no handler
    if not _activate(armed):
        return
    thread = _THREAD.get()
    with thread.lock:
        thread.armed = armed
    thread.set_procs(armed, procs)


def death_watch_fds() -> Set[int]:
    """The descriptors the death watch holds (a leak check must skip them)."""
    thread = _THREAD.current()
    return thread.fds() if thread is not None else set()
