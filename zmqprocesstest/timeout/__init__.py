"""The timeout wing: the hard per-test timeout that nobody switches off.

* ``_watchdog``: :func:`hard_timeout`, one per phase of a test, raising
  :class:`TestTimeout` at the line that blocks (SIGALRM, and a backstop real-time
  signal where a test switched SIGALRM off);
* ``_watchdog_thread``: the kept watchdog thread: the fallback clock outside the main
  thread, the backstop and the last resort that ends a process nothing else can end;
* ``_deaths``: a watched process's death interrupts what the test's thread is blocked in
  (:func:`death_interrupts`), by the same kind of signal;
* ``_threads``: a non-daemon thread a test leaves running fails it (:class:`ThreadWatch`),
  and the interpreter's exit is bounded by the last resort (:func:`bound_exit`).
"""
from ._deaths import death_interrupts, death_watch_fds, deaths_changed, quiet
from ._threads import ThreadWatch, bound_exit
from ._watchdog import HardTimeout, TestTimeout, hard_timeout
from ._watchdog_thread import TimeoutIgnored

__all__ = ["HardTimeout", "TestTimeout", "ThreadWatch", "TimeoutIgnored", "bound_exit", "death_interrupts",
           "death_watch_fds", "deaths_changed", "hard_timeout", "quiet"]
