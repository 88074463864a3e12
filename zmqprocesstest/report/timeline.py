"""One timeline per test: messages, process lifecycle, output, faults, on one clock.

A :class:`Timeline` keeps the messages a test's sockets sent and received and, on the
same :func:`time.monotonic` clock, the lifecycle of the processes under test (started, stop
steps, signals, exit), each chunk of their output with the time it arrived, the faults
applied (partition, drop, freeze, restart...), subscriptions and waits that timed out.
Each entry is a tuple ``(time, kind, source, data)`` in one bounded deque. A message is
recorded as a bounded copy of its frames (:func:`preview`: the first
:data:`PREVIEW_BYTES` bytes of each of the first :data:`PREVIEW_FRAMES` frames, and the
lengths), never the frames themselves: a test that streams large messages keeps none of
them alive. The copy holds what the reports show, which are rendered only for a report;
output is split into lines only when it is shown.

The test that runs *activates* its timeline (:func:`activate`). Everything that happens
in a test reaches it the same way, through :func:`record`: a test socket's messages, a
process's start, signals, exit and output, a fault, a monitor event, a state machine's
step, and a test's own entries. It does nothing when no test runs::

    from zmqprocesstest import timeline
    timeline.record("monitor", "req", "connected tcp://127.0.0.1:5555")

The failure report shows the last entries (:meth:`Timeline.format`) and a compact text
sequence chart of the last messages (:meth:`Timeline.chart`); the HTML report
(:mod:`zmqprocesstest.report_html`) draws the whole of it. Frames are shown shortened
(:func:`short`, :func:`short_frames`): a huge frame or a message of many frames never
floods a report.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple, Union

import zmq

__unittest = True
__tracebackhide__ = True

__all__ = ["MESSAGE_KINDS", "PREVIEW_BYTES", "PREVIEW_FRAMES", "TIMELINE_LENGTH", "FramePreview", "MessagePreview",
           "RENDERED_CHARS", "Rendered", "UNKNOWN_PEER", "Timeline", "activate", "current", "failure_line", "preview",
           "record", "record_in", "render", "revise",
           "short", "short_frames", "type_name"]

#: The lane of the messages of a test socket whose peer the timeline cannot tell (it
#: connected to or bound an endpoint no process under test or fault link is known to use).
UNKNOWN_PEER = "(process not known)"
#: How many entries a test's timeline keeps (the oldest are dropped beyond it).
TIMELINE_LENGTH = 2000
#: The kinds of the entries that are messages (their data is the frames).
MESSAGE_KINDS = frozenset({"sent", "received"})
#: How many bytes of a frame the timeline keeps (reports show at most 60 of them).
PREVIEW_BYTES = 64
#: How many frames of a message the timeline keeps (reports show at most 8 of them).
PREVIEW_FRAMES = 8
#: How many characters of a message a codec rendered the timeline keeps (:class:`Rendered`).
RENDERED_CHARS = 240

Entry = Tuple[float, str, str, Any]

_CURRENT: Optional["Timeline"] = None
_ANY_HOST = frozenset({"*", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"})


def _address(endpoint: str) -> Tuple[str, str, str]:
    """``(transport, address, port)`` of an endpoint (a ``"bind "``/``"connect "`` prefix dropped)."""
    endpoint = endpoint.split(" ", 1)[1] if endpoint.startswith(("bind ", "connect ")) else endpoint
    transport, _, rest = endpoint.partition("://")
    if transport != "tcp":
        return transport, rest, ""
    host, _, port = rest.rpartition(":")
    return transport, host.strip("[]"), port


def _same(a: Tuple[str, str, str], b: Tuple[str, str, str]) -> bool:
    """Whether two endpoints reach the same listener (a tcp wildcard or loopback host matches loopback)."""
    if a[0] != b[0] or not a[1]:
        return False
    if a[0] != "tcp":
        return a[1] == b[1]
    return a[2] == b[2] and a[2] != "" and (a[1] == b[1] or (a[1] in _ANY_HOST and b[1] in _ANY_HOST))


def type_name(sock_type: int) -> str:
    """Name of a zmq socket type (``zmq.REQ`` -> ``'REQ'``)."""
    try:
        return zmq.SocketType(sock_type).name
    except ValueError:
        return str(sock_type)


class FramePreview:
    """What the timeline keeps of a frame: its first bytes (*head*) and its *length*.

    For an object that is not a buffer, *head* is the start of its ``repr`` and
    *length* that text's length (*text* is true).
    """

    __slots__ = ("head", "length", "text")

    def __init__(self, head: Any, length: int, text: bool = False) -> None:
        self.head, self.length, self.text = head, length, text

    def __repr__(self) -> str:
        return f"FramePreview({self.head!r}, {self.length})"


class MessagePreview:
    """What the timeline keeps of a message: previews of its first frames (*frames*)
    and how many frames it had (*total*)."""

    __slots__ = ("frames", "total")

    def __init__(self, frames: Tuple[Any, ...], total: int) -> None:
        self.frames, self.total = frames, total

    def __len__(self) -> int:
        return self.total

    def __repr__(self) -> str:
        return f"MessagePreview({self.frames!r}, {self.total})"


class Rendered(str):
    """A message as a codec rendered it (a test socket's or a tap's, see
    :mod:`zmqprocesstest.codecs`), already bounded: the reports show this text as it is,
    in place of the frames."""

    __slots__ = ()


def _preview_frame(frame: Any) -> Any:
    if type(frame) is FramePreview:  # a preview already (a tap's, of a frame it did not keep)
        return frame
    if type(frame) is bytes:  # immutable: a short one is kept as it is
        return frame if len(frame) <= PREVIEW_BYTES else FramePreview(frame[:PREVIEW_BYTES], len(frame))
    if isinstance(frame, zmq.Frame):
        frame = frame.buffer  # a view: no copy of the whole frame
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return FramePreview(bytes(frame[:PREVIEW_BYTES]), len(frame))
    if isinstance(frame, Rendered):
        return frame
    text = repr(frame)
    return FramePreview(text[:PREVIEW_BYTES], len(text), text=True)


def preview(frames: Any) -> Any:
    """The bounded copy the timeline keeps of a message (a list or tuple of frames) or
    of one frame: enough to render it as :func:`short` and :func:`short_frames` do."""
    if type(frames) is list and len(frames) == 1:  # the most common message: one short frame
        frame = frames[0]
        if type(frame) is bytes and len(frame) <= PREVIEW_BYTES:
            return (frame,)
    if isinstance(frames, (list, tuple)):
        if len(frames) <= PREVIEW_FRAMES:  # the usual message: a tuple says all (how many, too)
            for frame in frames:
                if type(frame) is not bytes or len(frame) > PREVIEW_BYTES:
                    return tuple([_preview_frame(f) for f in frames])
            return tuple(frames)  # short bytes only, the most common message: kept as they are
        return MessagePreview(tuple([_preview_frame(f) for f in frames[:PREVIEW_FRAMES]]), len(frames))
    return _preview_frame(frames)


def short(frame: Any, limit: int = 60) -> str:
    """A readable, bounded rendering of one frame (huge frames are cut); a codec's
    rendering of a message (:class:`Rendered`) as it is."""
    if isinstance(frame, FramePreview):
        if frame.text:
            return frame.head[:limit] + f"... ({frame.length} chars)" if frame.length > limit else frame.head
        text = repr(frame.head[:limit])
        return text + f"... ({frame.length} bytes)" if frame.length > limit else text
    if isinstance(frame, zmq.Frame):
        frame = frame.bytes
    if isinstance(frame, (bytes, bytearray, memoryview)):
        data = bytes(frame[: limit + 1])
        text = repr(data[:limit])
        if len(frame) > limit:
            text += f"... ({len(frame)} bytes)"
        return text
    if isinstance(frame, Rendered):
        return str(frame)
    text = repr(frame)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text)} chars)"
    return text


def short_frames(frames: Union[Sequence[Any], MessagePreview], limit: int = 60, most: int = 8) -> str:
    """Render a multipart message as ``[frame, frame, ...]`` with bounded size."""
    if isinstance(frames, MessagePreview):
        total = frames.total
        shown = [short(f, limit) for f in frames.frames[:most]]
        if total > most:
            shown.append(f"... {total - most} more frames")
        return "[" + ", ".join(shown) + "]"
    shown = [short(f, limit) for f in list(frames)[:most]]
    if len(frames) > most:
        shown.append(f"... {len(frames) - most} more frames")
    return "[" + ", ".join(shown) + "]"


def render(data: Any, limit: int = 60, most: int = 8) -> str:
    """How every report shows a recorded message (*data*, kept by :func:`preview`), sent
    or received alike: its frames as the test handed them over or got them (a frame
    an event encoded or decoded, the JSON body of ``send`` and ``recv``, is shown as the
    value, see :func:`revise`), each shortened (:func:`short_frames`)."""
    if type(data) is Rendered:  # a codec's rendering: as it is, to its own bound
        return data[:max(limit, RENDERED_CHARS)]
    if isinstance(data, (list, tuple, MessagePreview)):
        return short_frames(data, limit, most)
    return short(data, limit)


def failure_line(exc: BaseException) -> str:
    """The first line of a failure, as the "test failed here" rule shows it:
    ``AssertionError: Lists differ: [['pong', 1]] != [['pong', 2]]``."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def current() -> Optional["Timeline"]:
    """The timeline of the test (or class or module scope) that is running, if any."""
    return _CURRENT


