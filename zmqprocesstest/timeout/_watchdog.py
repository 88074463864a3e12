"""A hard per-test timeout that interrupts code blocked in C.

``with hard_timeout(seconds, describe):`` bounds the block: when the time runs out,
:class:`TestTimeout` is raised in the main thread from a signal handler, so it also
stops a raw ``socket.recv()`` without a timeout, ``time.sleep(100)`` or a ``select()``
on nothing (the signal interrupts the system call, and Python, pyzmq and the standard
library check for signal handlers when that happens). Its traceback ends at the line
that was running, and its message shows where every thread was.

Mechanisms, in order of preference:

* ``SIGALRM`` and ``setitimer(ITIMER_REAL)``: no thread at all. Used when SIGALRM has
  the default (or ignore) disposition and no itimer is armed, or when they belong to an
  enclosing ``hard_timeout`` (nesting: the inner one arms the earlier of the two
  deadlines and gives the outer one back its handler and its remaining time).
* When the runner owns SIGALRM (a Python handler of its own, for instance
  pytest-timeout's, or an armed itimer), it is left alone: a daemon watchdog thread
  (one per process, started on first need and kept) sends a spare real-time signal
  (``SIGRTMIN+2`` or the next free one) to the main thread with ``pthread_kill``; the
  message says so.
* Outside the main thread no signal can interrupt the test: the block runs unbounded,
  and the caller checks :meth:`HardTimeout.expired` between steps and calls
  :meth:`HardTimeout.check`, whose message says why the timeout came late.

The previous handlers and itimer are restored on the way out (also when the timeout
fired), and the timeout fires at most once, so cleanup code that runs after it is not
interrupted again. Every main-thread block is also watched by the watchdog thread's
backstop (:mod:`zmqprocesstest.timeout._watchdog_thread`): a test that cancels the alarm,
replaces the handler or swallows :class:`TestTimeout` is stopped all the same.
"""
import faulthandler
import math
import os
import re
import signal
import sys
import _signal  # type: ignore[import-not-found]  # the C module behind signal
import tempfile
import threading
import time
from types import FrameType, TracebackType
from typing import Any, Callable, List, Optional, Tuple, Type

from .._config import Timeout
from ..processes import HAS_SIGALRM
from ._watchdog_thread import (GRACE, MAIN_BLOCKS, TimeoutIgnored, ensure_backstop, spare_rt_signal,
                               watchdog as _watchdog)
from ._watchdog_thread import armed_on_watchdog  # noqa: F401 (for tests)

__unittest = True  # unittest leaves this module's frames out of its reports

__all__ = ["HardTimeout", "TestTimeout", "hard_timeout"]

# The C functions, without the enum conversions of the signal module (run twice a test).
_getsignal, _setsignal = _signal.getsignal, _signal.signal


def _no_itimer(*args: Any) -> Any:  # never called: without setitimer HAS_SIGALRM is false
    raise OSError("this platform has no setitimer")


_getitimer: Callable[..., Any] = getattr(_signal, "getitimer", _no_itimer)
_setitimer: Callable[..., Any] = getattr(_signal, "setitimer", _no_itimer)
# Where SIGALRM is missing (HAS_SIGALRM false) nothing can own it and it is never armed:
# the watchdog thread's real-time signal, or no interruption at all, is used instead.
_SIGALRM = int(getattr(signal, "SIGALRM", 0))
_ITIMER_REAL, _SIG_DFL = int(getattr(signal, "ITIMER_REAL", 0)), int(signal.SIG_DFL)
_THIS_FILE = os.path.splitext(os.path.abspath(__file__))[0]
_NEW, _ARMED, _FIRED, _DONE = "new", "armed", "fired", "done"


class TestTimeout(Timeout):
    """A test ran longer than its ``run_timeout``.

    Raised in the main thread from a signal handler, so it also stops code that blocks
    in C (a socket's ``recv()``, ``time.sleep()``, ``select()``). Its traceback ends at
    the line that was running, and its message shows where every thread was.
    """

    __test__ = False


def _flush_pending_signals() -> None:
    """Calling a Python function lets CPython run the Python handler of a signal that
    has already arrived (while our inert handler is still the installed one)."""


def _handler_name(handler: Any) -> str:
    if handler is None:
        return "a handler installed outside Python"
    module = getattr(handler, "__module__", None) or "?"
    name = getattr(handler, "__qualname__", None) or repr(handler)
    text = f"{module}.{name}"
    if module.startswith("pytest_timeout"):
        return f"pytest-timeout's handler {text}"
    return f"handler {text}"


def _owned_by_hard_timeout(handler: Any) -> bool:
    return isinstance(getattr(handler, "__self__", None), HardTimeout)


