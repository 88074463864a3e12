"""Clients that cope with failure, for the how-to on testing failure handling.

``LazyPirate`` is the ZeroMQ guide's Lazy Pirate client: a REQ socket that gives up on
a reply after a timeout, closes the socket (a REQ cannot send twice), opens a new one
and sends the request again, a few times. ``HeartbeatMonitor`` listens to a peer's
heartbeats and says when the peer goes silent and when it is back.
"""
import json
import multiprocessing

import zmq


class LazyPirate(multiprocessing.Process):
    """Sends ``['ping', n]`` to *server* for each ``['request', n]`` it pulls on *control*.

    It pushes what happened to *results*: ``['retry', n, attempt]`` after each timeout,
    then ``['ok', n, attempts]``, or ``['gave up', n, attempts]`` after *retries*.
    """

    def __init__(self, server, control, results, timeout_ms=100, retries=20):
        super().__init__(name="lazypirate")
        self.server, self.control, self.results = server, control, results
        self.timeout_ms, self.retries = timeout_ms, retries

    def run(self):
        context = zmq.Context()
        control, results = context.socket(zmq.PULL), context.socket(zmq.PUSH)
        control.connect(self.control)
        results.connect(self.results)
        req = None
        try:
            while True:
                command, n = control.recv_json()
                if command == "stop":
                    break
                req = self.request(context, req, n, results)
        except KeyboardInterrupt:
            pass
        finally:
            for sock in (control, results, req):
                if sock is not None:
                    sock.close(linger=0)
            context.term()

    def connect(self, context):
        req = context.socket(zmq.REQ)
        req.setsockopt(zmq.RECONNECT_IVL, 10)
        req.connect(self.server)
        return req

    def request(self, context, req, n, results):
        req = req or self.connect(context)
        for attempt in range(1, self.retries + 1):
            req.send_json(["ping", n])
            if req.poll(self.timeout_ms):
                reply = req.recv_json()
                if reply == ["pong", n]:
                    results.send_json(["ok", n, attempt])
                    return req
            results.send_json(["retry", n, attempt])
            req.close(linger=0)  # the REQ is stuck waiting for a reply: start afresh
            req = self.connect(context)
        results.send_json(["gave up", n, self.retries])
        return req


class Heartbeater(multiprocessing.Process):
    """Publishes ``[b'HB', seq]`` on *endpoint* every *interval* seconds."""

    def __init__(self, endpoint, interval=0.02):
        super().__init__(name="heartbeater")
        self.endpoint, self.interval = endpoint, interval

    def run(self):
        context = zmq.Context()
        pub = context.socket(zmq.PUB)
        pub.linger = 0
        pub.bind(self.endpoint)
        seq = 0
        try:
            while True:
                seq += 1
                pub.send_multipart([b"HB", str(seq).encode()])
                pub.poll(int(self.interval * 1000), zmq.POLLIN)  # a PUB never has input: this waits
        except KeyboardInterrupt:
            pass
        finally:
            pub.close()
            context.term()


class HeartbeatMonitor(multiprocessing.Process):
    """Subscribes to the heartbeats on *peer*; pushes ``['alive']`` on the first one,
    ``['lost', missed]`` after *liveness* intervals of silence and ``['alive']`` again
    when they come back."""

    def __init__(self, peer, results, interval=0.02, liveness=3):
        super().__init__(name="monitor")
        self.peer, self.results, self.interval, self.liveness = peer, results, interval, liveness

    def run(self):
        context = zmq.Context()
        sub, results = context.socket(zmq.SUB), context.socket(zmq.PUSH)
        sub.subscribe(b"HB")
        sub.connect(self.peer)
        results.connect(self.results)
        alive, missed = False, 0
        try:
            while True:
                if sub.poll(int(self.interval * 1000)):
                    sub.recv_multipart()
                    missed = 0
                    if not alive:
                        alive = True
                        results.send(json.dumps(["alive"]).encode())
                    continue
                missed += 1
                if alive and missed >= self.liveness:
                    alive = False
                    results.send(json.dumps(["lost", missed]).encode())
        except KeyboardInterrupt:
            pass
        finally:
            sub.close(linger=0)
            results.close(linger=0)
            context.term()
