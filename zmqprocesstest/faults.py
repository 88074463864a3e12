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

import collections
import errno
import os
import selectors
import shutil
import socket
import struct
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from ._config import scaled
from ._zmtp import Tally, Tracker
from .endpoints import check_loopback
from .events import _BadArgument, event, int_arg, seconds_arg

__unittest = True
__tracebackhide__ = True

__all__ = ["DIRECTIONS", "FaultEvents", "FaultLink", "FaultLinkError", "FlowStats", "LinkStats", "make_link"]

#: The two directions of a link, as :meth:`FaultLink.drop` and :attr:`FaultLink.stats` name them.
DIRECTIONS = ("to_server", "to_client")
_CHUNK = 65536
_R, _W = selectors.EVENT_READ, selectors.EVENT_WRITE
_RESET_LINGER = struct.pack("ii", 1, 0)
_LISTENER = object()


class FaultLinkError(RuntimeError):
    """A fault the link cannot apply (``drop`` on an encrypted link), or a link that is closed or broken."""


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


# -- the parts of a connection ----------------------------------------------------------------
class _Counters(Tally):
    __slots__ = ("messages", "bytes")

    def __init__(self) -> None:
        super().__init__()
        self.messages = 0
        self.bytes = 0


class _End:
    """One socket of a connection: the client's or the target's side."""

    __slots__ = ("sock", "conn", "inflow", "outflow", "mask")

    def __init__(self, sock: socket.socket, conn: "_Conn") -> None:
        self.sock = sock
        self.conn = conn
        self.inflow: Any = None  # the flow that reads from this socket
        self.outflow: Any = None  # the flow that writes to it
        self.mask = 0


class _Flow:
    """One direction of a connection: what is held, in order, with the time each chunk is due."""

    __slots__ = ("src", "dst", "counters", "tracker", "queue", "held", "held_msgs", "eof", "hard")

    def __init__(self, src: _End, dst: _End, counters: _Counters, tracker: Tracker) -> None:
        self.src, self.dst = src, dst
        self.counters = counters
        self.tracker = tracker
        #: Chunks not delivered yet: [due (monotonic), data, messages that end in it].
        self.queue: Deque[List[Any]] = collections.deque()
        self.held = 0
        self.held_msgs = 0
        self.eof = False  # the source closed; close through once the queue is delivered
        self.hard = False  # ... and it closed with a reset


class _Conn:
    __slots__ = ("client", "server", "up", "down", "connecting")

    def __init__(self, client: socket.socket, server: socket.socket, link: "FaultLink", connecting: bool) -> None:
        self.client, self.server = _End(client, self), _End(server, self)
        up, down = Tracker(link._tallies[0], link._on_greeting), Tracker(link._tallies[1], link._on_greeting)
        up.peer, down.peer = down, up
        self.up = _Flow(self.client, self.server, link._tallies[0], up)
        self.down = _Flow(self.server, self.client, link._tallies[1], down)
        self.client.inflow = self.server.outflow = self.up
        self.server.inflow = self.client.outflow = self.down
        self.connecting = connecting


class _Command:
    __slots__ = ("name", "args", "done", "result", "error")

    def __init__(self, name: str, args: Tuple[Any, ...]) -> None:
        self.name, self.args = name, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None


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


def _direction_arg(direction: Any) -> int:
    if direction not in DIRECTIONS:
        raise _BadArgument(f"expected direction to be {' or '.join(map(repr, DIRECTIONS))}, got {direction!r}")
    return DIRECTIONS.index(direction)


def _drop_count(n: Any) -> int:
    int_arg("n", n, "a number of messages (int)", allow_none=False)
    if n < 1:
        raise _BadArgument(f"expected n to be a number of messages >= 1, got {n!r}")
    return int(n)


def _size(n: int) -> str:
    return f"{n} B" if n < 10240 else f"{n / 1024:.1f} KiB" if n < 10485760 else f"{n / 1048576:.1f} MiB"


