"""``python -m zmqprocesstest scaffold FILE``: a recorded conversation written out as a
generator test that a person can read, edit and keep.

The test plays one side of the recording (the client's by default) with a test socket
of its own: ``yield ("send", sock, header, body)`` for each message that side sent, and
``reply = yield ("recv", sock)`` with an ``assertEqual`` for each message it got (raw
frames with ``send_raw``/``recv_raw`` where the last frame is not a JSON body that the
``send`` event writes the same way). The process under test is started from
``--process MODULE:NAME`` (a :class:`multiprocessing.Process` class or a function, given
the endpoint) or ``--command "ARGV with {endpoint}"``; without either, ``setUp`` says
what is missing.
"""
from __future__ import annotations

import argparse
import os
import json
import re
import shlex
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from .conversations import TO_CLIENT, TO_SERVER, Conversation, ConversationError, Message, encode_frame, \
    read_conversation

__all__ = ["main", "scaffold"]

_INDENT = " " * 8
_WIDTH = 110  # a generated line is wrapped where it would be longer than this
_SIDES = ("client", "server")
_TYPES = ("REQ", "REP", "DEALER", "ROUTER", "SUB", "PAIR", "PUSH", "PULL")


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text).strip("_").lower() or "conversation"
    return "conversation_" + name if name[0].isdigit() else name


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def _socket_type(conversation: Conversation, side: str, given: Optional[str]) -> str:
    """The type of the test's socket: given, as the recording says, or as its messages suggest."""
    if given:
        return given.upper()
    meta = conversation.meta.get(side)
    if isinstance(meta, str) and meta.upper() in _TYPES:
        return meta.upper()
    messages = conversation.messages
    conns = {m.conn for m in messages}
    if any(len(m.frames) == 1 and m.frames[0][:1] in (b"\x00", b"\x01") for m in messages
           if m.direction == TO_SERVER) and conns == {1}:
        return "SUB" if side == "client" else "PUB"
    enveloped = all(m.frames[0] == b"" and len(m.frames) > 1 for m in messages)
    alternating = all(m.direction == (TO_SERVER if i % 2 == 0 else TO_CLIENT) for i, m in enumerate(messages))
    if side == "client":
        return "REQ" if enveloped and alternating and conns == {1} else "DEALER"
    if len(conns) > 1 or not (enveloped and alternating):
        return "ROUTER"
    return "REP"


def _literal(value: object, indent: str) -> str:
    """*value* (what JSON decodes to, or bytes) as Python source, in double quotes as the
    project's tests write it, one item a line where a line would grow past :data:`_WIDTH`."""
    if isinstance(value, bytes):
        text = repr(value)
        if text.startswith("b'") and '"' not in text:
            text = 'b"' + text[2:-1].replace("\\'", "'") + '"'
        return text
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    inner = indent + "    "
    if isinstance(value, dict):
        items = [f"{_literal(k, inner)}: {_literal(v, inner)}" for k, v in value.items()]
        opening, closing = "{", "}"
    elif isinstance(value, (list, tuple)):
        items = [_literal(v, inner) for v in value]
        opening, closing = "[", "]"
    else:
        return repr(value)
    flat = opening + ", ".join(items) + closing
    if len(indent) + len(flat) <= _WIDTH and "\n" not in flat:
        return flat
    return opening + "\n" + "".join(f"{inner}{item},\n" for item in items) + indent + closing


def _frames(message: Message, strip: bool) -> Tuple[List[bytes], Optional[object], bool]:
    """``(header frames, JSON body or None, whether send writes the body byte for byte)``."""
    frames = list(message.frames)
    if strip and len(frames) > 1 and frames[0] == b"":
        frames = frames[1:]
    form = encode_frame(frames[-1])
    if isinstance(form, dict) and "json" in form:
        return frames[:-1], form["json"], "style" not in form
    return frames, None, False


class _Writer:
    def __init__(self) -> None:
        self.lines: List[str] = []

    def add(self, text: str) -> None:
        self.lines.append(_INDENT + text if text else "")


