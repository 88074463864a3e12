"""Seeded stress: CPU burners and small delays before the library's own operations.

``--stress`` (``ZMQPROCESSTEST_STRESS=1``) perturbs a test's timing, reproducibly from
the run's seed:

* CPU contention: one burner process per usable core, each busy and idle in turns whose
  lengths come from the seed. They are started by this module, registered with the
  guardian (killed with their group if the runner dies), stop by themselves when their
  parent goes away, and are stopped at exit (:func:`stop_burners`).
* A delay before each send, receive, connect of a test socket and each process start
  (:data:`zmqprocesstest._perturb.hook`): none half of the time, else up to
  :data:`MAX_DELAY` seconds, small ones more likely.
* Jitter on fault links: each forwarded message is held up to :data:`MAX_JITTER` more.

Each test (and each repeat of it) draws from its own random stream, made from the seed,
the test's id and its repeat number, so the same seed gives the same test the same
delays whatever ran before it. Link jitter draws from a second stream (a link's thread
draws as messages come). What is not reproduced: how the operating system schedules the
processes, threads and burners, so a seed makes a failure likely again, not certain.
"""
from __future__ import annotations

import atexit
import os
import random
import signal
import subprocess
import sys
import time
from typing import List, Optional

from .. import _perturb
from ..processes import forget_group, watch_group

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


def _delay(operation: str) -> None:
    r = _rng.random()
    if r < 0.5:
        return
    time.sleep(MAX_DELAY * ((r - 0.5) * 2) ** 2)


def _jitter() -> float:
    return MAX_JITTER * _link_rng.random()


def activate(seed: int, burn: bool = True) -> None:
    """Turn stress on for this process, from *seed*; start the burners unless told not to
    (or unless they run already for this run)."""
    global _seed
    _seed = seed
    begin("", 0)
    _perturb.hook, _perturb.jitter = _delay, _jitter
    if burn and not os.environ.get(_BURNERS_ENV):
        _start_burners(seed)


def deactivate() -> None:
    """Turn the delays off and stop the burners."""
    _perturb.hook = _perturb.jitter = None
    stop_burners()


def begin(test_id: str, repeat: int) -> None:
    """Start the random streams of one test (its id without a repeat suffix, and its repeat)."""
    _rng.seed(f"{_seed}/{test_id}/{repeat}")
    _link_rng.seed(f"{_seed}/{test_id}/{repeat}/link")


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
