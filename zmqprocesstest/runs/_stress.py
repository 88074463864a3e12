"""Seeded stress: CPU burners and small delays before the library's own operations.

``--stress`` (``ZMQPROCESSTEST_STRESS=1``) perturbs a test's timing, reproducibly from
the run's seed:

* CPU contention: one burner process per usable core, each busy and idle in turns whose
  lengths come from the seed. They are started by this module, registered with the
  guardian (killed with their group if the runner dies), stop by themselves when their
  parent goes away, and are stopped at exit (:func:`stop_burners`).
* A delay before each send, receive and connect of a test socket
  (:data:`zmqprocesstest._perturb.hook`): none half of the time, else up to
  :data:`MAX_DELAY` seconds, small ones more likely.
* Jitter on fault links: each forwarded message is held up to :data:`MAX_JITTER` more.
* Starts of the processes under test (:data:`zmqprocesstest._perturb.hold`): a process
  is started (forked and covered by the guardian) but held before its own code runs,
  until the test's next event or socket operation (at most
  :data:`~zmqprocesstest._config.STRESS_HOLD_BOUND`). Then the processes held together
  go in an order made from the seed, :data:`~zmqprocesstest._config.STRESS_START_GAP`
  apart, each after a delay of its own (none half of the time, else up to
  :data:`~zmqprocesstest._config.STRESS_MAX_START_DELAY`).
* Pauses of the processes under test (:data:`zmqprocesstest._perturb.started`): every
  up to :data:`~zmqprocesstest._config.STRESS_PAUSE_GAP` seconds, half of the time, one
  running process's group is stopped (SIGSTOP) for up to
  :data:`~zmqprocesstest._config.STRESS_MAX_PAUSE` and resumed (SIGCONT). A pause is
  ended by the clock thread, at the latest when its owner releases the process (before
  it is stopped), at exit, and by the guardian's SIGKILL if the runner dies; it never
  resumes a process the test froze (:data:`zmqprocesstest._perturb.signals`).

Each perturbation of a process, and each delay of a test socket's operation, is written
into the test's timeline (kind ``stress``), so its report shows what was applied.

Each test (and each repeat of it) draws from its own random streams, made from the seed,
the test's id and its repeat number, so the same seed gives the same test the same
delays whatever ran before it. Link jitter draws from a second stream (a link's thread
draws as messages come), starts and pauses from streams of their own. What is not
reproduced: how the operating system schedules the processes, threads and burners (and
so when a pause falls in a process's work), so a seed makes a failure likely again, not
certain.
"""
from __future__ import annotations

import atexit
import functools
import heapq
import itertools
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .. import _perturb
from .._config import (STRESS_HOLD_BOUND, STRESS_MAX_PAUSE, STRESS_MAX_START_DELAY, STRESS_PAUSE_GAP,
                       STRESS_START_GAP)
from ..processes import forget_group, watch_group
from ..report import timeline as _timeline

__all__ = ["MAX_DELAY", "MAX_JITTER", "activate", "begin", "burner_pids", "deactivate", "stop_burners"]

#: Longest delay before one operation, in seconds.
MAX_DELAY = 0.025
#: Longest extra hold of one message on a fault link, in seconds.
MAX_JITTER = 0.005
#: Environment marker: burners run already for this run (set for the runner's children).
_BURNERS_ENV = "ZMQPROCESSTEST_STRESS_BURNERS"

# Busy for 5-50 ms, idle for 0-20 ms, in turns, until the parent is gone.
_BURNER = """
import os, random, sys, time
rng, parent = random.Random(sys.argv[1]), os.getppid()
while os.getppid() == parent:
    end = time.monotonic() + rng.uniform(0.005, 0.05)
    while time.monotonic() < end:
        pass
    time.sleep(rng.uniform(0.0, 0.02))
"""

_seed: Optional[int] = None
_rng = random.Random(0)
_link_rng = random.Random(0)
_burners: List[subprocess.Popen] = []
_owner = 0


def _draw(rng: random.Random, longest: float) -> float:
    """None half of the time, else up to *longest*, small ones more likely."""
    r = rng.random()
    return 0.0 if r < 0.5 else longest * ((r - 0.5) * 2) ** 2


