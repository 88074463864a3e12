"""Fault links: a proxy between a client and an endpoint that the test can break.

A :class:`FaultLink` listens on an endpoint of its own (:attr:`FaultLink.endpoint`) and
forwards each connection made to it to the real endpoint (the *target*), byte for byte,
on one background thread. Clients connect to the link instead of the target; the test
then partitions the network, heals it, resets or refuses connections, adds latency or
drops whole ZeroMQ messages, and sees how the application copes. The link keeps the
faults it applied, in order, and counts what it forwarded, held and dropped, for
assertions and for the failure report.

Each fault is one method of :class:`FaultLink`, marked :func:`fault`; the test case's
fault events (``yield ('partition', link)``) are made from those marks
(:mod:`zmqprocesstest.faults.events`), so a fault is written once. The seeded faults
(loss with a probability, optionally in correlated bursts, duplicates, jitter, a rate
limit in bytes per second and a cut after a number of bytes) apply to one direction
(``'to_server'``, ``'to_client'``) or both; loss, duplicates and the cut act on whole
ZeroMQ messages, never on part of a frame. Each random fault draws from its own
generator, seeded with *seed* (or a fresh seed, returned and shown in the link's
history), so a run can be replayed: the same seed and the same traffic lose, duplicate
and delay the same messages.
"""
from __future__ import annotations

import random
import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, TypeVar

from ._proxy import DIRECTIONS, FaultLinkError, Proxy  # DIRECTIONS: as drop() and stats name them
from ._seeded import new_seed
from ..report import timeline as _timeline
from ..endpoints import check_loopback, private_dir, socket_address
from ..events import int_arg, seconds_arg
from ..loop import BadArgument

__unittest = True
__tracebackhide__ = True

__all__ = ["BOTH", "DIRECTIONS", "FAULT_ATTR", "FaultLink", "FaultLinkError", "FlowStats", "LinkStats",
           "direction_indexes", "fault", "make_link"]

#: Where a fault applies: one direction or both.
BOTH = "both"
#: The attribute that marks a method of :class:`FaultLink` as a fault (:func:`fault`).
FAULT_ATTR = "__zmqprocesstest_fault__"
F = TypeVar("F", bound=Callable[..., Any])


def fault(method: F) -> F:
    """Mark a method of :class:`FaultLink` as a fault: the test case gets an event of the same
    name, ``yield ('name', link, *args)``, made from it (:mod:`zmqprocesstest.faults.events`)."""
    setattr(method, FAULT_ATTR, True)
    return method


@dataclass(frozen=True)
class FlowStats:
    """What one direction of a link did, summed over its connections.

    *messages* count whole ZeroMQ messages (heartbeats and other commands are not
    messages); they stay 0 where the link cannot see messages (CURVE, ZMTP 2.0).
    *bytes* count everything on the wire: greetings, commands and frames.
    """

    #: Whole messages delivered to the other side.
    messages: int
    #: Bytes delivered to the other side.
    bytes: int
    #: Whole messages received and not delivered yet (partition, delay, a slow reader).
    held_messages: int
    #: Bytes received and not delivered yet.
    held_bytes: int
    #: Messages left out by :meth:`FaultLink.drop`, and their bytes.
    dropped_messages: int
    dropped_bytes: int
    #: Messages :meth:`FaultLink.drop` will still leave out.
    drops_armed: int
    #: Messages lost by :meth:`FaultLink.loss` (counted in *dropped_messages* too).
    lost_messages: int = 0
    #: Messages delivered twice by :meth:`FaultLink.duplicate`.
    duplicated_messages: int = 0
    #: Connections closed by :meth:`FaultLink.close_after`.
    cuts: int = 0
    #: Messages with one byte of a body changed by :meth:`FaultLink.corrupt`.
    corrupted_messages: int = 0


@dataclass(frozen=True)
class LinkStats:
    """What a link did: ``stats["to_server"]`` and ``stats["to_client"]`` (:class:`FlowStats`), and connections."""

    to_server: FlowStats
    to_client: FlowStats
    #: Connections accepted from clients.
    accepted: int
    #: Connections open through the link now.
    open: int
    #: Accepted connections closed at once because the target could not be reached.
    failed: int

    def __getitem__(self, direction: str) -> FlowStats:
        if direction not in DIRECTIONS:
            raise KeyError(f"expected a direction {' or '.join(map(repr, DIRECTIONS))}, got {direction!r}")
        return getattr(self, direction)


