"""Test sockets: pyzmq sockets whose send and recv never block forever.

A :class:`TestSocket` waits with :func:`zmq.zmq_poll` (never a sleep loop), so a
message that is already queued is returned at once, and a message that never comes
raises :class:`SocketTimeout` after ``timeout`` seconds. While it waits it also watches
the processes under test (see :mod:`zmqprocesstest.processes`), so a crash ends the wait
at once instead of after the timeout. A receive is first libzmq's own blocking one,
bounded by ``RCVTIMEO`` (as cheap as raw pyzmq): for the whole wait if there is no
process to watch, else for :data:`FIRST_SLICE` (a crash is noticed at most that late).

In a coroutine test its awaitable face, :class:`AsyncTestSocket` (``sock.asyncio``),
waits on the running event loop instead: libzmq's fd is a reader of the loop, and the
test's death watch ends the wait (:mod:`zmqprocesstest.coroutines`).
"""
from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from asyncio import AbstractEventLoop
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple, Union

import zmq
from zmq import zmq_poll

from . import _perturb, codecs as _codecs
from ._config import DEFAULT_TIMEOUT, WAIT_SLICE, Timeout, check_seconds, scaled
from .codecs import Codec
from .endpoints import Endpoint, check_loopback, endpoint_list
from .report import timeline as _timeline
from .report.timeline import short, short_frames, type_name

__unittest = True
__tracebackhide__ = True

#: How long a recv on a socket that watches processes blocks in libzmq before it polls
#: their exits too (seconds): the most a crash can go unnoticed at the start of a wait.
FIRST_SLICE = 0.005
#: After a watched process exited, how long each look at the socket lasts before it is
#: checked again whether libzmq has read the dead process's connections to their end.
DRAIN_LOOK = 0.001

__all__ = ["AsyncTestSocket", "SocketTimeout", "TestSocket", "Watch", "decode_json", "make_sock"]

_SEND_ONLY = frozenset({int(zmq.PUB), int(zmq.PUSH)})
_STRICT = frozenset({int(zmq.REQ), int(zmq.REP)})
_POLLIN, _POLLOUT, _NOBLOCK, _RCVTIMEO = int(zmq.POLLIN), int(zmq.POLLOUT), int(zmq.NOBLOCK), int(zmq.RCVTIMEO)
_EVENTS = int(zmq.EVENTS)
_RECV_ONLY = frozenset({int(zmq.SUB), int(zmq.PULL)})


class SocketTimeout(Timeout):
    """A test socket could not send or receive within its timeout.

    A :class:`~zmqprocesstest.Timeout`, so an :class:`AssertionError`: unittest reports
    it as a *failure* of the test (the process did not answer as expected), not as an
    error in the test.
    The message names the socket, the operation, the event being handled, the timeout
    and the last message received on that socket.
    """

    def __init__(self, sock: "TestSocket", operation: str, timeout: float, began: Optional[float] = None) -> None:
        super().__init__(sock.describe(), operation, timeout)
        #: When the wait that timed out began and ended (``time.monotonic()``).
        self.ended = time.monotonic()
        self.began = self.ended - timeout if began is None else began
        #: The :class:`TestSocket` that timed out.
        self.socket = sock
        #: The socket method (``"recv_multipart"``...).
        self.operation = operation
        #: The timeout in seconds.
        self.timeout = timeout
        #: Set by the event loop to the event that was being handled.
        self.event: Optional[str] = None
        #: Set by the event loop: when that event began (``time.monotonic()``).
        self.event_began: Optional[float] = None
        # The failure report, on Python < 3.11 (no add_note); see _compat.add_note.
        self._notes: List[str] = []
        if operation != "poll":  # a poll that finds nothing is an answer, not a failed wait
            _timeline.record("timeout", sock.name, f"{operation} after {timeout:g} s")

    def __reduce__(self) -> Any:
        # Pickled (a parallel runner carries failures to its controller) as the message
        # it shows: the socket itself cannot be pickled.
        return _unpickled_timeout, (str(self), self.operation, self.timeout, self.event)

    def __str__(self) -> str:
        sock = self.socket
        if isinstance(sock, str):
            return sock  # unpickled: the message as it was
        during = f" (event {self.event!r})" if self.event else ""
        last = sock.show(sock.last_received) if sock.last_received is not None else "nothing"
        after = f"{self.timeout:g} s"
        if self.event_began is not None and self.began - self.event_began > self.timeout * 0.1 + 0.005:
            # The event waited before this wait began (its own overall deadline): what it
            # was given matters, not the remainder its last wait had.
            after = (f"{self.ended - self.event_began:.3g} s into the event (its last wait, of {self.timeout:.3g} s, "
                     "ran out)")
        return (
            f"{self.operation} on {sock.describe()}{during} timed out after {after}; last received on it: {last}"
        ) + "".join("\n" + note for note in self._notes)