def _sigalrm_owner() -> Optional[str]:
    """Why SIGALRM cannot be used (someone else owns it), or None if it is ours to use."""
    if not HAS_SIGALRM:
        return "this platform has no SIGALRM"
    handler = _getsignal(_SIGALRM)
    delay, _ = _getitimer(_ITIMER_REAL)
    if _owned_by_hard_timeout(handler):
        return None  # an enclosing hard_timeout: nest
    if handler not in (signal.SIG_DFL, signal.SIG_IGN):
        return f"SIGALRM is owned by the runner ({_handler_name(handler)})"
    if delay > 0:
        return f"SIGALRM is owned by the runner (an itimer is already armed, {delay:g} s left)"
    return None


#: Modules whose trace function means a debugger is attached (pdb's is bdb's).
_DEBUGGERS = ("bdb", "pydevd", "_pydevd_bundle", "_pydevd_frame_eval", "debugpy", "pudb", "ipdb")


def _debugger() -> str:
    """The debugger attached (its trace function's module), or ``""``; coverage.py's
    tracer is not a debugger."""
    trace = sys.gettrace()
    if trace is None:
        return ""
    module = getattr(getattr(trace, "__func__", trace), "__module__", None) or type(trace).__module__ or ""
    return module if module.split(".")[0] in _DEBUGGERS else ""


def _signal_name(sig: int) -> str:
    low = getattr(signal, "SIGRTMIN", None)
    if sig == signal.SIGALRM:
        return "SIGALRM"
    if low is not None and sig >= low:
        return f"SIGRTMIN+{sig - low}"
    return f"signal {sig}"


def thread_stacks() -> str:
    """Where every thread is now, as faulthandler writes it, with thread names added."""
    try:
        fd = os.memfd_create("zmqprocesstest-stacks", getattr(os, "MFD_CLOEXEC", 0))
        spare = None
    except (AttributeError, OSError):
        spare = tempfile.TemporaryFile()
        fd = spare.fileno()
    try:
        faulthandler.dump_traceback(fd, all_threads=True)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if spare is None:
            os.close(fd)
        else:
            spare.close()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    lines: List[str] = []
    ours: List[str] = []  # the library's own threads: named on one line, not dumped
    skipping = False
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        if line.lstrip().startswith("File ") and _THIS_FILE in line:
            continue  # the signal handler itself: not where the test was
        match = re.match(r"^(Current thread|Thread) (0x[0-9a-fA-F]+)", line)
        if match:
            name = names.get(int(match.group(2), 16))
            skipping = match.group(1) == "Thread" and (name or "").startswith("zmqprocesstest")
            if skipping:
                ours.append(str(name))
                continue
            if name is not None:
                line = f"{line[:match.end()]} [{name}]{line[match.end():]}"
        elif skipping:
            continue
        lines.append(line)
    text = "\n".join(line for line in lines if line.strip() or not skipping).rstrip()
    if ours:
        text += "\n\n(and zmqprocesstest's own threads: " + ", ".join(sorted(ours)) + ")"
    return text


def _stacks() -> str:
    try:
        return thread_stacks()
    except Exception as exc:  # the timeout matters more than the stacks
        return f"(could not dump the threads' stacks: {exc!r})"


def _trim_our_frames(tb: Optional[TracebackType]) -> None:
    """Cut this module's frames (the signal handler) off the end of a traceback."""
    keep = None
    while tb is not None:
        if not os.path.splitext(os.path.abspath(tb.tb_frame.f_code.co_filename))[0] == _THIS_FILE:
            keep = tb
        tb = tb.tb_next
    if keep is not None and keep.tb_next is not None:
        keep.tb_next = None