def _address(endpoint: Any, what: str) -> Tuple[int, Any]:
    """``(family, address)`` of a ``tcp://host:port`` or ``ipc://path`` endpoint (:func:`socket_address`)."""
    if not isinstance(endpoint, str):
        raise BadArgument(f"expected {what} to be an endpoint string (tcp://host:port or ipc://path), "
                          f"got {endpoint!r}")
    return socket_address(endpoint, what)


def _transport(family: int) -> str:
    return "ipc" if family == socket.AF_UNIX else "tcp"


def _drop_args(n: Any, direction: Any) -> Tuple[int, int]:
    """``(n, index of direction)`` for :meth:`FaultLink.drop`."""
    int_arg("n", n, "a number of messages (int)", allow_none=False)
    if n < 1:
        raise BadArgument(f"expected n to be a number of messages >= 1, got {n!r}")
    if direction not in DIRECTIONS:
        raise BadArgument(f"expected direction to be {' or '.join(map(repr, DIRECTIONS))}, got {direction!r}")
    return int(n), DIRECTIONS.index(direction)


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


class _Corrupt:
    """One direction's :meth:`FaultLink.corrupt`, on the proxy's thread: which messages it
    picks, and which byte of which frame's body it flips, drawn from one seeded generator."""

    __slots__ = ("tally", "p", "rng", "label")

    def __init__(self, tally: Any, p: float, seed: int) -> None:
        self.tally, self.p, self.rng, self.label = tally, p, random.Random(seed), f"corrupt {p:g}"

    def pick(self) -> Optional[Callable[[List[memoryview]], None]]:
        return self.flip if self.rng.random() < self.p else None

    def flip(self, bodies: List[memoryview]) -> None:
        filled = [body for body in bodies if len(body)]
        if filled:  # a message of empty frames has no byte to change
            body = filled[self.rng.randrange(len(filled))]
            index = self.rng.randrange(len(body))
            body[index] = body[index] ^ 0xFF
            self.tally.counts["corrupted_messages"] = self.tally.counts.get("corrupted_messages", 0) + 1


def _size(n: int) -> str:
    return f"{n} B" if n < 10240 else f"{n / 1024:.1f} KiB" if n < 10485760 else f"{n / 1048576:.1f} MiB"


