"""ZMTP framing followed on the fly: where ZeroMQ messages start and end in a byte stream.

A :class:`Tracker` reads one direction of one connection as it passes through a
:class:`~zmqprocesstest.faults.FaultLink`, chunk by chunk, without copying: the ZMTP 3.x
greeting (64 bytes: signature ``0xFF ... 0x7F``, version, mechanism name, as-server,
filler), then frames (a flags byte: bit 0 MORE, bit 1 LONG, bit 2 COMMAND; a size of
1 or 8 bytes; the body). Command frames (the handshake's READY, HELLO, WELCOME,
INITIATE; PING and PONG heartbeats) are never part of a message; a message is the
non-command frames up to the one without MORE. The tracker counts whole messages and,
when drops are armed, leaves the frames of the next messages out; with a seeded
:class:`~zmqprocesstest.faults._seeded.Chance` it loses or duplicates messages (a duplicate
follows the message whole, after its last frame), and with a byte budget it cuts the
stream after the message that reaches it, so the link can close the connection there.
A fault of the link may also rewrite messages (:attr:`Tally.rewrites`): a message one of
them picks is held whole, its frames' bodies are handed to the fault's edit, which may
change their bytes but not their sizes, and it goes on at its end, its framing intact.

Only the NULL and PLAIN mechanisms send message frames in the clear. With CURVE (every
message an encrypted MESSAGE command), an unknown mechanism, or peers that speak ZMTP
2.0 or older, the tracker stops looking after the greeting and passes everything on.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from ._seeded import DUPLICATE, LOSE, Chance
from ..report.timeline import FramePreview

__unittest = True
__tracebackhide__ = True

__all__ = ["DROPPABLE_MECHANISMS", "Edit", "Reader", "Tally", "Tracker", "frame_bodies"]

#: Mechanisms whose message frames travel in the clear, so a message can be left out.
DROPPABLE_MECHANISMS = frozenset({"NULL", "PLAIN"})

_GREETING, _FRAMES, _OPAQUE = 0, 1, 2
_MORE, _LONG, _COMMAND = 1, 2, 4
_GREETING_SIZE = 64
Segments = Optional[List[Any]]  # the bytes that go on, in order (slices of the chunk, copies)
#: A fault's change to one message: called with its frames' bodies (writable, sizes fixed).
Edit = Callable[[List[memoryview]], None]


def frame_bodies(frames: bytearray) -> List[memoryview]:
    """The bodies of the whole ZMTP 3 frames in *frames*, as writable views, in order."""
    view, bodies, i = memoryview(frames), [], 0
    while i < len(frames):
        if frames[i] & _LONG:
            size, i = int.from_bytes(frames[i + 1:i + 9], "big"), i + 9
        else:
            size, i = frames[i + 1], i + 2
        bodies.append(view[i:i + size])
        i += size
    return bodies


class Tally:
    """Drops of one direction of a link: armed by the test, done by the trackers."""

    __slots__ = ("armed", "aimed", "dropped_messages", "dropped_bytes", "chance", "lost_messages",
                 "duplicated_messages", "cut_after", "cut_seen", "cuts", "rewrites", "counts", "errors")

    def __init__(self) -> None:
        #: Messages still to drop (the next ones to start, on any connection).
        self.armed = 0
        #: Aimed drops, in the order armed: ``[left, connection, match]`` each, which leave out
        #: the next *left* messages on connection number *connection* (``None``: any) for
        #: which ``match(frames)`` is true (``None``: every one). A drop with *match* holds
        #: each message it may take until its end, to show *match* its whole frames.
        self.aimed: List[List[Any]] = []
        self.dropped_messages = 0  # by drop() and by loss
        self.dropped_bytes = 0
        #: Seeded loss and duplicates (``None``: none), and what they did.
        self.chance: Optional[Chance] = None
        self.lost_messages = 0
        self.duplicated_messages = 0
        #: Cut a connection after the message that brings its bytes to this (0: no cut).
        self.cut_after = 0
        self.cut_seen = 0  # bytes seen since the cut was armed
        self.cuts = 0
        #: The faults that rewrite messages, by name: each has ``pick()``, called as a
        #: message starts, which returns ``None`` or an :data:`Edit` for it, and a ``label``
        #: for the link's state. Set on the proxy's thread, by the fault's own code.
        self.rewrites: Dict[str, Any] = {}
        #: What faults without a counter of their own counted, by the name of the field of
        #: :class:`~zmqprocesstest.faults.FlowStats` that shows it.
        self.counts: Dict[str, int] = {}
        #: What a drop's *match* raised (the message went on): for the link's report, and its close.
        self.errors: List[str] = []

    @property
    def drops_armed(self) -> int:
        """Messages the drops, aimed or not, will still leave out."""
        return self.armed + sum(aim[0] for aim in self.aimed)


class Tracker:
    """The ZMTP framing of one direction of one connection.

    :param tally: the direction's drops (shared by all connections of the link).
    :param on_greeting: called with the tracker once its protocol is known.
    """

    __slots__ = ("tally", "on_greeting", "peer", "mode", "greeting", "major", "minor", "mechanism", "reason",
                 "body", "need", "size", "flags", "in_msg", "dropping", "cur_drop", "copying", "cur_copy", "copy",
                 "cut", "edits", "held", "connection", "judging")

    def __init__(self, tally: Tally, on_greeting: Callable[["Tracker"], None]) -> None:
        self.tally = tally
        self.on_greeting = on_greeting
        #: The tracker of the other direction (version negotiation), set by the link.
        self.peer: Optional[Tracker] = None
        self.mode = _GREETING
        self.greeting = bytearray()
        #: ZMTP major and minor version, and mechanism (``None`` until known).
        self.major: Optional[int] = None
        self.minor: Optional[int] = None
        self.mechanism: Optional[str] = None
        #: Why messages cannot be dropped on this connection (``None``: they can).
        self.reason: Optional[str] = None
        self.body = 0  # body bytes of the current frame still to come
        self.need = 0  # size bytes of the current frame's header still to come
        self.size = 0
        self.flags = 0
        self.in_msg = False  # between the frames of a multipart message
        self.dropping = False  # the current message is being dropped
        self.cur_drop = False  # the current frame's bytes are being dropped
        self.copying = False  # the current message is duplicated: its frames are copied
        self.cur_copy = False
        self.copy = bytearray()
        #: The stream was cut (a byte budget reached): the link closes the connection.
        self.cut = False
        self.edits: Optional[List[Edit]] = None  # the current message is rewritten: its frames are held
        self.held = bytearray()
        #: The number of the link's connection this direction belongs to (1 for the first).
        self.connection = 0
        self.judging: Optional[List[List[Any]]] = None  # aimed drops that see the current message whole

    # -- what the link asks ----------------------------------------------------------------------
    @property
    def protocol(self) -> str:
        """``'ZMTP 3.1, NULL'``, ``'ZMTP 2.0 or older'``, or ``''`` before the greeting."""
        if self.major is None or self.mode == _GREETING:
            return ""
        if self.mechanism is None:
            return "ZMTP 2.0 or older" if self.major < 3 else f"ZMTP {self.major}.x"
        return f"ZMTP {self.major}.{self.minor}, {self.mechanism}"

    # -- the greeting -----------------------------------------------------------------------------
    def _opaque(self, major: int, reason: str) -> None:
        if self.mode == _OPAQUE:
            return
        self.mode, self.major, self.reason = _OPAQUE, major, reason
        self.greeting = bytearray()
        self.on_greeting(self)

    def _greet(self, data: memoryview, n: int) -> int:
        """Take greeting bytes from *data*; return where the frames start (or *n*)."""
        g = self.greeting
        take = min(n, _GREETING_SIZE - len(g))
        g += data[:take]
        if len(g) >= 1 and g[0] != 0xFF or len(g) >= 10 and not g[9] & 1:
            self._opaque(1, "the peers speak ZMTP 1.0 (no version in the greeting)")
            return n
        if len(g) < 11:
            return n
        major = g[10]
        peer = self.peer
        if peer is not None and peer.major is not None:
            major = min(major, peer.major)  # the peers settle on the older version
        if major < 3:
            old = "the peers speak ZMTP 2.0 or older"
            self._opaque(major, old)
            if peer is not None:
                peer._opaque(major, old)
            return n
        self.major = major
        if len(g) < _GREETING_SIZE:
            return n
        self.minor = g[11]
        self.mechanism = bytes(g[12:32]).rstrip(b"\0").decode("ascii", "replace")
        self.greeting = bytearray()
        if self.mechanism in DROPPABLE_MECHANISMS:
            self.mode = _FRAMES
        else:
            self.mode = _OPAQUE
            self.reason = (f"the {self.mechanism} mechanism encrypts each message (an encrypted MESSAGE command), "
                           "so a dropped message would break the nonce sequence"
                           if self.mechanism == "CURVE" else f"the {self.mechanism} mechanism is not understood")
        self.on_greeting(self)
        return take

    # -- the frames -----------------------------------------------------------------------------
    def feed(self, data: memoryview, n: int) -> Tuple[int, Segments]:
        """Follow the next *n* bytes of *data*.

        Returns the number of messages completed (and duplicated) in them and ``None``
        if all the bytes go on, or else the bytes that go on, in order (slices of
        *data*, valid until it changes, with drops left out and duplicates added).
        """
        mode = self.mode
        if mode == _OPAQUE:
            return 0, None
        i = 0
        if mode == _GREETING:
            i = self._greet(data, n)
            if self.mode != _FRAMES or i >= n:
                if self.tally.cut_after:
                    self.tally.cut_seen += n
                return 0, None
        msgs = 0
        segs: Segments = None
        keep = 0  # where the bytes that go on start
        dstart = 0 if self.cur_drop else -1  # where the dropped frame started, in this chunk
        cstart = 0 if self.cur_copy else -1  # where the copied frame started
        tally = self.tally
        body, need, flags, cur_drop, cur_copy = self.body, self.need, self.flags, self.cur_drop, self.cur_copy
        while i < n:
            if body:
                if n - i < body:
                    body -= n - i
                    i = n
                    break
                i += body
                body = 0
            elif need:  # a frame header split between chunks (rare): the size byte by byte
                size = self.size
                while need and i < n:
                    size = (size << 8) | data[i]
                    i += 1
                    need -= 1
                self.size = size
                if need:
                    break
                body = size
                if body:
                    continue
            else:  # a frame starts
                flags = data[i]
                if not flags & _COMMAND and not self.in_msg:
                    self.in_msg = True
                    if tally.armed > 0:
                        tally.armed -= 1
                        tally.dropped_messages += 1
                        self.dropping = True
                    elif tally.aimed and self._aim(tally):
                        pass  # an aimed drop takes it
                    elif tally.chance is not None:
                        action = tally.chance.decide()
                        if action == LOSE:
                            tally.dropped_messages += 1
                            tally.lost_messages += 1
                            self.dropping = True
                        elif action == DUPLICATE:
                            tally.duplicated_messages += 1
                            self.copying = True
                    if tally.rewrites and not self.dropping:
                        self.edits = [e for e in (r.pick() for r in tally.rewrites.values()) if e is not None] or None
                    if self.judging is not None and self.edits is None:
                        self.edits = []  # held whole for the drops' match, then judged
                cur_drop = (self.dropping or self.edits is not None) and not flags & _COMMAND
                if cur_drop:
                    dstart = i
                cur_copy = self.copying and not flags & _COMMAND
                if cur_copy:
                    cstart = i
                if flags & _LONG:
                    if n - i >= 9:
                        body = int.from_bytes(data[i + 1:i + 9], "big")
                        i += 9
                    else:
                        need, self.size, i = 8, 0, i + 1
                        continue
                elif n - i >= 2:
                    body = data[i + 1]
                    i += 2
                else:
                    need, self.size, i = 1, 0, i + 1
                    continue
                if body:
                    continue
            # the frame ends at i
            if cur_drop:
                if segs is None:
                    segs = []
                if keep < dstart:
                    segs.append(data[keep:dstart])
                if self.edits is None:
                    tally.dropped_bytes += i - dstart
                else:
                    self.held += data[dstart:i]
                keep, dstart, cur_drop = i, -1, False
            if cur_copy:
                self.copy += data[cstart:i]
                cstart, cur_copy = -1, False
            if not flags & (_COMMAND | _MORE):
                self.in_msg = False
                if self.dropping:
                    self.dropping = False
                    continue
                msgs += 1
                if self.edits is not None:  # the message held whole goes on, rewritten (or is judged dropped)
                    segs = [] if segs is None else segs
                    rewritten = self._rewritten()
                    if rewritten is None:
                        msgs -= 1
                        if self.copying:  # its copy goes with it
                            self.copying, self.copy = False, bytearray()
                            tally.duplicated_messages -= 1
                        keep = i
                        continue
                    segs.append(rewritten)
                if self.copying:  # the copy follows the message
                    segs = [] if segs is None else segs
                    segs.extend((data[keep:i], bytes(self.copy)))
                    keep, msgs, self.copying, self.copy = i, msgs + 1, False, bytearray()
                if tally.cut_after and tally.cut_seen + i >= tally.cut_after:
                    segs = [] if segs is None else segs
                    segs.append(data[keep:i])
                    keep, self.cut, tally.cut_after, tally.cut_seen = n, True, 0, 0
                    tally.cuts += 1
                    break
        self.body, self.need, self.flags, self.cur_drop, self.cur_copy = body, need, flags, cur_drop, cur_copy
        if tally.cut_after:
            tally.cut_seen += n
        if cstart >= 0:  # a copied frame goes on in the next chunk
            self.copy += data[cstart:n]
        if dstart >= 0:  # a dropped frame goes on in the next chunk
            if segs is None:
                segs = []
            if keep < dstart:
                segs.append(data[keep:dstart])
            if self.edits is None:
                tally.dropped_bytes += n - dstart
            else:
                self.held += data[dstart:n]
            keep = n
        if segs is not None and keep < n:
            segs.append(data[keep:n])
        return msgs, segs

    def _aim(self, tally: Tally) -> bool:
        """As a message starts: whether an aimed drop without *match* takes it (then it is
        being dropped); otherwise note the aimed drops whose *match* must see it whole."""
        judging = None
        for aim in tally.aimed:
            if aim[1] is not None and aim[1] != self.connection:
                continue
            if aim[2] is None:
                aim[0] -= 1
                if not aim[0]:
                    tally.aimed.remove(aim)
                tally.dropped_messages += 1
                self.dropping = True
                return True
            judging = [aim] if judging is None else judging + [aim]
        self.judging = judging
        return False

    def _judged(self, bodies: List[memoryview], size: int) -> bool:
        """Whether an aimed drop's *match* takes the message held whole (its *bodies*, *size* bytes)."""
        judging, self.judging = self.judging or [], None
        tally, frames = self.tally, [bytes(body) for body in bodies]
        for aim in judging:
            if aim[0] <= 0 or aim not in tally.aimed:
                continue  # another connection's message used it up meanwhile
            try:
                taken = aim[2](frames)
            except Exception as exc:  # the message goes on; the link's report and close say so
                tally.errors.append(f"a drop's match {aim[2]!r} raised {type(exc).__name__}: {exc}")
                continue
            if taken:
                aim[0] -= 1
                if not aim[0]:
                    tally.aimed.remove(aim)
                tally.dropped_messages += 1
                tally.dropped_bytes += size
                return True
        return False

    def _rewritten(self) -> Optional[bytes]:
        """The message held whole, after the edits of the faults that picked it (``None``: an
        aimed drop's *match* took it)."""
        held, edits = self.held, self.edits or []
        self.held, self.edits = bytearray(), None
        bodies = frame_bodies(held)
        if self.judging is not None and self._judged(bodies, len(held)):
            return None
        for edit in edits:
            edit(bodies)
        return bytes(held)