def activate(timeline: Optional["Timeline"]) -> Optional["Timeline"]:
    """Make *timeline* the one :func:`record` adds to; return the one it replaces."""
    global _CURRENT
    previous, _CURRENT = _CURRENT, timeline
    return previous


def record(kind: str, source: str, data: Any) -> None:
    """Add an entry to the running test's timeline (nothing if no test runs).

    :param kind: what happened: ``"sent"``, ``"received"``, ``"start"``, ``"signal"``,
        ``"fault"``, ``"note"`` (a monitor event, a state machine's step)...
    :param source: the lane it belongs to: a socket's, process's or fault link's name.
    :param data: a short text (or frames, for ``"sent"``/``"received"``: the timeline
        keeps a bounded copy of them, see :func:`preview`).
    """
    timeline = _CURRENT
    if timeline is not None:
        if kind in MESSAGE_KINDS:
            data = preview(data)
        with timeline.lock:  # the clock read and the append as one: entries stay in time order
            timeline.entries.append((time.monotonic(), kind, source, data))


def record_in(timeline: "Timeline", kind: str, source: str, data: Any) -> None:
    """:func:`record` into *timeline*, from any thread: what a tap's thread records into
    the timeline of the test that made it (a :class:`Rendered` message is kept as it is)."""
    if kind in MESSAGE_KINDS and type(data) is not Rendered:
        data = preview(data)
    with timeline.lock:
        timeline.entries.append((time.monotonic(), kind, source, data))


