"""A pong process that logs through PyZMQ's PUBHandler."""
import logging

import zmq
from zmq.log.handlers import PUBHandler

from .pongproc import PongProc


class LoggingPongProc(PongProc):
    """Like PongProc, and publishes a log record for each message on *log_endpoint* (bound)."""

    def __init__(self, endpoint, log_endpoint):
        super().__init__(endpoint)
        self.log_endpoint = log_endpoint

    def run(self):
        context = zmq.Context()
        # XPUB sees the subscriber's subscription: waiting for it (bounded) means no
        # record is lost to a slow-joining subscriber.
        pub = context.socket(zmq.XPUB)
        pub.linger = 0
        pub.bind(self.log_endpoint)
        if pub.poll(2000):
            pub.recv()
        handler = PUBHandler(pub)
        handler.root_topic = "pong"
        self.logger = logging.getLogger("pong")
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(handler)
        try:
            super().run()
        finally:
            self.logger.removeHandler(handler)
            pub.close()
            context.term()

    def reply(self, sock, header, body):
        if body[0] == "pong":
            self.logger.info("got ping %s", body[1])
        else:
            self.logger.warning("unknown message: %s", body[1])
        super().reply(sock, header, body)
