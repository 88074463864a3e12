"""Codecs: how a test socket turns what a test sends into frames, frames into what it
receives, and frames into a short text for the reports.

A :class:`Codec` has three operations. The ``send`` event sends its header frames
followed by ``codec.encode(body)``; the ``recv`` event returns
``codec.decode(frames)``; and the transcript, the timeline's sequence chart and the
report page show each message the socket sent or received as ``codec.render(frames)``,
the same way in both directions. A socket gets its codec when it is made::

    from zmqprocesstest import codecs

    shell = self.socket(zmq.DEALER, connect=endpoint, codec=codecs.jupyter(key))

Built in:

* :data:`json`: a JSON body after the header frames, the default of every socket;
* :data:`raw`: frames as they are;
* :data:`msgpack`: a MessagePack body after the header frames (needs the optional
  ``msgpack`` package);
* :func:`jupyter`: the Jupyter wire protocol, signed messages.

A codec of your own is any object with the three methods and a :attr:`~Codec.name`
(see :doc:`/howto/codecs`). No codec here ever unpickles: a codec decodes
received data, which the process under test controls.
"""
from __future__ import annotations

import datetime
import getpass
import hashlib
import hmac
import uuid
from json import dumps as _json_dumps, loads as _json_loads
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

import zmq

from .report.timeline import short, short_frames

__unittest = True

__all__ = ["Codec", "CodecError", "JsonCodec", "JupyterCodec", "MsgpackCodec", "RawCodec", "RENDER_CHARS",
           "jupyter", "json", "msgpack", "raw"]

#: The longest rendering a report shows of one message (characters): a codec's
#: :meth:`~Codec.render` is cut there, so one huge message never floods a report.
RENDER_CHARS = 200
#: How many characters of each content value a Jupyter rendering shows.
_VALUE_CHARS = 40


class CodecError(ValueError):
    """Received frames are not what the socket's codec expects (a ``ValueError``).

    The message names what was expected and what came (shortened frames); the ``recv``
    event adds the socket.
    """


@runtime_checkable
class Codec(Protocol):
    """What a test socket needs of a codec: three operations and a name.

    A codec must not keep the frames it is given: the reports keep only what
    :meth:`render` returns.
    """

    #: A short name for messages (``"json"``, ``"jupyter"``).
    name: str

    def encode(self, body: Any) -> List[Any]:
        """The frames for *body*, what the ``send`` event was given: they follow its
        header frames. Raise :class:`TypeError` or :class:`ValueError` for a body the codec
        cannot encode, naming what it expected."""

    def decode(self, frames: List[Any]) -> List[Any]:
        """What the ``recv`` event returns for a received message (all its frames, the
        header frames too). Raise :class:`CodecError` for frames that do not fit, naming
        what was expected and what came."""

    def render(self, frames: Sequence[Any]) -> str:
        """A short readable text of a message (all its frames) for the reports. It must
        not raise: frames that do not fit are shown as they are, and said so."""


def _bytes(frame: Any) -> bytes:
    if isinstance(frame, zmq.Frame):
        return frame.bytes
    return bytes(frame)


def _cut(text: str) -> str:
    return text if len(text) <= RENDER_CHARS else text[:RENDER_CHARS - 3] + "..."


def _frames(what: str, body: Any) -> List[Any]:
    """*body* as frames: bytes-like, or str (UTF-8 encoded)."""
    items = [body] if isinstance(body, (bytes, bytearray, memoryview, str, zmq.Frame)) else body
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"expected {what} to be a frame (bytes or str) or a list of them, got {body!r}")
    frames = []
    for frame in items:
        if isinstance(frame, str):
            frame = frame.encode("utf-8")
        elif not isinstance(frame, (bytes, bytearray, memoryview, zmq.Frame)):
            raise TypeError(f"expected each frame of {what} to be bytes or str, got {frame!r}")
        frames.append(frame)
    return frames


