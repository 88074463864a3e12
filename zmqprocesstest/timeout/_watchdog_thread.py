"""The hard timeout's watchdog thread: the fallback signal, the backstop, the last resort.

One daemon thread per process (started on first need and kept) watches every block of
:func:`~zmqprocesstest.timeout._watchdog.hard_timeout` that runs in the main thread, without
relying on anything the test can reach:

* at the deadline, a block armed with the fallback mechanism gets its real-time signal;
* every :data:`GRACE` seconds past the deadline, a block that has not ended gets a
  *kick*: a second spare real-time signal (the *backstop*, ``SIGRTMAX-1`` or the next
  free one below it) whose handler stays installed. The kick raises the
  :class:`TestTimeout` that never came (the test cancelled the alarm or the itimer, or
  replaced the SIGALRM handler), or, if the test caught it and went on, a
  :class:`TimeoutIgnored`, which ``except Exception`` does not catch;
* :func:`last_resort_grace` seconds past the deadline, a block that still runs (it
  catches ``BaseException``, ignores or blocks the signals) ends the run: the thread
  writes the test's name and every thread's stack to the runner's stderr and calls
  ``os._exit(1)``; the guardian then stops the processes under test.

The thread wakes only when a deadline it knows of passes (not once per block): a block
that ends in time costs a lock and a list append and remove.
"""
import faulthandler
import math
import os
import signal
import _signal  # type: ignore[import-not-found]  # the C module behind signal
import threading
import time
from typing import Any, List, Optional

from .._compat import PerProcess
from .._config import LAST_RESORT_ENV

__unittest = True

#: Real-time signals below ``SIGRTMIN + _FIRST_SPARE_RT`` are left to applications.
_FIRST_SPARE_RT = 2

__all__ = ["GRACE", "MAIN_BLOCKS", "TimeoutIgnored", "WatchdogThread", "armed_on_watchdog", "ensure_backstop",
           "last_resort_grace", "last_words", "spare_rt_signal", "watchdog"]

#: Seconds between the deadline and the first kick, and between two kicks.
GRACE = 0.5
_DEFAULT_LAST_RESORT = 10.0
#: The main thread's armed blocks, outermost first (the backstop's handler looks here).
MAIN_BLOCKS: List[Any] = []
os.register_at_fork(after_in_child=MAIN_BLOCKS.clear)  # a forked child is in none of them


class TimeoutIgnored(BaseException):
    """A test went on after its :class:`TestTimeout` (caught by ``except Exception``).

    A :class:`BaseException`, so a retry loop's ``except Exception`` lets it through; the
    ``hard_timeout`` block it leaves turns it back into a :class:`TestTimeout`, so the
    runner reports an ordinary failure of the test.
    """

    def __init__(self, message: str, block: Any) -> None:
        super().__init__(message)
        self.block = block


def last_resort_grace() -> float:
    """Seconds past its deadline after which a block that still runs ends the run
    (:data:`~zmqprocesstest._config.LAST_RESORT_ENV`, default 10; at least two kicks).
    Read once per process, when the watchdog thread starts."""
    raw = os.environ.get(LAST_RESORT_ENV, "")
    try:
        value = float(raw) if raw else _DEFAULT_LAST_RESORT
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{LAST_RESORT_ENV} must be a positive number of seconds, got {raw!r}")
    return max(value, 2 * GRACE)


def _saved_stderr() -> Optional[int]:
    """A copy of fd 2 as it is at import, before a runner captures it (pytest replaces
    fd 2 during each test): the last resort's message must reach the terminal."""
    try:
        return os.dup(2)
    except OSError:
        return None


_STDERR = _saved_stderr()
_BACKSTOP: List[Optional[int]] = [None]


def _on_backstop(signum: int, frame: Any) -> None:
    """The backstop signal's handler: kick the innermost kicked block."""
    __tracebackhide__ = True  # read by pytest: hide this frame
    for index in range(len(MAIN_BLOCKS) - 1, -1, -1):
        block = MAIN_BLOCKS[index]
        if block._kicked:
            block._kicked = False
            block._on_kick(MAIN_BLOCKS[index + 1:])
            return


def ensure_backstop() -> None:
    """Install the backstop signal's handler (main thread), unless it is in place."""
    sig = _BACKSTOP[0]
    # The C function: signal.getsignal tries an enum conversion of the handler first
    # (a ValueError raised and caught on Python 3.11, before every block).
    if sig is not None and _signal.getsignal(sig) is _on_backstop:
        return
    candidate = spare_rt_signal(from_top=True)  # the fallback takes them from below
    if candidate is not None:
        signal.signal(candidate, _on_backstop)
        _BACKSTOP[0] = candidate


