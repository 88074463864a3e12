"""Badly behaved processes, for showing what the test case does about them."""
import multiprocessing
import signal
import sys

import zmq


class _Waiter(multiprocessing.Process):
    """Binds a REP socket and answers ``['crash', code]`` by exiting with that code."""

    def __init__(self, endpoint):
        super().__init__(name=type(self).__name__)
        self.endpoint = endpoint

    def prepare(self):
        """Called first in the child."""

    def run(self):
        self.prepare()
        context = zmq.Context()
        sock = context.socket(zmq.REP)
        sock.linger = 0
        sock.bind(self.endpoint)
        print(f"{self.name}: ready", flush=True)
        while True:
            msg_type, data = sock.recv_json()
            if msg_type == "crash":
                print(f"{self.name}: crashing with exit code {data}", flush=True)
                sys.stdout.flush()
                sock.close()
                context.term()
                sys.exit(data)
            sock.send_json(["pong", data])


class CrashingProc(_Waiter):
    """Exits with the code it is sent in ``['crash', code]``."""


class StubbornProc(_Waiter):
    """Ignores SIGINT, so stopping it needs SIGTERM."""

    def prepare(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class DeafProc(_Waiter):
    """Ignores SIGINT and SIGTERM, so only SIGKILL stops it."""

    def prepare(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main():
    """``python -m pingpong.faulty ENDPOINT``: a CrashingProc in the foreground."""
    CrashingProc(sys.argv[1]).run()


if __name__ == "__main__":
    main()


class FloodProc(multiprocessing.Process):
    """Binds a PUSH socket and sends numbered messages as fast as it can, forever."""

    def __init__(self, endpoint, size=1000):
        super().__init__(name="FloodProc")
        self.endpoint = endpoint
        self.size = size

    def run(self):
        context = zmq.Context()
        sock = context.socket(zmq.PUSH)
        sock.linger = 0
        sock.bind(self.endpoint)
        payload = b"x" * self.size
        try:
            n = 0
            while True:
                sock.send_multipart([str(n).encode(), payload])
                n += 1
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
            context.term()