class FaultLink:
    """A proxy a test owns between clients and *target*, with faults on demand.

    Clients connect to :attr:`endpoint` instead of *target*; each connection is
    forwarded to a new connection to *target*, byte for byte, until a fault says
    otherwise. One background thread forwards every connection (non-blocking sockets,
    :mod:`selectors`); each fault takes effect before its method returns.

    The forwarding, and the state the faults change, are the proxy's
    (:mod:`zmqprocesstest.faults._proxy`); the link checks the faults' arguments, keeps their
    history and tells a test what it did.

    :param target: the real endpoint, ``tcp://host:port`` or ``ipc://path``.
    :param transport: ``'tcp'`` or ``'ipc'`` for :attr:`endpoint` (default: the target's).
    :param endpoint: where to listen: an ``ipc://`` path (in a test, one from the test's
        private directory) or a loopback ``tcp://`` address. By default ``tcp`` listens
        on ``127.0.0.1`` on a free port and ``ipc`` in a private temp dir of its own.
    :param name: its name in the reports (the timeline's lane, the failure report); by
        default ``link`` and the last part of :attr:`endpoint` (``link 40123``).

    Example::

        link = FaultLink(server_endpoint)
        self.addCleanup(link.close)
        req = self.socket(zmq.REQ, connect=link.endpoint)
        link.partition()                     # requests are held, nobody sees a disconnect
        link.heal()                          # ... and delivered now
        link.drop(1, "to_client")            # the next reply is lost
        link.reset()                         # every connection closed: clients reconnect
        self.assertEqual(link.stats["to_server"].dropped_messages, 0)
    """

    #: The endpoint clients connect to instead of the target.
    endpoint: str

    def __init__(self, target: str, transport: Optional[str] = None, endpoint: Optional[str] = None,
                 name: Optional[str] = None) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise BadArgument(f"expected name to be a non-empty string, got {name!r}")
        family, address = _address(target, "target")
        #: The real endpoint connections are forwarded to.
        self.target = target
        if endpoint is not None:
            transport_of_endpoint = _transport(_address(endpoint, "endpoint")[0])
            if transport is not None and transport != transport_of_endpoint:
                raise ValueError(f"transport {transport!r} does not match endpoint {endpoint!r}")
            transport = transport_of_endpoint
        transport = transport or _transport(family)
        if transport not in ("tcp", "ipc"):
            raise ValueError(f"expected transport 'tcp' or 'ipc', got {transport!r}")
        self.transport = transport
        tmpdir = private_dir("zpt-link-") if endpoint is None and transport == "ipc" else None
        if endpoint is None:
            endpoint = f"ipc://{tmpdir}/link" if tmpdir else "tcp://127.0.0.1:0"
        check_loopback(endpoint)
        self._history: List[Tuple[float, str]] = []
        self._start = time.monotonic()
        self._proxy = Proxy((family, address), _address(endpoint, "endpoint"), target, tmpdir, self._sink())
        self.endpoint = self._proxy.endpoint
        #: Its name in reports and its lane in the test's timeline: *name*, or ``link 2``
        #: (the last part of its endpoint).
        self.name = name or "link " + re.split(r"[/:]", self.endpoint)[-1]
        running = _timeline.current()
        if running is not None:
            self._lane(running)

    def _sink(self) -> Any:
        """What reads the messages the link delivers (a tap's), or ``None``."""
        return None

    def _lane(self, running: Any) -> None:
        running.lane(self.name, "link", f"{self.endpoint} -> {self.target}")

    @property
    def hold_limit(self) -> int:
        """Bytes a direction of a connection may hold (partitioned, delayed or unread) before
        the link stops reading from that side, so TCP or socket backpressure applies."""
        return self._proxy.hold_limit

    @hold_limit.setter
    def hold_limit(self, limit: int) -> None:
        self._proxy.hold_limit = limit

    # -- the faults (called from the test's thread) --------------------------------------------------
    @fault
    def partition(self, direction: Optional[str] = None) -> None:
        """Stop forwarding in both directions, or only in *direction* (``'to_server'``,
        ``'to_client'``: a one-way partition); connections stay open (a stalled network).

        Neither side sees a disconnect. What arrives is held (up to :attr:`hold_limit`
        per direction and connection; beyond that the link stops reading, so the
        sender's buffers fill up). New connections are accepted and held too.
        """
        indexes = direction_indexes(direction)
        self._control("partition", "partition" + (f" {direction} only" if len(indexes) == 1 else ""), indexes)

    @fault
    def heal(self) -> None:
        """Forward again: deliver what the partition held, then close through the
        connections that either side closed meanwhile."""
        self._control("heal", "heal")

    @fault
    def reset(self) -> int:
        """Close every connection through the link at once, both sides; return how many.

        A hard close (``SO_LINGER`` 0: a TCP peer sees a reset); ZeroMQ peers see a
        disconnect, and clients reconnect. What the link held is lost.
        """
        return self._control("reset", "reset")

    @fault
    def refuse(self, on: bool = True) -> None:
        """Refuse new connections (``on=False``: accept them again); open ones go on.

        The link stops listening, as a server that is down: a TCP connect gets
        ``ECONNREFUSED`` (the port stays reserved for the link) and an ipc connect
        finds no listener on the socket file. ZeroMQ clients retry that with their
        reconnect interval, and never see a half-made connection.
        """
        if not isinstance(on, bool):
            raise BadArgument(f"expected on to be True or False, got {on!r}")
        self._control("refuse", "refuse" if on else "refuse off", on)

    @fault
    def delay(self, seconds: float) -> None:
        """Hold each chunk that arrives from now on for *seconds* before forwarding it (0: no delay).

        Order is kept: chunks already held keep the time they are due.
        """
        seconds_arg("seconds", seconds, allow_none=False)
        self._control("delay", f"delay {seconds:g} s" if seconds else "delay off", float(seconds))

    @fault
    def drop(self, n: int = 1, direction: str = "to_server", connection: Optional[int] = None,
             match: Optional[Callable[[List[bytes]], bool]] = None) -> None:
        """Leave out the next *n* whole ZeroMQ messages in *direction* (``'to_server'``, ``'to_client'``),
        on *connection* only and only those *match* takes, if given.

        The messages that start next, on any connection, are not forwarded (none of
        their frames); heartbeats and other commands always are. A message already
        half through goes on whole.

        Aimed: *connection* is the number of one connection through the link (1 for
        the first accepted, in order: :attr:`Tap.connections <zmqprocesstest.Tap.connections>` of a
        tap names them), so a link shared by several workers loses one worker's
        message, not the next sender's. ``match(frames)`` is called on the link's thread
        with each message's frames (a list of bytes) and returns whether to leave it
        out; a message it may take is held until its last frame. What *match* raises
        lets the message go on, shows in the link's report and is raised by
        :meth:`close`. A drop that is not aimed is served before the aimed ones, and
        aimed drops in the order they were armed.

        :raises FaultLinkError: the link cannot see messages: CURVE (or another
            mechanism that encrypts them) or peers speaking ZMTP 2.0 or older; only the
            connection-level faults apply there.
        """
        count, index = _drop_args(n, direction)
        if connection is not None:
            int_arg("connection", connection, "a connection number (int)")
            if connection < 1:
                raise BadArgument(f"expected connection to be a connection number >= 1, got {connection!r}")
        if match is not None and not callable(match):
            raise BadArgument(f"expected match to be a callable(frames) -> bool, got {match!r}")
        label = f"drop {count} {direction}" + (f" on connection {connection}" if connection is not None else "") \
            + (f" matching {getattr(match, '__name__', match)}" if match is not None else "")
        self._control("drop", label, count, index, connection, match)

    @fault
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

    @fault
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

    @fault
    def jitter(self, seconds: float, direction: str = BOTH, seed: Optional[int] = None) -> int:
        """Hold each chunk in *direction* for a random time up to *seconds* (0: none), on top of
        :meth:`~zmqprocesstest.FaultLink.delay`; order is kept. Return the seed."""
        seconds_arg("seconds", seconds, allow_none=False)
        seed = _seed(seed)
        self._control("seeded", f"jitter {seconds:g} s{_where(direction)} (seed {seed})", "jitter",
                      direction_indexes(direction), float(seconds), seed)
        return seed

    @fault
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

    @fault
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

    @fault
    def corrupt(self, p: float, direction: str = BOTH, seed: Optional[int] = None) -> int:
        """Change one byte of a body of each whole message in *direction* with probability *p*
        (0: never); return the seed.

        The byte's bits are flipped; its frame (among the message's frames with a body) and
        its place are drawn from the seed. The framing, and commands, are never changed: the
        peer receives a well-formed message with one wrong byte. Counted in
        ``stats[direction].corrupted_messages``.

        :raises FaultLinkError: the link cannot see messages (CURVE, ZMTP 2.0).
        """
        p = _probability("p", p)
        seed = _seed(seed)
        self._rewrite("corrupt", f"corrupt {p:g}{_where(direction)} (seed {seed})", direction,
                      lambda tally: _Corrupt(tally, p, seed) if p else None)
        return seed

    def _control(self, name: str, label: str, *args: Any) -> Any:
        # In the timeline before it acts: a heal delivers (and a tap records) what was held, in the command.
        _timeline.record("fault", self.name, label)
        try:
            result = self._proxy.command(name, *args)
        except FaultLinkError as exc:
            _timeline.record("note", self.name, f"{label}: not applied ({str(exc).splitlines()[0]})")
            raise
        self._history.append((round(time.monotonic() - self._start, 3), label))
        return result

    def _rewrite(self, name: str, label: str, direction: Any, make: Callable[[Any], Any]) -> None:
        """Apply the fault *name* that rewrites whole messages in *direction*: on the proxy's
        thread, ``make(tally)`` returns that direction's rewrite (``pick()`` and ``label``: see
        :attr:`~zmqprocesstest.faults._zmtp.Tally.rewrites`), or ``None`` to take it away.

        :raises FaultLinkError: the link cannot see messages (CURVE, ZMTP 2.0).
        """
        self._control("rewrite", label, name, direction_indexes(direction), make)

    # -- what the test reads ----------------------------------------------------------------------
    @property
    def stats(self) -> LinkStats:
        """What the link forwarded, holds and dropped, per direction, and its connections (:class:`LinkStats`).

        After :meth:`close`, the figures as they were when it closed.
        """
        to_server, to_client, accepted, open_now, failed = self._proxy.figures()
        return LinkStats(FlowStats(**to_server), FlowStats(**to_client), accepted, open_now, failed)

    @property
    def history(self) -> List[Tuple[float, str]]:
        """The faults applied, in order: ``[(seconds since the link started, 'partition'), ...]``."""
        return list(self._history)

    @property
    def state(self) -> str:
        """``'forwarding'`` or ``'partitioned'``, with ``', refusing'`` and the delay if any."""
        return self._proxy.state

    def describe(self) -> str:
        """``fault link tcp://127.0.0.1:4242 -> ipc://... (partitioned)`` for messages."""
        return self._proxy.describe()

    def report(self) -> str:
        """Several lines for a failure report: endpoints, state, protocol, counts, faults in order."""
        lines = [f"{self._kind()} {self.endpoint} -> {self.target}", f"  state: {self.state}",
                 f"  name: {self.name} (its lane in the timeline)"]
        crash, protocols, hidden, notes = self._proxy.findings()
        notes = notes + self._proxy.errors() + self._errors()
        if crash:
            lines.append(f"  its thread failed: {crash.strip().splitlines()[-1]}")
        try:
            stats: Optional[LinkStats] = self.stats
        except FaultLinkError:
            stats = None
        if protocols:
            lines.append(f"  protocol: {'; '.join(protocols)}")
        if hidden:
            lines.append(f"  messages are not visible (byte counts only): {hidden}")
        if stats is not None:
            lines.append(f"  connections: {stats.accepted} accepted, {stats.open} open"
                         + (f", {stats.failed} closed at once (target unreachable)" if stats.failed else ""))
            for direction in DIRECTIONS:
                s = stats[direction]
                line = f"  {direction}: {s.messages} messages ({_size(s.bytes)}) forwarded"
                line += f", {s.held_messages} held ({_size(s.held_bytes)})" if s.held_bytes else ""
                line += f", {s.dropped_messages} dropped ({_size(s.dropped_bytes)})" if s.dropped_messages else ""
                line += f", {s.drops_armed} more to drop" if s.drops_armed else ""
                line += f", {s.lost_messages} of them lost (loss)" if s.lost_messages else ""
                line += f", {s.duplicated_messages} duplicated" if s.duplicated_messages else ""
                line += f", {s.cuts} connection(s) closed (close after)" if s.cuts else ""
                line += f", {s.corrupted_messages} corrupted" if s.corrupted_messages else ""
                lines.append(line)
        lines.extend(f"  note: {note}" for note in notes)
        if self._history:
            lines.append("  faults (seconds since the link started):")
            lines.extend(f"    {at:8.3f}  {what}" for at, what in self._history)
        else:
            lines.append("  faults: none")
        return "\n".join(lines)

    def _kind(self) -> str:
        return "Fault link"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.endpoint} -> {self.target} ({self.state})>"

    # -- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the thread, close every connection and the listener, remove the ipc socket file.

        Idempotent. Connections are closed hard, like :meth:`reset`.

        :raises FaultLinkError: the thread failed (with its traceback), or did not stop
            within its bound (5 s, scaled), or a drop's *match* raised.
        """
        first = not self._proxy.closed
        self._proxy.close()
        errors = self._proxy.errors() + self._errors()
        if first and errors:
            raise FaultLinkError(f"{self.describe()}: " + "; ".join(errors))

    def _errors(self) -> List[str]:
        """What failed on the link's thread besides its faults (a tap's codec or recorder)."""
        return []

    def __enter__(self) -> "FaultLink":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def make_link(target: str, ipc_endpoint: Callable[[], str], transport: Optional[str] = None,
              name: Optional[str] = None, cls: Callable[..., FaultLink] = FaultLink, **kwargs: Any) -> FaultLink:
    """A :class:`FaultLink` (or a *cls*, a :class:`~zmqprocesstest.faults.Tap`) to *target* that
    listens on ``ipc_endpoint()`` when its transport is ipc.

    What :meth:`ProcessTestCase.fault_link` and :meth:`ProcessTestCase.tap` use, with the test's private directory.
    """
    listen = transport or _transport(_address(target, "target")[0])
    return cls(target, transport=listen, endpoint=ipc_endpoint() if listen == "ipc" else None, name=name, **kwargs)
