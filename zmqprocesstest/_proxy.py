"""A byte-forwarding TCP/ipc proxy on one selector thread, with controllable stalls, resets and drops.

A :class:`Proxy` forwards each connection made to its listening socket to a new connection
to its target, byte for byte, on one background thread (non-blocking sockets,
:mod:`selectors`); each direction holds what it cannot deliver yet, in order, with the time
each chunk is due. The state the faults switch is the thread's alone: another thread asks
it with :meth:`Proxy._command`, which runs ``_do_<name>`` there and waits for the answer.
The engine of :class:`~zmqprocesstest.faults.FaultLink`, which adds the faults and what a test reads.
"""
from __future__ import annotations

import collections
import errno
import os
import selectors
import shutil
import socket
import struct
import threading
import time
import traceback
from typing import Any, Deque, List, Optional, Set, Tuple

from ._config import scaled
from ._zmtp import Tally, Tracker

__unittest = True
__tracebackhide__ = True

_CHUNK = 65536
_R, _W = selectors.EVENT_READ, selectors.EVENT_WRITE
_RESET_LINGER = struct.pack("ii", 1, 0)
_LISTENER = object()


class FaultLinkError(RuntimeError):
    """A fault the link cannot apply (``drop`` on an encrypted link), or a link that is closed or broken."""

    __module__ = "zmqprocesstest.faults"  # where the public API names it


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

    def __init__(self, client: socket.socket, server: socket.socket, link: "Proxy", connecting: bool) -> None:
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


class Proxy:
    """Listens on *listen* and forwards each connection to a new connection to *target*, on one thread.

    *target* and *listen* are ``(family, address)``; a tcp *listen* may ask for port 0 (a
    free one: :attr:`endpoint` says which). *tmpdir*, the proxy's own, goes when it closes.
    """

    #: Bytes a direction of a connection may hold before the proxy stops reading from that side.
    hold_limit: int = 1 << 20

    def __init__(self, target: Tuple[int, Any], listen: Tuple[int, Any], tmpdir: Optional[str] = None) -> None:
        (self._family, self._address), (self._listen_family, self._listen_address) = target, listen
        self._tmpdir = tmpdir
        self._tallies = (_Counters(), _Counters())
        self._conns: Set[_Conn] = set()
        self._waiting: Set[_Flow] = set()  # flows whose next chunk is due later (delay)
        self._accepted = self._failed = 0
        self._partitioned = self._refusing = False
        self._delay = 0.0
        self._notes: List[str] = []
        self._commands: Deque[_Command] = collections.deque()
        self._lock = threading.Lock()
        self._wait = scaled(5.0)
        self._crash: Optional[str] = None
        self._final: Any = None  # _do_stats() when the thread ended
        self._closed = False
        self._placeholder: Optional[socket.socket] = None
        self._ipc_path: Optional[str] = None
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
                self.endpoint = f"ipc://{self._listen_address}"
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

    # -- what the subclass adds ------------------------------------------------------------------
    def describe(self) -> str:
        """The proxy, for messages."""
        return f"proxy {self.endpoint}"

    def _do_stats(self) -> Any:
        """The figures (what the stats command answers, kept when the thread ends)."""

    def _on_greeting(self, tracker: Tracker) -> None:
        """A greeting went through: *tracker* knows the protocol now."""

    # -- closing ---------------------------------------------------------------------------------
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
                self._final = self._do_stats()
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
        self._final = self._do_stats()

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