def _unpickled_timeout(text: str, operation: str, timeout: float, event: Optional[str]) -> SocketTimeout:
    exc = SocketTimeout.__new__(SocketTimeout)
    AssertionError.__init__(exc, text, operation, timeout)
    exc.socket, exc.operation, exc.timeout, exc.event = text, operation, timeout, event  # type: ignore[assignment]
    exc.event_began, exc._notes = None, []  # the notes are in text already
    return exc


class Watch(Protocol):
    """What a test socket watches besides itself while it waits: the processes under test.

    The test's resources implement it; a socket made with :func:`make_sock` alone has none.
    """

    #: If set, wake at least this often (seconds) to :meth:`check` (a process with no fd).
    poll_slice: Optional[float]

    def fds(self) -> Tuple[int, ...]:
        """File descriptors that become readable when a watched process exits."""

    def check(self) -> None:
        """Raise :class:`~zmqprocesstest.ProcessDied` if a watched process has died."""

    def exit_grace(self) -> float:
        """The most seconds to go on reading the socket after a watched process exited, for
        what it sent just before (0 if each one that exited was killed by a signal)."""

    def exit_drained(self) -> Optional[bool]:
        """Whether everything the exited processes sent has reached the test's sockets
        (their connections read to the end): then one more read, and the death is
        reported. ``None`` if that cannot be known: the socket is read for the whole
        :meth:`exit_grace`."""