class Reader:
    """The messages of one direction of one connection, read from the bytes the link delivered.

    A tap (:class:`~zmqprocesstest.faults.tap.Tap`) feeds it each piece of the stream as
    it starts to go out, after the faults (a dropped message never shows, a duplicate shows
    twice). It tells *sink* each whole message, with its frames
    (``sink.message(direction, connection, frames)``, *direction* 0 or 1), each READY command's properties
    (``sink.ready(reader, properties)``) and, where the mechanism hides the messages,
    sizes only (``sink.sealed(reader, size, why)``). *tracker*, the same direction's,
    says which protocol the peers settled on.

    Its copies are bounded: a frame is kept whole while its message keeps at most
    *keep* bytes, and beyond that as a :class:`~zmqprocesstest.report.timeline.FramePreview`
    (its first *head* bytes and its length); a frame's bytes that are not kept are
    skipped as they pass, never buffered.
    """

    __slots__ = ("sink", "emit", "tracker", "direction", "connection", "keep", "head", "mode", "buf", "frames",
                 "kept", "skip", "big", "mechanism")

    def __init__(self, sink: Any, tracker: Tracker, direction: int, connection: int, keep: int, head: int) -> None:
        self.sink, self.tracker, self.direction, self.connection = sink, tracker, direction, connection
        self.emit = sink.message
        self.keep, self.head = keep, head
        self.mode = _GREETING
        self.buf = bytearray()
        self.frames: List[Any] = []  # the current message's frames so far
        self.kept = 0  # bytes of them kept whole
        self.skip = 0  # bytes of a frame too big to keep still to pass
        self.big: Any = None  # that frame: (flags, preview)
        #: The mechanism its greeting named (``None``: before it, or ZMTP 2.0 and older).
        self.mechanism: Optional[str] = None

    def feed(self, data: Any) -> None:
        """Follow *data* (bytes or a view), the next bytes delivered in this direction."""
        if self.mode == _FRAMES and not self.buf and not self.skip:  # the usual case: whole frames, read in place
            if type(data) is not bytes and len(data) <= self.keep:
                data = bytes(data)  # one copy: slices of bytes cost less than of a view
            i = self._frames(data, 0, len(data))
            if i < len(data):
                self.buf += data[i:]
            return
        if self.mode == _OPAQUE:
            self.sink.sealed(self, len(data), self.tracker.reason or "the peers' protocol is not understood")
            return
        if self.skip:
            take = min(self.skip, len(data))
            self.skip -= take
            if self.skip:
                return
            data = data[take:]
            flags, frame = self.big
            self.big = None
            self._frame(flags, frame)
        buf = self.buf
        buf += data
        i = 0
        if self.mode == _GREETING:
            if len(buf) < _GREETING_SIZE:
                if self.tracker.mode == _OPAQUE and self.tracker.mechanism is None:  # ZMTP 2.0 or older
                    self.mode = _OPAQUE
                    self.buf = bytearray()
                    self.sink.sealed(self, len(buf), self.tracker.reason or "the peers' protocol is not understood")
                return
            self.mechanism = bytes(buf[12:32]).rstrip(b"\0").decode("ascii", "replace")
            self.mode = _FRAMES if self.mechanism in DROPPABLE_MECHANISMS else _SEALED
            i = _GREETING_SIZE
        del buf[:self._frames(buf, i, len(buf))]

    def _frames(self, buf: Any, i: int, n: int) -> int:
        """Read the whole frames of *buf* from *i* to *n*; return where the first incomplete one
        starts (or *n*: then a frame too big to keep may be being skipped)."""
        frames, emit = self.frames, self.emit
        while i < n:
            flags = buf[i]
            if flags & _LONG:
                if n - i < 9:
                    break
                size, start = int.from_bytes(buf[i + 1:i + 9], "big"), i + 9
            else:
                if n - i < 2:
                    break
                size, start = buf[i + 1], i + 2
            end = start + size
            if end > n:
                if size > self.keep:  # too big to buffer: keep its head, skip the rest as it passes
                    self.big = (flags, FramePreview(bytes(buf[start:start + self.head]), size))
                    self.skip = end - n
                    return n
                break
            i = end
            if flags & _COMMAND or self.kept + size > self.keep or self.mode != _FRAMES:
                self._frame(flags, bytes(buf[start:end]))
                frames = self.frames
                continue
            frames.append(buf[start:end] if type(buf) is bytes else bytes(buf[start:end]))  # the usual frame, inline
            self.kept += size
            if not flags & _MORE:
                self.frames, self.kept = [], 0
                emit(self.direction, self.connection, frames)
                frames = self.frames
        return i

    def _frame(self, flags: int, body: Any) -> None:
        if self.mode == _SEALED:  # each message frame an encrypted MESSAGE (flagged a command or not)
            name = bytes(body[1:1 + body[0]]) if isinstance(body, bytes) and body else b""
            if name not in _HANDSHAKE:
                size = len(body) if isinstance(body, bytes) else body.length
                self.sink.sealed(self, size, self.tracker.reason or f"the {self.mechanism} mechanism")
            return
        if flags & _COMMAND:
            name = bytes(body[1:1 + body[0]]) if isinstance(body, bytes) and body else b""
            if name in (b"READY", b"INITIATE") and isinstance(body, bytes):
                self.sink.ready(self, _properties(body[1 + len(name):]))
            return
        if isinstance(body, bytes):
            if self.kept + len(body) > self.keep:
                body = FramePreview(body[:self.head], len(body))
            else:
                self.kept += len(body)
        self.frames.append(body)
        if not flags & _MORE:
            frames, self.frames, self.kept = self.frames, [], 0
            self.emit(self.direction, self.connection, frames)


#: A mechanism that hides messages (CURVE): its frames are shown as sizes.
_SEALED = 3
#: The commands of a handshake and the heartbeats: never shown as messages.
_HANDSHAKE = frozenset({b"READY", b"HELLO", b"WELCOME", b"INITIATE", b"ERROR", b"PING", b"PONG", b"SUBSCRIBE",
                        b"CANCEL"})


def _properties(data: bytes) -> Dict[str, bytes]:
    """The properties of a READY command's body after its name: ``{'Socket-Type': b'REQ', ...}``."""
    found, i = {}, 0
    try:
        while i < len(data):
            size = data[i]
            name = data[i + 1:i + 1 + size].decode("ascii", "replace")
            i += 1 + size
            length = int.from_bytes(data[i:i + 4], "big")
            found[name] = bytes(data[i + 4:i + 4 + length])
            i += 4 + length
    except IndexError:  # a cut property: what came before it
        pass
    return found
