"""The parts of the fault link's proxy (:mod:`zmqprocesstest.faults._proxy`): its connections and its listener.

A connection (:class:`Conn`) has two ends (:class:`End`: the client's socket and the
target's) and a flow each way (:class:`Flow`: what is held, in order, with the time each
chunk is due); :class:`Counters` sum what one direction did over all connections. They
are plain records: the proxy's thread alone reads and changes them. The
:class:`Listener` takes connections, or refuses them while keeping its address.

Every socket of a link is tracked (:func:`track`): a process forked while links exist
(a process under test started, or restarted, after the link) closes its copies at once,
or it would keep a connection the link closed open, and the listening socket of a link
that refuses connections listening.

The thread waits on a :class:`Poller`: :func:`select.poll` with each descriptor's data
in a dict, which costs a forwarded chunk less than :mod:`selectors` does (the link's
round trip is measured against a direct one: ``benchmarks/fault_link.py``).
"""
from __future__ import annotations

import collections
import os
import select
import socket
import threading
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from ..processes import open_fd_numbers
from ._seeded import Pace
from ._zmtp import Tally, Tracker

__unittest = True
__tracebackhide__ = True

__all__ = ["Conn", "Counters", "End", "Flow", "Listener", "Poller", "READ", "WRITE", "accept", "track"]

#: The events a :class:`Poller` watches for and reports.
READ, WRITE = select.POLLIN, select.POLLOUT
_NOT_READ, _NOT_WRITE = ~READ, ~WRITE

_LINK_SOCKETS: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
_FORK_LOCK = threading.Lock()  # held while a link accepts: no fork copies an untracked socket


def track(sock: socket.socket) -> socket.socket:
    """Note *sock* as a link's: a forked child closes its copy (see the module's docstring)."""
    _LINK_SOCKETS.add(sock)
    return sock


def accept(listener: socket.socket, family: int) -> Tuple[socket.socket, socket.socket]:
    """Accept a client and make the socket to the target, both tracked, with no fork in between
    (a fork then would copy a socket the child does not know to close)."""
    with _FORK_LOCK:
        client, _ = listener.accept()
        try:
            return track(client), track(socket.socket(family, socket.SOCK_STREAM))
        except BaseException:
            client.close()
            raise


def _before_fork() -> None:
    _FORK_LOCK.acquire()


def _after_fork_in_parent() -> None:
    _FORK_LOCK.release()


def _close_in_child() -> None:
    global _FORK_LOCK
    _FORK_LOCK = threading.Lock()  # the parent's is held (by the forking thread)
    try:
        socks = list(_LINK_SOCKETS)
    except RuntimeError:  # forked while another thread changed the set: take what can be read
        socks = [ref() for ref in list(_LINK_SOCKETS.data)]  # type: ignore[attr-defined]
    addresses = set()
    for sock in socks:
        if sock is not None and sock.fileno() >= 0:
            try:
                if _listening(sock):
                    addresses.add(sock.getsockname())
                sock.close()  # the child's copy only: the link's stays open
            except OSError:
                pass
    if addresses:
        _close_accepted(addresses)


def _listening(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))


def _close_accepted(addresses: Set[Any]) -> None:
    """Close the child's copies of connections accepted on the links' *addresses* that no
    tracked socket held yet (copied while the link's thread was taking them)."""
    for fd in open_fd_numbers():
        try:
            probe = socket.socket(fileno=fd)
        except OSError:
            continue  # not a socket
        try:
            if probe.family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6) and \
                    probe.getsockname() in addresses and not _listening(probe):
                os.close(probe.detach())
                continue
        except OSError:
            pass
        probe.detach()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_close_in_child)


class Counters(Tally):
    """One direction of the proxy: what it did (its drops, a :class:`Tally`; messages and bytes)
    and its faults: paused (partitioned), and the pace of its chunks (delay, jitter, rate)."""

    __slots__ = ("messages", "bytes", "paused", "pace", "paced")

    def __init__(self) -> None:
        super().__init__()
        self.messages = 0
        self.bytes = 0
        self.paused = False
        self.pace = Pace()
        self.paced = self.pace.active  # kept as a plain flag for the forwarding path


class End:
    """One socket of a connection: the client's or the target's side."""

    __slots__ = ("sock", "conn", "inflow", "outflow", "mask")

    def __init__(self, sock: socket.socket, conn: "Conn") -> None:
        self.sock = sock
        self.conn = conn
        self.inflow: Any = None  # the flow that reads from this socket
        self.outflow: Any = None  # the flow that writes to it
        self.mask = 0


class Flow:
    """One direction of a connection: what is held, in order, with the time each chunk is due."""

    __slots__ = ("src", "dst", "counters", "tracker", "queue", "held", "held_msgs", "eof", "hard", "reader")

    def __init__(self, src: End, dst: End, counters: Counters, tracker: Tracker) -> None:
        self.src, self.dst = src, dst
        self.counters = counters
        self.tracker = tracker
        #: Chunks not delivered yet: [due (monotonic), data, messages that end in it, whether
        #: its :attr:`reader` read it].
        self.queue: Deque[List[Any]] = collections.deque()
        self.held = 0
        self.held_msgs = 0
        self.eof = False  # the source closed; close through once the queue is delivered
        self.hard = False  # ... and it closed with a reset
        #: A tap's reader of what this direction delivers (``None``: no tap), fed each piece sent on.
        self.reader: Any = None


