"""Events: what a generator test yields, and the built-in ones with their argument checks.

A test yields ``('name', *args)``; the send-back loop (:mod:`zmqprocesstest.loop`) calls
the event handler of that name on the test case and sends its result back.

Built-in events are methods of :class:`Events` (and of its base :class:`ConnectionEvents`,
the bounded waits on a socket's connections through libzmq's socket monitor) marked with
:func:`~zmqprocesstest.loop.event` (the marker is the loop's, which reads it). Public methods
that users define on their own test case classes are events too (a custom ``log`` or
``send_signed``), except those that override a library method that is not an event
(``setUp``...). Adding a built-in event means adding one marked method here.
"""
from __future__ import annotations

import itertools
import json
import math
import re
import select
import signal as _signal
import time
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Union

import zmq
from zmq.utils.monitor import parse_monitor_message

from ._config import OUTPUT_SETTLE, STOP_SEND_TIMEOUT, UNTIL_INTERVAL, Timeout, default_timeout, scaled
from .processes.managed import ProcessError, ProcessStopError
from .endpoints import listening
from .loop import BadArgument, EventError, dispatch, event
from .resources import owner_name
from .scopes import MODULE_SCOPES
from .codecs import CodecError, JsonCodec
from .sockets import SocketTimeout, TestSocket, Watch, decode_json
from .timeout import TestTimeout, quiet
from . import conversations as _conversations
from .conversations import ReplayResult
from .report import timeline as _timeline
from .report.timeline import PREVIEW_BYTES, short_frames

__unittest = True
__tracebackhide__ = True

__all__ = ["ConnectionEvents", "ConnectionTimeout", "EventError", "Events", "check_socket", "event", "event_name",
           "frames_arg", "int_arg", "seconds_arg"]

#: What ``ignore=`` takes: a topic prefix, a list of them, or a function of the frames.
Ignore = Union[bytes, str, Sequence[Union[bytes, str]], Callable[[List[bytes]], bool], None]

#: Signals whose default action is not to end a process: sending one asks for no exit.
_NOT_ENDING = frozenset(int(getattr(_signal, name)) for name in (
    "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCHLD", "SIGURG", "SIGWINCH") if hasattr(_signal, name))