class JsonCodec:
    """The default codec: a JSON body (one frame, UTF-8) after the header frames.

    ``encode(body)`` is ``[json.dumps(body)]``; ``decode(frames)`` JSON-decodes the last
    frame and leaves the others as bytes (the ``recv`` event's ``json_index`` picks
    another frame). The reports show what a socket of this codec sent as its frames and
    what it received as the test got it, decoded; this keeps recording as cheap as it
    was before codecs (a bounded copy of the frames, rendered only for a report).
    """

    name = "json"

    def encode(self, body: Any) -> List[Any]:
        try:
            return [_json_dumps(body).encode("utf-8")]
        except (TypeError, ValueError) as exc:
            raise TypeError(f"expected a JSON-serialisable body, got {body!r} ({exc})") from None

    def decode(self, frames: List[Any]) -> List[Any]:
        if not frames:
            raise CodecError("expected a JSON body in the last frame, got a message of no frames")
        try:
            body = _json_loads(_bytes(frames[-1]))
        except (TypeError, ValueError) as exc:
            raise CodecError(f"expected JSON in the last frame, got {short(frames[-1])} ({exc}); "
                             f"whole message: {short_frames(frames)}") from None
        return list(frames[:-1]) + [body]

    def render(self, frames: Sequence[Any]) -> str:
        try:
            return _cut(short_frames(self.decode(list(frames))))
        except CodecError:
            return _cut(short_frames(frames))

    def __repr__(self) -> str:
        return "zmqprocesstest.codecs.json"


class RawCodec:
    """Frames as they are: ``send`` takes a frame or a list of frames (bytes, str
    UTF-8 encoded), ``recv`` returns the frames (bytes)."""

    name = "raw"

    def encode(self, body: Any) -> List[Any]:
        return _frames("the body of a raw message", body)

    def decode(self, frames: List[Any]) -> List[Any]:
        return list(frames)

    def render(self, frames: Sequence[Any]) -> str:
        return _cut(short_frames(frames))

    def __repr__(self) -> str:
        return "zmqprocesstest.codecs.raw"


