"""Threads a test leaves running, and an interpreter exit that cannot hang.

Python joins every non-daemon thread when the interpreter exits, without a bound and
without a word: a test that starts one and leaves it running passes, and then the runner
hangs at its exit forever. Two guards:

* :class:`ThreadWatch`, one per test of a :class:`~zmqprocesstest.ProcessTestCase`.
  While it watches (from ``setUp`` to the test's last cleanup), a thin wrapper on
  :meth:`threading.Thread.start` records where each thread was started: the first
  frame outside :mod:`threading`, so the test's own line, not the code the thread runs
  (a thread running ``socketserver``'s ``serve_forever`` would otherwise be named by
  ``socketserver.py``). The wrapper is put on the class when a watch begins and taken
  off when it ends (unless someone wrapped it meanwhile; it then records nothing). After
  the cleanups, a non-daemon thread that was not there before the test and still runs
  gets :data:`~zmqprocesstest._config.THREAD_END_GRACE` (scaled) to end, then fails the
  test, named with where it was started and what it runs. The library's own threads
  (the watchdog, the output drainer, fault links, the context's ``term``) are daemon
  threads, and any thread started from the package's own code is not the test's. A
  :class:`~concurrent.futures.ThreadPoolExecutor`'s workers, and a
  :class:`~concurrent.futures.ProcessPoolExecutor`'s manager thread, are not counted
  either: :mod:`concurrent.futures` wakes and joins them at exit itself (one stuck in a
  job is then caught by the exit's bound).
* :func:`bound_exit`, registered with :mod:`threading`'s exit hooks (which run before it
  joins the threads): when the interpreter exits while non-daemon threads still run, a
  daemon thread gives them the last resort's grace
  (:data:`~zmqprocesstest._config.LAST_RESORT_ENV`), then writes which threads still run
  and every thread's stack to the runner's stderr and ends the process with
  ``os._exit(1)``. Threads that end in time (a thread pool's idle workers) cost nothing
  and print nothing.
"""
from __future__ import annotations

import faulthandler
import functools
import os
import sys
import threading
import time
import weakref
from typing import Any, List, Optional, Set, Tuple

from .._config import LAST_RESORT_ENV, THREAD_END_GRACE, scaled
from ._watchdog_thread import _DEFAULT_LAST_RESORT, last_resort_grace, last_words

__unittest = True
__tracebackhide__ = True  # read by pytest: the failure ends at the test, not here

