"""Seeded faults of one direction of a fault link: loss, duplicates, jitter, a rate limit, a cut.

A :class:`Chance` decides, message by message, whether the next whole ZeroMQ message in
its direction is lost, duplicated or forwarded; a :class:`Pace` gives each chunk the time
it is due (delay, jitter, rate limit). Both draw from their own :class:`random.Random`,
seeded, so the same seed and the same traffic give the same faults: a failure found
with one seed is replayed with it. They live on the direction's counters
(:class:`~zmqprocesstest.faults._zmtp.Tally`) and are used on the proxy's thread only.

:func:`new_seed` is the seed a fault gets when the test gives none (shown in the link's
history, so the run can be repeated); :func:`jittered` is the small function-level API
for a jittered due time that other parts may call.
"""
from __future__ import annotations

import random
from typing import Any, List, Optional, Sequence

from .. import _perturb

__unittest = True
__tracebackhide__ = True

__all__ = ["DUPLICATE", "FORWARD", "LOSE", "MESSAGE_FAULTS", "Chance", "Pace", "apply_fault", "describe_faults",
           "jittered", "new_seed"]

FORWARD, LOSE, DUPLICATE = 0, 1, 2
#: The seeded faults that need to see whole messages (not on CURVE or ZMTP 2.0 links).
MESSAGE_FAULTS = frozenset({"loss", "duplicate", "close_after"})
#: How many message numbers a :class:`Chance` keeps of what it lost and duplicated.
KEPT = 10000


def new_seed() -> int:
    """A fresh seed for a fault the test gave none (the link's history shows it)."""
    return random.SystemRandom().randrange(1 << 32)


def jittered(now: float, delay: float, jitter: float, rng: random.Random, previous: float = 0.0) -> float:
    """When a chunk that arrives at *now* is due: after *delay* plus up to *jitter* seconds
    drawn from *rng*, and never before *previous* (order is kept)."""
    due = now + delay + (rng.random() * jitter if jitter else 0.0)
    return due if due > previous else previous


class Chance:
    """Whether each message of a direction is lost or duplicated, drawn from seeded generators.

    :param loss: probability that a message is lost.
    :param burst: probability that the message after a lost one is lost too (correlated
        bursts, a two-state Gilbert model); ``None``: the same as *loss* (independent).
    :param duplicate: probability that a message (not lost) is delivered twice.
    """

    __slots__ = ("loss", "burst", "duplicate", "loss_rng", "dup_rng", "last_lost", "count", "lost", "duplicated")

    def __init__(self) -> None:
        self.loss = 0.0
        self.burst: Optional[float] = None
        self.duplicate = 0.0
        self.loss_rng = random.Random(0)
        self.dup_rng = random.Random(0)
        self.last_lost = False
        #: Messages decided on so far; the numbers (from 0) of those lost and duplicated.
        self.count = 0
        self.lost: List[int] = []
        self.duplicated: List[int] = []

    def set_loss(self, p: float, burst: Optional[float], seed: int) -> None:
        self.loss, self.burst, self.loss_rng, self.last_lost = p, burst, random.Random(seed), False

    def set_duplicate(self, p: float, seed: int) -> None:
        self.duplicate, self.dup_rng = p, random.Random(seed)

    @property
    def active(self) -> bool:
        return bool(self.loss or self.duplicate)

    def decide(self) -> int:
        """What happens to the message that starts now: :data:`FORWARD`, :data:`LOSE` or :data:`DUPLICATE`."""
        number = self.count
        self.count += 1
        if self.loss:
            p = self.burst if self.last_lost and self.burst is not None else self.loss
            self.last_lost = self.loss_rng.random() < p
            if self.last_lost:
                if len(self.lost) < KEPT:
                    self.lost.append(number)
                return LOSE
        if self.duplicate and self.dup_rng.random() < self.duplicate:
            if len(self.duplicated) < KEPT:
                self.duplicated.append(number)
            return DUPLICATE
        return FORWARD


class Pace:
    """When the chunks of a direction are due: a delay, seeded jitter, a rate limit in bytes per second."""

    __slots__ = ("delay", "jitter", "rng", "rate", "free_at", "last_due")

    def __init__(self) -> None:
        self.delay = 0.0
        self.jitter = 0.0
        self.rng = random.Random(0)
        self.rate = 0.0  # bytes per second; 0: no limit
        self.free_at = 0.0  # when the rate limit lets the next byte go
        self.last_due = 0.0

    @property
    def active(self) -> bool:
        return bool(self.delay or self.jitter or self.rate or _perturb.jitter is not None)

    def due(self, now: float, size: int) -> float:
        """When a chunk of *size* bytes that arrived at *now* may be delivered (order kept);
        under ``--stress`` a little later still (:mod:`zmqprocesstest.runs._stress`)."""
        delay = self.delay if _perturb.jitter is None else self.delay + _perturb.jitter()
        due = jittered(now, delay, self.jitter, self.rng, self.last_due)
        if self.rate:
            start = max(now, self.free_at)
            self.free_at = start + size / self.rate
            due = max(due, self.free_at)
        self.last_due = due
        return due


def apply_fault(counters: Any, what: str, *args: Any) -> None:
    """On the proxy's thread: set the seeded fault *what* (``loss``, ``duplicate``, ``jitter``,
    ``rate``, ``close_after``) of one direction's *counters* (its tally, pace and flags)."""
    if what in ("loss", "duplicate"):
        if counters.chance is None:
            counters.chance = Chance()
        if what == "loss":
            counters.chance.set_loss(*args)
        else:
            counters.chance.set_duplicate(*args)
        if not counters.chance.active:
            counters.chance = None
    elif what == "jitter":
        counters.pace.jitter, counters.pace.rng = args[0], random.Random(args[1])
    elif what == "rate":
        counters.pace.rate, counters.pace.free_at = args[0], 0.0
    elif what == "close_after":
        counters.cut_after, counters.cut_seen = args[0], 0
    else:
        raise ValueError(f"expected a seeded fault ({', '.join(sorted(MESSAGE_FAULTS | {'jitter', 'rate'}))}), "
                         f"got {what!r}")
    counters.paced = counters.pace.active


def describe_faults(tallies: Sequence[Any], directions: Sequence[str]) -> str:
    """``', delay 0.01 s, to_client: loss 0.3 (burst 0.6), duplicate 0.1'``: the faults on now."""
    parts: List[str] = []
    delays = {t.pace.delay for t in tallies}
    if len(delays) == 1 and delays != {0.0}:
        parts.append(f"delay {delays.pop():g} s")
    for tally, direction in zip(tallies, directions):
        pace, chance, on = tally.pace, tally.chance, []
        if len(delays) > 1 and pace.delay:
            on.append(f"delay {pace.delay:g} s")
        if chance is not None and chance.loss:
            on.append(f"loss {chance.loss:g}" + (f" (burst {chance.burst:g})" if chance.burst is not None else ""))
        if chance is not None and chance.duplicate:
            on.append(f"duplicate {chance.duplicate:g}")
        if pace.jitter:
            on.append(f"jitter {pace.jitter:g} s")
        if pace.rate:
            on.append(f"rate {pace.rate:g} B/s")
        if tally.cut_after:
            on.append(f"close after {tally.cut_after} B")
        on.extend(rewrite.label for rewrite in tally.rewrites.values())
        if on:
            parts.append(f"{direction}: " + ", ".join(on))
    return "".join(", " + part for part in parts)
