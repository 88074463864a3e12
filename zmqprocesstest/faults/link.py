"""Fault links: a proxy between a client and an endpoint that the test can break.

A :class:`FaultLink` listens on an endpoint of its own (:attr:`FaultLink.endpoint`) and
forwards each connection made to it to the real endpoint (the *target*), byte for byte,
on one background thread. Clients connect to the link instead of the target; the test
then partitions the network, heals it, resets or refuses connections, adds latency or
drops whole ZeroMQ messages, and sees how the application copes. The link keeps the
faults it applied, in order, and counts what it forwarded, held and dropped, for
assertions and for the failure report. :class:`FaultEvents` offers the faults as
events (``yield ('partition', link)``).
"""
from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

from ._link_faults import SeededFaultEvents, SeededFaults, direction_indexes
from ._proxy import DIRECTIONS, FaultLinkError, Proxy  # DIRECTIONS: as drop() and stats name them
from .. import timeline as _timeline
from ..endpoints import check_loopback, private_dir, socket_address
from ..events import int_arg, seconds_arg
from ..loop import BadArgument, event

__unittest = True
__tracebackhide__ = True

__all__ = ["DIRECTIONS", "FaultEvents", "FaultLink", "FaultLinkError", "FlowStats", "LinkStats", "make_link"]


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


def _size(n: int) -> str:
    return f"{n} B" if n < 10240 else f"{n / 1024:.1f} KiB" if n < 10485760 else f"{n / 1048576:.1f} MiB"