__all__ = ["ThreadWatch", "bound_exit", "describe_thread"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_THREADING_FILE = threading.__file__
#: Where each thread started during a watch was started: (file, line, function).
_STARTED: "weakref.WeakKeyDictionary[threading.Thread, Tuple[str, int, str]]" = weakref.WeakKeyDictionary()
#: The watch now recording (one test at a time runs in a process), and the
#: ``Thread.start`` the wrapper calls.
_WATCH: List[Optional["ThreadWatch"]] = [None]
_ORIGINAL_START: List[Any] = [None]


def _recording_start(self: threading.Thread) -> None:
    """:meth:`threading.Thread.start`, recording where it was called while a test runs."""
    if _WATCH[0] is not None:
        frame: Any = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename == _THREADING_FILE:
            frame = frame.f_back  # a Timer's or a subclass's way through threading
        if frame is not None:
            _STARTED[self] = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
    _ORIGINAL_START[0](self)


def _code_of(thread: threading.Thread) -> Optional[Tuple[str, int, str]]:
    """Where the code a thread runs is defined: its target, or its class's ``run``."""
    func = getattr(thread, "_target", None)
    if func is None and type(thread).run is not threading.Thread.run:
        func = type(thread).run
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    return code.co_filename, code.co_firstlineno, getattr(func, "__qualname__", code.co_name)


def _ours(thread: threading.Thread) -> bool:
    """Whether *thread* is the library's own (started from the package's code)."""
    where = _STARTED.get(thread) or _code_of(thread)
    return where is not None and where[0].startswith(_PACKAGE)


def describe_thread(thread: threading.Thread) -> str:
    """``'worker' (started at test_x.py:12 in test_y; runs serve at app.py:40)`` for messages."""
    parts = []
    started = _STARTED.get(thread)
    if started is not None:
        parts.append(f"started at {started[0]}:{started[1]} in {started[2]}")
    code = _code_of(thread)
    if code is not None:
        parts.append(f"runs {code[2]} at {code[0]}:{code[1]}")
    return f"{thread.name!r}" + (f" ({'; '.join(parts)})" if parts else "")


def _running() -> List[threading.Thread]:
    """The non-daemon threads that still run, the main thread aside."""
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


class ThreadWatch:
    """The threads one test starts: begun before its ``setUp``, checked after its last cleanup."""

    def __init__(self, test_id: str) -> None:
        self.test_id = test_id
        self.before: Set[threading.Thread] = set(threading.enumerate())
        if threading.Thread.start is not _recording_start:
            _ORIGINAL_START[0] = threading.Thread.start
            threading.Thread.start = functools.wraps(_ORIGINAL_START[0])(_recording_start)  # type: ignore[method-assign]
        _WATCH[0] = self

    def end(self) -> None:
        """Stop recording (idempotent); put ``Thread.start`` back if the wrapper is still on it."""
        if _WATCH[0] is self:
            _WATCH[0] = None
        if _WATCH[0] is None and getattr(threading.Thread.start, "__wrapped__", None) is _ORIGINAL_START[0] \
                and getattr(threading.Thread.start, "__code__", None) is _recording_start.__code__:
            threading.Thread.start = _ORIGINAL_START[0]  # type: ignore[method-assign,assignment]

    def left(self) -> List[threading.Thread]:
        """Non-daemon threads started during the test that still run (the library's aside,
        and a thread pool's workers or a process pool's manager thread: :mod:`concurrent.futures`
        ends them at exit itself)."""
        pools = set(getattr(sys.modules.get("concurrent.futures.thread"), "_threads_queues", {}))
        pools.update(getattr(sys.modules.get("concurrent.futures.process"), "_threads_wakeups", {}))
        return [t for t in _running() if t not in self.before and not _ours(t) and t not in pools]

    def check(self) -> None:
        """Fail if the test left a non-daemon thread running (after a bounded moment to end).

        :raises AssertionError: naming each such thread, where it was started and what it runs.
        """
        self.end()
        left = self.left()
        if not left:
            return
        grace = scaled(THREAD_END_GRACE)
        deadline = time.monotonic() + grace
        for thread in left:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [t for t in left if t.is_alive()]
        if left:
            names = "\n  ".join(describe_thread(t) for t in left)
            raise AssertionError(
                f"{self.test_id} left {len(left)} non-daemon thread(s) running, still alive {grace:g} s after its "
                f"cleanups:\n  {names}\nPython waits for every non-daemon thread when the interpreter exits, so "
                "the runner would hang there: stop and join the thread before the test ends (for instance "
                "self.addCleanup(thread.join, timeout) after telling it to stop), or start it with daemon=True.")


# -- the interpreter's exit ---------------------------------------------------------------
_EXIT_PID: List[int] = [-1]


def _exit_bound() -> None:
    """threading's exit hook: bound the wait for the non-daemon threads that still run."""
    if os.getpid() != _EXIT_PID[0]:
        return  # a forked process under test: its exit is its own
    alive = _running()
    if not alive:
        return
    try:
        grace = last_resort_grace()
    except ValueError:  # reported at the first hard timeout; the exit is still bounded
        grace = _DEFAULT_LAST_RESORT
    _flush()
    try:
        threading.Thread(target=_end_after, args=(alive, grace), name="zmqprocesstest exit bound",
                         daemon=True).start()
    except RuntimeError:  # no new thread at this stage of the exit: C's clock then, told now
        last_words(_message(alive, f"run now; if they still run {grace:g} s from now", grace).encode(),
                   stacks=False)
        faulthandler.dump_traceback_later(grace, exit=True)


def _message(threads: List[threading.Thread], when: str, grace: float) -> str:
    names = "\n  ".join(describe_thread(t) for t in threads)
    return (f"\nzmqprocesstest: the interpreter is exiting, and Python waits for every non-daemon thread; these "
            f"{when}:\n  {names}\nEnding the process with os._exit(1) (last resort, {LAST_RESORT_ENV}={grace:g}) "
            "instead of hanging. Stop and join such a thread before the test ends, or start it with "
            "daemon=True.\nWhere every thread was:\n")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _end_after(threads: List[threading.Thread], grace: float) -> None:
    deadline = time.monotonic() + grace
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    still = [t for t in threads if t.is_alive()]
    if still:
        _flush()
        last_words(_message(still, f"still ran {grace:g} s later", grace).encode())
        os._exit(1)


def bound_exit() -> None:
    """Bound this process's interpreter exit (idempotent; from the process that calls it only)."""
    if _EXIT_PID[0] == os.getpid():
        return
    register = getattr(threading, "_register_atexit", None)  # Python 3.9+
    if register is None:
        return
    try:
        register(_exit_bound)
    except RuntimeError:  # the interpreter is exiting already
        return
    _EXIT_PID[0] = os.getpid()