class MsgpackCodec:
    """A MessagePack body (one frame) after the header frames, as :class:`JsonCodec`
    does with JSON. Needs the ``msgpack`` package, which zmqprocesstest does not
    require: a socket that uses this codec without it fails at its first message,
    saying so. Strings are decoded as str, binary as bytes; extension types are
    returned as ``msgpack.ExtType`` (never turned into objects)."""

    name = "msgpack"

    @staticmethod
    def _module() -> Any:
        try:
            import msgpack as module  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise ImportError("codecs.msgpack needs the msgpack package, which is not installed "
                              "(pip install msgpack); zmqprocesstest does not require it") from None
        return module

    def encode(self, body: Any) -> List[Any]:
        module = self._module()
        try:
            return [module.packb(body, use_bin_type=True)]
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"expected a body MessagePack can encode, got {body!r} ({exc})") from None

    def decode(self, frames: List[Any]) -> List[Any]:
        module = self._module()
        if not frames:
            raise CodecError("expected a MessagePack body in the last frame, got a message of no frames")
        try:
            body = module.unpackb(_bytes(frames[-1]), raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack's own errors (ExtraData, FormatError...) and ValueError
            raise CodecError(f"expected MessagePack in the last frame, got {short(frames[-1])} ({exc}); "
                             f"whole message: {short_frames(frames)}") from None
        return list(frames[:-1]) + [body]

    def render(self, frames: Sequence[Any]) -> str:
        try:
            return _cut(short_frames(self.decode(list(frames))))
        except (CodecError, ImportError):
            return _cut(short_frames(frames) + " (not MessagePack)")

    def __repr__(self) -> str:
        return "zmqprocesstest.codecs.msgpack"


#: Separates a Jupyter message's identities from the message.
DELIMITER = b"<IDS|MSG>"


class JupyterCodec:
    """The Jupyter messaging protocol's wire format: signed multipart messages.

    On the wire a message is ``[identities..., b"<IDS|MSG>", signature, header,
    parent_header, metadata, content, buffers...]``; header, parent header, metadata
    and content are UTF-8 JSON, and the signature is the hex HMAC of those four with
    the connection's *key* (empty when the key is empty). Made by :func:`jupyter`.

    ``send`` takes a dict with at least ``msg_type`` (str) and ``content`` (dict), and
    optionally ``parent`` (a received message dict, or a header), ``metadata`` (dict),
    ``header`` (fields that override the ones filled in) and ``buffers`` (frames). The
    codec fills in the header (``msg_id``, ``session``, ``date``, ``version``,
    ``username``, ``msg_type``), the parent header, the metadata and the signature.
    Identities (a ROUTER's routing frames) are the ``send`` event's header frames.
    The message as sent (with its header) is kept as :attr:`last_sent`, to match
    replies to it by ``parent_header["msg_id"]``.

    ``recv`` returns the identities followed by the message dict: ``header``,
    ``msg_id``, ``msg_type``, ``parent_header``, ``metadata``, ``content``, ``buffers``
    (dates stay ISO 8601 strings). A signature that does not match fails with a
    :class:`CodecError` that names the message.
    """

    name = "jupyter"

    def __init__(self, key: Union[bytes, str], signature_scheme: str = "hmac-sha256",
                 session: Optional[str] = None, username: Optional[str] = None, version: str = "5.3") -> None:
        if isinstance(key, str):
            key = key.encode("ascii")
        if not isinstance(key, bytes):
            raise TypeError(f"expected the key to be bytes or str (the connection file's \"key\"), got {key!r}")
        scheme = signature_scheme.split("-", 1) if isinstance(signature_scheme, str) else []
        if len(scheme) != 2 or scheme[0] != "hmac" or scheme[1] not in hashlib.algorithms_available:
            raise ValueError(f"expected signature_scheme to be 'hmac-' and a hashlib digest ('hmac-sha256'), "
                             f"got {signature_scheme!r}")
        #: The signing key (bytes); empty: messages are not signed.
        self.key = key
        #: The signature scheme (``"hmac-sha256"``).
        self.signature_scheme = signature_scheme
        self._digest = scheme[1]
        #: The session id of the messages this codec sends.
        self.session = session or uuid.uuid4().hex
        #: The user name in the headers this codec fills in.
        self.username = username or _user()
        #: The protocol version in the headers this codec fills in.
        self.version = version
        #: The last message this codec encoded, as a message dict (its header filled in).
        self.last_sent: Optional[Dict[str, Any]] = None

    def __repr__(self) -> str:
        return f"zmqprocesstest.codecs.jupyter(<key>, signature_scheme={self.signature_scheme!r})"

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """The hex signature of *parts* (header, parent header, metadata, content)."""
        if not self.key:
            return b""
        mac = hmac.new(self.key, digestmod=self._digest)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode("ascii")

    def encode(self, body: Any) -> List[Any]:
        if not isinstance(body, dict) or not isinstance(body.get("msg_type"), str) \
                or not isinstance(body.get("content"), dict):
            raise TypeError(f"expected a Jupyter message: a dict with at least 'msg_type' (str) and 'content' "
                            f"(dict), got {body!r}")
        unknown = set(body) - {"msg_type", "content", "parent", "parent_header", "metadata", "header", "buffers"}
        if unknown:
            raise TypeError(f"expected the keys of a Jupyter message to send (msg_type, content, parent, metadata, "
                            f"header, buffers), got also {sorted(unknown)!r}")
        header = {"msg_id": uuid.uuid4().hex, "msg_type": body["msg_type"], "username": self.username,
                  "session": self.session, "date": _now(), "version": self.version}
        header.update(body.get("header") or {})
        parent = body.get("parent", body.get("parent_header")) or {}
        if not isinstance(parent, dict):
            raise TypeError(f"expected the parent to be a received message dict or a header, got {parent!r}")
        parent = parent.get("header", parent)
        metadata = body.get("metadata") or {}
        parts = [_pack("header", header), _pack("parent", parent), _pack("metadata", metadata),
                 _pack("content", body["content"])]
        buffers = _frames("the buffers", body.get("buffers") or [])
        self.last_sent = {"header": header, "msg_id": header["msg_id"], "msg_type": header["msg_type"],
                          "parent_header": parent, "metadata": metadata, "content": body["content"],
                          "buffers": buffers}
        return [DELIMITER, self.sign(parts)] + parts + buffers

    def split(self, frames: Sequence[Any]) -> Tuple[List[bytes], List[bytes]]:
        """``(identities, [signature, header, parent, metadata, content, buffers...])``.

        :raises CodecError: no delimiter, or fewer than five frames after it.
        """
        data = [_bytes(f) for f in frames]
        try:
            at = data.index(DELIMITER)
        except ValueError:
            raise CodecError(f"expected a Jupyter message (identities, {DELIMITER!r}, signature, header, "
                             f"parent_header, metadata, content), got no {DELIMITER!r} frame in "
                             f"{short_frames(frames)}") from None
        rest = data[at + 1:]
        if len(rest) < 5:
            raise CodecError(f"expected signature, header, parent_header, metadata and content after "
                             f"{DELIMITER!r}, got {len(rest)} frame(s): {short_frames(frames)}")
        return data[:at], rest

    def decode(self, frames: List[Any]) -> List[Any]:
        identities, rest = self.split(frames)
        signature, parts = rest[0], rest[1:5]
        header = _unpack("header", parts[0], frames)
        if not isinstance(header, dict):
            raise CodecError(f"expected the header of a Jupyter message to be a JSON object, got {short(parts[0])}")
        if self.key:
            expected = self.sign(parts)
            if not hmac.compare_digest(signature, expected):
                what = "no signature" if not signature else f"signature {short(signature)}"
                raise CodecError(f"bad signature on the Jupyter message {header.get('msg_type')!r} (msg_id "
                                 f"{header.get('msg_id')!r}): expected the {self.signature_scheme} of its header, "
                                 f"parent_header, metadata and content with the session's key, got {what}")
        message = {"header": header, "msg_id": header.get("msg_id"), "msg_type": header.get("msg_type"),
                   "parent_header": _unpack("parent_header", parts[1], frames),
                   "metadata": _unpack("metadata", parts[2], frames),
                   "content": _unpack("content", parts[3], frames), "buffers": rest[5:]}
        return list(identities) + [message]

    def render(self, frames: Sequence[Any]) -> str:
        try:
            _, rest = self.split(frames)
            header = _json_loads(rest[1])
            parent = _json_loads(rest[2])
            content = _json_loads(rest[4])
            text = f"{header.get('msg_type')} {_short_id(header.get('msg_id'))}"
            if isinstance(parent, dict) and parent.get("msg_id"):
                text += f" (re {_short_id(parent['msg_id'])})"
            text += " " + _summary(content)
            if self.key and not hmac.compare_digest(rest[0], self.sign(rest[1:5])):
                text += " BAD SIGNATURE"
        except (CodecError, ValueError, TypeError, AttributeError) as exc:
            return _cut(f"{short_frames(frames)} (not a Jupyter message: {exc})")
        return _cut(text)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return "zmqprocesstest"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _pack(what: str, value: Any) -> bytes:
    try:
        return _json_dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"expected the {what} of a Jupyter message to be JSON-serialisable, got {value!r} "
                        f"({exc})") from None


