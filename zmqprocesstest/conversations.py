"""Recorded conversations: the messages a client and a server exchanged, kept in a file
next to the tests, and replayed as a test of either side.

A recording is a text file of JSON lines. The first line says what the file is
(``{"conversation": 1, "codec": "json"}``, perhaps with the socket types of the two
sides); each further line is one whole message::

    {"conversation": 1, "codec": "json", "client": "REQ", "server": "REP"}
    {"t": 0.0, "dir": "to_server", "conn": 1, "frames": ["", {"json": ["ping", 1]}]}
    {"t": 0.000412, "dir": "to_client", "conn": 1, "frames": ["", {"json": ["pong", 1]}]}

``t`` is the time in seconds since the first message, ``dir`` the direction
(``"to_server"`` or ``"to_client"``, as a fault link names them), ``conn`` the number of
the connection it went over (1 for the first client that connected), ``peer`` (only
where it is known) the identity the client announced, which a ROUTER peer routes by.
Each frame is written in the first of these forms that reads back as exactly the same
bytes:

- ``{"json": VALUE}``: a JSON object or array, written by :func:`json.dumps` with its
  defaults (``{"json": VALUE, "style": "compact"}`` and the other :data:`JSON_STYLES`
  for bodies written with other separators or without ``ensure_ascii``);
- a JSON string: UTF-8 text (``""`` is the empty delimiter frame);
- ``{"b64": "..."}``: any other bytes, base64-encoded (``{"hex": "..."}`` is read too,
  for frames written by hand).

So a JSON body stays JSON to read, diff and edit by hand, and every frame reads back
exactly. :class:`ConversationWriter` writes a recording, one line per whole message as
it comes (a tap calls :meth:`ConversationWriter.message`); :func:`read_conversation`
reads one, with an error naming the line, what was expected there and what came.
:func:`replay` plays one side of a recording over test sockets against the process
under test (the test case's ``replay`` event).
"""
from __future__ import annotations

import base64
import binascii
import collections
import difflib
import json
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

import zmq

from ._config import RECORD_BUFFER_BYTES, TAP_KEEP_BYTES, UPDATE_GOLDEN_ENV, env_flag
from .loop import BadArgument
from .report import timeline as _timeline
from .sockets import TestSocket

__unittest = True
__tracebackhide__ = True

__all__ = ["FORMAT_VERSION", "JSON_STYLES", "TO_CLIENT", "TO_SERVER", "Conversation", "ConversationError",
           "ConversationWriter", "Message", "ReplayResult", "TapRecorder", "decode_frame", "encode_frame",
           "read_conversation", "render_message", "replay", "resolve_path", "write_conversation"]

#: The version of the file format, in its first line (``{"conversation": 1, ...}``).
FORMAT_VERSION = 1
#: The direction of a message from a client to the server (as a fault link names it).
TO_SERVER = "to_server"
#: The direction of a message from the server to a client.
TO_CLIENT = "to_client"
_DIRECTIONS = (TO_SERVER, TO_CLIENT)
#: How JSON bodies are written, by name: ``{"json": VALUE, "style": NAME}`` reads back with
#: :func:`json.dumps` and these arguments (``"default"``, the style of ``json.dumps(body)``,
#: is not written).
JSON_STYLES: Dict[str, Dict[str, Any]] = {
    "default": {},
    "compact": {"separators": (",", ":")},
    "utf8": {"ensure_ascii": False},
    "compact-utf8": {"separators": (",", ":"), "ensure_ascii": False},
}
_KEYS = ("t", "dir", "conn", "peer", "frames")
_IGNORED = "<IGNORED>"

Normaliser = Callable[[str], str]


class ConversationError(ValueError):
    """A recording that cannot be read: the message names the file, the line, what was
    expected there and what came."""


@dataclass(frozen=True)
class Message:
    """One whole message of a recording."""

    #: Seconds since the first message of the recording.
    t: float
    #: :data:`TO_SERVER` or :data:`TO_CLIENT`.
    direction: str
    #: The number of the connection it went over (1 for the first).
    conn: int
    #: The frames, exactly.
    frames: Tuple[bytes, ...]
    #: The identity the client announced on its connection, if it is known.
    peer: Optional[bytes] = None
    #: The line of the file it was read from (0 if it was not read from a file).
    line: int = 0


