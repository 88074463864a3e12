"""Deliberately failing tests, run by test_failure_report.py.

Not collected on their own: the module name does not start with ``test``, and the
test module imports this module, not its classes.
"""
import json
import signal

import zmq

from zmqprocesstest import ProcessTestCase, process
from pingpong.faulty import CrashingProc
from pingpong.pongproc import PongProc


@process
class CrashSample(ProcessTestCase):

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(CrashingProc, self.endpoint)

    def test_crash(self):
        yield ("send", self.req, [], ["ping", 1])
        yield ("recv", self.req)
        yield ("send", self.req, [], ["crash", 3])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 2]])


@process
class DelimiterSample(ProcessTestCase):
    timeout = 0.2

    def setUp(self):
        self.dealer = self.socket(zmq.DEALER, connect=self.endpoint, name="dealer")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.dealer, ["plzdiekthxbye", None], header=[b""])

    def test_forgot_the_delimiter(self):
        yield ("send", self.dealer, [], ["ping", 1])  # REP drops it: no empty frame first
        reply = yield ("recv", self.dealer)
        self.assertEqual(reply, [b"", ["pong", 1]])


@process
class WrongReplySample(ProcessTestCase):

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)

    def test_wrong_reply(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 2]])  # PongProc answers with the number it got


def broker(frontend, backend):
    """A least-recently-used broker: clients' requests (ROUTER *frontend*) go to the
    workers that said ``["ready", name]`` (ROUTER *backend*); their replies go back."""
    context = zmq.Context()
    front, back = context.socket(zmq.ROUTER), context.socket(zmq.ROUTER)
    front.linger = back.linger = 0
    try:
        front.bind(frontend)
        back.bind(backend)
        poller = zmq.Poller()
        poller.register(back, zmq.POLLIN)
        poller.register(front, zmq.POLLIN)
        idle, waiting = [], []
        while True:
            for sock, _ in poller.poll():
                if sock is back:
                    worker, *reply = back.recv_multipart()
                    if json.loads(reply[-1])[0] != "ready":
                        front.send_multipart(reply)  # [client, body]
                    idle.append(worker)
                else:
                    waiting.append(front.recv_multipart())  # [client, body]
            while idle and waiting:
                back.send_multipart([idle.pop(0)] + waiting.pop(0))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        front.close()
        back.close()
        context.term()


def worker(backend, name):
    """Registers with the broker as *name*, then answers ``["upper", text]`` with
    ``["ok", name, TEXT]``."""
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect(backend)
        sock.send(json.dumps(["ready", name]).encode())
        while True:
            client, body = sock.recv_multipart()
            _, text = json.loads(body)
            sock.send_multipart([client, json.dumps(["ok", name, text.upper()]).encode()])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sock.close()
        context.term()


@process
class BrokerSample(ProcessTestCase):
    """Two processes started from functions: their lanes are named ``broker`` and ``worker``."""

    def setUp(self):
        self.frontend, backend = self.new_endpoint(), self.new_endpoint()
        self.start_process(broker, self.frontend, backend)
        self.start_process(worker, backend, "w1")
        self.client = self.socket(zmq.DEALER, connect=self.frontend, name="client")

    def test_upper(self):
        yield ("send", self.client, [], ["upper", "one"])
        reply = yield ("recv", self.client)
        self.assertEqual(reply, [["ok", "w1", "one"]])  # the worker answers in capitals