def spare_rt_signal(from_top: bool = False) -> Optional[int]:
    """A real-time signal nobody uses (default disposition, not blocked), or ``None``.

    ``SIGRTMIN`` and ``SIGRTMIN+1`` are left to applications, which often use them, and
    ``SIGRTMAX`` too (valgrind takes it). The hard timeout's fallback takes the lowest
    spare one, the backstop the highest (*from_top*), so the two never meet.
    """
    low, high = getattr(signal, "SIGRTMIN", None), getattr(signal, "SIGRTMAX", None)
    if low is None or high is None:
        return None
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    candidates = range(high - 1, low + _FIRST_SPARE_RT - 1, -1) if from_top else range(low + _FIRST_SPARE_RT, high)
    for sig in candidates:
        if sig not in blocked and signal.getsignal(sig) == signal.SIG_DFL:
            return sig
    return None


def _last_resort(block: Any, grace: float) -> None:
    text = (f"\nzmqprocesstest: {block.describe} ran longer than run_timeout ({block.seconds:g} s) and still ran "
            f"{grace:g} s later (it caught the hard timeout's exceptions, or ignored or blocked its signals): "
            f"ending the run with os._exit(1) (last resort, {LAST_RESORT_ENV}={grace:g}); the guardian stops "
            "the processes under test.\nWhere every thread was:\n").encode()
    last_words(text)
    os._exit(1)


def last_words(text: bytes, stacks: bool = True) -> None:
    """Write *text* and (with *stacks*) every thread's stack to the runner's stderr (the
    terminal's, if a runner captures fd 2 now), just before the process ends itself."""
    targets = [2]
    try:
        if _STDERR is not None and not os.path.sameopenfile(_STDERR, 2):
            targets.insert(0, _STDERR)
    except OSError:
        targets = [fd for fd in (_STDERR, 2) if fd is not None]
    for fd in targets:
        try:
            os.write(fd, text)
            if stacks:
                faulthandler.dump_traceback(fd, all_threads=True)
        except (OSError, ValueError):
            pass


class WatchdogThread:
    """The clock of every main-thread block: one daemon thread per process, not one per
    block (starting a thread costs more than a whole shared-process test)."""

    def __init__(self) -> None:
        self.last_resort = last_resort_grace()
        self.cond = threading.Condition(threading.Lock())
        self.armed: List[Any] = []
        self.wakes_at = math.inf  # when the thread will look again by itself
        threading.Thread(target=self._run, name="zmqprocesstest hard_timeout watchdog", daemon=True).start()

    def arm(self, block: Any, at: float) -> None:
        """Watch *block* from *at* on (its deadline, or the first kick)."""
        with self.cond:
            block._next_at = at
            self.armed.append(block)
            if at < self.wakes_at:
                self.cond.notify()  # (a later one waits for the look it has coming)

    def silence(self, block: Any) -> None:
        """No fallback signal for *block* from now on (its handler is being restored)."""
        with self.cond:  # the signal is sent under this lock: none can come after this
            block._signal_armed = False

    def disarm(self, block: Any) -> None:
        """The block has ended: no more kicks."""
        with self.cond:
            block._signal_armed = False
            block._kicked = False
            if block in self.armed:
                self.armed.remove(block)

    def _act(self, block: Any, now: float) -> None:
        deadline = block._deadline
        if block._stage == 0:  # the fallback mechanism's own signal
            block._stage = 1
            block._next_at = deadline + GRACE
            if block._signal_armed:
                block._signal_armed = False
                signal.pthread_kill(block._target, block._signum)
            return
        grace = self.last_resort
        if now >= deadline + grace:
            _last_resort(block, grace)
        sig = _BACKSTOP[0]
        if sig is not None and signal.getsignal(sig) is _on_backstop:
            block._kicked = True
            signal.pthread_kill(block._target, sig)
        block._stage += 1
        block._next_at = min(deadline + GRACE * block._stage, deadline + grace)

    def _run(self) -> None:
        with self.cond:
            while True:
                now = time.monotonic()
                for block in [b for b in self.armed if b._next_at <= now]:
                    self._act(block, now)
                self.wakes_at = min((b._next_at for b in self.armed), default=math.inf)
                self.cond.wait(self.wakes_at - now if self.armed else None)


_WATCHDOG: PerProcess[WatchdogThread] = PerProcess(WatchdogThread)


def watchdog() -> WatchdogThread:
    """This process's watchdog thread, started now if there is none yet."""
    return _WATCHDOG.get()


def armed_on_watchdog() -> List[Any]:
    """The blocks the watchdog thread will still signal (for tests: none after a block ends)."""
    current = _WATCHDOG.current()
    if current is None:
        return []
    with current.cond:
        return list(current.armed)
