"""A codec of one's own: the Majordomo Protocol's worker frames (zguide, 7/MDP), and an
echo worker that speaks it.

A worker's message, after the routing envelope and an empty frame, is ``b"MDPW01"``,
a one-byte command and the command's frames:

* READY ``0x01``: the service name;
* REQUEST ``0x02``: the client's address, an empty frame, the request body (frames);
* REPLY ``0x03``: the client's address, an empty frame, the reply body (frames);
* HEARTBEAT ``0x04`` and DISCONNECT ``0x05``: nothing more.
"""

import zmq

from zmqprocesstest.codecs import CodecError
from zmqprocesstest.report.timeline import short, short_frames

WORKER = b"MDPW01"
COMMANDS = {b"\x01": "READY", b"\x02": "REQUEST", b"\x03": "REPLY", b"\x04": "HEARTBEAT", b"\x05": "DISCONNECT"}
CODES = {name: code for code, name in COMMANDS.items()}


class MdpWorkerCodec:
    """MDP/Worker messages as dicts: ``{"command": "READY", "service": "echo"}``,
    ``{"command": "REQUEST", "client": b"c1", "body": [b"hello"]}`` (REPLY likewise),
    ``{"command": "HEARTBEAT"}``. The ``send`` event's header frames are the routing
    envelope (a ROUTER's identity of the worker); ``recv`` returns the envelope
    followed by the dict."""

    name = "mdp-worker"

    def encode(self, body):
        command = body.get("command") if isinstance(body, dict) else None
        if command not in CODES:
            raise TypeError(f"expected an MDP worker message, a dict with a 'command' in {sorted(CODES)}, got {body!r}")
        frames = [b"", WORKER, CODES[command]]
        if command == "READY":
            frames.append(body["service"].encode())
        elif command in ("REQUEST", "REPLY"):
            frames += [body["client"], b""] + list(body["body"])
        return frames

    def split(self, frames):
        """``(envelope, command name, the command's frames)``, or a :class:`CodecError`."""
        frames = [bytes(f) for f in frames]
        for at in range(len(frames) - 2):
            if frames[at] == b"" and frames[at + 1] == WORKER and frames[at + 2] in COMMANDS:
                return frames[:at], COMMANDS[frames[at + 2]], frames[at + 3:]
        raise CodecError(f"expected an MDP worker message (envelope, b'', {WORKER!r}, a command byte 1-5, ...), "
                         f"got {short_frames(frames)}")

    def decode(self, frames):
        envelope, command, rest = self.split(frames)
        message = {"command": command}
        if command == "READY":
            if len(rest) != 1:
                raise CodecError(f"expected READY to carry one frame, the service name, got {short_frames(rest)}")
            message["service"] = rest[0].decode()
        elif command in ("REQUEST", "REPLY"):
            if len(rest) < 2 or rest[1] != b"":
                raise CodecError(f"expected {command} to carry the client's address, an empty frame and the body, "
                                 f"got {short_frames(rest)}")
            message.update(client=rest[0], body=rest[2:])
        return envelope + [message]

    def render(self, frames):
        try:
            _, command, rest = self.split(frames)
        except CodecError:
            return short_frames(frames) + " (not MDP)"
        if command == "READY":
            return f"MDP READY {short(rest[0])}"
        if command in ("REQUEST", "REPLY"):
            return f"MDP {command} client={short(rest[0], 20)} body={short_frames(rest[2:], 40)}"
        return f"MDP {command}"


def echo_worker(broker, heartbeat=0.01):
    """An MDP worker of the ``echo`` service: READY, then a heartbeat every *heartbeat*
    seconds, and each REQUEST's body back as a REPLY. A DISCONNECT stops it."""
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(broker)
    try:
        sock.send_multipart([b"", WORKER, CODES["READY"], b"echo"])
        while True:
            if not sock.poll(heartbeat * 1000):
                sock.send_multipart([b"", WORKER, CODES["HEARTBEAT"]])
                continue
            _, _, command, *rest = sock.recv_multipart()
            if command == CODES["DISCONNECT"]:
                break
            if command == CODES["REQUEST"]:
                client, _, *body = rest
                sock.send_multipart([b"", WORKER, CODES["HEARTBEAT"]])  # a heartbeat first: the test skips it
                sock.send_multipart([b"", WORKER, CODES["REPLY"], client, b""] + body)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        context.term()
