"""The process under test: answers ``['ping', n]`` with ``['pong', n]``.

It binds a REP (or ROUTER) socket, speaks JSON in the last frame, answers unknown
message types with ``['error', 'unknown message type: ...']`` and stops on
``['plzdiekthxbye', None]`` or on SIGINT (KeyboardInterrupt), closing its socket.
"""
import json
import multiprocessing
import signal
import sys

import zmq


class PongProc(multiprocessing.Process):
    """Binds *endpoint* and plays pong until told to stop."""

    def __init__(self, endpoint, sock_type=zmq.REP):
        super().__init__(name="pongproc")
        self.endpoint = endpoint
        self.sock_type = sock_type

    def run(self):
        context = sock = None
        try:
            context = zmq.Context()
            sock = context.socket(self.sock_type)
            sock.linger = 0
            sock.bind(self.endpoint)
            self.serve(sock)
        except KeyboardInterrupt:
            pass  # stopped with SIGINT: fall through to the clean-up
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second SIGINT must not cut the clean-up short
            if sock is not None:
                sock.close()
            if context is not None:
                context.term()

    def serve(self, sock):
        while True:
            frames = sock.recv_multipart()
            header, body = frames[:-1], frames[-1]
            try:
                msg_type, data = json.loads(body)
            except (ValueError, TypeError):
                self.reply(sock, header, ["error", "expected a JSON [type, data] message"])
                continue
            if msg_type == "plzdiekthxbye":
                return
            if msg_type == "ping":
                self.reply(sock, header, ["pong", data])
            else:
                self.reply(sock, header, ["error", f"unknown message type: {msg_type}"])

    @staticmethod
    def reply(sock, header, body):
        sock.send_multipart(header + [json.dumps(body).encode()])


def main(argv=None):
    """``python -m pingpong.pongproc ENDPOINT``: run the pong process in the foreground."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m pingpong.pongproc ENDPOINT")
    print(f"pong: serving on {argv[0]}", flush=True)
    PongProc(argv[0]).run()
    print("pong: stopped", flush=True)


if __name__ == "__main__":
    main()
