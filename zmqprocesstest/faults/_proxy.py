"""A byte-forwarding TCP/ipc proxy on one selector thread, with controllable stalls, resets and drops.

A :class:`Proxy` forwards each connection made to its listening socket to a new connection
to its target, byte for byte, on one background thread (non-blocking sockets,
:func:`select.poll`); each direction holds what it cannot deliver yet, in order, with the time
each chunk is due (:mod:`zmqprocesstest.faults._connection`). The state the faults switch, and
the handlers that switch it (``_do_<name>``), are the thread's alone: another thread asks
with :meth:`Proxy.command`, which runs the handler there and waits for the answer. The engine of
:class:`~zmqprocesstest.faults.FaultLink`, which checks the faults' arguments, keeps their
history and tells a test what the link did.
"""
from __future__ import annotations

import errno
import os
import shutil
import socket
import struct
import threading
import time
import traceback
from typing import Any, Dict, List, Optional, Set, Tuple

from .._config import LINK_WAIT, scaled
from ._channel import Channel
from ._connection import READ as _R, WRITE as _W, Conn, Counters, End, Flow, Listener, Poller, accept
from ._seeded import MESSAGE_FAULTS, apply_fault, describe_faults
from ._zmtp import Reader, Tracker

__unittest = True
__tracebackhide__ = True

_CHUNK = 65536
_RESET_LINGER = struct.pack("ii", 1, 0)
_LISTENER = object()
#: The two directions, in the order of the proxy's tallies and figures.
DIRECTIONS = ("to_server", "to_client")

__all__ = ["DIRECTIONS", "FaultLinkError", "Proxy"]


class FaultLinkError(RuntimeError):
    """A fault the link cannot apply (``drop`` on an encrypted link), or a link that is closed or broken."""

    __module__ = "zmqprocesstest.faults"  # where the public API names it


