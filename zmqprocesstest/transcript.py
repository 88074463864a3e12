"""The transcript of a test: what its sockets sent and received, and how frames are shown.

Reports show messages shortened (:func:`short`, :func:`short_frames`): a huge frame or a
message of many frames never floods a failure message. A JSON body is decoded by
:func:`decode_json`, whose errors show the frames the same way.
"""
from __future__ import annotations

import collections
import json
import time
from typing import Any, Deque, List, Sequence, Tuple

import zmq

__unittest = True
__tracebackhide__ = True

__all__ = ["Transcript", "decode_json", "short", "short_frames", "type_name"]


def type_name(sock_type: int) -> str:
    """Name of a zmq socket type (``zmq.REQ`` -> ``'REQ'``)."""
    try:
        return zmq.SocketType(sock_type).name
    except ValueError:
        return str(sock_type)


def short(frame: Any, limit: int = 60) -> str:
    """A readable, bounded rendering of one frame (huge frames are cut)."""
    if isinstance(frame, zmq.Frame):
        frame = frame.bytes
    if isinstance(frame, (bytes, bytearray, memoryview)):
        data = bytes(frame[: limit + 1])
        text = repr(data[:limit])
        if len(frame) > limit:
            text += f"... ({len(frame)} bytes)"
        return text
    text = repr(frame)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text)} chars)"
    return text


def short_frames(frames: Sequence[Any], limit: int = 60, most: int = 8) -> str:
    """Render a multipart message as ``[frame, frame, ...]`` with bounded size."""
    shown = [short(f, limit) for f in list(frames)[:most]]
    if len(frames) > most:
        shown.append(f"... {len(frames) - most} more frames")
    return "[" + ", ".join(shown) + "]"


class Transcript:
    """What test sockets sent and received during one test, newest last.

    Kept in a bounded :class:`collections.deque`; frames are stored by reference and
    only rendered (shortened) when a report is made, so recording costs next to nothing.
    """

    def __init__(self, maxlen: int = 20) -> None:
        self.start = time.monotonic()
        self.entries: Deque[Tuple[float, str, str, Any]] = collections.deque(maxlen=maxlen)

    def record(self, direction: str, name: str, frames: Any) -> None:
        self.entries.append((time.monotonic(), direction, name, frames))

    def note(self, name: str, text: str) -> None:
        """Add a line that is not a message (``** text``): a step, a socket monitor's event."""
        self.entries.append((time.monotonic(), "note", name, text))

    def format(self) -> str:
        """Render the transcript, one exchange a line."""
        if not self.entries:
            return "  (no messages sent or received)"
        lines = []
        for when, direction, name, frames in self.entries:
            arrow = "->" if direction == "sent" else "<-" if direction == "received" else "**"
            if arrow == "**":  # a note (a step of a state machine, a socket monitor's event)
                rendered = str(frames)
            elif isinstance(frames, (list, tuple)):
                rendered = short_frames(frames)
            else:
                rendered = short(frames)
            lines.append(f"  +{when - self.start:8.3f}s {name} {arrow} {rendered}")
        return "\n".join(lines)


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
