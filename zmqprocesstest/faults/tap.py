"""Taps: a fault link that also shows every message through it in the test's reports.

A :class:`Tap` is a :class:`~zmqprocesstest.FaultLink` put in front of a process's
endpoint for a client the test does not own: the user's own client library, with its
own sockets, connects to :attr:`Tap.endpoint`. The tap reads the ZMTP stream it delivers,
both ways, and records each whole multipart message in the test's timeline, on a lane
of its own (the client's requests as ``sent``, the replies as ``received``), so the
failure report, its sequence chart and the HTML report page show both halves of the
conversation. Every fault of a fault link applies to a tap too.

The tap reads on the link's thread (:mod:`zmqprocesstest.faults._zmtp`'s ``Reader``, fed
the bytes as they start to go out to the peer): what it records is what the peer gets,
when it is delivered, and before the peer can have it, so a test that has received a
message finds it in the timeline (a dropped message never shows, a duplicate shows
twice, a message held by a partition shows when the heal delivers it). Its records go
into the timeline of the test that runs (a tap a class shares records into each
test's), in time order with the test's own; they are bounded like the rest of the
timeline. A mechanism that encrypts the messages (CURVE) hides them: the tap records
each encrypted frame by its size, and says why once.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from .._config import TAP_KEEP_BYTES
from ..report import timeline as _timeline
from ..report.timeline import PREVIEW_BYTES, Rendered, preview
from .link import DIRECTIONS, FaultLink

__unittest = True
__tracebackhide__ = True

__all__ = ["Tap", "TapMessage"]

_KINDS = ("sent", "received")  # the timeline's kind of a message to the server, to the client
_monotonic = time.monotonic

#: How many failures of a codec or recorder a tap keeps to tell (it counts the rest).
_FAILURES_KEPT = 10


class TapMessage(NamedTuple):
    """One whole message through a tap, as its recorders (:attr:`Tap.recorders`) get it."""

    #: When the tap delivered it (:func:`time.monotonic`, the timeline's clock).
    time: float
    #: ``'to_server'`` (from the client) or ``'to_client'``.
    direction: str
    #: The number of its connection through the tap (1 for the first accepted).
    connection: int
    #: The client's ZeroMQ identity (routing id), if its handshake named one.
    identity: Optional[bytes]
    #: Its frames, as :class:`bytes`; a frame beyond :data:`~zmqprocesstest._config.TAP_KEEP_BYTES`
    #: bytes of its message as a ``FramePreview`` (of
    #: ``zmqprocesstest.report.timeline``: its first bytes, ``head``, and its ``length``).
    frames: List[Any]


class _Sink:
    """What the link's thread tells of each connection's messages (see ``_zmtp.Reader``)."""

    keep = TAP_KEEP_BYTES
    head = PREVIEW_BYTES

    def __init__(self, tap: "Tap") -> None:
        self.tap = tap
        self.message = tap._message  # called for each message: no step between

    def ready(self, reader: Any, properties: Dict[str, bytes]) -> None:
        self.tap._ready(reader.direction, reader.connection, properties)

    def sealed(self, reader: Any, size: int, why: str) -> None:
        self.tap._sealed(reader.direction, size, why)


class Tap(FaultLink):
    """A :class:`~zmqprocesstest.FaultLink` that records every message through it, both ways.

    In a test, made by :meth:`ProcessTestCase.tap <zmqprocesstest.ProcessTestCase.tap>`
    (closed after the test). The user's own client connects to :attr:`~zmqprocesstest.FaultLink.endpoint` instead
    of *target*; each whole message it sends is recorded in the test's timeline as
    ``sent`` from the tap's lane (*name*), and each it receives as ``received``: the
    failure report, its sequence chart and the HTML report page show them.

    :param codec: renders a message's frames for the reports: ``codec.render(frames)``
        returns the text to show (called on the link's thread with the frames as
        :class:`bytes`, see :class:`TapMessage`); by default they are shown as the
        test sockets' messages are. What it raises shows in the report and is raised by
        :meth:`~zmqprocesstest.FaultLink.close`; the message is then shown as by default.
    :param name: the tap's lane and its name in reports (default ``tap`` and the last
        part of :attr:`~zmqprocesstest.FaultLink.endpoint`).

    The other parameters, and the faults, are the fault link's. A tap reads the NULL and
    PLAIN mechanisms; with CURVE it records each encrypted frame by its size (CURVE hides
    even which frames make up a message), and its lane says once that it cannot read them.
    """

    def __init__(self, target: str, transport: Optional[str] = None, endpoint: Optional[str] = None,
                 name: Optional[str] = None, codec: Any = None) -> None:
        if codec is not None and not callable(getattr(codec, "render", None)):
            raise TypeError(f"expected codec to have a render(frames) -> str method, got {codec!r}")
        #: The codec that renders its messages (``None``: the default rendering).
        self.codec = codec
        #: Callables called with each message (a :class:`TapMessage`), on the link's thread,
        #: in order: append one to keep the conversation (keep it quick: the link waits
        #: for it). What one raises shows in the report and is raised by :meth:`~zmqprocesstest.FaultLink.close`.
        self.recorders: List[Callable[[TapMessage], None]] = []
        self._peers: Dict[int, Dict[str, bytes]] = {}
        self._failures: List[str] = []
        self._failed = 0
        self._said_sealed = False
        super().__init__(target, transport, endpoint, name)

    @property
    def connections(self) -> Dict[int, Dict[str, bytes]]:
        """The connections through the tap whose client's handshake it read: ``{1:
        {'Socket-Type': b'REQ', 'Identity': b''}, ...}``, by connection number (the
        *connection* of an aimed :meth:`~zmqprocesstest.FaultLink.drop`)."""
        return {number: dict(properties) for number, properties in list(self._peers.items())}

    # -- on the link's thread ------------------------------------------------------------------
    def _sink(self) -> Any:
        return _Sink(self)

    def _lane(self, running: Any) -> None:
        # Its target's endpoint: the pictures draw its messages to the process bound there.
        running.lane(self.name, "socket", f"tap {self.endpoint} -> {self.target}", [self.target])

    def _record(self, kind: str, data: Any) -> None:
        running = _timeline.current()
        if running is not None:
            _timeline.record_in(running, kind, self.name, data)

    def _render(self, frames: List[Any]) -> Any:
        """What the timeline keeps of a message: the codec's text, or the frames (rendered
        when a report is made, as a test socket's)."""
        if self.codec is None:
            return frames
        try:
            return Rendered(str(self.codec.render(frames))[:_timeline.RENDERED_CHARS])
        except Exception as exc:
            self._fail(f"its codec's render raised {type(exc).__name__}: {exc}")
            return frames

    def _message(self, index: int, connection: int, frames: List[Any]) -> None:
        running = _timeline.current()
        if running is not None:  # timeline.record_in, inline: this runs for every message through the tap
            data = preview(frames) if self.codec is None else self._render(frames)
            with running.lock:
                running.entries.append((_monotonic(), _KINDS[index], self.name, data))
        if self.recorders:
            identity = self._peers.get(connection, {}).get("Identity") or None
            message = TapMessage(_monotonic(), DIRECTIONS[index], connection, identity, frames)
            for recorder in tuple(self.recorders):
                try:
                    recorder(message)
                except Exception as exc:
                    self._fail(f"its recorder {recorder!r} raised {type(exc).__name__}: {exc}")

    def _ready(self, index: int, connection: int, properties: Dict[str, bytes]) -> None:
        if index != 0:
            return  # the server's handshake: the lane is the client's
        self._peers[connection] = properties
        kind = properties.get("Socket-Type", b"?").decode("ascii", "replace")
        identity = properties.get("Identity")
        self._record("note", f"connection {connection}: a {kind} client" +
                     (f", identity {identity!r}" if identity else ""))

    def _sealed(self, index: int, size: int, why: str) -> None:
        if not self._said_sealed:
            self._said_sealed = True
            self._record("note", f"the tap cannot read the messages ({why}): it shows their sizes only")
        self._record("sent" if index == 0 else "received", Rendered(f"<encrypted frame, {size} bytes>"))

    def _fail(self, what: str) -> None:
        self._failed += 1
        if len(self._failures) < _FAILURES_KEPT:
            self._failures.append(what)
            self._record("note", f"tap {self.name}: {what}")

    def _errors(self) -> List[str]:
        more = self._failed - len(self._failures)
        return list(self._failures) + ([f"and {more} more failures"] if more > 0 else [])

    def _kind(self) -> str:
        return "Tap"