class Proxy:
    """Listens on *listen* and forwards each connection to a new connection to *target*, on one thread.

    *target* and *listen* are ``(family, address)``; a tcp *listen* may ask for port 0 (a
    free one: :attr:`endpoint` says which). *name* is the target as messages show it.
    *tmpdir*, the proxy's own, goes when it closes. With *tap* (a tap's sink, see
    :class:`~zmqprocesstest.faults._zmtp.Reader`; and its bounds ``keep`` and ``head``)
    each direction of each connection is read, on the thread, from the bytes it delivers.

    The package talks to it through :meth:`command` (``partition``, ``heal``, ``reset``,
    ``refuse``, ``delay``, ``drop``, ``seeded``, ``rewrite``: run on its thread), :meth:`figures`, :meth:`findings`,
    :attr:`state`, :meth:`describe`, :meth:`close` and :attr:`hold_limit`.
    """

    #: Bytes a direction of a connection may hold before the proxy stops reading from that side.
    hold_limit: int = 1 << 20

    def __init__(self, target: Tuple[int, Any], listen: Tuple[int, Any], name: str,
                 tmpdir: Optional[str] = None, tap: Any = None) -> None:
        self._family, self._address = target
        self._tap = tap
        self._name = name
        self._tmpdir = tmpdir
        self._protocols: Dict[str, None] = {}
        self._reason: Optional[str] = None  # why messages are not visible (CURVE, ZMTP 2.0)
        self._tallies = (Counters(), Counters())
        self._conns: Set[Conn] = set()
        self._waiting: Set[Flow] = set()  # flows whose next chunk is due later (delay)
        self._accepted = self._failed = 0
        self._refusing = False
        self._notes: List[str] = []
        self._wait = scaled(LINK_WAIT)
        self._crash: Optional[str] = None
        self._final: Any = None  # _do_stats() when the thread ended
        self._closed = False
        self._sel = Poller()
        self._channel = Channel()
        self._listener: Optional[Listener] = None
        try:
            self._sel.register(self._channel.wake_fd, _R, None)
            self._listener = Listener(*listen)
            self._sel.register(self._listener.sock, _R, _LISTENER)
        except BaseException:
            self._close_fds()
            raise
        #: Where clients connect.
        self.endpoint = self._listener.endpoint
        self._thread = threading.Thread(target=self._run, name=f"zmqprocesstest fault link {self.endpoint}",
                                        daemon=True)
        self._thread.start()

    # -- what the package reads -----------------------------------------------------------------
    def describe(self) -> str:
        """``fault link tcp://127.0.0.1:4242 -> ipc://... (partitioned)`` for messages."""
        return f"fault link {self.endpoint} -> {self._name} ({self.state})"

    @property
    def state(self) -> str:
        """``'forwarding'`` or ``'partitioned'``, with ``', refusing'`` and the delay if any."""
        paused = [d for t, d in zip(self._tallies, DIRECTIONS) if t.paused]
        state = "forwarding" if not paused else "partitioned" if len(paused) == 2 else f"partitioned {paused[0]} only"
        if self._refusing:
            state += ", refusing new connections"
        return state + describe_faults(self._tallies, DIRECTIONS) + (", closed" if self._closed else "")

    def findings(self) -> Tuple[Optional[str], List[str], Optional[str], List[str]]:
        """For reports: the thread's traceback if it failed, the protocols seen, why messages
        are not visible (CURVE, ZMTP 2.0) if they are not, and what the thread noticed."""
        return self._crash, list(self._protocols), self._reason, list(self._notes)

    def errors(self) -> List[str]:
        """What the drops' *match* predicates raised (the messages went on), in order."""
        return [error for tally in self._tallies for error in list(tally.errors)]

    def figures(self) -> Any:
        """``(to_server, to_client, accepted, open, failed)``, each direction as a dict of the
        fields of :class:`~zmqprocesstest.faults.FlowStats` (``messages``, ``bytes``,
        ``held_messages``..., and what the faults counted in :attr:`~zmqprocesstest.faults._zmtp.Tally.counts`); after
        :meth:`close`, as they were when it closed."""
        return self._final if self._final is not None else self.command("stats")

    # -- closing ---------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Stop the thread, close every connection (hard) and the listener, remove the ipc
        socket file. Idempotent.

        :raises FaultLinkError: the thread failed (with its traceback), or did not stop
            within its bound (5 s, scaled).
        """
        if self._closed:
            return
        try:
            if self._thread.is_alive() and not self._crash:
                self.command("stop")
            self._thread.join(self._wait)
            if self._thread.is_alive():
                raise FaultLinkError(f"the thread of {self.describe()} did not stop within {self._wait:g} s")
        finally:
            self._closed = True
            if not self._thread.is_alive():
                self._close_fds()
        if self._crash:
            raise FaultLinkError(f"the thread of {self.describe()} failed:\n{self._crash}")

    def _close_fds(self) -> None:
        self._channel.close()
        if self._listener is not None:
            self._listener.close()
        self._sel.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    # -- talking to the thread -------------------------------------------------------------------
    def command(self, name: str, *args: Any) -> Any:
        """Run the handler ``_do_<name>`` on the thread, wait (bounded) and return its answer.

        :raises FaultLinkError: the proxy is closed, or its thread failed or did not answer.
        """
        if self._closed:
            raise FaultLinkError(f"{self.describe()} is closed")
        if self._crash:
            raise FaultLinkError(f"the thread of {self.describe()} failed:\n{self._crash}")
        answered, result = self._channel.ask(name, args, self._wait)
        if not answered:
            crash = f"; it failed:\n{self._crash}" if self._crash else ""
            raise FaultLinkError(f"the thread of {self.describe()} did not answer {name!r} within "
                                 f"{self._wait:g} s{crash}")
        return result

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            self._crash = traceback.format_exc()
            self._notes.append("the link's thread failed; see the traceback in the error")
        finally:
            try:
                self._final = self._do_stats()
                for conn in list(self._conns):
                    self._close_conn(conn, hard=True)
            finally:
                self._channel.cancel(
                    lambda name: None if name == "stop" else FaultLinkError(f"{self.describe()} is closed"))

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
            for end, mask in select(timeout):
                if end is None:
                    if self._channel.serve(self._handle, last="stop"):
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

    def _handle(self, name: str, *args: Any) -> Any:
        return getattr(self, "_do_" + name)(*args)

    # -- the handlers, on the thread ---------------------------------------------------------------
    def _do_stop(self) -> None:
        self._final = self._do_stats()

    def _do_stats(self) -> Any:
        flows = []
        for tally, fl in zip(self._tallies, ([c.up for c in self._conns], [c.down for c in self._conns])):
            flows.append(dict(messages=tally.messages, bytes=tally.bytes, held_messages=sum(f.held_msgs for f in fl),
                              held_bytes=sum(f.held for f in fl), dropped_messages=tally.dropped_messages,
                              dropped_bytes=tally.dropped_bytes, drops_armed=tally.drops_armed,
                              lost_messages=tally.lost_messages, duplicated_messages=tally.duplicated_messages,
                              cuts=tally.cuts, **tally.counts))
        return flows[0], flows[1], self._accepted, len(self._conns), self._failed

    def _do_partition(self, indexes: Tuple[int, ...] = (0, 1)) -> None:
        for index in indexes:
            self._tallies[index].paused = True
        self._waiting = {flow for flow in self._waiting if not flow.counters.paused}
        for conn in self._conns:
            self._sync(conn.client)
            self._sync(conn.server)

    def _do_heal(self) -> None:
        for tally in self._tallies:
            tally.paused = False
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
        listener = self._listener
        assert listener is not None
        if on == self._refusing:
            return
        if on:
            if listener.sock is not None:
                self._sel.unregister(listener.sock)
            listener.refuse()
        else:
            self._sel.register(listener.listen(), _R, _LISTENER)
        self._refusing = on

    def _do_delay(self, seconds: float) -> None:
        for tally in self._tallies:
            tally.pace.delay = seconds
            tally.paced = tally.pace.active

    def _do_seeded(self, what: str, indexes: Tuple[int, ...], *args: Any) -> None:
        if what in MESSAGE_FAULTS and self._reason:
            raise FaultLinkError(f"{what}() cannot apply to {self.describe()}: {self._reason}; only the "
                                 "connection-level faults apply (partition, heal, reset, refuse, delay, jitter, rate)")
        for index in indexes:
            apply_fault(self._tallies[index], what, *args)

    def _do_rewrite(self, what: str, indexes: Tuple[int, ...], make: Any) -> None:
        """Set (or, when ``make(tally)`` is ``None``, remove) the message rewrite *what* of each
        direction in *indexes*: the fault's own object (see :attr:`~zmqprocesstest.faults._zmtp.Tally.rewrites`)."""
        if self._reason:
            raise FaultLinkError(f"{what}() cannot apply to {self.describe()}: {self._reason}; only the "
                                 "connection-level faults apply (partition, heal, reset, refuse, delay, jitter, rate)")
        for index in indexes:
            tally = self._tallies[index]
            rewrite = make(tally)
            if rewrite is None:
                tally.rewrites.pop(what, None)
            else:
                tally.rewrites[what] = rewrite

    def _do_drop(self, n: int, index: int, connection: Optional[int] = None, match: Any = None) -> None:
        if self._reason:
            raise FaultLinkError(f"drop() cannot apply to {self.describe()}: {self._reason}; only the connection-level "
                                 "faults apply (partition, heal, reset, refuse, delay)")
        if connection is None and match is None:
            self._tallies[index].armed += n
        else:
            self._tallies[index].aimed.append([n, connection, match])

    def _on_greeting(self, tracker: Tracker) -> None:
        self._protocols[tracker.protocol] = None
        if tracker.reason and not self._reason:
            self._reason = tracker.reason
            armed = [f"{t.drops_armed} {d}" for t, d in zip(self._tallies, DIRECTIONS) if t.drops_armed]
            if armed:
                self._notes.append(f"drops armed ({', '.join(armed)}) cannot apply: {tracker.reason}")

    # -- connections -----------------------------------------------------------------------------
    def _accept(self) -> None:
        while self._listener is not None and self._listener.sock is not None:
            try:
                client, server = accept(self._listener.sock, self._family)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:  # the client gave up already
                    continue
                raise  # out of file descriptors...: the thread fails, and the test hears of it
            self._accepted += 1
            client.setblocking(False)
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
            conn = Conn(client, server, self._tallies, self._on_greeting, connecting=code != 0, number=self._accepted)
            tap = self._tap
            if tap is not None:
                for index, flow in enumerate((conn.up, conn.down)):
                    flow.reader = Reader(tap, flow.tracker, index, conn.number, tap.keep, tap.head)
            self._conns.add(conn)
            self._sync(conn.server)
            if not conn.connecting:
                self._sync(conn.client)

    def _connected(self, conn: Conn) -> None:
        code = conn.server.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._failed += 1
            self._notes.append(f"a connection to the target failed ({os.strerror(code)}); closed the client's")
            self._close_conn(conn, hard=True)
            return
        conn.connecting = False
        self._sync(conn.server)
        self._sync(conn.client)

    def _close_conn(self, conn: Conn, hard: bool) -> None:
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

    def _sync(self, end: End) -> None:
        """Register *end* for what it waits for now: data to read, room to write."""
        conn = end.conn
        if conn.connecting:
            mask = _W if end is conn.server else 0
        else:
            inflow, outflow = end.inflow, end.outflow
            mask = _R if not inflow.eof and inflow.held < self.hold_limit else 0
            if outflow.queue and not outflow.counters.paused and outflow not in self._waiting:
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
    def _read(self, end: End, buf: bytearray, view: memoryview) -> None:
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
        counters, cut = flow.counters, flow.tracker.cut
        if segs is None:
            data: Any = view[:n]
        else:
            data = b"".join(segs)
            n = len(data)
            if cut:
                flow.eof = True  # a byte budget was reached: close through after what goes on
            elif not n:
                return
        if not flow.queue and not counters.paused and not counters.paced and not cut:
            if flow.reader is not None:  # a tap: recorded as it goes out, before its peer can have it
                flow.reader.feed(data)
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
            flow.queue.append([0.0, bytes(data[sent:]), msgs, True])
            flow.held += n - sent
        else:
            flow.queue.append([counters.pace.due(time.monotonic(), n) if counters.paced else 0.0, bytes(data), msgs,
                               False])
            flow.held += n
        flow.held_msgs += msgs
        self._flush(flow)

    def _flush(self, flow: Flow) -> None:
        """Deliver what *flow* holds and is due; close through after an end of stream."""
        queue, sock, counters = flow.queue, flow.dst.sock, flow.counters
        if flow.counters.paused:
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
                if not entry[3] and flow.reader is not None:  # a tap: recorded as it starts to go out
                    entry[3] = True
                    flow.reader.feed(data)
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