class FaultLink:
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
    hold_limit: int = 1 << 20

    def __init__(self, target: str, transport: Optional[str] = None, endpoint: Optional[str] = None) -> None:
        _, self._family, self._address = _parse(target, "target")
        #: The real endpoint connections are forwarded to.
        self.target = target
        if endpoint is not None:
            transport_of_endpoint = _parse(endpoint, "endpoint")[0]
            if transport is not None and transport != transport_of_endpoint:
                raise ValueError(f"transport {transport!r} does not match endpoint {endpoint!r}")
            transport = transport_of_endpoint
        transport = transport or _parse(target, "target")[0]
        if transport not in ("tcp", "ipc"):
            raise ValueError(f"expected transport 'tcp' or 'ipc', got {transport!r}")
        self.transport = transport
        self._tmpdir: Optional[str] = None
        if endpoint is None:
            if transport == "ipc":
                self._tmpdir = tempfile.mkdtemp(prefix="zpt-link-")
                endpoint = f"ipc://{self._tmpdir}/link"
            else:
                endpoint = "tcp://127.0.0.1:0"
        check_loopback(endpoint)
        _, self._listen_family, self._listen_address = _parse(endpoint, "endpoint")
        self._tallies = (_Counters(), _Counters())
        self._conns: Set[_Conn] = set()
        self._waiting: Set[_Flow] = set()  # flows whose next chunk is due later (delay)
        self._accepted = self._failed = 0
        self._partitioned = self._refusing = False
        self._delay = 0.0
        self._protocols: Dict[str, None] = {}
        self._reason: Optional[str] = None
        self._notes: List[str] = []
        self._history: List[Tuple[float, str]] = []
        self._commands: Deque[_Command] = collections.deque()
        self._lock = threading.Lock()
        self._wait = scaled(5.0)
        self._crash: Optional[str] = None
        self._final: Optional[LinkStats] = None
        self._closed = False
        self._placeholder: Optional[socket.socket] = None
        self._ipc_path: Optional[str] = None
        self._start = time.monotonic()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._listener: Optional[socket.socket] = None
        try:
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._sel.register(self._wake_r, _R, None)
            listener = self._listen()
            if self._listen_family == socket.AF_UNIX:
                self._ipc_path = self._listen_address
                #: The endpoint clients connect to instead of the target.
                self.endpoint = endpoint
            else:
                host, port = listener.getsockname()[:2]
                self._listen_address = (host, port) + tuple(self._listen_address[2:])
                self.endpoint = f"tcp://{host}:{port}" if ":" not in host else f"tcp://[{host}]:{port}"
        except BaseException:
            self._close_fds()
            raise
        self._thread = threading.Thread(target=self._run, name=f"zmqprocesstest fault link {self.endpoint}",
                                        daemon=True)
        self._thread.start()

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
        count, index = _drop_count(n), _direction_arg(direction)
        self._control("drop", f"drop {count} {direction}", count, index)

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

    def _close_fds(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        for sock in (self._listener, self._placeholder):
            if sock is not None:
                sock.close()
        self._listener = self._placeholder = None
        self._sel.close()
        if self._ipc_path is not None:
            try:
                os.unlink(self._ipc_path)
            except OSError:
                pass
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    # -- talking to the thread -------------------------------------------------------------------
    def _control(self, name: str, label: str, *args: Any) -> Any:
        result = self._command(name, *args)
        self._history.append((round(time.monotonic() - self._start, 3), label))
        return result

    def _command(self, name: str, *args: Any) -> Any:
        if self._closed:
            raise FaultLinkError(f"{self.describe()} is closed")
        if self._crash:
            raise FaultLinkError(f"the thread of {self.describe()} failed:\n{self._crash}")
        cmd = _Command(name, args)
        with self._lock:
            self._commands.append(cmd)
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass
        if not cmd.done.wait(self._wait):
            crash = f"; it failed:\n{self._crash}" if self._crash else ""
            raise FaultLinkError(f"the thread of {self.describe()} did not answer {name!r} within "
                                 f"{self._wait:g} s{crash}")
        if cmd.error is not None:
            raise cmd.error
        return cmd.result

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            self._crash = traceback.format_exc()
            self._notes.append("the link's thread failed; see the traceback in the error")
        finally:
            try:
                self._final = self._snapshot()
                for conn in list(self._conns):
                    self._close_conn(conn, hard=True)
            finally:
                with self._lock:
                    pending, self._commands = list(self._commands), collections.deque()
                for cmd in pending:
                    if cmd.name != "stop":
                        cmd.error = FaultLinkError(f"{self.describe()} is closed")
                    cmd.done.set()

    def _loop(self) -> None:
        select, buf = self._sel.select, bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            timeout = None
            if self._waiting:
                now = time.monotonic()
                for flow in list(self._waiting):
                    if not flow.queue or flow.queue[0][0] <= now:
                        self._flush(flow)
                if self._waiting:
                    timeout = max(0.0, min(f.queue[0][0] for f in self._waiting) - time.monotonic())
            for key, mask in select(timeout):
                end = key.data
                if end is None:
                    if self._handle_commands():
                        return
                elif end is _LISTENER:
                    self._accept()
                elif end.conn in self._conns:
                    if mask & _W:
                        if end.conn.connecting:
                            self._connected(end.conn)
                        else:
                            self._flush(end.outflow)
                    if mask & _R and end.conn in self._conns:
                        self._read(end, buf, view)

    def _handle_commands(self) -> bool:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            commands, self._commands = self._commands, collections.deque()
        stop = False
        for cmd in commands:
            try:
                cmd.result = getattr(self, "_do_" + cmd.name)(*cmd.args)
            except Exception as exc:
                cmd.error = exc
            if cmd.name == "stop":
                stop = True
            cmd.done.set()
        return stop

    def _do_stop(self) -> None:
        self._final = self._snapshot()

    def _do_stats(self) -> LinkStats:
        return self._snapshot()

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

    def _snapshot(self) -> LinkStats:
        flows: List[Any] = [[], []]
        for conn in self._conns:
            flows[0].append(conn.up)
            flows[1].append(conn.down)
        made = []
        for tally, fl in zip(self._tallies, flows):
            made.append(FlowStats(messages=tally.messages, bytes=tally.bytes,
                                  held_messages=sum(f.held_msgs for f in fl), held_bytes=sum(f.held for f in fl),
                                  dropped_messages=tally.dropped_messages, dropped_bytes=tally.dropped_bytes,
                                  drops_armed=tally.armed))
        return LinkStats(to_server=made[0], to_client=made[1], accepted=self._accepted, open=len(self._conns),
                         failed=self._failed)

    def _on_greeting(self, tracker: Tracker) -> None:
        protocol = tracker.protocol
        self._protocols[protocol] = None
        if tracker.reason and not self._reason:
            self._reason = tracker.reason
            armed = [f"{t.armed} {d}" for t, d in zip(self._tallies, DIRECTIONS) if t.armed]
            if armed:
                self._notes.append(f"drops armed ({', '.join(armed)}) cannot apply: {tracker.reason}")

    # -- connections -----------------------------------------------------------------------------
    def _listen(self) -> socket.socket:
        listener = socket.socket(self._listen_family, socket.SOCK_STREAM)
        try:
            if self._listen_family != socket.AF_UNIX:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(self._listen_address)
            listener.listen(128)
            listener.setblocking(False)
            self._sel.register(listener, _R, _LISTENER)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        return listener

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:  # the client gave up already
                    continue
                raise  # out of file descriptors...: the thread fails, and the test hears of it
            self._accepted += 1
            client.setblocking(False)
            server = socket.socket(self._family, socket.SOCK_STREAM)
            server.setblocking(False)
            for sock in (client, server):
                if sock.family != socket.AF_UNIX:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = server.connect_ex(self._address)
            if code not in (0, errno.EINPROGRESS):
                self._failed += 1
                self._notes.append(f"connection {self._accepted}: the target refused it "
                                   f"({os.strerror(code)}); closed the client's at once")
                server.close()
                client.close()
                continue
            conn = _Conn(client, server, self, connecting=code != 0)
            self._conns.add(conn)
            self._sync(conn.server)
            if not conn.connecting:
                self._sync(conn.client)

    def _connected(self, conn: _Conn) -> None:
        code = conn.server.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._failed += 1
            self._notes.append(f"a connection to the target failed ({os.strerror(code)}); closed the client's")
            self._close_conn(conn, hard=True)
            return
        conn.connecting = False
        self._sync(conn.server)
        self._sync(conn.client)

    def _close_conn(self, conn: _Conn, hard: bool) -> None:
        self._conns.discard(conn)
        for end in (conn.client, conn.server):
            self._waiting.discard(end.inflow)
            if end.mask:
                self._sel.unregister(end.sock)
                end.mask = 0
            if hard and end.sock.family != socket.AF_UNIX:
                try:
                    end.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_LINGER)
                except OSError:
                    pass
            end.sock.close()

    def _sync(self, end: _End) -> None:
        """Register *end* for what it waits for now: data to read, room to write."""
        conn = end.conn
        if conn.connecting:
            mask = _W if end is conn.server else 0
        else:
            inflow, outflow = end.inflow, end.outflow
            mask = _R if not inflow.eof and inflow.held < self.hold_limit else 0
            if outflow.queue and not self._partitioned and outflow not in self._waiting:
                mask |= _W
        if mask != end.mask:
            if not end.mask:
                self._sel.register(end.sock, mask, end)
            elif not mask:
                self._sel.unregister(end.sock)
            else:
                self._sel.modify(end.sock, mask, end)
            end.mask = mask

    # -- forwarding ------------------------------------------------------------------------------
    def _read(self, end: _End, buf: bytearray, view: memoryview) -> None:
        flow = end.inflow
        try:
            n = end.sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n, flow.hard = 0, True
        if not n:
            flow.eof = True
            self._flush(flow)
            return
        msgs, segs = flow.tracker.feed(view, n)
        if segs is None:
            data: Any = view[:n]
        else:
            data = b"".join(view[a:b] for a, b in segs)
            n = len(data)
            if not n:
                return
        if not flow.queue and not self._partitioned and not self._delay:
            try:
                sent = flow.dst.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close_conn(end.conn, hard=True)
                return
            flow.counters.bytes += sent
            if sent == n:
                flow.counters.messages += msgs
                return
            flow.queue.append([0.0, bytes(data[sent:]), msgs])
            flow.held += n - sent
        else:
            flow.queue.append([time.monotonic() + self._delay if self._delay else 0.0, bytes(data), msgs])
            flow.held += n
        flow.held_msgs += msgs
        self._flush(flow)

    def _flush(self, flow: _Flow) -> None:
        """Deliver what *flow* holds and is due; close through after an end of stream."""
        queue, sock, counters = flow.queue, flow.dst.sock, flow.counters
        if self._partitioned:
            self._waiting.discard(flow)
        else:
            later, now = False, 0.0
            while queue:
                entry = queue[0]
                if entry[0]:
                    now = now or time.monotonic()
                    if entry[0] > now:
                        later = True
                        break
                data = entry[1]
                try:
                    sent = sock.send(data)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    self._close_conn(flow.src.conn, hard=True)
                    return
                counters.bytes += sent
                flow.held -= sent
                if sent < len(data):
                    entry[1] = memoryview(data)[sent:]
                    break
                queue.popleft()
                counters.messages += entry[2]
                flow.held_msgs -= entry[2]
            if later:
                self._waiting.add(flow)
            else:
                self._waiting.discard(flow)
            if flow.eof and not queue:
                self._close_conn(flow.src.conn, hard=flow.hard)
                return
        self._sync(flow.src)
        self._sync(flow.dst)


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
