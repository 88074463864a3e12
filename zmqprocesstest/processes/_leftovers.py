"""Processes under test left running at exit: killed, and said so.

Every :class:`~zmqprocesstest.ManagedProcess` is in :data:`LIVE` from its start until it
is closed. At the runner's exit whatever is still there is killed with SIGKILL, reaped,
and named on stderr: by ``atexit`` in an ordinary runner, and by a multiprocessing
finalizer in a runner that is itself a multiprocessing child (a nose2 mp or
unittest-parallel worker). Such a runner ends through multiprocessing, which joins
every child without a timeout and never runs ``atexit`` handlers, so a process left
running would hang it for good; a finalizer of priority > 0 runs before that join.
"""
from __future__ import annotations

import atexit
import multiprocessing.util
import os
import sys
import weakref
from typing import Any

__all__ = ["LIVE"]


class _Live(weakref.WeakSet):
    """The live managed processes of this process; the first one added hooks the exit."""

    def add(self, item: Any) -> None:
        if _HOOKED[0] != os.getpid():  # per process: a fork clears multiprocessing's finalizers
            _HOOKED[0] = os.getpid()
            multiprocessing.util.Finalize(None, _kill_leftovers, exitpriority=100)
        super().add(item)


_HOOKED = [0]  # the process that registered the finalizer
#: Every live managed process, for the last-resort clean-up at exit.
LIVE: _Live = _Live()


@atexit.register
def _kill_leftovers() -> None:
    leftovers = list(LIVE)
    for proc in leftovers:
        proc.kill_now()
    if leftovers:
        print(f"zmqprocesstest: killed {len(leftovers)} process(es) left running at exit: "
              + ", ".join(p.name for p in leftovers), file=sys.stderr)