def scaffold(conversation: Conversation, name: str, side: str = "client", socket_type: Optional[str] = None,
             process: Optional[str] = None, command: Optional[str] = None, source: str = "") -> Tuple[str, str]:
    """The text of a test module playing *side* of *conversation*, and its test's id
    (``TestName.test_name``)."""
    played = TO_SERVER if side == "client" else TO_CLIENT
    kind = _socket_type(conversation, side, socket_type)
    if kind == "PUB":
        raise ValueError("expected a recording whose client side can be played: a publisher's subscriber "
                         "side is scaffolded from the client side (--side client)")
    strip = kind in ("REQ", "REP")
    conns = list(dict.fromkeys(m.conn for m in conversation.messages))
    single = len(conns) == 1 or kind == "ROUTER"
    socks: Dict[int, str] = {c: f"self.{side}" if single else f"self.{side}{c}" for c in conns}
    imports = ["import zmq", "", "from zmqprocesstest import ProcessTestCase"]
    setup = []
    where = "bind" if side == "server" else "connect"
    if kind == "SUB":
        topics = [m.frames[0][1:] for m in conversation.messages if m.direction == TO_SERVER
                  and m.frames[0][:1] == b"\x01"]
        extra = f", subscribe={_literal(topics, '')}" if topics else ""
    else:
        extra = ""
    for conn in (conns if not single else conns[:1]):
        label = side if single else f"{side}{conn}"
        setup.append(f'{socks[conn]} = self.socket(zmq.{kind}, {where}=self.endpoint{extra}, name="{label}")')
    if process:
        module, _, obj = process.partition(":")
        if not module or not obj.isidentifier():
            raise ValueError(f"expected --process MODULE:NAME (pingpong.pongproc:PongProc), got {process!r}")
        imports += ["", f"from {module} import {obj}"]
        setup.append(f"self.proc = self.start_process({obj}, self.endpoint)")
    elif command:
        argv = shlex.split(command)
        if "{endpoint}" not in command:
            raise ValueError(f"expected --command to name the endpoint as {{endpoint}}, got {command!r}")
        if argv and argv[0] in ("python", "python3"):
            imports[:0] = ["import sys", ""]
            head = "[sys.executable, " + ", ".join(_literal(a, "") for a in argv[1:]) + "]"
        else:
            head = _literal(argv, "")
        head = head.replace('"{endpoint}"', "self.endpoint")
        setup.append(f"self.proc = self.start_command({head})")
    else:
        setup.append('self.fail("start the process under test here: self.start_process(...) or '
                     'self.start_command([...]) (scaffold --process or --command writes it)")')
    body = _Writer()
    peers: Dict[int, str] = {}
    received_name = "reply" if side == "client" else "request"
    for message in conversation.messages:
        sock = socks[message.conn]
        if message.direction == played:
            if kind == "SUB":
                continue  # its subscriptions are the socket's subscribe=
            header, value, exact = _frames(message, strip)
            items = [peers[message.conn]] if kind == "ROUTER" else []
            items += [_literal(frame, "") for frame in header]
            if value is not None and exact:
                body.add(f'yield ("send", {sock}, [{", ".join(items)}], {_literal(value, _INDENT + "    ")})')
            else:
                if value is not None:
                    items.append(_literal(message.frames[-1], ""))
                body.add(f'yield ("send_raw", {sock}, [{", ".join(items)}])')
            continue
        header, value, _ = _frames(message, strip)
        event = "recv" if value is not None else "recv_raw"
        body.add(f'{received_name} = yield ("{event}", {sock})')
        expected: List[object] = list(header) + ([value] if value is not None else [])
        got = received_name
        if kind == "ROUTER":
            if message.conn not in peers:
                peers[message.conn] = f"peer{message.conn}"
                body.add(f"{peers[message.conn]} = {received_name}[0]")
            got = f"{received_name}[1:]"
        body.add(f"self.assertEqual({got}, {_literal(expected, _INDENT + '    ')})")
    test = _identifier(name)
    cls = "Test" + _camel(test)
    lines = [f'"""The conversation recorded in {source or name}, as a test.', "",
             "Written by python -m zmqprocesstest scaffold; edit it as your own test.", '"""',
             *imports, "", "", f"class {cls}(ProcessTestCase):",
             f'    """Plays the {side} side of {os.path.basename(source) or name}."""', "",
             "    def setUp(self):", *[_INDENT + line for line in setup], "",
             f"    def test_{test}(self):", *body.lines, ""]
    return "\n".join(lines), f"{cls}.test_{test}"


def main(argv: Sequence[str]) -> int:
    """``python -m zmqprocesstest scaffold FILE [-o OUT] [--side S] [--socket T] [--process M:N | --command C]``."""
    parser = argparse.ArgumentParser(prog="python -m zmqprocesstest scaffold",
                                     description="Write a recorded conversation out as a generator test.")
    parser.add_argument("file", help="the recording (.jsonl)")
    parser.add_argument("-o", "--output", help="the test module to write (default: test_NAME.py here)")
    parser.add_argument("--side", choices=_SIDES, default="client", help="the side the test plays (default: client)")
    parser.add_argument("--socket", choices=_TYPES, type=str.upper,
                        help="the test socket's type (default: from the recording)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--process", metavar="MODULE:NAME",
                       help="the process under test: a multiprocessing.Process class or function, given the endpoint")
    group.add_argument("--command", help='the process under test as a command line, with {endpoint}')
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    args = parser.parse_args(list(argv))
    try:
        conversation = read_conversation(args.file)
    except (ConversationError, OSError) as exc:
        print(f"scaffold: {exc}", file=sys.stderr)
        return 2
    if not conversation.messages:
        print(f"scaffold: {args.file} has no messages: there is nothing to write a test of", file=sys.stderr)
        return 2
    name = os.path.splitext(os.path.basename(args.file))[0]
    output = args.output or f"test_{_identifier(name)}.py"
    if os.path.exists(output) and not args.force:
        print(f"scaffold: {output} exists; expected a new file (--force replaces it)", file=sys.stderr)
        return 2
    try:
        text, test_id = scaffold(conversation, name, args.side, args.socket, args.process, args.command, args.file)
    except ValueError as exc:
        print(f"scaffold: {exc}", file=sys.stderr)
        return 2
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
    sends = sum(m.direction == (TO_SERVER if args.side == "client" else TO_CLIENT) for m in conversation.messages)
    print(f"wrote {output}: {test_id}, {sends} sends and {len(conversation.messages) - sends} receives "
          f"checked, the {args.side} side of {args.file}")
    return 0