class TestSocket:
    """A pyzmq socket whose send and recv methods time out instead of blocking.

    Every ``send*``/``recv*`` method of :class:`zmq.Socket` is available with an extra
    keyword ``timeout`` (seconds; ``None`` uses the socket's :attr:`timeout`). Anything
    else (``bind``, ``setsockopt``, ``getsockopt``, ``subscribe``...) passes through to
    the wrapped :attr:`sock`.

    :param sock: the pyzmq socket to wrap.
    :param timeout: default timeout in seconds for send and recv.
    :param name: a short name for reports (default: the socket type).
    :param codec: how the ``send`` and ``recv`` events encode and decode its messages,
        and how the reports show them (default :data:`zmqprocesstest.codecs.json`).
    """

    __test__ = False  # not a test class, whatever its name
    #: Called with ``(direction, frames)`` for each message ("sent"/"received").
    recorders: Sequence[Callable[[str, Any], None]] = ()

    def __init__(self, sock: zmq.Socket, timeout: Optional[float] = None, name: Optional[str] = None,
                 codec: Optional[Codec] = None) -> None:
        #: The wrapped :class:`zmq.Socket`.
        self.sock = sock
        #: Default send/recv timeout in seconds.
        self.timeout: float = (scaled(DEFAULT_TIMEOUT) if timeout is None
                               else check_seconds(timeout, "the timeout of a TestSocket"))
        #: The zmq socket type (``zmq.REQ``...).
        self.socket_type: int = int(sock.type)
        #: Name used in messages and the timeline.
        self.name = name or type_name(self.socket_type)
        #: ``"bind ..."``/``"connect ..."`` entries, for messages.
        self.endpoints: List[str] = []
        #: The last multipart message received (for timeout reports), or ``None``.
        self.last_received: Optional[List[Any]] = None
        #: Whether its messages go into the running test's timeline (a monitor's do not:
        #: the waits that read them note them readably).
        self.recorded = True
        self.watch: Optional[Watch] = None
        self.owner: Any = None
        self._poll_key: Any = None
        self._items: Optional[List[Tuple[Any, int]]] = None
        self._rcvtimeo: Optional[int] = None  # what RCVTIMEO was last set to
        self._asyncio: Optional[AsyncTestSocket] = None
        self._reader_loop: Any = None  # the event loop that has the socket's fd as a reader
        self._waiter: Any = None  # the future of the wait_async in progress
        self._fd = -1  # libzmq's fd of the socket, once it is a loop's reader
        # One timer of the loop per socket bounds its waits (see _await_ready): when it
        # fires, and the deadline of the wait in progress (_deadline), if any.
        self._timer: Any = None
        self._timer_at = 0.0
        self._deadline = 0.0
        #: Whether :meth:`bind` may bind off loopback (``make_sock(allow_remote=True)``).
        self.allow_remote = False
        if codec is not None and not all(callable(getattr(codec, op, None)) for op in ("encode", "decode", "render")):
            raise TypeError(f"expected a codec (an object with encode, decode and render methods, see "
                            f"zmqprocesstest.codecs), got {codec!r}")
        #: The codec of the ``send`` and ``recv`` events and of the reports.
        self.codec: Codec = _codecs.json if codec is None else codec
        # How the timeline records a message: the json codec keeps a bounded copy of the
        # frames (rendered for a report only), any other its rendering (made now: the
        # frames are not kept).
        self._render = None if isinstance(self.codec, _codecs.JsonCodec) else self.codec.render

    def show(self, frames: Any) -> str:
        """A message of this socket as the reports show it (its codec's rendering)."""
        if self._render is None:
            return short_frames(frames)
        return self.rendered(frames)

    def rendered(self, frames: Any) -> str:
        """The codec's rendering of *frames*, bounded, never raising."""
        try:
            text = str(self.codec.render(frames))
        except Exception as exc:  # a codec's own render failed: the frames, and why
            text = f"{short_frames(frames)} (codec {getattr(self.codec, 'name', '?')} could not render it: {exc!r})"
        cut = _codecs.RENDER_CHARS
        return text if len(text) <= cut else text[:cut - 3] + "..."

    # -- description ----------------------------------------------------------------
    def describe(self) -> str:
        """``socket 'req' (REQ, connect ipc:///tmp/...)`` for messages."""
        where = ", ".join(self.endpoints) or "not bound or connected"
        return f"socket {self.name!r} ({type_name(self.socket_type)}, {where})"

    def __repr__(self) -> str:
        state = " closed" if self.sock.closed else ""
        return f"<TestSocket {self.describe()}{state}>"

    def __getattr__(self, attr: str) -> Any:
        raw = getattr(self.sock, attr)
        if attr.startswith(("send", "recv")) and callable(raw):
            # A send*/recv* of zmq.Socket not wrapped below (recv_into, *_serialized,
            # newer ones): bounded all the same, never handed over raw.
            return functools.partial(self._bounded, raw, attr)
        return raw

    def _bounded(self, method: Callable[..., Any], operation: str, *args: Any, timeout: Optional[float] = None,
                 **kwargs: Any) -> Any:
        receiving = operation.startswith("recv")
        result = self._call(method, _POLLIN if receiving else _POLLOUT, operation, timeout, *args, **kwargs)
        self._record("received" if receiving else "sent", result if receiving else (args[0] if args else None))
        return result

    def _record(self, direction: str, frames: Any) -> None:
        """Into the running test's timeline, and to each recorder (a history, see
        :meth:`zmqprocesstest.history.History.record`)."""
        if self.recorded:
            if self._render is not None and _timeline.current() is not None:
                _timeline.record(direction, self.name, _timeline.Rendered(self.rendered(frames)))
            else:
                _timeline.record(direction, self.name, frames)
        for recorder in self.recorders:
            recorder(direction, frames)

    # -- bind/connect (recorded for reports) ------------------------------------------
    def bind(self, endpoint: str) -> None:
        """Bind to *endpoint*: on loopback only unless :attr:`allow_remote` (as ``bind=``).

        :raises ValueError: for a ``tcp``/``ws``/``wss``/``udp`` endpoint off loopback
            (``*``, ``0.0.0.0``, an interface name, another address).
        """
        if not self.allow_remote:
            check_loopback(endpoint)
        self.sock.bind(endpoint)
        self.endpoints.append("bind " + self.sock.getsockopt_string(zmq.LAST_ENDPOINT))

    def bind_to_random_port(self, addr: str, *args: Any, **kwargs: Any) -> int:
        """pyzmq's :meth:`zmq.Socket.bind_to_random_port`, on loopback only unless
        :attr:`allow_remote` (``addr`` like ``"tcp://127.0.0.1"``); returns the port.

        :raises ValueError: for an *addr* off loopback.
        """
        if not self.allow_remote:
            check_loopback(f"{addr}:0" if isinstance(addr, str) else addr)
        port = int(self.sock.bind_to_random_port(addr, *args, **kwargs))
        self.endpoints.append("bind " + self.sock.getsockopt_string(zmq.LAST_ENDPOINT))
        return port

    def connect(self, endpoint: str) -> None:
        if _perturb.hook is not None: _perturb.hook("connect", self.name)  # noqa: E701 - stress (zmqprocesstest.runs._stress)
        self.sock.connect(endpoint)
        self.endpoints.append("connect " + endpoint)

    @property
    def last_endpoint(self) -> str:
        """The endpoint of the last bind, with the real port for ``tcp://...:0``."""
        return self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def close(self, linger: Optional[int] = 0) -> None:
        """Close with ``linger=0`` by default, so a test never hangs on close."""
        self._drop_reader()
        self.sock.close(linger=linger)
        if self._waiter is not None:  # a task awaits it: told at once, not at its timeout
            _wake(self._waiter)

    @property
    def closed(self) -> bool:
        return self.sock.closed

    # -- waiting --------------------------------------------------------------------
    def check_usable(self, receiving: bool) -> None:
        """Raise a clear error for a closed socket or the wrong direction."""
        if self.sock.closed:
            raise ValueError(f"{self.describe()} is closed; make a new one with self.socket()")
        if receiving and self.socket_type in _SEND_ONLY:
            raise TypeError(f"cannot receive on {self.describe()}: a {type_name(self.socket_type)} socket only "
                            "sends; expected a socket type that receives (SUB, PULL, REQ, REP, DEALER, ROUTER, "
                            "PAIR, XPUB, XSUB)")
        if not receiving and self.socket_type in _RECV_ONLY:
            raise TypeError(f"cannot send on {self.describe()}: a {type_name(self.socket_type)} socket only "
                            "receives; expected a socket type that sends (PUB, PUSH, REQ, REP, DEALER, ROUTER, "
                            "PAIR, XPUB, XSUB)")

    def _poll_items(self, fds: Tuple[int, ...], flag: int) -> List[Tuple[Any, int]]:
        # zmq_poll's item list, rebuilt only when the watched fds change.
        key = (fds, flag)
        if key != self._poll_key or self._items is None:
            self._items = [(self.sock, flag)] + [(fd, _POLLIN) for fd in fds]
            self._poll_key = key
        return self._items

    def wait(self, flag: int, operation: str, timeout: Optional[float], deadline: Optional[float] = None) -> int:
        """Block until the socket can send (``POLLOUT``) or recv (``POLLIN``).

        Returns the socket's poll events. *deadline* (``time.monotonic()``) overrides
        *timeout*, which is then only reported.

        :raises SocketTimeout: nothing happened within *timeout*.
        :raises ProcessDied: a watched process died meanwhile (raised by the watch).
        """
        if deadline is None and timeout is not None:
            check_seconds(timeout, f"the timeout of {operation}")
        timeout = self.timeout if timeout is None else timeout
        if deadline is None:
            deadline = time.monotonic() + timeout
        flag, sock, watch = int(flag), self.sock, self.watch
        polled = False
        while True:
            items = self._poll_items(watch.fds() if watch is not None else (), flag)
            remaining = deadline - time.monotonic()
            if remaining <= 0 and polled:  # a timeout of 0 still looks once
                if watch is not None:
                    watch.check()
                raise SocketTimeout(self, operation, timeout, deadline - timeout)
            if watch is not None and watch.poll_slice:
                remaining = min(remaining, watch.poll_slice)
            # In slices: a Ctrl-C of the runner that arrives just before the poll
            # is acted on when it returns (see WAIT_SLICE).
            ready = zmq_poll(items, max(0, math.ceil(min(remaining, WAIT_SLICE) * 1000)))
            polled = True
            for what, events in ready:
                if what is sock and events & flag:
                    return events
            if watch is not None and (ready or watch.poll_slice):
                if ready:  # a process exited: what it sent just before may still be on its way
                    late = self._after_exit(flag, watch)
                    if late:
                        return late
                watch.check()

    def _after_exit(self, flag: int, watch: Watch) -> int:
        """After a watched process exited: the socket's poll events once what it sent has
        come, or 0 once everything it sent has been read (and one more look found
        nothing), or the watch's exit grace ran out. A death by a signal: 0 at once."""
        bound = watch.exit_grace()
        if bound <= 0:
            return 0
        items = [(self.sock, flag)]
        end = time.monotonic() + bound
        while True:
            drained = watch.exit_drained()
            remaining = end - time.monotonic()
            if drained or remaining <= 0:
                millis = 0  # the one more read
            else:
                millis = math.ceil(min(remaining, DRAIN_LOOK if drained is False else WAIT_SLICE) * 1000)
            late = zmq_poll(items, millis)
            if late:
                return int(late[0][1])
            if drained or remaining <= 0:
                return 0

    def _call(self, method: Callable[..., Any], flag: int, operation: str, timeout: Optional[float],
              *args: Any, **kwargs: Any) -> Any:
        receiving = flag == _POLLIN
        if timeout is not None and (type(timeout) is not float or not 0 <= timeout < math.inf):
            check_seconds(timeout, f"the timeout of {operation}")  # (a plain float passes the line above)
        if _perturb.hook is not None: _perturb.hook("recv" if receiving else "send", self.name)  # noqa: E701 - stress
        if self.sock.closed or self.socket_type in (_SEND_ONLY if receiving else _RECV_ONLY):
            self.check_usable(receiving)
        flags = (int(kwargs.pop("flags", 0)) | _NOBLOCK) if kwargs else _NOBLOCK
        try:
            if not receiving:  # a send rarely has to wait: try it at once
                try:
                    return method(*args, flags=flags, **kwargs)
                except zmq.Again:
                    pass
            now = time.monotonic()
            deadline = now + (self.timeout if timeout is None else timeout)
            if receiving:
                # libzmq's blocking recv: for the whole wait if nothing is watched, else
                # for FIRST_SLICE (most replies come within it; a death is seen that
                # late), then zmq_poll watches the processes' exits too.
                watch = self.watch
                watched = watch is not None and bool(watch.fds() or watch.poll_slice)
                try:
                    return self._recv_blocking(method, min(deadline, now + FIRST_SLICE) if watched else deadline,
                                               flags & ~_NOBLOCK, args, kwargs)
                except zmq.Again:
                    if not watched:
                        raise SocketTimeout(self, operation, self.timeout if timeout is None else timeout,
                                            now) from None
            # A REQ/REP socket in its sending state is POLLOUT: then recv is tried at
            # once, to report the wrong state.
            wait_flag = _POLLIN | _POLLOUT if receiving and self.socket_type in _STRICT else flag
            while True:
                self.wait(wait_flag, operation, timeout, deadline)
                try:
                    return method(*args, flags=flags, **kwargs)
                except zmq.Again:
                    pass
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EFSM:
                raise
            raise zmq.ZMQError(exc.errno, f"cannot {operation} on {self.describe()} now: {exc.strerror} "
                               "(REQ must alternate send, recv; REP recv, send)") from None

    def _recv_blocking(self, method: Callable[..., Any], until: float, flags: int, args: Tuple[Any, ...],
                       kwargs: Dict[str, Any]) -> Any:
        # libzmq's blocking recv, bounded by RCVTIMEO in WAIT_SLICE slices as in wait(),
        # costs what raw pyzmq costs. zmq.Again at *until* (a past one still looks once).
        sock = self.sock
        while True:
            remaining = until - time.monotonic()
            millis = max(0, math.ceil(min(remaining, WAIT_SLICE) * 1000))
            if millis != self._rcvtimeo:
                sock.setsockopt(_RCVTIMEO, millis)
                self._rcvtimeo = millis
            try:
                return method(*args, flags=flags, **kwargs)
            except zmq.Again:
                if remaining <= 0.0005:
                    raise

    # -- waiting on an event loop (coroutine tests) ------------------------------------
    @property
    def asyncio(self) -> "AsyncTestSocket":
        """This socket's awaitable methods, for a coroutine test: ``await sock.asyncio.recv_json()``.

        The same methods, timeouts, timeline and errors as the socket's own, but a wait
        is an ``await`` on the running event loop (the socket's file descriptor is a
        reader of the loop), so the loop's other tasks and callbacks run meanwhile, and
        a watched process's death ends it at once (:doc:`/howto/asyncio`). It can stand
        in for a ``zmq.asyncio`` socket in code that awaits ``send_multipart`` and
        ``recv_multipart``.
        """
        view = self._asyncio
        if view is None:
            view = self._asyncio = AsyncTestSocket(self)
        return view

    async def wait_async(self, flag: int, operation: str, timeout: Optional[float] = None,
                         deadline: Optional[float] = None) -> int:
        """Await, on the running event loop, until the socket can send (``POLLOUT``) or recv (``POLLIN``).

        The awaitable :meth:`wait`: returns the socket's poll events; *deadline*
        (``time.monotonic()``) overrides *timeout*, which is then only reported.

        :raises SocketTimeout: nothing happened within *timeout*.
        :raises ProcessDied: a watched process has died (looked at when the wait times out;
            while it waits, the death watch of a coroutine test ends it at once).
        :raises RuntimeError: another task awaits this socket already.
        """
        if deadline is None and timeout is not None:
            check_seconds(timeout, f"the timeout of {operation}")
        timeout = self.timeout if timeout is None else timeout
        if deadline is None:
            deadline = time.monotonic() + timeout
        events = int(self.sock.getsockopt(_EVENTS))
        if events & int(flag):
            return events
        return await self._await_ready(int(flag), operation, timeout, deadline)

    async def _await_ready(self, flag: int, operation: str, timeout: float, deadline: float) -> int:
        """:meth:`wait_async` once EVENTS has said the socket is not ready yet."""
        sock = self.sock
        if self._waiter is not None:
            raise RuntimeError(f"{operation} on {self.describe()}: another task awaits this socket already "
                               "(a test socket has one waiter at a time; give each task a socket of its own)")
        loop = asyncio.get_running_loop()
        if self._reader_loop is not loop:
            self._add_reader(loop)
        # libzmq's fd is edge-triggered: readable when the events *may* have changed;
        # EVENTS says what they are (and resets it), read after each wake.
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if self.watch is not None:
                        self.watch.check()  # a death explains the silence better than a timeout
                    raise SocketTimeout(self, operation, timeout, deadline - timeout)
                waiter = self._waiter = loop.create_future()
                self._deadline = deadline
                # A timer per wait (made, then cancelled) would cost each round trip a few
                # microseconds: the socket's one timer is moved on only when it fires
                # before the deadline of the wait then in progress.
                if self._timer is None or self._timer_at > deadline:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer = loop.call_later(remaining, self._on_timer, loop)
                    self._timer_at = deadline
                await waiter
                if sock.closed:
                    raise ValueError(f"{self.describe()} was closed while {operation} awaited it")
                events = int(sock.getsockopt(_EVENTS))
                if events & flag:
                    return events
        finally:
            self._waiter = None

    def _add_reader(self, loop: AbstractEventLoop) -> None:
        """Make the socket's fd a reader of *loop*, for good: adding and removing it for
        every wait would cost a round trip more than a tenth. It is removed when the
        socket is closed, or another loop waits on it."""
        self._drop_reader()
        self._fd = int(self.sock.getsockopt(zmq.FD))
        loop.add_reader(self._fd, self._on_fd)
        self._reader_loop = loop

    def _on_timer(self, loop: AbstractEventLoop) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # no wait in progress: the next one arms the timer again
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            _wake(waiter)
        else:
            self._timer = loop.call_later(remaining, self._on_timer, loop)
            self._timer_at = self._deadline

    def _drop_reader(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop, self._reader_loop = self._reader_loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)  # (the selector ignores an fd closed already)

    def _on_fd(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            _wake(waiter)
        elif self.sock.closed:  # closed under the test socket (its sock.close())
            self._drop_reader()
        else:
            self.sock.getsockopt(_EVENTS)  # nobody waits: reset the fd, or the loop would wake for it again

    async def _acall(self, method: Callable[..., Any], flag: int, operation: str, timeout: Optional[float],
                     *args: Any, **kwargs: Any) -> Any:
        """The awaitable :meth:`_call`: at once if the socket is ready, else await it on the loop, bounded."""
        receiving = flag == _POLLIN
        if timeout is not None and (type(timeout) is not float or not 0 <= timeout < math.inf):
            check_seconds(timeout, f"the timeout of {operation}")
        if _perturb.hook is not None: _perturb.hook("recv" if receiving else "send", self.name)  # noqa: E701 - stress
        if self.sock.closed or self.socket_type in (_SEND_ONLY if receiving else _RECV_ONLY):
            self.check_usable(receiving)
        flags = (int(kwargs.pop("flags", 0)) | _NOBLOCK) if kwargs else _NOBLOCK
        try:
            if not receiving:  # a send rarely has to wait: try it at once (a receive looks at EVENTS first)
                try:
                    return method(*args, flags=flags, **kwargs)
                except zmq.Again:
                    pass
            limit = self.timeout if timeout is None else timeout
            deadline = time.monotonic() + limit
            # A REQ/REP socket in the wrong state for the call: tried again at once, to report it.
            wait_flag = _POLLIN | _POLLOUT if self.socket_type in _STRICT else flag
            while True:
                if not int(self.sock.getsockopt(_EVENTS)) & wait_flag:
                    await self._await_ready(wait_flag, operation, limit, deadline)
                try:
                    return method(*args, flags=flags, **kwargs)
                except zmq.Again:
                    pass
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EFSM:
                raise
            raise zmq.ZMQError(exc.errno, f"cannot {operation} on {self.describe()} now: {exc.strerror} "
                               "(REQ must alternate send, recv; REP recv, send)") from None

    # -- sending --------------------------------------------------------------------
    def send_multipart(self, frames: Sequence[Any], timeout: Optional[float] = None, **kwargs: Any) -> None:
        """Send a multipart message, waiting at most *timeout* seconds."""
        self._call(self.sock.send_multipart, zmq.POLLOUT, "send_multipart", timeout, frames, **kwargs)
        self._record("sent", frames)

    def send(self, data: Any, timeout: Optional[float] = None, **kwargs: Any) -> None:
        """Send one frame (pass ``flags=zmq.SNDMORE`` for more to follow)."""
        self._call(self.sock.send, zmq.POLLOUT, "send", timeout, data, **kwargs)
        self._record("sent", [data])

    def send_string(self, text: str, timeout: Optional[float] = None, encoding: str = "utf-8", **kwargs: Any) -> None:
        """Send a str as one frame."""
        self.send(text.encode(encoding), timeout=timeout, **kwargs)

    def send_json(self, obj: Any, timeout: Optional[float] = None, **kwargs: Any) -> None:
        """Send *obj* JSON-encoded as one frame."""
        self.send(json.dumps(obj).encode("utf-8"), timeout=timeout, **kwargs)

    # -- receiving ------------------------------------------------------------------
    def recv_multipart(self, timeout: Optional[float] = None, **kwargs: Any) -> List[Any]:
        """Receive a multipart message, waiting at most *timeout* seconds."""
        frames = self._call(self.sock.recv_multipart, zmq.POLLIN, "recv_multipart", timeout, **kwargs)
        self.last_received = frames
        self._record("received", frames)
        return frames

    def recv(self, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Receive one frame."""
        frame = self._call(self.sock.recv, zmq.POLLIN, "recv", timeout, **kwargs)
        self.last_received = [frame]
        self._record("received", [frame])
        return frame

    def recv_string(self, timeout: Optional[float] = None, encoding: str = "utf-8", **kwargs: Any) -> str:
        """Receive one frame and decode it as text."""
        return self.recv(timeout=timeout, **kwargs).decode(encoding)

    def recv_json(self, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Receive one frame and decode it as JSON (a clear ``ValueError`` if it is not)."""
        frame = self.recv(timeout=timeout, **kwargs)
        return decode_json(self, [frame], 0)

    send_unicode = send_string
    recv_unicode = recv_string

    def send_pyobj(self, obj: Any, *args: Any, **kwargs: Any) -> None:
        """Refused: the peer would have to unpickle it (see :meth:`recv_pyobj`)."""
        raise TypeError(f"send_pyobj on {self.describe()} is refused: it pickles, and a test socket never "
                        "pickles or unpickles; use send_json, or deliberately test_socket.sock.send_pyobj(...) "
                        "on the raw zmq socket (unbounded)")

    def recv_pyobj(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: unpickling received data can run arbitrary code."""
        raise TypeError(f"recv_pyobj on {self.describe()} is refused: it unpickles received data, which can run "
                        "arbitrary code; use recv_json, or deliberately test_socket.sock.recv_pyobj() on the raw "
                        "zmq socket (unbounded: poll it first)")

    def poll(self, timeout: Optional[float] = None, flags: int = zmq.POLLIN) -> bool:
        """``True`` if the socket becomes ready within *timeout* seconds (no error)."""
        try:
            self.wait(flags, "poll", timeout)
        except SocketTimeout:
            return False
        return True


def _wake(waiter: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


class AsyncTestSocket:
    """The awaitable face of a :class:`TestSocket` (its :attr:`~TestSocket.asyncio`), for coroutine tests.

    Its ``send*``, ``recv*`` and :meth:`poll` are coroutine functions with the test
    socket's signatures, timeouts, errors and timeline entries; a wait awaits the socket
    on the running event loop instead of blocking it. Every other attribute is the test
    socket's (``name``, ``describe()``, ``bind``...)::

        async def test_ping(self):
            req = self.socket(zmq.REQ, connect=self.endpoint).asyncio
            await req.send_json(["ping", 1])
            self.assertEqual(await req.recv_json(), ["pong", 1])
    """

    __test__ = False
    __slots__ = ("test_socket",)

    def __init__(self, test_socket: TestSocket) -> None:
        #: The :class:`TestSocket` it waits on.
        self.test_socket = test_socket

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith(("send", "recv")):
            raise AttributeError(f"{attr} has no awaitable form on {self.test_socket.describe()}; await "
                                 "send/send_multipart/send_string/send_json or recv/recv_multipart/recv_string/"
                                 f"recv_json, or call test_socket.{attr}(...) (bounded, but it blocks the loop)")
        return getattr(self.test_socket, attr)

    def __repr__(self) -> str:
        return f"<AsyncTestSocket of {self.test_socket!r}>"

    async def send_multipart(self, frames: Sequence[Any], timeout: Optional[float] = None, **kwargs: Any) -> None:
        """Send a multipart message, awaiting at most *timeout* seconds."""
        tsock = self.test_socket
        await tsock._acall(tsock.sock.send_multipart, _POLLOUT, "send_multipart", timeout, frames, **kwargs)
        tsock._record("sent", frames)

    async def send(self, data: Any, timeout: Optional[float] = None, **kwargs: Any) -> None:
        """Send one frame (pass ``flags=zmq.SNDMORE`` for more to follow)."""
        tsock = self.test_socket
        await tsock._acall(tsock.sock.send, _POLLOUT, "send", timeout, data, **kwargs)
        tsock._record("sent", [data])

    async def send_string(self, text: str, timeout: Optional[float] = None, encoding: str = "utf-8",
                          **kwargs: Any) -> None:
        """Send a str as one frame."""
        await self.send(text.encode(encoding), timeout=timeout, **kwargs)

    async def send_json(self, obj: Any, timeout: Optional[float] = None, **kwargs: Any) -> None:
        """Send *obj* JSON-encoded as one frame."""
        await self.send(json.dumps(obj).encode("utf-8"), timeout=timeout, **kwargs)

    async def recv_multipart(self, timeout: Optional[float] = None, **kwargs: Any) -> List[Any]:
        """Receive a multipart message, awaiting at most *timeout* seconds."""
        tsock = self.test_socket
        frames = await tsock._acall(tsock.sock.recv_multipart, _POLLIN, "recv_multipart", timeout, **kwargs)
        tsock.last_received = frames
        tsock._record("received", frames)
        return frames

    async def recv(self, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Receive one frame."""
        tsock = self.test_socket
        frame = await tsock._acall(tsock.sock.recv, _POLLIN, "recv", timeout, **kwargs)
        tsock.last_received = [frame]
        tsock._record("received", [frame])
        return frame

    async def recv_string(self, timeout: Optional[float] = None, encoding: str = "utf-8", **kwargs: Any) -> str:
        """Receive one frame and decode it as text."""
        frame: bytes = await self.recv(timeout=timeout, **kwargs)
        return frame.decode(encoding)

    async def recv_json(self, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Receive one frame and decode it as JSON (a clear ``ValueError`` if it is not)."""
        frame = await self.recv(timeout=timeout, **kwargs)
        return decode_json(self.test_socket, [frame], 0)

    async def poll(self, timeout: Optional[float] = None, flags: int = zmq.POLLIN) -> bool:
        """``True`` if the socket becomes ready within *timeout* seconds (no error)."""
        try:
            await self.test_socket.wait_async(flags, "poll", timeout)
        except SocketTimeout:
            return False
        return True

    def send_pyobj(self, obj: Any, *args: Any, **kwargs: Any) -> None:
        """Refused, as on the test socket: the peer would have to unpickle it."""
        raise TypeError(f"send_pyobj on {self.test_socket.describe()} is refused: it pickles, and a test socket "
                        "never pickles or unpickles; use send_json")

    def recv_pyobj(self, *args: Any, **kwargs: Any) -> Any:
        """Refused, as on the test socket: unpickling received data can run arbitrary code."""
        raise TypeError(f"recv_pyobj on {self.test_socket.describe()} is refused: it unpickles received data, "
                        "which can run arbitrary code; use recv_json")


def make_sock(context: zmq.Context, sock_type: int, bind: Union[Endpoint, Iterable[Endpoint], None] = None,
              connect: Union[Endpoint, Iterable[Endpoint], None] = None,
              subscribe: Union[bytes, str, Iterable[Union[bytes, str]], None] = None, timeout: Optional[float] = None,
              name: Optional[str] = None, allow_remote: bool = False, codec: Optional[Codec] = None,
              **options: Any) -> TestSocket:
    """Make a :class:`TestSocket`, bind and/or connect it, and subscribe a SUB socket.

    The socket gets ``LINGER=0`` (closing never hangs) and, when it connects, a 2 ms
    reconnect interval (so a test that connects before the process under test has bound
    does not pay libzmq's default 100 ms). ``bind`` and ``connect`` take an endpoint,
    a ``(host, port)`` tuple or a list of them. Network binds (``tcp``, ``ws``, ``wss``,
    ``udp``), here and later with :meth:`TestSocket.bind` or
    :meth:`TestSocket.bind_to_random_port`, must be on loopback unless *allow_remote* is
    true. A SUB socket subscribes to everything unless *subscribe*
    says otherwise. *codec* is how the ``send`` and ``recv`` events encode and decode
    its messages and how the reports show them (see :mod:`zmqprocesstest.codecs`;
    default JSON). Extra keyword arguments are socket options by name (``sndhwm=10``).

    Example::

        req = make_sock(ctx, zmq.REQ, connect="tcp://127.0.0.1:5678", timeout=2)
    """
    sock = context.socket(sock_type)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        for option, value in options.items():
            sock.setsockopt(getattr(zmq, option.upper()), value)
        tsock = TestSocket(sock, timeout=timeout, name=name, codec=codec)
        if connect is not None:
            sock.setsockopt(zmq.RECONNECT_IVL, 2)  # no backoff: a late bind is found in 2 ms
        if subscribe is not None and sock_type != zmq.SUB:
            raise TypeError(f"subscribe= needs a SUB socket, got a {type_name(sock_type)} socket")
        if sock_type == zmq.SUB:
            topics = [b""] if subscribe is None else subscribe
            if isinstance(topics, (bytes, str)):
                topics = [topics]
            for topic in topics:
                sock.setsockopt(zmq.SUBSCRIBE, topic.encode() if isinstance(topic, str) else topic)
                _timeline.record("subscribe", tsock.name, short(topic))
        tsock.allow_remote = bool(allow_remote)
        for endpoint in endpoint_list(bind):
            tsock.bind(endpoint)  # on loopback only unless allow_remote
        for endpoint in endpoint_list(connect):
            tsock.connect(endpoint)
    except BaseException:
        sock.close(linger=0)
        raise
    return tsock


def decode_json(sock: Any, frames: List[Any], index: int) -> Any:
    """JSON-decode ``frames[index]`` of a message on test socket *sock*; errors name the
    socket and show the raw frames (shortened).

    :raises IndexError: there is no frame at *index*.
    :raises ValueError: the frame is not UTF-8 JSON.
    """
    try:
        frame = frames[index]
    except IndexError:
        raise IndexError(f"expected a JSON frame at index {index} of the message on {sock.describe()}, "
                         f"but it has {len(frames)} frame(s): {short_frames(frames)}") from None
    try:
        return json.loads(frame)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"expected JSON in frame {index} of the message on {sock.describe()}, "
                         f"got {short(frame)} ({exc}); whole message: {short_frames(frames)}") from None