@dataclass
class Conversation:
    """A recording: what its first line says and the messages, in order."""

    messages: List[Message]
    #: The name of the codec the frames were rendered by (``"json"``...).
    codec: str = "json"
    #: The first line's other entries (``"client": "REQ"``, ``"server": "REP"``...).
    meta: Dict[str, Any] = field(default_factory=dict)
    #: The file it was read from.
    path: Optional[str] = None


# -- frames ------------------------------------------------------------------------------
def encode_frame(frame: Any) -> Any:
    """A frame as the file writes it: ``{"json": ...}``, a string, or ``{"b64": ...}`` (see above)."""
    data = bytes(frame)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}
    if text[:1] in ("{", "["):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        for name, style in JSON_STYLES.items():
            if json.dumps(value, **style) == text:
                return {"json": value} if name == "default" else {"json": value, "style": name}
    return text


def decode_frame(form: Any, where: str = "a frame") -> bytes:
    """The bytes of a frame written by :func:`encode_frame` (or by hand).

    :raises ValueError: *form* is none of the frame forms (the message names *where*).
    """
    if isinstance(form, str):
        return form.encode("utf-8")
    if isinstance(form, dict):
        keys = set(form)
        if keys == {"b64"} and isinstance(form["b64"], str):
            try:
                return base64.b64decode(form["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"expected base64 in {where}, got {form['b64']!r}") from None
        if keys == {"hex"} and isinstance(form["hex"], str):
            try:
                return bytes.fromhex(form["hex"])
            except ValueError:
                raise ValueError(f"expected hexadecimal digits in {where}, got {form['hex']!r}") from None
        if "json" in keys and keys <= {"json", "style"}:
            style = form.get("style", "default")
            if style not in JSON_STYLES:
                raise ValueError(f"expected the style of {where} to be one of {', '.join(JSON_STYLES)}, "
                                 f"got {style!r}")
            return json.dumps(form["json"], **JSON_STYLES[style]).encode("utf-8")
    raise ValueError(f'expected {where} to be a string (UTF-8 text), {{"json": VALUE}}, {{"b64": "..."}} or '
                     f'{{"hex": "..."}}, got {json.dumps(form, ensure_ascii=False)[:200]}')


def _line(message: Message, t: float) -> str:
    entry: Dict[str, Any] = {"t": round(t, 6), "dir": message.direction, "conn": message.conn}
    if message.peer is not None:
        entry["peer"] = encode_frame(message.peer)
    entry["frames"] = [encode_frame(frame) for frame in message.frames]
    return json.dumps(entry, ensure_ascii=False) + "\n"


def _header(codec: str, meta: Optional[Dict[str, Any]]) -> str:
    first = {"conversation": FORMAT_VERSION, "codec": codec, **(meta or {})}
    return json.dumps(first, ensure_ascii=False) + "\n"


# -- writing ---------------------------------------------------------------------------------
class ConversationWriter:
    """Writes a recording, one line per whole message.

    :meth:`message` may be called from any thread (a tap calls it from its own, between
    forwarding one message and the next). It only keeps the message: the lines are
    written by :meth:`flush`, by :meth:`close`, and by :meth:`message` itself once
    ``RECORD_BUFFER_BYTES`` of frames are waiting, so recording adds next to nothing to a
    tap's round trip. Use it as a context manager, or
    :meth:`close` it.

    :param path: the file to write (made, with its directory, or replaced).
    :param codec: the name of the codec the frames are rendered by, for the first line.
    :param meta: more entries for the first line (``{"client": "REQ", "server": "REP"}``).
    """

    def __init__(self, path: str, codec: str = "json", meta: Optional[Dict[str, Any]] = None) -> None:
        #: The file it writes.
        self.path = os.path.abspath(path)
        #: How many messages it was given.
        self.count = 0
        #: The first line's entries besides the format and the codec; the first line is
        #: written with the first lines of messages (or on :meth:`close`), so they may be
        #: added until then.
        self.meta: Dict[str, Any] = dict(meta or {})
        self._codec = codec
        self._first: Optional[float] = None
        # Appended by add() without the lock (deque.append is atomic), taken from the left
        # by _write() under it: a message added while it writes waits for the next write.
        self._pending: Deque[Tuple[float, str, int, Tuple[bytes, ...], Optional[bytes]]] = collections.deque()
        self._pending_bytes = 0
        self._header_written = False
        self._lock = threading.Lock()
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._file: Optional[IO[str]] = open(self.path, "w", encoding="utf-8", newline="\n")
        _OPEN[self.path] = self

    def message(self, direction: str, conn: int, frames: Sequence[Any], peer: Optional[bytes] = None,
                at: Optional[float] = None) -> None:
        """Add one whole message: *direction* (:data:`TO_SERVER` or :data:`TO_CLIENT`), the
        number of its connection (from 1), its frames, the client's identity if known, and
        when it passed (``time.monotonic()``, default now)."""
        if direction not in _DIRECTIONS:
            raise ValueError(f"expected a direction {TO_SERVER!r} or {TO_CLIENT!r}, got {direction!r}")
        if isinstance(conn, bool) or not isinstance(conn, int) or conn < 1:
            raise ValueError(f"expected a connection number >= 1, got {conn!r}")
        self.add(time.monotonic() if at is None else at, direction, conn, tuple(bytes(f) for f in frames), peer)

    def add(self, when: float, direction: str, conn: int, frames: Tuple[bytes, ...], peer: Optional[bytes]) -> None:
        """:meth:`message` without its checks, for a caller that
        gives what it asks for (a tap's recorder, on the tap's thread: this is all it costs it)."""
        if self._file is None:
            raise ValueError(f"the recording {self.path} is closed")
        if self._first is None:
            self._first = when
        self._pending.append((when - self._first, direction, conn, frames, peer))
        self.count += 1
        self._pending_bytes += sum(map(len, frames))
        if self._pending_bytes >= RECORD_BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the messages given so far (the file then holds a whole recording)."""
        with self._lock:
            if self._file is not None:
                self._write()

    def _write(self) -> None:
        assert self._file is not None
        if not self._header_written:
            self._file.write(_header(self._codec, self.meta))
            self._header_written = True
        pending, lines = self._pending, []
        self._pending_bytes = 0
        while pending:
            t, direction, conn, frames, peer = pending.popleft()
            lines.append(_line(Message(0.0, direction, conn, frames, peer), max(0.0, t)))
        self._file.write("".join(lines))
        self._file.flush()

    def close(self) -> None:
        """Write what is left and close the file (again: nothing)."""
        with self._lock:
            if self._file is not None:
                self._write()
                self._file.close()
                self._file = None
                if _OPEN.get(self.path) is self:
                    del _OPEN[self.path]

    def __enter__(self) -> "ConversationWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


#: The writers not closed yet, by path: reading a recording writes out what its writer
#: holds first (a test that replays what its tap has just recorded).
_OPEN: "weakref.WeakValueDictionary[str, ConversationWriter]" = weakref.WeakValueDictionary()


class TapRecorder:
    """A tap's recorder (``Tap.recorders``) that writes each whole
    message through the tap into *writer*: what ``self.tap(endpoint, record=PATH)`` adds.

    The first line gets the client's socket type from the tap's first connection
    (``"client": "REQ"``). Connections are numbered from 1 in the order their first
    message passed (the tap also counts those that carried none, a client's tries while
    the server was not listening yet). A frame the tap kept only in part (a message of more than
    ``TAP_KEEP_BYTES``) cannot be recorded exactly: it raises, and the tap reports it.
    """

    def __init__(self, writer: ConversationWriter, tap: Any = None) -> None:
        self.writer, self.tap = writer, tap
        self._numbers: Dict[int, int] = {}  # the tap's connection numbers -> 1, 2... as messages come

    def __repr__(self) -> str:
        return f"the recording to {self.writer.path}"

    def __call__(self, message: Any) -> None:
        frames = tuple(message.frames)  # a tuple of bytes: the garbage collector stops tracking it
        writer = self.writer
        if writer.count == 0:
            self._first_message(message)
        for frame in frames:
            if type(frame) is not bytes:
                self._refuse(message)
        conn = self._numbers.get(message.connection)
        if conn is None:
            conn = self._numbers[message.connection] = len(self._numbers) + 1
        writer.add(message.time, message.direction, conn, frames, message.identity)

    def _first_message(self, message: Any) -> None:
        """The first line's client socket type, from the tap's first connection."""
        if self.tap is not None and "client" not in self.writer.meta:
            kind = self.tap.connections.get(message.connection, {}).get("Socket-Type")
            if kind:
                self.writer.meta["client"] = bytes(kind).decode("ascii", "replace")

    def _refuse(self, message: Any) -> None:
        i, frame = next((i, f) for i, f in enumerate(message.frames) if type(f) is not bytes)
        raise ValueError(f"expected whole frames to record, got frame {i} of a message {message.direction} on "
                         f"connection {message.connection} kept only in part ({getattr(frame, 'length', '?')} "
                         f"bytes; a tap keeps at most {TAP_KEEP_BYTES} bytes of a message)")


def write_conversation(path: str, conversation: Conversation) -> None:
    """Write *conversation* to *path* whole (each message keeps its own ``t``)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(_header(conversation.codec, conversation.meta))
        for message in conversation.messages:
            f.write(_line(message, message.t))


# -- reading ---------------------------------------------------------------------------------
def read_conversation(path: str) -> Conversation:
    """Read the recording at *path*.

    Blank lines are passed over; every other line must be what the format says. A
    recording still being written (a tap's ``record=``) is read as far as it goes.

    :raises ConversationError: a line is not what was expected there (the message says
        which line, what was expected and what came).
    :raises OSError: the file cannot be read.
    """
    writer = _OPEN.get(os.path.abspath(path))
    if writer is not None:
        writer.flush()  # still recording: what it holds so far
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    messages: List[Message] = []
    header: Optional[Dict[str, Any]] = None
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        where = _Where(f"{path}:{number}")
        try:
            entry = json.loads(text)
        except ValueError as exc:
            raise where.bad(f"a JSON object on one line ({exc})", text) from None
        if header is None:
            if not isinstance(entry, dict) or entry.get("conversation") != FORMAT_VERSION:
                raise where.bad(f'the first line of a recording, {{"conversation": {FORMAT_VERSION}, '
                                '"codec": ...}', entry)
            if not isinstance(entry.get("codec", "json"), str):
                raise where.bad('"codec" to be the name of a codec', entry.get("codec"))
            header = entry
            continue
        messages.append(_message(entry, number, where))
    if header is None:
        raise ConversationError(f'{path}: expected a recording (a first line {{"conversation": {FORMAT_VERSION}, '
                                '...}} and one line per message), got an empty file')
    meta = {k: v for k, v in header.items() if k not in ("conversation", "codec")}
    return Conversation(messages, header.get("codec", "json"), meta, path)


class _Where:
    """A line of a recording, for its errors."""

    def __init__(self, where: str) -> None:
        self.where = where

    def bad(self, expected: str, got: Any) -> ConversationError:
        shown = got if isinstance(got, str) else json.dumps(got, ensure_ascii=False)
        return ConversationError(f"{self.where}: expected {expected}, got {shown[:300]}")


def _message(entry: Any, number: int, where: _Where) -> Message:
    bad = where.bad
    if not isinstance(entry, dict):
        raise bad('a message {"t": ..., "dir": ..., "conn": ..., "frames": [...]}', entry)
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise bad(f"only the keys {', '.join(_KEYS)}", ", ".join(unknown))
    for key in ("t", "dir", "conn", "frames"):
        if key not in entry:
            raise bad(f'a message with "{key}"', entry)
    t, direction, conn, frames = entry["t"], entry["dir"], entry["conn"], entry["frames"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0:
        raise bad('"t" to be seconds since the first message (a number >= 0)', t)
    if direction not in _DIRECTIONS:
        raise bad(f'"dir" to be "{TO_SERVER}" or "{TO_CLIENT}"', direction)
    if isinstance(conn, bool) or not isinstance(conn, int) or conn < 1:
        raise bad('"conn" to be a connection number >= 1', conn)
    if not isinstance(frames, list) or not frames:
        raise bad('"frames" to be a list of at least one frame', frames)
    try:
        data = tuple(decode_frame(form, f"frame {i}") for i, form in enumerate(frames))
        peer = decode_frame(entry["peer"], '"peer"') if entry.get("peer") is not None else None
    except ValueError as exc:
        raise ConversationError(f"{where.where}: {exc}") from None
    return Message(float(t), direction, conn, data, peer, number)


# -- comparing ---------------------------------------------------------------------------------
def _path_parts(path: str) -> List[str]:
    if path.startswith("$."):
        path = path[2:]
    parts = path.split(".")
    if not path or not all(parts):
        raise BadArgument(f"expected a JSON path such as 'header.msg_id' or 'items.*.id', got {path!r}")
    return parts


def _ignore(value: Any, parts: Sequence[str]) -> Any:
    """*value* with what *parts* (a JSON path: keys, list indexes, ``*``) leads to replaced."""
    if not parts:
        return _IGNORED
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        return {k: (_ignore(v, rest) if head in ("*", k) else v) for k, v in value.items()}
    if isinstance(value, list):
        return [(_ignore(v, rest) if head == "*" or head == str(i) else v) for i, v in enumerate(value)]
    return value


def render_message(frames: Sequence[Any], normalise: Sequence[Union[str, Normaliser]] = (),
                   signed: Any = None) -> str:
    """A message as a replay compares and diffs it: one block per frame (a JSON object or
    array indented with sorted keys, text as a JSON string, other bytes in base64), after
    the JSON paths in *normalise* are replaced with ``<IGNORED>`` and its text normalisers
    (:func:`~zmqprocesstest.normalise_ports`...) are applied to the whole.

    With *signed*, a codec of signed messages (:func:`zmqprocesstest.codecs.jupyter`), a
    message it can split is shown as its identities and one JSON block ``{"header": ...,
    "parent_header": ..., "metadata": ..., "content": ...}`` (paths such as
    ``header.msg_id`` apply to it), and its signature is left out: the codec checks it.
    """
    paths = [_path_parts(n) for n in normalise if isinstance(n, str)]
    blocks = []
    shown_frames: List[Any] = list(frames)
    message = _signed_message(signed, frames) if signed is not None else None
    if message is not None:
        shown_frames, value = message
        for parts in paths:
            value = _ignore(value, parts)
    for i, frame in enumerate(shown_frames):
        form = encode_frame(frame)
        if isinstance(form, dict) and "json" in form:
            value_ = form["json"]
            for parts in paths:
                value_ = _ignore(value_, parts)
            shown = json.dumps(value_, indent=2, sort_keys=True, ensure_ascii=False)
        else:
            shown = json.dumps(form, ensure_ascii=False)
        blocks.append(f"frame {i}: {shown}")
    if message is not None:
        blocks.append(f"message: {json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)}")
    text = "\n".join(blocks) + "\n"
    for normaliser in normalise:
        if not isinstance(normaliser, str):
            text = normaliser(text)
    return text


def _signed_message(codec: Any, frames: Sequence[Any]) -> Optional[Tuple[List[bytes], Dict[str, Any]]]:
    """``(identities and delimiter, {"header": ..., ...})`` of a signed message, or ``None``
    if *codec* cannot split *frames* or its parts are not JSON."""
    try:
        identities, rest = codec.split(frames)
        parts = [json.loads(part) for part in rest[1:5]]
    except ValueError:
        return None
    value: Dict[str, Any] = dict(zip(("header", "parent_header", "metadata", "content"), parts))
    if len(rest) > 5:
        value["buffers"] = [encode_frame(b) for b in rest[5:]]
    return list(identities) + [bytes(frames[len(identities)])], value


def _resigned(codec: Any, frames: List[bytes]) -> List[bytes]:
    """*frames* with the signature *codec* gives their header, parent, metadata and content."""
    try:
        identities, rest = codec.split(frames)
    except ValueError:
        return frames  # not a signed message: as recorded
    at = len(identities)
    return frames[:at + 1] + [codec.sign(rest[1:5])] + frames[at + 2:]


def _normalisers(normalise: Any) -> List[Union[str, Normaliser]]:
    items = [normalise] if isinstance(normalise, str) or callable(normalise) else normalise
    if not isinstance(items, (list, tuple)) or not all(isinstance(n, str) or callable(n) for n in items):
        raise BadArgument("expected normalise to be a normaliser (a function of text, such as "
                          "systemtests.normalise_timestamps), a JSON path to ignore ('header.date') or a list of "
                          f"them, got {normalise!r}")
    for n in items:
        if isinstance(n, str):
            _path_parts(n)
    return list(items)


# -- replaying ---------------------------------------------------------------------------------
@dataclass
class ReplayResult:
    """What a replay did: the recording, and the messages it sent and received, in order."""

    path: str
    sent: List[List[bytes]]
    received: List[List[bytes]]
    #: Whether update mode rewrote the recording.
    updated: bool = False


_STRIP_DELIMITER = frozenset({int(zmq.REQ), int(zmq.REP)})


class _Side:
    """The sockets that play one side of a recording, and how each connection maps to them."""

    def __init__(self, socks: List[TestSocket], conns: List[int], side: str, path: str) -> None:
        self.side, self.path = side, path
        codec = getattr(socks[0], "codec", None)
        #: The sockets' codec if it signs messages (Jupyter's): it signs what is sent again.
        self.signed = codec if callable(getattr(codec, "split", None)) and callable(getattr(codec, "sign", None)) \
            else None
        self.router: Optional[TestSocket] = None
        self.by_conn: Dict[int, TestSocket] = {}
        self.identity: Dict[int, bytes] = {}  # a ROUTER's live peer of each recorded connection
        self.conn_of: Dict[bytes, int] = {}
        if side == "server" and len(socks) == 1 and socks[0].socket_type == zmq.ROUTER:
            self.router = socks[0]
            self.by_conn = {conn: socks[0] for conn in conns}
            return
        if socks[0].socket_type == zmq.ROUTER:
            raise BadArgument(f"expected a socket that plays the {side} side, got the ROUTER {socks[0].describe()}; "
                              "a ROUTER plays the server side (yield ('replay', router, PATH, 'server'))")
        if side == "server" and any(s.socket_type in (zmq.PUB, zmq.XPUB) for s in socks):
            raise BadArgument(f"expected a socket to play the server side of {path}, got a publisher; replaying "
                              "a publisher is not supported (a subscriber under test misses what is sent before "
                              "its subscription arrives): test the subscriber side with a recording of it instead")
        if len(socks) != len(conns):
            raise BadArgument(f"expected one socket per connection of {path} ({len(conns)}: connections "
                              f"{', '.join(map(str, conns))}), got {len(socks)}"
                              + ("; a ROUTER socket plays the server side of them all" if side == "server" else ""))
        self.by_conn = dict(zip(conns, socks))

    def outgoing(self, message: Message) -> Tuple[TestSocket, List[bytes]]:
        """The socket that sends *message*, and the frames it is given."""
        frames = list(message.frames)
        if self.router is not None:
            identity = self.identity.get(message.conn)
            if identity is None:
                raise AssertionError(f"cannot send message {message.line and 'of line ' + str(message.line)} of "
                                     f"{self.path} to connection {message.conn}: that client has sent nothing yet, "
                                     "so its identity is not known")
            return self.router, self._sign([identity] + frames)
        sock = self.by_conn[message.conn]
        if sock.socket_type in _STRIP_DELIMITER and len(frames) > 1 and frames[0] == b"":
            frames = frames[1:]  # REQ and REP add and take the delimiter themselves
        return sock, self._sign(frames)

    def _sign(self, frames: List[bytes]) -> List[bytes]:
        return frames if self.signed is None else _resigned(self.signed, frames)

    def comparable(self, message: Message, sock: TestSocket) -> List[bytes]:
        """*message*'s frames as *sock* receives them."""
        frames = list(message.frames)
        if sock.socket_type in _STRIP_DELIMITER and len(frames) > 1 and frames[0] == b"":
            return frames[1:]
        return frames

    def recorded(self, message: Message, frames: List[bytes], sock: TestSocket) -> Tuple[bytes, ...]:
        """What *frames*, received on *sock* for *message*, are as the recording writes them."""
        if sock.socket_type in _STRIP_DELIMITER and len(message.frames) > 1 and message.frames[0] == b"":
            return (b"",) + tuple(frames)
        return tuple(frames)


def _subscription(message: Message) -> Optional[Tuple[bool, bytes]]:
    """``(subscribe, topic)`` if *message* is a subscriber's (un)subscription, else ``None``."""
    frames = message.frames
    if len(frames) == 1 and frames[0][:1] in (b"\x00", b"\x01"):
        return frames[0][:1] == b"\x01", frames[0][1:]
    return None


def replay(case: Any, socks: Sequence[TestSocket], path: str, side: str = "client",
           normalise: Any = (), timeout: Optional[float] = None) -> ReplayResult:
    """Play *side* of the recording at *path* over *socks* (checked test sockets of *case*).

    The implementation of the ``replay`` event (see
    :meth:`~zmqprocesstest.ProcessTestCase.replay`): it sends each message the recorded
    *side* sent, in order, and receives each message the other side sent, comparing it
    with the recording (after *normalise*); each receive waits at most *timeout* seconds
    (default: the socket's timeout). In update mode (``ZMQPROCESSTEST_UPDATE_GOLDEN=1``)
    a message that differs is written into the recording instead, and the replay says so.
    """
    if side not in ("client", "server"):
        raise BadArgument(f"expected the side to replay to be 'client' or 'server', got {side!r}")
    rules = _normalisers(normalise)
    full = resolve_path(case, path)
    if not os.path.exists(full):
        raise FileNotFoundError(f"expected a recording at {full}; record one with self.tap(endpoint, record=...) "
                                "or python -m zmqprocesstest record --listen EP --connect EP -o FILE")
    conversation = read_conversation(full)
    messages = conversation.messages
    play = TO_SERVER if side == "client" else TO_CLIENT
    conns = list(dict.fromkeys(m.conn for m in messages))
    if not messages:
        raise AssertionError(f"the recording {full} has no messages: there is nothing to replay")
    players = _Side(list(socks), conns, side, full)
    if conversation.codec == "jupyter" and players.signed is None:
        raise BadArgument(f"expected a socket with codec=codecs.jupyter(key) to replay {full}, a recording of "
                          "signed Jupyter messages: the process under test checks each signature with its own key, "
                          f"so the replay signs them again; got {socks[0].describe()}")
    shown = os.path.relpath(full) if not os.path.relpath(full).startswith(os.pardir) else full
    lane = socks[0].name
    _timeline.record("note", lane, f"replay {shown}: {len(messages)} messages, the {side} side")
    updating = env_flag(UPDATE_GOLDEN_ENV)
    changed: Dict[int, Tuple[bytes, ...]] = {}
    result = ReplayResult(full, [], [])
    index = 0
    while index < len(messages):
        message = messages[index]
        if message.direction == play:
            _play(players, message, result)
            index += 1
            continue
        end = index
        while end < len(messages) and messages[end].direction != play:
            end += 1
        _expect(players, messages, index, end, rules, timeout, updating, changed, result, shown)
        index = end
    if changed:
        updated = [Message(m.t, m.direction, m.conn, changed.get(i, m.frames), m.peer, m.line)
                   for i, m in enumerate(messages)]
        write_conversation(full, Conversation(updated, conversation.codec, conversation.meta))
        print(f"zmqprocesstest: updated recording {full} (message{'s' if len(changed) > 1 else ''} "
              f"{', '.join(map(str, sorted(changed)))} changed)", file=sys.stderr)
        _timeline.record("note", lane, f"replay {shown}: updated messages {', '.join(map(str, sorted(changed)))}")
        result.updated = True
    else:
        _timeline.record("note", lane, f"replay {shown}: all {len(messages)} messages as recorded")
    return result


def resolve_path(case: Any, path: str) -> str:
    """*path*, relative to the directory of *case*'s test module (as golden files are)."""
    if not isinstance(path, (str, os.PathLike)):
        raise BadArgument(f"expected the path of a recording (str), got {path!r}")
    path = os.fspath(path)
    if os.path.isabs(path):
        return path
    module = sys.modules.get(type(case).__module__)
    where = getattr(module, "__file__", None)
    base = os.path.dirname(os.path.abspath(where)) if where else os.getcwd()
    return os.path.join(base, path)


def _play(players: _Side, message: Message, result: ReplayResult) -> None:
    sock, frames = players.outgoing(message)
    if sock.socket_type == zmq.SUB:
        subscription = _subscription(message)
        if subscription is None:
            raise AssertionError(f"cannot replay line {message.line} of {players.path} on {sock.describe()}: "
                                 f"a subscriber sends nothing but subscriptions, got {len(frames)} frame(s)")
        subscribe, topic = subscription
        sock.setsockopt(zmq.SUBSCRIBE if subscribe else zmq.UNSUBSCRIBE, topic)
        _timeline.record("subscribe" if subscribe else "note", sock.name,
                         repr(topic) if subscribe else f"unsubscribe {topic!r}")
        return
    sock.send_multipart(frames)
    result.sent.append(frames)


def _expect(players: _Side, messages: List[Message], start: int, end: int, rules: List[Any],
            timeout: Optional[float], updating: bool, changed: Dict[int, Tuple[bytes, ...]],
            result: ReplayResult, shown: str) -> None:
    """Receive messages *start* to *end* (a run of the other side's), in order on each connection."""
    pending: Dict[int, Deque[int]] = collections.defaultdict(collections.deque)
    for i in range(start, end):
        pending[messages[i].conn].append(i)
    if players.router is None:
        for i in range(start, end):  # each connection has its own socket: its queue keeps its order
            message = messages[i]
            sock = players.by_conn[message.conn]
            frames = sock.recv_multipart(timeout=timeout)
            result.received.append(frames)
            _check(players, messages, i, frames, sock, rules, updating, changed, shown)
        return
    sock = players.router
    left = end - start
    while left:
        frames = sock.recv_multipart(timeout=timeout)
        result.received.append(frames)
        if not frames:
            raise AssertionError(f"expected a message with the identity of its sender on {sock.describe()}, got none")
        identity, body = frames[0], frames[1:]
        conn = players.conn_of.get(identity)
        if conn is None:
            conn = _new_peer(players, messages, pending, body, rules)
            if conn is None:
                raise AssertionError(
                    f"replay of {shown} (the server side): a message from a client the recording does not have "
                    f"(identity {identity!r}); waiting for message {min(min(q) for q in pending.values() if q)}. "
                    f"Received: {body!r}")
            players.conn_of[identity], players.identity[conn] = conn, bytes(identity)
        if not pending.get(conn):
            raise AssertionError(f"replay of {shown} (the server side): connection {conn} sent a message the "
                                 f"recording does not have here (waiting for messages "
                                 f"{', '.join(str(q[0]) for q in pending.values() if q)} of other connections). "
                                 f"Received: {body!r}")
        i = pending[conn].popleft()
        _check(players, messages, i, body, sock, rules, updating, changed, shown)
        left -= 1


def _new_peer(players: _Side, messages: List[Message], pending: Dict[int, Deque[int]], body: List[bytes],
              rules: List[Any]) -> Optional[int]:
    """The recorded connection a new client's first message belongs to: of those not
    mapped yet that wait for a message, the one whose next message it matches, else the first."""
    free = sorted((q[0], conn) for conn, q in pending.items() if q and conn not in players.identity)
    for i, conn in free:
        if render_message(body, rules, players.signed) == render_message(messages[i].frames, rules, players.signed):
            return conn
    return free[0][1] if free else None


def _check(players: _Side, messages: List[Message], i: int, frames: List[bytes], sock: TestSocket,
           rules: List[Any], updating: bool, changed: Dict[int, Tuple[bytes, ...]], shown: str) -> None:
    message = messages[i]
    expected = players.comparable(message, sock)
    if players.signed is not None:
        players.signed.decode(list(frames))  # a bad signature fails here, naming the message
    if [bytes(f) for f in frames] == expected:
        return
    want, got = render_message(expected, rules, players.signed), render_message(frames, rules, players.signed)
    if want == got:
        return
    if updating:
        changed[i] = players.recorded(message, [bytes(f) for f in frames], sock)
        return
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        fromfile=f"recorded (line {message.line})", tofile="received"))
    raise AssertionError(
        f"replay of {shown} ({players.side} side) differs at message {i} of {len(messages)} "
        f"({message.direction}, connection {message.conn}, on {sock.describe()}, line {message.line}); "
        f"messages before it were as recorded. Rerun with {UPDATE_GOLDEN_ENV}=1 to accept the new messages.\n"
        f"{diff}")

