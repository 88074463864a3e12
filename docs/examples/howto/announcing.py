"""A pong process that binds a random port and prints the endpoint it got."""
import zmq

from pingpong.pongproc import PongProc


class AnnouncingPongProc(PongProc):
    """Pass ``tcp://127.0.0.1:*``; prints ``listening on tcp://127.0.0.1:PORT``."""

    def serve(self, sock):
        print("listening on", sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
        super().serve(sock)
