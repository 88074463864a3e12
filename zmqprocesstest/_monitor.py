"""Connection events: bounded waits on a test socket's connections, through libzmq's socket monitor.

``wait_connected``, ``wait_disconnected`` and ``wait_handshake`` start a monitor on the
socket the first time they (or :meth:`ConnectionEvents.monitor`) are used on it: a PAIR
test socket of the test, connected to the socket's inproc monitor endpoint, closed with
the test's sockets. Each monitor event a wait reads is written into the test's
transcript (``client ** monitor: CONNECTED ipc://...``), so the failure report shows
the connections next to the messages.

A monitor sees what happens after it starts. To see a socket's first connection,
make the socket without ``connect=``, start the monitor (``self.monitor(sock)``), then
connect. A wait takes the oldest event not read yet, so a connection made, lost and made
again is three events, read in order.
"""
from __future__ import annotations

import itertools
import time
from typing import Any, Dict, FrozenSet, List, Optional

import zmq
from zmq.utils.monitor import parse_monitor_message

from ._config import Timeout
from .loop import BadArgument, event
from .sockets import SocketTimeout, TestSocket

__unittest = True
__tracebackhide__ = True

__all__ = ["ConnectionEvents", "ConnectionTimeout", "event_name"]

_CONNECTED = frozenset({zmq.EVENT_CONNECTED, zmq.EVENT_ACCEPTED})
_DISCONNECTED = frozenset({zmq.EVENT_DISCONNECTED})
_HANDSHAKE = frozenset({getattr(zmq, "EVENT_HANDSHAKE_SUCCEEDED", 0x1000)})
_COUNT = itertools.count(1)


def event_name(number: int) -> str:
    """``'CONNECTED'`` for ``zmq.EVENT_CONNECTED``, and so on (the number if unknown)."""
    try:
        return str(zmq.Event(number).name)
    except ValueError:
        return str(number)


class ConnectionTimeout(Timeout):
    """A ``wait_connected``, ``wait_disconnected`` or ``wait_handshake`` event timed out (a failure of the test)."""


class ConnectionEvents:
    """The connection events of a test case (a base of :class:`~zmqprocesstest.events.Events`)."""

    def monitor(self, sock: TestSocket) -> TestSocket:
        """Start monitoring *sock* (once; later calls return the same monitor): what its
        connections do from now on is read by the ``wait_*`` events. Returns the monitor's socket."""
        if not isinstance(sock, TestSocket):
            raise BadArgument(f"expected a TestSocket (made by self.socket()), got {sock!r}")
        res = self._resources()  # type: ignore[attr-defined]
        monitors: Dict[int, TestSocket] = res.monitors
        mon = monitors.get(id(sock))
        if mon is None:
            address = f"inproc://zmqprocesstest-monitor-{next(_COUNT)}"
            sock.sock.monitor(address, zmq.EVENT_ALL)
            raw = sock.sock.context.socket(zmq.PAIR)
            raw.setsockopt(zmq.LINGER, 0)
            raw.connect(address)
            mon = res.add_socket(TestSocket(raw, timeout=sock.timeout, name=f"{sock.name} monitor"), None)
            mon.transcript = None  # its events are noted by the waits, readably
            monitors[id(sock)] = mon
        return mon

    def _wait_monitor(self, sock: TestSocket, wanted: FrozenSet[int], what: str,
                      timeout: Optional[float]) -> Dict[str, Any]:
        mon = self.monitor(sock)
        limit = sock.timeout if timeout is None else timeout
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
            raise BadArgument(f"expected timeout to be a number of seconds >= 0 or None, got {timeout!r}")
        deadline = time.monotonic() + limit
        seen: List[str] = []
        res = self._resources()  # type: ignore[attr-defined]
        while True:
            left = deadline - time.monotonic()
            try:
                frames = mon.recv_multipart(timeout=max(0.0, left))
            except SocketTimeout:
                raise ConnectionTimeout(f"{sock.describe()} was not {what} within {limit:g} s; monitor events "
                                        f"read meanwhile: {', '.join(seen) or 'none'}") from None
            found = parse_monitor_message(frames)
            name = event_name(found["event"])
            endpoint = found["endpoint"].decode(errors="replace")
            seen.append(name)
            res.transcript.note(sock.name, f"monitor: {name} {endpoint}")
            if found["event"] in wanted:
                return dict(found)

    @event
    def wait_connected(self, sock: TestSocket, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Event: wait until *sock* makes (or accepts) a connection; return the monitor event
        (``{'event': ..., 'value': ..., 'endpoint': ...}``). Bounded by *timeout* (default the socket's)."""
        return self._wait_monitor(sock, _CONNECTED, "connected", timeout)

    @event
    def wait_handshake(self, sock: TestSocket, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Event: wait until a ZMTP handshake of *sock* succeeds (the peers can talk); return the monitor event."""
        return self._wait_monitor(sock, _HANDSHAKE, "through a handshake", timeout)

    @event
    def wait_disconnected(self, sock: TestSocket, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Event: wait until a connection of *sock* is lost; return the monitor event."""
        return self._wait_monitor(sock, _DISCONNECTED, "disconnected", timeout)