def _delay(operation: str, source: str = "") -> None:
    if operation == "start":
        return  # a start's delay is the process's own (_hold); processes started together stay held
    _let_go("the test's next " + ("event" if operation == "event" else "socket operation"))
    if operation == "event":
        return
    seconds = _draw(_rng, MAX_DELAY)
    if seconds:
        if source:
            _timeline.record("stress", source, f"{operation} delayed {seconds * 1000:.2f} ms")
        time.sleep(seconds)


def _jitter() -> float:
    return MAX_JITTER * _link_rng.random()


# -- the processes under test: held starts and pauses ------------------------------------------
class _Clock:
    """One thread that runs what is due: held processes let go, pauses begun and ended."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.due: List[Tuple[float, int, Callable[[], None]]] = []
        self.count = itertools.count()
        self.thread: Optional[threading.Thread] = None

    def at(self, delay: float, action: Callable[[], None]) -> None:
        with self.cond:
            heapq.heappush(self.due, (time.monotonic() + delay, next(self.count), action))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="zmqprocesstest-stress", daemon=True)
                self.thread.start()
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                if not self.due:
                    self.thread = None
                    return
                when = self.due[0][0]
                wait = when - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                action = heapq.heappop(self.due)[2]
            action()


_clock = _Clock()
_start_rng = random.Random(0)
_pause_rng = random.Random(0)
_lock = threading.RLock()
_held: List[Tuple[str, Callable[[], None]]] = []  # held until the next event, in the order started
_unsaid: List[Callable[[], None]] = []  # every word not given yet
_running: List[Any] = []  # the processes that may be paused
_paused: Dict[int, Any] = {}  # id -> process, paused now
_pausing = [False]  # the pause chances are on the clock
_last_hold = [0.0]  # when the last start was held


def _hold(name: str, give: Callable[[], None]) -> None:
    with _lock:
        _held.append((name, give))
        _unsaid.append(give)
        _last_hold[0] = time.monotonic()
    _clock.at(STRESS_HOLD_BOUND, _bound)


def _bound() -> None:
    """No event for the bound since the last start held: let the held processes go."""
    with _lock:
        wait = _last_hold[0] + STRESS_HOLD_BOUND - time.monotonic()
    if wait > 0:
        _clock.at(wait, _bound)  # another start since: processes started together stay together
    else:
        _let_go(f"{STRESS_HOLD_BOUND * 1000:.0f} ms without an event")


def _let_go(why: str) -> None:
    """Let the held processes go, in an order made from the seed, each after its delay."""
    with _lock:
        if not _held:
            return
        held = list(_held)
        _held.clear()
        order = list(range(len(held)))
        _start_rng.shuffle(order)
        plan = [(held[i][0], held[i][1], k * STRESS_START_GAP + _draw(_start_rng, STRESS_MAX_START_DELAY))
                for k, i in enumerate(order)]
    for k, (name, give, after) in enumerate(plan):
        place = f", {_ordinal(k + 1)} of {len(plan)} started together" if len(plan) > 1 else ""
        _timeline.record("stress", name, f"start held until {why}{place}; runs its code "
                         f"{after * 1000:.1f} ms later")
        if after:
            _clock.at(after, functools.partial(_say, give))
        else:
            _say(give)


def _ordinal(n: int) -> str:
    return f"{n}{'st' if n == 1 else 'nd' if n == 2 else 'rd' if n == 3 else 'th'}"


def _say(give: Callable[[], None]) -> None:
    with _lock:
        if give in _unsaid:
            _unsaid.remove(give)
    give()


def _started(proc: Any) -> None:
    with _lock:
        _running.append(proc)
        if _pausing[0]:
            return
        _pausing[0] = True
    _clock.at(_pause_rng.uniform(0.0, STRESS_PAUSE_GAP), _pause_chance)


def _alive(proc: Any) -> bool:
    fd = getattr(proc, "pidfd", None)
    if fd is None or proc.closed:
        return False
    try:
        return not select.select([fd], [], [], 0)[0]
    except (OSError, ValueError):
        return False


def _pause_chance() -> None:
    """Half of the time, pause one running process under test; then the next chance."""
    with _lock:
        _running[:] = [proc for proc in _running if _alive(proc)]
        if not _running:
            _pausing[0] = False
            return
        pick = _pause_rng.choice(_running)
        seconds = _draw(_pause_rng, STRESS_MAX_PAUSE)
        gap = _pause_rng.uniform(0.0, STRESS_PAUSE_GAP)
        if seconds and id(pick) not in _paused and pick.pgid is not None:
            with _perturb.signals:
                if not pick.frozen and _signal_group(pick, signal.SIGSTOP):
                    _paused[id(pick)] = pick
                    pick.stress_paused = True
                    _timeline.record("stress", pick.name, f"paused {seconds * 1000:.1f} ms (SIGSTOP, then SIGCONT, "
                                     "of its group)")
                    _clock.at(seconds, lambda: _resume(pick))
    _clock.at(seconds + gap, _pause_chance)


def _signal_group(proc: Any, sig: int) -> bool:
    try:
        os.killpg(proc.pgid, sig)
    except OSError:
        return False  # gone already
    return True


def _resume(proc: Any) -> None:
    with _lock:
        if _paused.pop(id(proc), None) is None:
            return
        proc.stress_paused = False
        with _perturb.signals:
            if not proc.frozen:  # frozen by the test meanwhile: it stays frozen
                _signal_group(proc, signal.SIGCONT)


def _say_all() -> None:
    """Every held start goes now (its order and delay given up)."""
    with _lock:
        _held.clear()
        unsaid = list(_unsaid)
        _unsaid.clear()
    for give in unsaid:
        give()


def _ended(procs: Sequence[Any]) -> None:
    """Their owner releases them: held starts go now, their pauses end, none begins."""
    with _lock:
        leaving = {id(proc) for proc in procs}
        _running[:] = [proc for proc in _running if id(proc) not in leaving]
        ending = [proc for key, proc in list(_paused.items()) if key in leaving]
    _say_all()
    for proc in ending:
        _resume(proc)


def _end_all() -> None:
    """No start held, no process paused (stress turned off, or exit)."""
    with _lock:
        procs = list(_running) + list(_paused.values())
    _ended(procs)


def activate(seed: int, burn: bool = True) -> None:
    """Turn stress on for this process, from *seed*; start the burners unless told not to
    (or unless they run already for this run)."""
    global _seed
    _seed = seed
    begin("", 0)
    _perturb.hook, _perturb.jitter = _delay, _jitter
    _perturb.hold, _perturb.started, _perturb.ended, _perturb.let_go = _hold, _started, _ended, _say_all
    if burn and not os.environ.get(_BURNERS_ENV):
        _start_burners(seed)


def deactivate() -> None:
    """Turn the delays off (the held starts go, the pauses end) and stop the burners."""
    _perturb.hook = _perturb.jitter = _perturb.hold = _perturb.started = _perturb.ended = _perturb.let_go = None
    _end_all()
    stop_burners()


def begin(test_id: str, repeat: int) -> None:
    """Start the random streams of one test (its id without a repeat suffix, and its repeat)."""
    _rng.seed(f"{_seed}/{test_id}/{repeat}")
    _link_rng.seed(f"{_seed}/{test_id}/{repeat}/link")
    with _lock:
        _start_rng.seed(f"{_seed}/{test_id}/{repeat}/start")
        _pause_rng.seed(f"{_seed}/{test_id}/{repeat}/pause")


def _start_burners(seed: int) -> None:
    global _owner
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    _owner = os.getpid()
    for index in range(cores):
        proc = subprocess.Popen([sys.executable, "-c", _BURNER, f"{seed}/burner/{index}"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        _burners.append(proc)
        try:
            watch_group(proc.pid)
        except BaseException:
            stop_burners()
            raise
    os.environ[_BURNERS_ENV] = str(os.getpid())


def burner_pids() -> List[int]:
    """The process ids of the burners this process runs."""
    return [proc.pid for proc in _burners]


def stop_burners() -> None:
    """Kill the burners (with their groups), reap them and unregister them."""
    if _owner != os.getpid():
        _burners.clear()  # a forked child: they are its parent's
        return
    while _burners:
        proc = _burners.pop()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait(5.0)  # SIGKILL: at once
        forget_group(proc.pid)
    if os.environ.get(_BURNERS_ENV) == str(os.getpid()):
        del os.environ[_BURNERS_ENV]


atexit.register(stop_burners)
atexit.register(_end_all)