def revise(kind: str, source: str, index: int, value: Any, small: bool) -> None:
    """Replace frame *index* of the last *kind* message of *source* with *value* (the
    ``recv`` event's JSON frame, decoded since the message was recorded; the ``send``
    event's, as the test gave it before it was encoded), so the report shows the
    message as the test got it or gave it, in both directions alike (:func:`render`).
    A *small* value (decoded from a frame of at most :data:`PREVIEW_BYTES` bytes) is
    kept as it is, another as a preview."""
    timeline = _CURRENT
    if timeline is None:
        return
    with timeline.lock:  # another thread's append may move the entries meanwhile
        _revise(timeline.entries, kind, source, index, value, small)


def _revise(entries: Deque[Entry], kind: str, source: str, index: int, value: Any, small: bool) -> None:
    if entries:  # the usual case first: the message is the last entry, and has one frame
        when, k, s, data = entries[-1]
        if k == kind and s == source and type(data) is tuple and len(data) == 1 and (index == 0 or index == -1):
            entries[-1] = (when, kind, source, (value if small else _preview_frame(value),))
            return
    for i in range(len(entries) - 1, max(-1, len(entries) - 1 - _REVISE_LOOKBACK), -1):
        when, k, s, data = entries[i]
        if k == kind and s == source:
            frames = data.frames if isinstance(data, MessagePreview) else data
            if isinstance(frames, tuple) and -len(frames) <= index < len(frames) \
                    and (index >= 0 or not isinstance(data, MessagePreview)):
                frames = frames[:index] + (value if small else _preview_frame(value),) + \
                    (frames[index + 1:] if index != -1 else ())
                data = MessagePreview(frames, data.total) if isinstance(data, MessagePreview) else frames
                entries[i] = (when, kind, source, data)
            return


