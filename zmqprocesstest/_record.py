"""``python -m zmqprocesstest record``: a real program's conversation recorded outside any
test, through a tap, until Ctrl-C.

``--listen EP`` is where the tap listens (the client connects there instead of the
server), ``--connect EP`` the server's endpoint; every whole message through it, both
ways, goes into the recording ``-o FILE`` (:mod:`zmqprocesstest.conversations`), and
the command says what it wrote when it stops (Ctrl-C, or SIGTERM).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Optional, Sequence

from . import codecs
from .conversations import ConversationWriter, TapRecorder
from .faults import FaultLinkError, Tap

__all__ = ["main"]

_CODECS = ("json", "raw", "msgpack", "jupyter")
#: How often the waiting main thread wakes (seconds) to write what was recorded (and a
#: signal's handler runs then at the latest).
_WAKE = 0.5


def _codec(name: str, key: Optional[str], scheme: str) -> Any:
    if name == "jupyter":
        if key is None:
            raise ValueError("expected --key KEY with --codec jupyter (the connection file's \"key\"; '' if unsigned)")
        return codecs.jupyter(key, scheme)
    if key is not None:
        raise ValueError(f"--key is for --codec jupyter, not {name}")
    return getattr(codecs, name)


def main(argv: Sequence[str]) -> int:
    """``python -m zmqprocesstest record --listen EP --connect EP -o FILE [--codec NAME [--key KEY]]``."""
    parser = argparse.ArgumentParser(prog="python -m zmqprocesstest record",
                                     description="Record a client's conversation with a server through a tap, "
                                                 "until Ctrl-C.")
    parser.add_argument("--listen", required=True, metavar="EP",
                        help="where the tap listens: point the client here (tcp on loopback, or ipc)")
    parser.add_argument("--connect", required=True, metavar="EP", help="the server's endpoint")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the recording to write (.jsonl)")
    parser.add_argument("--codec", choices=_CODECS, default="json", help="how frames are shown (default: json)")
    parser.add_argument("--key", help="the signing key of --codec jupyter")
    parser.add_argument("--signature-scheme", default="hmac-sha256", help="of --codec jupyter (default: %(default)s)")
    args = parser.parse_args(list(argv))
    try:
        codec = _codec(args.codec, args.key, args.signature_scheme)
        tap = Tap(args.connect, endpoint=args.listen, name="record", codec=codec)
    except (ValueError, TypeError, OSError, FaultLinkError) as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    writer = ConversationWriter(args.output, args.codec)
    tap.recorders.append(TapRecorder(writer, tap))
    print(f"record: clients connect to {tap.endpoint}, forwarded to {args.connect}; recording to {writer.path}; "
          "Ctrl-C to stop", flush=True)
    code = 0
    try:
        while not stop.wait(_WAKE):
            writer.flush()  # what came so far is in the file, should the command be killed
    finally:
        try:
            tap.close()
        except FaultLinkError as exc:
            print(f"record: {exc}", file=sys.stderr)
            code = 1
        writer.close()
    connections = len(tap.connections)
    print(f"record: wrote {writer.count} message{'s' if writer.count != 1 else ''} "
          f"({connections} connection{'s' if connections != 1 else ''}) to {writer.path}", flush=True)
    return code