def _unpack(what: str, part: bytes, frames: Sequence[Any]) -> Any:
    try:
        return _json_loads(part)
    except ValueError as exc:
        raise CodecError(f"expected the {what} of a Jupyter message to be UTF-8 JSON, got {short(part)} ({exc}); "
                         f"whole message: {short_frames(frames)}") from None


def _short_id(msg_id: Any) -> str:
    """The first 8 characters of a msg_id, and its counter if it has one (jupyter_client's
    ids are ``<session>_<pid>_<count>``: the same first characters for a whole session)."""
    text = str(msg_id)
    if len(text) <= 8:
        return text
    head, _, count = text.rpartition("_")
    return f"{text[:8]}_{count}" if head and count.isdigit() else text[:8]


def _summary(content: Any) -> str:
    """``execution_state='busy'``, ``name='stdout' text='1\\n'``: each field, shortened."""
    if not isinstance(content, dict):
        return short(content, _VALUE_CHARS)
    if not content:
        return "{}"
    return " ".join(f"{key}={short(value, _VALUE_CHARS)}" for key, value in content.items())


#: The default codec: a JSON body after the header frames.
json: JsonCodec = JsonCodec()
#: Frames as they are.
raw: RawCodec = RawCodec()
#: A MessagePack body after the header frames (needs the ``msgpack`` package).
msgpack: MsgpackCodec = MsgpackCodec()


def jupyter(key: Union[bytes, str], signature_scheme: str = "hmac-sha256", session: Optional[str] = None,
            username: Optional[str] = None) -> JupyterCodec:
    """A codec for the Jupyter wire protocol with the connection's *key* and
    *signature_scheme* (a kernel's connection file holds both); see :class:`JupyterCodec`.

    Use one codec for all the sockets of one client (shell, control, iopub, stdin):
    they share its session id.
    """
    return JupyterCodec(key, signature_scheme, session=session, username=username)
