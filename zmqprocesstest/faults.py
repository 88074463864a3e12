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

import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._proxy import FaultLinkError, Proxy
from ._zmtp import Tracker
from .endpoints import check_loopback, private_dir
from .events import _BadArgument, event, int_arg, seconds_arg

__unittest = True
__tracebackhide__ = True

__all__ = ["DIRECTIONS", "FaultEvents", "FaultLink", "FaultLinkError", "FlowStats", "LinkStats", "make_link"]

#: The two directions of a link, as :meth:`FaultLink.drop` and :attr:`FaultLink.stats` name them.
DIRECTIONS = ("to_server", "to_client")


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
        return getattr(self, direction)  # type: ignore[no-any-return]


def _parse(endpoint: str, what: str) -> Tuple[str, int, Any]:
    """``(transport, family, address)`` of a ``tcp://host:port`` or ``ipc://path`` endpoint."""
    if not isinstance(endpoint, str):
        raise _BadArgument(f"expected {what} to be an endpoint string (tcp://host:port or ipc://path), "
                           f"got {endpoint!r}")
    if endpoint.startswith("ipc://") and len(endpoint) > len("ipc://"):
        return "ipc", socket.AF_UNIX, endpoint[len("ipc://"):]
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint[len("tcp://"):].rpartition(":")
        host = host.strip("[]")
        if host and port.isdigit():
            family = socket.AF_INET6 if ":" in host else socket.AF_INET  # localhost: IPv4, as libzmq
            try:
                info = socket.getaddrinfo(host, int(port), family, socket.SOCK_STREAM)[0]
            except socket.gaierror as exc:
                raise ValueError(f"cannot resolve the host of {what} {endpoint!r}: {exc}") from None
            return "tcp", info[0], info[4]
    raise ValueError(f"expected {what} to be tcp://host:port or ipc://path, got {endpoint!r}")


def _drop_args(n: Any, direction: Any) -> Tuple[int, int]:
    """``(n, index of direction)`` for :meth:`FaultLink.drop`."""
    int_arg("n", n, "a number of messages (int)", allow_none=False)
    if n < 1:
        raise _BadArgument(f"expected n to be a number of messages >= 1, got {n!r}")
    if direction not in DIRECTIONS:
        raise _BadArgument(f"expected direction to be {' or '.join(map(repr, DIRECTIONS))}, got {direction!r}")
    return int(n), DIRECTIONS.index(direction)


def _size(n: int) -> str:
    return f"{n} B" if n < 10240 else f"{n / 1024:.1f} KiB" if n < 10485760 else f"{n / 1048576:.1f} MiB"