class FaultLink(SeededFaults):
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

    def __init__(self, target: str, transport: Optional[str] = None, endpoint: Optional[str] = None) -> None:
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
        self._proxy = Proxy((family, address), _address(endpoint, "endpoint"), target, tmpdir)
        self.endpoint = self._proxy.endpoint
        #: Its lane in the test's timeline: ``link 2`` (the last part of its endpoint).
        self.name = "link " + re.split(r"[/:]", self.endpoint)[-1]
        running = _timeline.current()
        if running is not None:
            running.lane(self.name, "link", f"{self.endpoint} -> {target}")

    @property
    def hold_limit(self) -> int:
        """Bytes a direction of a connection may hold (partitioned, delayed or unread) before
        the link stops reading from that side, so TCP or socket backpressure applies."""
        return self._proxy.hold_limit

    @hold_limit.setter
    def hold_limit(self, limit: int) -> None:
        self._proxy.hold_limit = limit

    # -- the faults (called from the test's thread) --------------------------------------------------
    def partition(self, direction: Optional[str] = None) -> None:
        """Stop forwarding in both directions, or only in *direction* (``'to_server'``,
        ``'to_client'``: a one-way partition); connections stay open (a stalled network).

        Neither side sees a disconnect. What arrives is held (up to :attr:`hold_limit`
        per direction and connection; beyond that the link stops reading, so the
        sender's buffers fill up). New connections are accepted and held too.
        """
        indexes = direction_indexes(direction)
        self._control("partition", "partition" + (f" {direction} only" if len(indexes) == 1 else ""), indexes)

    def heal(self) -> None:
        """Forward again: deliver what the partition held, then close through the
        connections that either side closed meanwhile."""
        self._control("heal", "heal")

    def reset(self) -> int:
        """Close every connection through the link at once, both sides; return how many.

        A hard close (``SO_LINGER`` 0: a TCP peer sees a reset); ZeroMQ peers see a
        disconnect, and clients reconnect. What the link held is lost.
        """
        return self._control("reset", "reset")

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

    def delay(self, seconds: float) -> None:
        """Hold each chunk that arrives from now on for *seconds* before forwarding it (0: no delay).

        Order is kept: chunks already held keep the time they are due.
        """
        seconds_arg("seconds", seconds, allow_none=False)
        self._control("delay", f"delay {seconds:g} s" if seconds else "delay off", float(seconds))

    def drop(self, n: int = 1, direction: str = "to_server") -> None:
        """Leave out the next *n* whole ZeroMQ messages in *direction* (``'to_server'``, ``'to_client'``).

        The messages that start next, on any connection, are not forwarded (none of
        their frames); heartbeats and other commands always are. A message already
        half through goes on whole.

        :raises FaultLinkError: the link cannot see messages: CURVE (or another
            mechanism that encrypts them) or peers speaking ZMTP 2.0 or older; only the
            connection-level faults apply there.
        """
        count, index = _drop_args(n, direction)
        self._control("drop", f"drop {count} {direction}", count, index)

    def _control(self, name: str, label: str, *args: Any) -> Any:
        result = self._proxy.command(name, *args)
        self._history.append((round(time.monotonic() - self._start, 3), label))
        _timeline.record("fault", self.name, label)
        return result

    # -- what the test reads ----------------------------------------------------------------------
    @property
    def stats(self) -> LinkStats:
        """What the link forwarded, holds and dropped, per direction, and its connections (:class:`LinkStats`).

        After :meth:`close`, the figures as they were when it closed.
        """
        to_server, to_client, accepted, open_now, failed = self._proxy.figures()
        return LinkStats(FlowStats(*to_server), FlowStats(*to_client), accepted, open_now, failed)

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
        lines = [f"Fault link {self.endpoint} -> {self.target}", f"  state: {self.state}"]
        crash, protocols, hidden, notes = self._proxy.findings()
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
                lines.append(line)
        lines.extend(f"  note: {note}" for note in notes)
        if self._history:
            lines.append("  faults (seconds since the link started):")
            lines.extend(f"    {at:8.3f}  {what}" for at, what in self._history)
        else:
            lines.append("  faults: none")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<FaultLink {self.endpoint} -> {self.target} ({self.state})>"

    # -- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the thread, close every connection and the listener, remove the ipc socket file.

        Idempotent. Connections are closed hard, like :meth:`reset`.

        :raises FaultLinkError: the thread failed (with its traceback), or did not stop
            within its bound (5 s, scaled).
        """
        self._proxy.close()

    def __enter__(self) -> "FaultLink":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def make_link(target: str, ipc_endpoint: Callable[[], str], transport: Optional[str] = None) -> FaultLink:
    """A :class:`FaultLink` to *target* that listens on ``ipc_endpoint()`` when its transport is ipc.

    What :meth:`ProcessTestCase.fault_link` uses, with the test's private directory.
    """
    listen = transport or _transport(_address(target, "target")[0])
    return FaultLink(target, transport=listen, endpoint=ipc_endpoint() if listen == "ipc" else None)


class FaultEvents(SeededFaultEvents):
    """The fault events, as methods of the test case: each applies one fault to a :class:`FaultLink`.

    ``yield ('partition', link)`` ... ``yield ('heal', link)``; they may also be called
    directly (``self.partition(link)``).
    """

    @event
    def partition(self, link: FaultLink, direction: Optional[str] = None) -> None:
        """Event: stop forwarding through *link* in both directions (or only *direction*), connections kept open."""
        _link_arg(link).partition(direction)

    @event
    def heal(self, link: FaultLink) -> None:
        """Event: forward through *link* again and deliver what it held."""
        _link_arg(link).heal()

    @event
    def reset(self, link: FaultLink) -> int:
        """Event: close every connection through *link* at once (clients reconnect); returns how many."""
        return _link_arg(link).reset()

    @event
    def refuse(self, link: FaultLink, on: bool = True) -> None:
        """Event: *link* refuses new connections (``on=False``: accepts them again)."""
        _link_arg(link).refuse(on)

    @event
    def delay(self, link: FaultLink, seconds: float) -> None:
        """Event: *link* holds what it forwards for *seconds* (0: no delay)."""
        _link_arg(link).delay(seconds)

    @event
    def drop(self, link: FaultLink, n: int = 1, direction: str = "to_server") -> None:
        """Event: *link* leaves out the next *n* messages in *direction* (``'to_server'``, ``'to_client'``)."""
        _link_arg(link).drop(n, direction)


def _link_arg(link: Any) -> FaultLink:
    if not isinstance(link, FaultLink):
        raise BadArgument(f"expected a FaultLink (made by self.fault_link() or FaultLink()), got {link!r}")
    return link