class HardTimeout:
    """A hard timeout for a block of code; see :func:`hard_timeout`.

    Attributes: ``seconds``, ``describe``, ``mechanism`` (``"SIGALRM"``,
    ``"SIGRTMIN+k"`` or ``None`` when nothing can interrupt the block), ``note`` (why a
    fallback was used, or why the block cannot be interrupted) and ``fired``.
    """

    # Three blocks a test: fixed slots, no dict of its own to grow.
    __slots__ = ("seconds", "describe", "mechanism", "note", "fired", "_state", "_deadline", "_signum",
                 "_previous_handler", "_previous_timer", "_armed_at", "_for_previous", "_restored", "_target",
                 "_watched", "_signal_armed", "_stage", "_next_at", "_kicked", "__weakref__")

    def __init__(self, seconds: Optional[float], describe: str) -> None:
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
            raise TypeError(f"expected a positive number of seconds (or None for no limit), got {seconds!r}")
        if seconds is not None and not math.isinf(seconds) and not seconds > 0:
            raise ValueError(f"expected a positive number of seconds (or None for no limit), got {seconds!r}")
        self.seconds: Optional[float] = None if seconds is None or math.isinf(seconds) else float(seconds)
        self.describe = describe
        self.mechanism: Optional[str] = None
        self.note = ""
        self.fired = False
        self._state = _NEW
        self._deadline: Optional[float] = None
        self._signum: Optional[int] = None
        self._previous_handler: Any = None
        self._previous_timer: Tuple[float, float] = (0.0, 0.0)
        self._armed_at = 0.0
        self._for_previous = False  # the itimer is armed for the enclosing timeout's deadline
        self._restored = True
        self._target = 0  # the thread the watchdog thread signals
        self._watched = False  # watched by the watchdog thread (every main-thread block)
        self._signal_armed = False  # the watchdog thread sends the fallback signal at the deadline
        self._stage = 0  # 0: fallback signal due; k > 0: k-th kick of the backstop due
        self._next_at = math.inf
        self._kicked = False

    # -- state --------------------------------------------------------------------------
    def expired(self) -> bool:
        """True once the time has run out (whether or not the block was interrupted)."""
        return self.fired or (self._deadline is not None and time.monotonic() >= self._deadline)

    def remaining(self) -> float:
        """Seconds left (``math.inf`` without a limit, 0.0 once expired)."""
        if self._deadline is None:
            return math.inf
        return max(0.0, self._deadline - time.monotonic())

    def check(self, event: Any = None) -> None:
        """Raise :class:`TestTimeout` if the time has run out (before *event*, if given).

        The send-back loop calls it before each event: for a test outside the main
        thread, where the block cannot be interrupted, it is what ends the test."""
        __tracebackhide__ = True  # read by pytest: hide this frame
        deadline = self._deadline  # expired(), inline: this runs before every event
        if self.fired or (deadline is not None and time.monotonic() >= deadline):
            self.fired = True
            raise TestTimeout(self._message(thread_stacks(), "" if event is None else f"before event {event!r}"))

    def _message(self, stacks: str, where: str = "") -> str:
        text = f"{self.describe} ran longer than run_timeout ({self.seconds:g} s)"
        if where:
            text += f"; stopped it {where}."
            text += f" {self.note[0].upper()}{self.note[1:]}." if self.note else ""
        elif self.mechanism is None:
            text += f"; {self.note}." if self.note else "."
        else:
            text += "; stopped it where it was."
            text += f" {self.note}." if self.note else ""
        return f"{text}\nWhere every thread was:\n{stacks}"

    # -- arming and restoring ----------------------------------------------------------
    def __enter__(self) -> "HardTimeout":
        if self._state != _NEW:
            raise RuntimeError("a hard_timeout cannot be entered twice")
        debugger = _debugger()
        if self.seconds is None or debugger:
            # Stepping through a test in a debugger must not end it (as pytest-timeout does).
            self.note = f"a debugger is attached ({debugger}): the hard timeout is off" if debugger else ""
            self._state = _ARMED
            return self
        self._deadline = time.monotonic() + self.seconds
        if threading.current_thread() is not threading.main_thread():
            self.note = ("the hard timeout could not interrupt blocking code because the test "
                         "does not run in the main thread (only the main thread receives signals)")
            self._state = _ARMED
            return self
        watchdog = _watchdog()  # first: a bad ZMQPROCESSTEST_LAST_RESORT is an error before anything is armed
        owner = _sigalrm_owner()
        try:
            ensure_backstop()
            if owner is None:
                self._arm_sigalrm()
            else:
                sig = spare_rt_signal()
                if sig is None:
                    self.note = (f"{owner} and no real-time signal is free, so the hard timeout "
                                 "could not interrupt blocking code")
                else:
                    self.note = f"{owner}, used {_signal_name(sig)} instead"
                    self._arm_thread(sig)
        except ValueError as exc:  # signals not allowed here (a subinterpreter)
            self.note = f"the hard timeout could not interrupt blocking code ({exc})"
        # The backstop: kicks past the deadline, whatever the test did to the signal it uses.
        self._target = threading.main_thread().ident or 0
        self._watched = True
        self._stage = 0 if self._signal_armed else 1
        MAIN_BLOCKS.append(self)
        watchdog.arm(self, self._deadline if self._signal_armed else self._deadline + GRACE)
        return self

    def _arm_sigalrm(self) -> None:
        assert self.seconds is not None
        self._previous_timer = _getitimer(_ITIMER_REAL)
        previous_delay = self._previous_timer[0]
        delay = self.seconds
        if 0 < previous_delay < delay:
            delay, self._for_previous = previous_delay, True
        self._signum = _SIGALRM
        self._previous_handler = _getsignal(_SIGALRM)
        self.mechanism = "SIGALRM"
        self._armed_at = time.monotonic()
        self._state = _ARMED
        self._restored = False
        _setsignal(_SIGALRM, self._on_signal)
        _setitimer(_ITIMER_REAL, max(delay, 1e-6))  # the handler may run right after this

    def _arm_thread(self, sig: int) -> None:
        self._signum = sig
        self._previous_handler = signal.getsignal(sig)
        self.mechanism = _signal_name(sig)
        self._state = _ARMED
        self._restored = False
        signal.signal(sig, self._on_signal)
        self._signal_armed = True

    def _restore(self, rearm_previous: bool = True) -> None:
        """Disarm, then give the previous owner back its handler and remaining time."""
        if self._restored:
            return
        self._restored = True
        sig = self._signum
        assert sig is not None
        try:
            if sig == _SIGALRM:
                _setitimer(_ITIMER_REAL, 0)
            elif self._signal_armed:
                _watchdog().silence(self)  # after this no fallback signal can come from the watchdog thread
            _flush_pending_signals()
        finally:
            try:
                previous = self._previous_handler
                if previous is None or (isinstance(previous, int) and previous == _SIG_DFL):
                    previous = _signal.SIG_DFL  # the C function takes its own constants only
                elif isinstance(previous, int):
                    previous = _signal.SIG_IGN
                _setsignal(sig, previous)
            finally:
                delay, interval = self._previous_timer
                if sig == _SIGALRM and delay > 0 and rearm_previous:
                    left = delay - (time.monotonic() - self._armed_at)
                    # past its deadline already: let it fire now rather than never
                    signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), interval)

    def _on_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        __tracebackhide__ = True  # read by pytest: hide this frame
        if self._state != _ARMED:
            return  # late: the timeout fired already or the block has ended
        if self._for_previous and self._deadline is not None and time.monotonic() < self._deadline:
            # The enclosing timeout's deadline came first: hand the signal on to it.
            self._state = _DONE
            previous = self._previous_handler
            self._restore(rearm_previous=False)
            if callable(previous):
                previous(signum, frame)
            return
        self._fire()

    def _fire(self) -> None:
        __tracebackhide__ = True  # read by pytest: hide this frame
        self._state = _FIRED
        self.fired = True
        self._restore()
        raise TestTimeout(self._message(_stacks()))

    def _on_kick(self, inner: List["HardTimeout"]) -> None:
        """The watchdog thread's backstop: the block still runs past its deadline + GRACE."""
        __tracebackhide__ = True  # read by pytest: hide this frame
        if self._state == _DONE:
            return
        for block in reversed(inner):  # blocks inside this one end with it
            block._state = _DONE
            block._restore(rearm_previous=False)
        if self._state == _ARMED:  # its own signal never came
            self.note = (f"{self.note}. " if self.note else "") + (
                f"Its signal did not come (the alarm or itimer cancelled, or the handler replaced?): "
                f"the watchdog thread stopped it {GRACE:g} s late")
            self._fire()
        if isinstance(sys.exc_info()[1], (TestTimeout, TimeoutIgnored)):
            return  # a finally or except clause is cleaning up after the timeout: let it
        raise TimeoutIgnored(f"{self._message(_stacks())}\nThe test went on after this TestTimeout (caught by "
                             f"an 'except Exception'?): stopped it again {GRACE:g} s later.", self)

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self._state == _ARMED:
            self._state = _DONE
        if self._watched:
            self._watched = False
            _watchdog().disarm(self)
            if MAIN_BLOCKS and MAIN_BLOCKS[-1] is self:
                MAIN_BLOCKS.pop()
            elif self in MAIN_BLOCKS:
                MAIN_BLOCKS.remove(self)
        self._restore()
        if isinstance(exc, TestTimeout):
            _trim_our_frames(tb)
        elif isinstance(exc, TimeoutIgnored) and exc.block is self:
            # Reported as what it is, the test's timeout (a failure), not as an escape.
            _trim_our_frames(tb)
            raise TestTimeout(str(exc)).with_traceback(tb) from None


def hard_timeout(seconds: Optional[float], describe: str) -> HardTimeout:
    """Bound a block (a whole test) to *seconds*, even while it blocks in C.

    ``with hard_timeout(limit, self.id()):`` raises :class:`TestTimeout` in the main
    thread at the line that is running when the time runs out; the message names
    *describe* and shows every thread's stack. ``None`` (or ``math.inf``) means no
    limit. The returned :class:`HardTimeout` tells which mechanism was used; outside the
    main thread nothing can interrupt the block, so check :meth:`HardTimeout.expired`
    between steps and call :meth:`HardTimeout.check`.
    """
    return HardTimeout(seconds, describe)