#: How far back :func:`revise` looks (other lanes' entries may have come meanwhile).
_REVISE_LOOKBACK = 64


class Timeline:
    """What happened during one test, oldest first, bounded to *keep* entries.

    Entries are kept in a bounded :class:`collections.deque`; a message's frames are
    kept as a bounded copy (:func:`preview`) and only rendered (shortened) when a
    report is made, so recording costs little and holds no frame alive.

    :param maxlen: how many entries the failure report shows (``transcript_length``).
    :param keep: how many entries are kept (the HTML report shows them all).
    """

    def __init__(self, maxlen: int = 20, keep: int = TIMELINE_LENGTH) -> None:
        #: The clock reading the entries' times count from.
        self.start = time.monotonic()
        #: ``(time, kind, source, data)`` tuples, oldest first.
        self.entries: Deque[Entry] = collections.deque(maxlen=max(keep, maxlen))
        #: How many entries the terminal report shows.
        self.shown = maxlen
        #: Lanes for pictures: name -> (``"socket"``, ``"process"`` or ``"link"``, detail).
        self.lanes: Dict[str, Tuple[str, str]] = {}
        #: The endpoints each socket or process lane is known to use (a socket's
        #: ``"bind ..."``/``"connect ..."`` entries, kept up to date; the endpoints a
        #: process was given at its start or was seen listening on): see :meth:`peers`.
        self.endpoints: Dict[str, List[str]] = {}
        #: Where the full timeline is (an HTML page), once known: the report points to it.
        self.full_at: Optional[str] = None
        #: Held while an entry is added (:func:`record`, :func:`record_in`: from several threads).
        self.lock = threading.Lock()

    def lane(self, name: str, kind: str, detail: str = "", endpoints: Optional[List[str]] = None) -> None:
        """Declare a lane (a test socket, process or fault link) for the pictures, with
        the *endpoints* it uses (a list the caller may go on extending)."""
        self.lanes.setdefault(name, (kind, detail))
        if endpoints is not None:
            self.endpoints.setdefault(name, endpoints)

    def peers(self, sockets: Sequence[str]) -> Dict[str, str]:
        """The lane each of *sockets* exchanges its messages with: the fault link or the
        process under test whose endpoint it connected to or bound, where the timeline
        knows it (:attr:`endpoints`); several candidates make one lane naming them all
        (``"(a or b)"``), none the lane :data:`UNKNOWN_PEER`."""
        links = [(n, d.split(" -> ")[0]) for n, (k, d) in self.lanes.items() if k == "link"]
        processes = [n for n, (k, _) in self.lanes.items() if k == "process"]
        found: Dict[str, str] = {}
        for sock in sockets:
            detail = self.lanes.get(sock, ("", ""))[1]
            given = self.endpoints.get(sock) or ([detail.split(" -> ", 1)[1]] if detail.startswith("tap ")
                                                 and " -> " in detail else [])  # a tap: its target's
            ends = [_address(e) for e in given]
            through = [n for n, at in links if any(_same(_address(at), e) for e in ends)]
            if through:
                found[sock] = through[0]
                continue
            matches = [p for p in processes
                       if any(_same(_address(mine), e) for mine in self.endpoints.get(p, ()) for e in ends)]
            found[sock] = matches[0] if len(matches) == 1 else \
                "(" + " or ".join(matches) + ")" if matches else UNKNOWN_PEER
        return found

    def full(self) -> bool:
        """Whether older entries may have been dropped (the deque is full)."""
        return len(self.entries) == self.entries.maxlen

    def lines(self) -> List[Tuple[float, str, str, str]]:
        """Every entry rendered: ``(seconds from start, kind, source, text)``, output
        split into one entry per line (each with the time its chunk arrived)."""
        rows: List[Tuple[float, str, str, str]] = []
        for when, kind, source, data in list(self.entries):
            at = when - self.start
            if kind in MESSAGE_KINDS:
                rows.append((at, kind, source, render(data)))
            elif kind == "output":
                raw = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
                rows.extend((at, kind, source, line) for line in raw.splitlines() if line.strip())
            else:
                rows.append((at, kind, source, str(data)))
        return rows

    def format(self, rows: Optional[Sequence[Tuple[float, str, str, str]]] = None) -> str:
        """The last :attr:`shown` entries, one a line (or all of *rows*)."""
        if rows is None:
            rows = self.lines()[-self.shown:]
        if not rows:
            return "  (nothing happened)"
        width = min(max(len(source) for _, _, source, _ in rows), 24)
        return "\n".join(f"  +{at:8.3f}s {source:<{width}} {_MARKS.get(kind, kind)} {text}"
                         for at, kind, source, text in rows)

    def header(self) -> str:
        """``Timeline (last 20 of 57 entries, oldest first; full timeline: ...):``."""
        total = len(self.lines())
        count = f"last {self.shown} of {total}{'+' if self.full() else ''} entries" if total > self.shown \
            else f"{total} entries"
        where = f"; full timeline: {self.full_at}" if self.full_at else ""
        return f"Timeline ({count}, oldest first{where}):"

    def chart(self, most: int = 8, width: int = 10) -> str:
        """A compact text sequence chart of the last *most* messages: a column per test
        socket, then one per peer (:meth:`peers`), messages as arrows between them."""
        messages = [e for e in list(self.entries) if e[1] in MESSAGE_KINDS][-most:]
        if not messages:
            return ""
        names: List[str] = []
        for _, _, source, _ in messages:
            if source not in names:
                names.append(source)
        peer = self.peers(names)
        columns = names + [p for p in dict.fromkeys(peer[n] for n in names) if p not in names]
        width = min(max(width, max(len(name) for name in columns) + 2), 24)  # a column fits its name
        cols = [name[:width - 1] for name in columns]
        lines = [("  " + " " * 11 + "".join(f"{c:<{width}}" for c in cols)).rstrip()]
        for when, kind, source, frames in messages:
            a, b = sorted((columns.index(source), columns.index(peer[source])))
            span = (b - a) * width - 1
            rightwards = (kind == "sent") == (columns.index(source) < columns.index(peer[source]))
            arrow = "-" * (span - 1) + ">" if rightwards else "<" + "-" * (span - 1)
            row = "|" + " " * (width - 1)
            row = row * a + "|" + arrow + "|" + (" " * (width - 1) + "|") * (len(columns) - 1 - b)
            text = render(frames, limit=30, most=PREVIEW_FRAMES)
            lines.append(f"  +{when - self.start:8.3f}s {row}  {text}")
        return "\n".join(lines)


#: How each kind is marked in the text timeline.
_MARKS = {"sent": "->", "received": "<-", "output": "|", "start": "started", "exit": "exited:",
          "stop": "stop step", "signal": "signal", "fault": "fault:", "timeout": "TIMED OUT:",
          "subscribe": "subscribed", "note": "**",  # a note: a state machine's step, a monitor event
          "failed": "TEST FAILED HERE:", "teardown": "---- teardown:"}