class Conn:
    """One connection through the proxy: the client's end and the target's, a flow each way.

    *tallies* are the proxy's counters of the two directions (to the server first);
    *on_greeting* is told when a greeting has gone through. *number* counts the link's
    connections from 1, in the order accepted.
    """

    __slots__ = ("client", "server", "up", "down", "connecting", "number")

    def __init__(self, client: socket.socket, server: socket.socket, tallies: Tuple[Counters, Counters],
                 on_greeting: Callable[[Tracker], None], connecting: bool, number: int = 0) -> None:
        self.client, self.server = End(track(client), self), End(track(server), self)
        up, down = Tracker(tallies[0], on_greeting), Tracker(tallies[1], on_greeting)
        up.peer, down.peer = down, up
        self.number = up.connection = down.connection = number
        self.up = Flow(self.client, self.server, tallies[0], up)
        self.down = Flow(self.server, self.client, tallies[1], down)
        self.client.inflow = self.server.outflow = self.up
        self.server.inflow = self.client.outflow = self.down
        self.connecting = connecting


class Listener:
    """The proxy's listening socket, which can refuse connections and take them again.

    Refusing closes it: an ipc socket file stays with nobody listening, and a tcp port is
    kept by a bound socket that does not listen, so connects get ``ECONNREFUSED`` and the
    port cannot be taken meanwhile. A tcp *address* may ask for port 0: :attr:`address`
    says which port it got.
    """

    def __init__(self, family: int, address: Any) -> None:
        self.family, self.address = family, address
        #: The listening socket (``None`` while refusing).
        self.sock: Optional[socket.socket] = None
        self._placeholder: Optional[socket.socket] = None
        self._made = False
        self.listen()
        if family != socket.AF_UNIX:
            assert self.sock is not None
            host, port = self.sock.getsockname()[:2]
            self.address = (host, port) + tuple(address[2:])

    @property
    def endpoint(self) -> str:
        """``ipc://path`` or ``tcp://host:port`` (``tcp://[::1]:port``)."""
        if self.family == socket.AF_UNIX:
            return f"ipc://{self.address}"
        host, port = self.address[:2]
        return f"tcp://{host}:{port}" if ":" not in host else f"tcp://[{host}]:{port}"

    def _socket(self) -> socket.socket:
        sock = track(socket.socket(self.family, socket.SOCK_STREAM))
        if self.family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return sock

    def listen(self) -> socket.socket:
        """Listen (again): a new non-blocking listening socket, returned for the selector."""
        if self._made and self.family == socket.AF_UNIX:
            try:
                os.unlink(self.address)  # the socket file of the closed listener
            except FileNotFoundError:
                pass
        sock = self._socket()
        try:
            sock.bind(self.address)
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.sock, self._made = sock, True
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        return sock

    def refuse(self) -> None:
        """Stop listening (unregister :attr:`sock` from the selector first)."""
        if self.sock is None:
            return
        if self.family != socket.AF_UNIX:
            hold = self._socket()
            hold.bind(self.address)
            self._placeholder = hold
        self.sock.close()
        self.sock = None

    def close(self) -> None:
        """Close both sockets and remove an ipc socket file."""
        for sock in (self.sock, self._placeholder):
            if sock is not None:
                sock.close()
        self.sock = self._placeholder = None
        if self._made and self.family == socket.AF_UNIX:
            try:
                os.unlink(self.address)
            except OSError:
                pass


class Poller:
    """Which of the registered descriptors are ready: ``(data, events)`` pairs, *events* of
    :data:`READ` and :data:`WRITE`. An error or hang-up counts as both, as far as registered,
    so that the read or write that follows meets it (as :mod:`selectors` does)."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._data: Dict[int, Tuple[Any, int]] = {}

    def register(self, fileobj: Any, events: int, data: Any) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        self._poll.register(fd, events)
        self._data[fd] = (data, events)

    def modify(self, fileobj: Any, events: int, data: Any) -> None:
        fd = fileobj.fileno()
        self._poll.modify(fd, events)
        self._data[fd] = (data, events)

    def unregister(self, fileobj: Any) -> None:
        fd = fileobj.fileno()
        self._poll.unregister(fd)
        del self._data[fd]

    def select(self, timeout: Optional[float]) -> List[Tuple[Any, int]]:
        """Wait at most *timeout* seconds (``None``: until one is ready)."""
        ready = self._poll.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))
        table, found = self._data, []
        for fd, event in ready:
            data, events = table[fd]
            if event & _NOT_READ:
                event |= WRITE
            if event & _NOT_WRITE:
                event |= READ
            found.append((data, event & events))
        return found

    def close(self) -> None:
        self._data.clear()