class FaultLink(Proxy):
    """A proxy a test owns between clients and *target*, with faults on demand.

    Clients connect to :attr:`endpoint` instead of *target*; each connection is
    forwarded to a new connection to *target*, byte for byte, until a fault says
    otherwise. One background thread forwards every connection (non-blocking sockets,
    :mod:`selectors`); each fault takes effect before its method returns.

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

    #: Bytes a direction of a connection may hold (partitioned, delayed or unread) before
    #: the link stops reading from that side, so TCP or socket backpressure applies.
    hold_limit: int = Proxy.hold_limit
    #: The endpoint clients connect to instead of the target.
    endpoint: str

    def __init__(self, target: str, transport: Optional[str] = None, endpoint: Optional[str] = None) -> None:
        target_transport, family, address = _parse(target, "target")
        #: The real endpoint connections are forwarded to.
        self.target = target
        if endpoint is not None:
            transport_of_endpoint = _parse(endpoint, "endpoint")[0]
            if transport is not None and transport != transport_of_endpoint:
                raise ValueError(f"transport {transport!r} does not match endpoint {endpoint!r}")
            transport = transport_of_endpoint
        transport = transport or target_transport
        if transport not in ("tcp", "ipc"):
            raise ValueError(f"expected transport 'tcp' or 'ipc', got {transport!r}")
        self.transport = transport
        tmpdir = private_dir("zpt-link-") if endpoint is None and transport == "ipc" else None
        if endpoint is None:
            endpoint = f"ipc://{tmpdir}/link" if tmpdir else "tcp://127.0.0.1:0"
        check_loopback(endpoint)
        self._protocols: Dict[str, None] = {}
        self._reason: Optional[str] = None
        self._history: List[Tuple[float, str]] = []
        self._start = time.monotonic()
        super().__init__((family, address), _parse(endpoint, "endpoint")[1:], tmpdir)

    # -- the faults (called from the test's thread) --------------------------------------------------
    def partition(self) -> None:
        """Stop forwarding in both directions; connections stay open (a stalled network).

        Neither side sees a disconnect. What arrives is held (up to :attr:`hold_limit`
        per direction and connection; beyond that the link stops reading, so the
        sender's buffers fill up). New connections are accepted and held too.
        """
        self._control("partition", "partition")

    def heal(self) -> None:
        """Forward again: deliver what the partition held, then close through the
        connections that either side closed meanwhile."""
        self._control("heal", "heal")

    def reset(self) -> int:
        """Close every connection through the link at once, both sides; return how many.

        A hard close (``SO_LINGER`` 0: a TCP peer sees a reset); ZeroMQ peers see a
        disconnect, and clients reconnect. What the link held is lost.
        """
        return self._control("reset", "reset")  # type: ignore[no-any-return]

    def refuse(self, on: bool = True) -> None:
        """Refuse new connections (``on=False``: accept them again); open ones go on.

        The link stops listening, as a server that is down: a TCP connect gets
        ``ECONNREFUSED`` (the port stays reserved for the link) and an ipc connect
        finds no listener on the socket file. ZeroMQ clients retry that with their
        reconnect interval, and never see a half-made connection.
        """
        if not isinstance(on, bool):
            raise _BadArgument(f"expected on to be True or False, got {on!r}")
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
        result = self._command(name, *args)
        self._history.append((round(time.monotonic() - self._start, 3), label))
        return result

    # -- the faults, on the link's thread ------------------------------------------------------------
    def _do_partition(self) -> None:
        self._partitioned = True
        self._waiting.clear()
        for conn in self._conns:
            self._sync(conn.client)
            self._sync(conn.server)

    def _do_heal(self) -> None:
        self._partitioned = False
        for conn in list(self._conns):
            for flow in (conn.up, conn.down):
                if conn in self._conns:
                    self._flush(flow)

    def _do_reset(self) -> int:
        count = len(self._conns)
        for conn in list(self._conns):
            self._close_conn(conn, hard=True)
        return count

    def _do_refuse(self, on: bool) -> None:
        if on == self._refusing:
            return
        if on:
            listener = self._listener
            if listener is not None:
                if self._listen_family != socket.AF_UNIX:
                    # Keep the port: a bound socket that does not listen (the kernel refuses SYNs).
                    hold = socket.socket(self._listen_family, socket.SOCK_STREAM)
                    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    hold.bind(self._listen_address)
                    self._placeholder = hold
                self._sel.unregister(listener)
                listener.close()  # an ipc socket file stays, with nobody listening: ECONNREFUSED
                self._listener = None
        else:
            if self._listen_family == socket.AF_UNIX:
                try:
                    os.unlink(self._listen_address)  # the socket file of the closed listener
                except FileNotFoundError:
                    pass
            self._listen()
            if self._placeholder is not None:
                self._placeholder.close()
                self._placeholder = None
        self._refusing = on

    def _do_delay(self, seconds: float) -> None:
        self._delay = seconds

    def _do_drop(self, n: int, index: int) -> None:
        if self._reason:
            raise FaultLinkError(f"drop() cannot apply to {self.describe()}: {self._reason}; only the connection-level "
                                 "faults apply (partition, heal, reset, refuse, delay)")
        self._tallies[index].armed += n

    def _do_stats(self) -> LinkStats:
        made = []
        for tally, fl in zip(self._tallies, ([c.up for c in self._conns], [c.down for c in self._conns])):
            made.append(FlowStats(messages=tally.messages, bytes=tally.bytes,
                                  held_messages=sum(f.held_msgs for f in fl), held_bytes=sum(f.held for f in fl),
                                  dropped_messages=tally.dropped_messages, dropped_bytes=tally.dropped_bytes,
                                  drops_armed=tally.armed))
        return LinkStats(to_server=made[0], to_client=made[1], accepted=self._accepted, open=len(self._conns),
                         failed=self._failed)

    def _on_greeting(self, tracker: Tracker) -> None:
        self._protocols[tracker.protocol] = None
        if tracker.reason and not self._reason:
            self._reason = tracker.reason
            armed = [f"{t.armed} {d}" for t, d in zip(self._tallies, DIRECTIONS) if t.armed]
            if armed:
                self._notes.append(f"drops armed ({', '.join(armed)}) cannot apply: {tracker.reason}")

    # -- what the test reads ----------------------------------------------------------------------
    @property
    def stats(self) -> LinkStats:
        """What the link forwarded, holds and dropped, per direction, and its connections (:class:`LinkStats`).

        After :meth:`close`, the figures as they were when it closed.
        """
        if self._final is not None:
            return self._final
        return self._command("stats")  # type: ignore[no-any-return]

    @property
    def history(self) -> List[Tuple[float, str]]:
        """The faults applied, in order: ``[(seconds since the link started, 'partition'), ...]``."""
        return list(self._history)

    @property
    def state(self) -> str:
        """``'forwarding'`` or ``'partitioned'``, with ``', refusing'`` and the delay if any."""
        state = "partitioned" if self._partitioned else "forwarding"
        if self._refusing:
            state += ", refusing new connections"
        if self._delay:
            state += f", delay {self._delay:g} s"
        return state + (", closed" if self._closed else "")

    def describe(self) -> str:
        """``fault link tcp://127.0.0.1:4242 -> ipc://... (partitioned)`` for messages."""
        return f"fault link {self.endpoint} -> {self.target} ({self.state})"

    def report(self) -> str:
        """Several lines for a failure report: endpoints, state, protocol, counts, faults in order."""
        lines = [f"Fault link {self.endpoint} -> {self.target}", f"  state: {self.state}"]
        if self._crash:
            lines.append(f"  its thread failed: {self._crash.strip().splitlines()[-1]}")
        try:
            stats: Optional[LinkStats] = self.stats
        except FaultLinkError:
            stats = None
        if self._protocols:
            lines.append(f"  protocol: {'; '.join(self._protocols)}")
        if self._reason:
            lines.append(f"  messages are not visible (byte counts only): {self._reason}")
        if stats is not None:
            lines.append(f"  connections: {stats.accepted} accepted, {stats.open} open"
                         + (f", {stats.failed} closed at once (target unreachable)" if stats.failed else ""))
            for direction in DIRECTIONS:
                s = stats[direction]
                line = f"  {direction}: {s.messages} messages ({_size(s.bytes)}) forwarded"
                line += f", {s.held_messages} held ({_size(s.held_bytes)})" if s.held_bytes else ""
                line += f", {s.dropped_messages} dropped ({_size(s.dropped_bytes)})" if s.dropped_messages else ""
                line += f", {s.drops_armed} more to drop" if s.drops_armed else ""
                lines.append(line)
        lines.extend(f"  note: {note}" for note in self._notes)
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
        if self._closed:
            return
        try:
            if self._thread.is_alive() and not self._crash:
                self._command("stop")
            self._thread.join(self._wait)
            if self._thread.is_alive():
                raise FaultLinkError(f"the thread of {self.describe()} did not stop within {self._wait:g} s")
        finally:
            self._closed = True
            if not self._thread.is_alive():
                self._close_fds()
        if self._crash:
            raise FaultLinkError(f"the thread of {self.describe()} failed:\n{self._crash}")

    def __enter__(self) -> "FaultLink":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def make_link(target: str, ipc_endpoint: Callable[[], str], transport: Optional[str] = None) -> FaultLink:
    """A :class:`FaultLink` to *target* that listens on ``ipc_endpoint()`` when its transport is ipc.

    What :meth:`ProcessTestCase.fault_link` uses, with the test's private directory.
    """
    listen = transport or _parse(target, "target")[0]
    return FaultLink(target, transport=listen, endpoint=ipc_endpoint() if listen == "ipc" else None)


class FaultEvents:
    """The fault events, as methods of the test case: each applies one fault to a :class:`FaultLink`.

    ``yield ('partition', link)`` ... ``yield ('heal', link)``; they may also be called
    directly (``self.partition(link)``).
    """

    @event
    def partition(self, link: FaultLink) -> None:
        """Event: stop forwarding through *link* in both directions, connections kept open."""
        _link_arg(link).partition()

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
        raise _BadArgument(f"expected a FaultLink (made by self.fault_link() or FaultLink()), got {link!r}")
    return link