_LEVELS = {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"}
_LISTEN_RETRY = 0.005  # nothing to poll for a listener that is not there yet: look again this often


# -- argument checks ---------------------------------------------------------------------
def frames_arg(what: str, frames: Any) -> List[Any]:
    """Check and encode header or extra frames: bytes-like (str is UTF-8 encoded)."""
    if isinstance(frames, (str, bytes)) or not isinstance(frames, (list, tuple)):
        raise BadArgument(f"expected {what} to be a list of frames (bytes), got {frames!r}")
    result = []
    for frame in frames:
        if isinstance(frame, str):
            frame = frame.encode("utf-8")
        elif not isinstance(frame, (bytes, bytearray, memoryview, zmq.Frame)):
            raise BadArgument(f"expected each of {what} to be bytes or str, got {frame!r}")
        result.append(frame)
    return result


def seconds_arg(name: str, value: Any, allow_none: bool = True) -> Any:
    """Check a duration argument: a number of seconds >= 0 (or ``None``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise BadArgument(f"expected {name} to be a finite number of seconds >= 0{' or None' if allow_none else ''}, "
                           f"got {value!r}")
    return value


def int_arg(name: str, value: Any, what: str, allow_none: bool = True) -> Any:
    """Check an integer argument (never a bool)."""
    if (value is None and allow_none) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise BadArgument(f"expected {name} to be {what}{' or None' if allow_none else ''}, got {value!r}")


def check_socket(case: Any, sock: Any) -> TestSocket:
    """A test socket of this test (or of its class), or a clear error."""
    if not isinstance(sock, TestSocket):
        raise BadArgument(f"expected a TestSocket (made by self.socket() or make_sock()), got "
                           f"{type(sock).__name__} {sock!r}; a plain zmq socket could block forever")
    owner = sock.owner
    if owner is None or owner is case:
        return sock
    if isinstance(owner, type) and (isinstance(case, owner) or owner in MODULE_SCOPES.values()
                                    or (isinstance(case, type) and issubclass(case, owner))):
        return sock  # shared by the test's class or module
    raise ValueError(f"{sock.describe()} belongs to another test ({owner_name(owner)}); make it with self.socket()")


def send_stop_message(case: Any, sock: TestSocket, body: Any, header: Sequence[Any]) -> Any:
    """The polite stop of ``set_stop_message``: the ``send`` event of *body* on *sock*.

    *case* is a test, or a class or module scope stopping what it shares. A REQ *sock*
    that cannot send (a request the test left unanswered) is replaced by a stand-in REQ
    socket connected to the same endpoints.
    """
    if sock.socket_type == zmq.REQ and not sock.closed and not sock.poll(0, zmq.POLLOUT):
        connected = [e.split(" ", 1)[1] for e in sock.endpoints if e.startswith("connect ")]
        if connected:
            sock = case.socket(zmq.REQ, connect=connected, name=f"{sock.name} (stop)")
    return dispatch(case, ("send", sock, list(header), body, (), scaled(STOP_SEND_TIMEOUT)))


# -- connection events -------------------------------------------------------------------
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
    """The connection events of a test case (a base of :class:`Events`).

    Connection events: bounded waits on a test socket's connections, through libzmq's socket monitor.

    ``wait_connected``, ``wait_disconnected`` and ``wait_handshake`` start a monitor on the
    socket the first time they (or :meth:`ConnectionEvents.monitor`) are used on it: a PAIR
    test socket of the test, connected to the socket's inproc monitor endpoint, closed with
    the test's sockets. Each monitor event a wait reads is written into the test's
    timeline (``client ** monitor: CONNECTED ipc://...``), so the failure report shows
    the connections next to the messages.

    A monitor sees what happens after it starts. To see a socket's first connection,
    make the socket without ``connect=``, start the monitor (``self.monitor(sock)``), then
    connect. A wait takes the oldest event not read yet, so a connection made, lost and made
    again is three events, read in order.
    """

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
            mon.recorded = False  # its events are noted by the waits, readably
            monitors[id(sock)] = mon
        return mon

    def _wait_monitor(self, sock: TestSocket, wanted: FrozenSet[int], what: str,
                      timeout: Optional[float]) -> Dict[str, Any]:
        mon = self.monitor(sock)
        limit = sock.timeout if timeout is None else seconds_arg("timeout", timeout)
        deadline = time.monotonic() + limit
        seen: List[str] = []
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
            _timeline.record("note", sock.name, f"monitor: {name} {endpoint}")
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


# -- the built-in events -----------------------------------------------------------------------
class Events(ConnectionEvents):
    """The built-in events, as methods of :class:`~zmqprocesstest.ProcessTestCase`.

    Each may also be called directly (``self.send(...)``) from setUp or a plain test.
    """

    timeout: float
    log_socket: Optional[TestSocket]

    @event
    def send(self, sock: TestSocket, header: Sequence[Any], body: Any, extra_frames: Sequence[Any] = (),
             timeout: Optional[float] = None) -> None:
        """Event: send ``header + codec.encode(body) + extra_frames`` on *sock*: with the
        default codec, ``header + [json(body)] + extra_frames``.

        Header and extra frames are bytes (str is UTF-8 encoded). The socket's codec
        (``self.socket(..., codec=...)``, see :mod:`zmqprocesstest.codecs`) encodes *body*.
        """
        check_socket(self, sock)
        frames = [] if type(header) is list and not header else frames_arg("header", header)
        codec = sock.codec
        at = -1
        if type(codec) is JsonCodec:  # the default, as cheap as before codecs
            try:
                frames.append(json.dumps(body).encode("utf-8"))
            except (TypeError, ValueError) as exc:
                raise TypeError(f"expected a JSON-serialisable body, got {body!r} ({exc})") from None
            at = len(frames) - 1
        else:
            frames.extend(codec.encode(body))
        if extra_frames:
            frames.extend(frames_arg("extra_frames", extra_frames))
        sock.send_multipart(frames, timeout=timeout if timeout is None else seconds_arg("timeout", timeout))
        if at >= 0 and sock.recorded:  # the timeline shows the body as the test gave it, as recv shows what it got
            _timeline.revise("sent", sock.name, at, body, len(frames[at]) <= PREVIEW_BYTES)

    @event
    def recv(self, sock: TestSocket, json_index: Optional[int] = -1, timeout: Optional[float] = None,
             frames: Optional[int] = None, ignore: Ignore = None) -> List[Any]:
        """Event: receive a multipart message with frame *json_index* JSON-decoded, or
        as the socket's codec decodes it (see :mod:`zmqprocesstest.codecs`).

        ``json_index=None`` returns the raw bytes (with any codec). Another
        *json_index* than the last frame is for the default JSON codec only. *frames*,
        if given, is the number of frames the message must have. *ignore* passes over
        messages that don't count, as :meth:`recv_nothing`'s does (it sees the raw
        frames); *timeout* bounds the whole wait, the messages passed over included.
        """
        check_socket(self, sock)
        if type(json_index) is not int:
            int_arg("json_index", json_index, "a frame index (int)")
        if frames is not None and (type(frames) is not int or frames < 0):
            raise BadArgument(f"expected frames to be a number of frames or None, got {frames!r}")
        codec = sock.codec
        plain = type(codec) is JsonCodec
        if not plain and json_index is not None and json_index != -1:
            raise BadArgument(f"expected json_index -1 or None: {sock.describe()} decodes with its codec "
                              f"{getattr(codec, 'name', codec)!r}, not JSON, got json_index={json_index!r}")
        limit = timeout if timeout is None else seconds_arg("timeout", timeout)
        msg = sock.recv_multipart(timeout=limit) if ignore is None else _recv_unignored(sock, limit, ignore)
        if frames is not None and len(msg) != frames:
            raise AssertionError(f"expected {frames} frame(s) on {sock.describe()}, got {len(msg)}: "
                                 f"{sock.show(msg)}")
        if json_index is None:
            return msg
        if not plain:
            try:
                return list(codec.decode(msg))
            except CodecError as exc:
                raise CodecError(f"on {sock.describe()} (codec {getattr(codec, 'name', codec)!r}): {exc}") from None
        raw = msg[json_index] if -len(msg) <= json_index < len(msg) else b""
        msg[json_index] = decode_json(sock, msg, json_index)
        if sock.recorded:  # the timeline shows the message as the test got it
            _timeline.revise("received", sock.name, json_index, msg[json_index], len(raw) <= PREVIEW_BYTES)
        return msg

    @event
    def recv_nothing(self, sock: TestSocket, seconds: float = 0.1, ignore: Ignore = None) -> None:
        """Event: assert that no message arrives on *sock* within *seconds*.

        *ignore* passes over messages that don't count (heartbeats on a SUB socket): a
        topic prefix or a list of them (matched against the first frame), or a function
        of the frames that returns true for a message to pass over.
        """
        check_socket(self, sock)
        seconds_arg("seconds", seconds, allow_none=False)
        skip = _ignore_rule(ignore)
        deadline = time.monotonic() + seconds
        while sock.poll(max(0.0, deadline - time.monotonic())):
            msg = sock.recv_multipart(timeout=0)
            if not skip(msg):
                raise AssertionError(f"expected no message on {sock.describe()} within {seconds:g} s, "
                                     f"got {sock.show(msg)}")

    @event
    def log(self, substr: str = "", level: Optional[str] = None, timeout: Optional[float] = None) -> str:
        """Event: the next log record from a :class:`zmq.log.handlers.PUBHandler` contains *substr*.

        Reads :attr:`log_socket` (a SUB socket connected or bound to the handler's PUB
        socket). With *level* (``'INFO'``...), records of other levels are passed over.
        Returns the message text.
        """
        sock = self.log_socket
        if sock is None:
            raise ValueError("expected self.log_socket (the SUB socket the log event reads) to be set in setUp, e.g. "
                             "self.log_socket = self.socket(zmq.SUB, connect=LOG_ENDPOINT)")
        check_socket(self, sock)
        if not isinstance(substr, str) or not (level is None or isinstance(level, str)):
            raise BadArgument(f"expected a str substring and a level name or None, got {substr!r}, {level!r}")
        want = level.upper() if level else None
        seconds_arg("timeout", timeout)
        seen: List[str] = []
        deadline = time.monotonic() + (sock.timeout if timeout is None else timeout)
        while True:
            try:
                frames = sock.recv_multipart(timeout=max(0.0, deadline - time.monotonic()))
            except SocketTimeout:
                raise AssertionError(
                    f"expected a log message{' of level ' + want if want else ''} containing {substr!r} "
                    f"on {sock.describe()}; none came. Seen: {seen or 'nothing'}") from None
            if len(frames) < 2:
                raise AssertionError(f"expected a log record [topic, message] from PUBHandler, "
                                     f"got {short_frames(frames)}")
            topic = frames[0].decode("utf-8", "replace")
            text = frames[-1].decode("utf-8", "replace")
            rec_level = next((part for part in topic.split(".") if part in _LEVELS), topic)
            seen.append(f"{rec_level}: {text.rstrip()}")
            if want and rec_level != want:
                continue
            if substr not in text:
                raise AssertionError(f"expected the next log message{' of level ' + want if want else ''} "
                                     f"to contain {substr!r}, got {text.rstrip()!r}. Seen: {seen}")
            return text

    @event
    def signal(self, proc: Any, sig: int = _signal.SIGINT, group: bool = False) -> None:
        """Event: send signal *sig* to *proc* (with ``group=True``, to its process group).

        It goes to the main thread of each process, once. Send it once the process
        serves (after its first reply, say): a Python process that is still starting can
        miss a SIGINT that arrives just before it blocks (see :doc:`/design`).

        An exit of *proc* from then on was asked for: it does not interrupt a blocking
        call of the test's own (:doc:`/howto/failures`), except after a signal whose
        default action is not to end a process (``SIGCONT``, ``SIGSTOP``, ``SIGCHLD``...).
        A test socket's wait still reports it, and ``wait_exit`` checks its exit code.
        """
        int_arg("sig", sig, "a signal number such as signal.SIGINT", allow_none=False)
        managed = self.managed(proc)  # type: ignore[attr-defined]
        before = managed.exit_allowed
        managed.exit_allowed = before or sig not in _NOT_ENDING  # before it is sent: it may end it at once
        try:
            managed.send_signal(sig, group=group)
        except BaseException:
            managed.exit_allowed = before
            raise

    @event
    def freeze(self, proc: Any) -> None:
        """Event: freeze *proc* and its process group (SIGSTOP): it hangs, as far as its
        peers can tell. A freeze is not a crash; the process is thawed before it is stopped.
        A process shared by the class or module that a test froze is thawed when that
        test ends: the next test finds it running (and the thaw in its timeline)."""
        managed = self.managed(proc)  # type: ignore[attr-defined]
        managed.freeze()
        self._resources().froze(managed)  # type: ignore[attr-defined]

    @event
    def thaw(self, proc: Any) -> None:
        """Event: let a frozen *proc* go on (SIGCONT)."""
        self.managed(proc).thaw()  # type: ignore[attr-defined]

    @event
    def restart(self, proc: Any) -> Any:
        """Event: stop *proc* with its stop protocol and start it again with the same
        arguments (and endpoints); return the new process object.

        Fails (:class:`~zmqprocesstest.ProcessStopError`) if the stop needed more than
        the polite step; the new process runs all the same.
        """
        managed = self.managed(proc)  # type: ignore[attr-defined]
        with quiet():  # the death of the old process was asked for
            new, problems = managed.restart()
            self._resources().replace(managed, new)  # type: ignore[attr-defined]
        if problems:
            raise ProcessStopError("restarting: " + "\n".join(problems) + "\n  " + managed.report())
        return new.obj

    @event
    def send_raw(self, sock: TestSocket, frames: Sequence[Any], timeout: Optional[float] = None) -> None:
        """Event: send *frames* as they are (bytes; str is UTF-8 encoded), without the JSON codec."""
        check_socket(self, sock)
        sock.send_multipart(frames_arg("frames", frames), timeout=seconds_arg("timeout", timeout))

    @event
    def recv_raw(self, sock: TestSocket, timeout: Optional[float] = None, ignore: Ignore = None) -> List[Any]:
        """Event: receive a multipart message as raw frames (bytes), without the socket's codec.

        *ignore* passes over messages that don't count (heartbeats), as
        :meth:`recv_nothing`'s does; *timeout* bounds the whole wait, the messages
        passed over included.
        """
        check_socket(self, sock)
        if ignore is None:
            return sock.recv_multipart(timeout=seconds_arg("timeout", timeout))
        return _recv_unignored(sock, seconds_arg("timeout", timeout), ignore)

    @event
    def wait_subscribed(self, sock: TestSocket, trigger: Any, timeout: Optional[float] = None,
                        interval: float = 0.01) -> List[Any]:
        """Event: repeat the *trigger* event until a message arrives on *sock*; return it (raw).

        The slow joiner: a SUB socket receives nothing its publisher sends before the
        subscription has reached it, and nothing tells when that is. So send something
        (*trigger*, any event tuple, e.g. ``("send", pub, [b"hello"], None)``) every
        *interval* seconds until the first message comes, bounded by *timeout*.

        The trigger must be safe to repeat: a ``send`` or ``send_raw`` on a PUB, XPUB,
        PUSH, DEALER, ROUTER or PAIR socket, or an event of your own that does a whole
        exchange. A send on a REQ or REP socket is refused (it cannot send twice
        without a receive in between).
        """
        check_socket(self, sock)
        if type(trigger) is not tuple or not trigger or not isinstance(trigger[0], str):
            raise BadArgument(f"expected trigger to be an event tuple ('name', *args), got {trigger!r}")
        if trigger[0] in ("send", "send_raw") and len(trigger) > 1 and isinstance(trigger[1], TestSocket) \
                and trigger[1].socket_type in (zmq.REQ, zmq.REP):
            raise BadArgument(f"expected a trigger that can be repeated, got a {trigger[0]!r} on "
                              f"{trigger[1].describe()}, which cannot send twice without a receive in between; "
                              "trigger with a send on a PUB, PUSH, DEALER or PAIR socket, or with an event of "
                              "your own that does a whole request and reply")
        seconds_arg("interval", interval, allow_none=False)
        limit = default_timeout(self) if timeout is None else seconds_arg("timeout", timeout)
        deadline, count = time.monotonic() + limit, 0
        while True:
            dispatch(self, trigger)
            count += 1
            if sock.poll(max(0.0, min(interval, deadline - time.monotonic()))):
                return sock.recv_multipart(timeout=0)
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected a message on {sock.describe()} within {limit:g} s while repeating "
                                     f"{trigger!r} ({count} times); none came (is it subscribed to that topic?)")

    @event
    def replay(self, sock: Union[TestSocket, Sequence[TestSocket]], path: str, side: str = "client",
               normalise: Any = (), timeout: Optional[float] = None) -> ReplayResult:
        """Event: play one side of a recorded conversation (:mod:`zmqprocesstest.conversations`)
        against the process under test, and check what it answers.

        ``yield ("replay", sock, PATH)`` plays the client side: it sends each message the
        recorded client sent, in order, and receives each message the server sent, comparing
        it with the recording. ``yield ("replay", sock, PATH, "server")`` plays the server side
        over a bound socket against a client under test. Each receive waits at most *timeout*
        seconds (default: the socket's). A recording of several connections needs a socket
        for each (a list, in the order the connections first appear), or one ROUTER socket
        for the server side: the clients' identities are mapped to the recorded connections
        as they first speak. A REQ or REP socket adds and takes the empty delimiter itself; a
        SUB socket takes the recorded subscriptions. *PATH* is relative to the test module's
        directory, as golden files are.

        The first message that differs fails the test with its index, direction and line, and
        a diff of what was recorded against what came. *normalise* takes normalisers of text
        (:func:`~zmqprocesstest.normalise_timestamps`...) and JSON paths to ignore
        (``"header.msg_id"``, ``"items.*.id"``), or a list of them. In update mode
        (``ZMQPROCESSTEST_UPDATE_GOLDEN=1``) the messages that differ are written into the
        recording instead, and the replay says so on stderr. Returns a
        :class:`~zmqprocesstest.conversations.ReplayResult`.
        """
        given = [sock] if isinstance(sock, TestSocket) or not isinstance(sock, (list, tuple)) else list(sock)
        if not given:
            raise BadArgument("expected a test socket (or a list of them) to replay over, got an empty list")
        socks = [check_socket(self, each) for each in given]
        return _conversations.replay(self, socks, path, side, normalise, seconds_arg("timeout", timeout))

    @event
    def until(self, event: Any, predicate: Optional[Callable[[Any], Any]] = None, timeout: Optional[float] = None,
              interval: float = UNTIL_INTERVAL) -> Any:
        """Event: repeat *event* until its result is truthy (or ``predicate(result)`` is);
        return that result.

        *event* is any event tuple, ``("recv_raw", sock)`` or one of your own. It is
        handled again every *interval* seconds (the processes watched in between), until
        *timeout* (default the test's :attr:`~ProcessTestCase.timeout`) has passed:
        ``yield ("until", ("recv_raw", sub), lambda msg: msg[0] != b"HEARTBEAT", 5)``
        skips heartbeats; ``yield ("until", ("worker_registered", broker))``, with an
        event of your own, waits until a broker has registered a worker.

        A :class:`~zmqprocesstest.Timeout` of one try (a receive that got nothing) counts
        as a result that is not there yet; any other error (a death, a bad argument)
        ends the event at once. A try that has begun is not cut short: the event ends at
        most one try's own wait past *timeout*. The event must be safe to repeat (a
        receive, or an event of your own that does a whole request and reply).

        :raises Timeout: no try gave a truthy result within *timeout*, naming the event,
            the number of tries and the last result (or the last try's timeout).
        """
        if type(event) is not tuple or not event or not isinstance(event[0], str):
            raise BadArgument(f"expected event to be an event tuple ('name', *args), got {event!r}")
        if predicate is not None and not callable(predicate):
            raise BadArgument(f"expected predicate to be a function of the result, or None, got {predicate!r}")
        seconds_arg("interval", interval, allow_none=False)
        limit = default_timeout(self) if timeout is None else seconds_arg("timeout", timeout)
        deadline, tries, last = time.monotonic() + limit, 0, "nothing (no try ended)"
        watch: Watch = self._resources()  # type: ignore[attr-defined]
        while True:
            tries += 1
            try:
                result = dispatch(self, event)
            except TestTimeout:
                raise
            except Timeout as exc:
                last = f"its try timed out: {exc}".splitlines()[0]
            else:
                if (predicate(result) if predicate is not None else result):
                    return result
                last = short_frames(result) if isinstance(result, list) else f"{result!r:.200}"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                test = f" by {getattr(predicate, '__qualname__', repr(predicate))}" if predicate is not None else ""
                raise Timeout(f"expected a truthy result{test} of {event!r} within {limit:g} s; {tries} tries, "
                              f"the last gave {last}")
            watch.check()
            pace = select.poll()  # the pace, woken by a death (poll, not select: any descriptor number)
            for fd in watch.fds():
                pace.register(fd, select.POLLIN)
            pace.poll(math.ceil(min(interval, remaining) * 1000))
            watch.check()

    @event
    def wait_exit(self, proc: Any, timeout: Optional[float] = None, code: Optional[int] = 0) -> Optional[int]:
        """Event: wait for *proc* to exit and assert its exit *code* (``None``: any).

        The process is no longer watched for crashes. Returns the exit code.
        """
        managed = self.managed(proc)  # type: ignore[attr-defined]
        int_arg("code", code, "an exit code (int)")
        limit = default_timeout(self) if timeout is None else seconds_arg("timeout", timeout)
        managed.watched = False
        self._resources().refresh()  # type: ignore[attr-defined]
        result = managed.wait(limit)
        if result is None:
            raise ProcessError(f"expected {managed.describe()} to exit within {limit:g} s")
        if managed.output is not None:
            managed.output.settle(scaled(OUTPUT_SETTLE))  # so output_of() has all of it
        if code is not None and result != code:
            raise ProcessError(f"expected {managed.name!r} to exit with code {code}, got {managed.describe()}\n"
                               f"  {managed.report()}")
        return result

    @event
    def wait_output(self, proc: Any, pattern: Union[str, "re.Pattern[str]"], timeout: Optional[float] = None,
                    from_start: bool = False) -> "re.Match[str]":
        """Event: wait until *proc*'s output after the previous match (all of it with
        *from_start*) matches the regex *pattern*; return the :class:`re.Match`
        (``match[0]`` is the matched text, ``match[1]``, ``match["name"]`` its groups).

        The output is what *proc* wrote to stdout and stderr since it started, all of it
        (past 4 MiB it is kept in a file), searched as :func:`re.search` does. A match
        consumes the output up to its end, as pexpect's ``expect`` does: the first wait
        on *proc* searches everything it printed, and each later wait starts where the
        previous match ended. Two waits for ``"request \\d+ done"`` therefore match two
        different lines, the second waiting for its line if it has not come yet. With
        ``from_start=True`` the search covers all of the output again, and the next
        wait starts after this match only if it ends after the previous one. Fails at
        once if *proc* exits without printing a match, and says so when only output
        consumed already matches. Output that is not UTF-8 is decoded with
        ``surrogateescape``: ``match[0].encode("utf-8", "surrogateescape")`` gives its bytes.
        A match holds the text it searched (``match.string``, the output after the
        previous match) for as long as it is kept.
        """
        managed = self.managed(proc)  # type: ignore[attr-defined]
        if managed.output is None:
            raise ValueError(f"output of {managed.name!r} is not captured (capture_output is False)")
        if not isinstance(pattern, (str, re.Pattern)):
            raise BadArgument(f"expected a regular expression (str or compiled), got {pattern!r}")
        if not isinstance(from_start, bool):
            raise BadArgument(f"expected from_start to be True or False, got {from_start!r}")
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        limit = default_timeout(self) if timeout is None else seconds_arg("timeout", timeout)
        match = managed.output.wait_for(regex, limit, from_start=from_start)
        if match is None:
            state = "it exited" if not managed.alive() else f"not within {limit:g} s"
            if not from_start and managed.output.consumed and managed.output.wait_for(regex, 0, True, False):
                state += ("; it matches earlier output, consumed by a previous wait (from_start=True searches "
                          "all of it)")
            raise ProcessError(f"expected output of {managed.name!r} to match {regex.pattern!r}; {state}\n"
                               f"  {managed.report()}")
        return match

    @event
    def wait_endpoint(self, endpoint: str, timeout: Optional[float] = None) -> None:
        """Event: wait until something listens on a ``tcp://`` or ``ipc://`` *endpoint*.

        Fails at once if a process under test dies meanwhile.
        """
        if not isinstance(endpoint, str):
            raise BadArgument(f"expected an endpoint string (tcp://... or ipc://...), got {endpoint!r}")
        limit = default_timeout(self) if timeout is None else seconds_arg("timeout", timeout)
        if not _wait_listening(endpoint, limit, self._resources()):  # type: ignore[attr-defined]
            raise ProcessError(f"expected something to listen on {endpoint} within {limit:g} s")


def _wait_listening(endpoint: str, timeout: float, watch: Watch) -> bool:
    """Wait at most *timeout* seconds until something listens on *endpoint*.

    There is nothing to poll for a listener that is not there yet, so it looks again
    every 5 ms, but wakes at once (and *watch* raises) if a watched process dies.
    """
    deadline = time.monotonic() + timeout
    while not listening(endpoint):
        watch.check()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        select.select(watch.fds(), [], [], min(remaining, _LISTEN_RETRY))
    return True


def _recv_unignored(sock: TestSocket, timeout: Optional[float], ignore: Any) -> List[Any]:
    """The first message on *sock* that *ignore* does not pass over, all of them within
    *timeout* (default the socket's). Those passed over are in the timeline, and a
    timeout says how many there were."""
    skip = _ignore_rule(ignore)
    limit = sock.timeout if timeout is None else timeout
    began = time.monotonic()
    deadline, passed = began + limit, 0
    while True:
        try:
            msg = sock.recv_multipart(timeout=max(0.0, deadline - time.monotonic()))
        except SocketTimeout as exc:
            exc.timeout, exc.began = limit, began
            if passed:  # in the message itself (SocketTimeout's own notes), under every runner
                exc._notes.append(f"  ({passed} message(s) passed over by ignore= meanwhile; they are in the "
                                  "timeline)")
            raise
        if not skip(msg):
            return msg
        passed += 1


def _ignore_rule(ignore: Any) -> Callable[[List[bytes]], bool]:
    if ignore is None:
        return lambda frames: False
    if callable(ignore):
        return lambda frames: bool(ignore(frames))
    topics = [ignore] if isinstance(ignore, (bytes, str)) else ignore
    if not isinstance(topics, (list, tuple)) or not all(isinstance(t, (bytes, str)) for t in topics):
        raise BadArgument(f"expected ignore to be a topic prefix, a list of them or a function of the frames, "
                           f"got {ignore!r}")
    prefixes = tuple(t.encode("utf-8") if isinstance(t, str) else t for t in topics)
    return lambda frames: bool(frames) and bytes(frames[0]).startswith(prefixes)
