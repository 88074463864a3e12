"""The seeded faults of a fault link, as methods of :class:`~zmqprocesstest.FaultLink` and as events.

:class:`SeededFaults` is a base of :class:`~zmqprocesstest.FaultLink`: loss with a
probability (optionally in correlated bursts), duplicates, jitter, a rate limit in bytes
per second and a cut after a number of bytes, each for one direction (``'to_server'``,
``'to_client'``) or both. Loss, duplicates and the cut act on whole ZeroMQ messages, never
on part of a frame. Each random fault draws from its own generator, seeded with *seed*
(or a fresh seed, returned and shown in the link's history), so a run can be replayed:
the same seed and the same traffic lose, duplicate and delay the same messages.
:class:`SeededFaultEvents` offers them as events (``yield ('loss', link, 0.3, 'to_client', 7)``).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from ._proxy import DIRECTIONS
from ._seeded import new_seed
from ..events import int_arg, seconds_arg
from ..loop import BadArgument, event

__unittest = True
__tracebackhide__ = True

__all__ = ["SeededFaultEvents", "SeededFaults", "direction_indexes"]

#: Where a fault applies: one direction or both.
BOTH = "both"


def direction_indexes(direction: Any) -> Tuple[int, ...]:
    """``(0,)``, ``(1,)`` or ``(0, 1)`` for ``'to_server'``, ``'to_client'`` or ``'both'`` (or ``None``)."""
    if direction is None or direction == BOTH:
        return (0, 1)
    if direction not in DIRECTIONS:
        raise BadArgument(f"expected direction to be 'to_server', 'to_client' or 'both', got {direction!r}")
    return (DIRECTIONS.index(direction),)


def _probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise BadArgument(f"expected {name} to be a probability from 0 to 1, got {value!r}")
    return float(value)


def _seed(seed: Any) -> int:
    int_arg("seed", seed, "an int")
    return new_seed() if seed is None else int(seed)


def _where(direction: Any) -> str:
    return "" if direction is None or direction == BOTH else f" {direction}"


class SeededFaults:
    """The seeded faults of a link (a base of :class:`~zmqprocesstest.FaultLink`)."""

    def _control(self, name: str, label: str, *args: Any) -> Any:
        raise NotImplementedError  # the link's: run on its thread, and kept in its history

    def loss(self, p: float, direction: str = BOTH, burst: Optional[float] = None,
             seed: Optional[int] = None) -> int:
        """Lose each whole message in *direction* with probability *p* (0: no loss); return the seed.

        With *burst*, the message after a lost one is lost with probability *burst*
        instead (correlated bursts: ``loss(0.05, burst=0.8)`` loses few messages, in
        runs). Heartbeats and other commands always go through. Counted in
        ``stats[direction].lost_messages`` (and ``dropped_messages``).

        :raises FaultLinkError: the link cannot see messages (CURVE, ZMTP 2.0).
        """
        p = _probability("p", p)
        if burst is not None:
            burst = _probability("burst", burst)
        seed = _seed(seed)
        label = f"loss {p:g}{_where(direction)}" + (f" burst {burst:g}" if burst is not None else "")
        self._control("seeded", f"{label} (seed {seed})", "loss", direction_indexes(direction), p, burst, seed)
        return seed

    def duplicate(self, p: float = 1.0, direction: str = BOTH, seed: Optional[int] = None) -> int:
        """Deliver each whole message in *direction* twice with probability *p* (0: never); return the seed.

        The copy follows the message at once. Counted in ``stats[direction].duplicated_messages``.

        :raises FaultLinkError: the link cannot see messages (CURVE, ZMTP 2.0).
        """
        p = _probability("p", p)
        seed = _seed(seed)
        self._control("seeded", f"duplicate {p:g}{_where(direction)} (seed {seed})", "duplicate",
                      direction_indexes(direction), p, seed)
        return seed

    def jitter(self, seconds: float, direction: str = BOTH, seed: Optional[int] = None) -> int:
        """Hold each chunk in *direction* for a random time up to *seconds* (0: none), on top of
        :meth:`~zmqprocesstest.FaultLink.delay`; order is kept. Return the seed."""
        seconds_arg("seconds", seconds, allow_none=False)
        seed = _seed(seed)
        self._control("seeded", f"jitter {seconds:g} s{_where(direction)} (seed {seed})", "jitter",
                      direction_indexes(direction), float(seconds), seed)
        return seed

    def rate(self, bytes_per_second: Optional[float], direction: str = BOTH) -> None:
        """Forward at most *bytes_per_second* in *direction* (``None`` or 0: no limit); what
        comes faster is held, then the link stops reading (backpressure)."""
        if bytes_per_second is None:
            bytes_per_second = 0
        if isinstance(bytes_per_second, bool) or not isinstance(bytes_per_second, (int, float)) \
                or bytes_per_second < 0:
            raise BadArgument(f"expected bytes_per_second to be a number >= 0 or None, got {bytes_per_second!r}")
        label = f"rate {bytes_per_second:g} B/s" if bytes_per_second else "rate off"
        self._control("seeded", label + _where(direction), "rate", direction_indexes(direction),
                      float(bytes_per_second))

    def close_after(self, n_bytes: Optional[int], direction: str = BOTH) -> None:
        """Close the connection that carries the message bringing *direction*'s bytes (from now)
        to *n_bytes*, right after that whole message (``None`` or 0: disarm). Once; counted
        in ``stats[direction].cuts``. The peers see a disconnect and reconnect.

        :raises FaultLinkError: the link cannot see messages (CURVE, ZMTP 2.0).
        """
        int_arg("n_bytes", n_bytes, "a number of bytes (int)")
        if n_bytes is not None and n_bytes < 0:
            raise BadArgument(f"expected n_bytes to be a number of bytes >= 0 or None, got {n_bytes!r}")
        label = f"close after {n_bytes} B" if n_bytes else "close after: off"
        self._control("seeded", label + _where(direction), "close_after", direction_indexes(direction),
                      int(n_bytes or 0))


def _link_arg(link: Any) -> SeededFaults:
    if not isinstance(link, SeededFaults):
        raise BadArgument(f"expected a FaultLink (made by self.fault_link() or FaultLink()), got {link!r}")
    return link


class SeededFaultEvents:
    """The seeded faults as events of the test case (a base of :class:`~zmqprocesstest.faults.FaultEvents`)."""

    @event
    def loss(self, link: Any, p: float, direction: str = BOTH, burst: Optional[float] = None,
             seed: Optional[int] = None) -> int:
        """Event: *link* loses each message in *direction* with probability *p*; returns the seed."""
        return _link_arg(link).loss(p, direction, burst, seed)

    @event
    def duplicate(self, link: Any, p: float = 1.0, direction: str = BOTH, seed: Optional[int] = None) -> int:
        """Event: *link* delivers each message in *direction* twice with probability *p*; returns the seed."""
        return _link_arg(link).duplicate(p, direction, seed)

    @event
    def jitter(self, link: Any, seconds: float, direction: str = BOTH, seed: Optional[int] = None) -> int:
        """Event: *link* holds each chunk in *direction* up to *seconds* more, at random; returns the seed."""
        return _link_arg(link).jitter(seconds, direction, seed)

    @event
    def rate(self, link: Any, bytes_per_second: Optional[float], direction: str = BOTH) -> None:
        """Event: *link* forwards at most *bytes_per_second* in *direction* (``None``: no limit)."""
        _link_arg(link).rate(bytes_per_second, direction)

    @event
    def close_after(self, link: Any, n_bytes: Optional[int], direction: str = BOTH) -> None:
        """Event: *link* closes the connection after the message that brings *direction* to *n_bytes*."""
        _link_arg(link).close_after(n_bytes, direction)
