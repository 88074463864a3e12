"""A racy broker test, on purpose (run by tests/test_runs.py and benchmarks/hunt.py, not
collected): the race of issue 31, as a new user wrote it.

A ROUTER broker and DEALER workers that register with ``["ready", name]``. The worker
prints "ready" right after ``send()``, which only queues the message: when the worker
connects before the broker has bound (the broker makes its context and sockets first), libzmq
tries again after its reconnect interval (100 ms), and the registration arrives that
much later; and even when the broker has bound, the new connection's handshake may still
be under way when the test, having read the ready line, asks on its older connection. The
test waits for the ready line, then asks the broker whom it knows.

It passes most single runs: the broker is started first and usually binds before the
worker connects. The passing classes come first in the module (and sort first), the
racy one last, so a hunt of the whole module shows how soon the repeats reach it.
"""
import json

import zmq

from zmqprocesstest import ProcessTestCase

def broker(workers_endpoint, clients_endpoint):
    """Binds a ROUTER for workers (``["ready", name]`` registers one, answered with
    ``["welcome", name]``) and a ROUTER for clients (``["workers", None]`` is answered
    with ``["workers", [names]]``; ``["plzdiekthxbye", None]`` stops it)."""
    context = zmq.Context()
    backend, frontend = context.socket(zmq.ROUTER), context.socket(zmq.ROUTER)
    backend.bind(workers_endpoint)
    frontend.bind(clients_endpoint)
    poller = zmq.Poller()
    poller.register(backend, zmq.POLLIN)
    poller.register(frontend, zmq.POLLIN)
    known = []
    while True:
        ready = dict(poller.poll())
        if backend in ready:
            ident, body = backend.recv_multipart()
            kind, name = json.loads(body)
            if kind == "ready":
                known.append(name)
                backend.send_multipart([ident, json.dumps(["welcome", name]).encode()])
        if frontend in ready:
            ident, body = frontend.recv_multipart()
            kind, _ = json.loads(body)
            if kind == "plzdiekthxbye":
                break
            frontend.send_multipart([ident, json.dumps([kind, known if kind == "workers" else None]).encode()])
    backend.close(linger=0)
    frontend.close(linger=0)
    context.term()


def worker(endpoint, name, wait_welcome=False):
    """Registers with the broker and prints "ready": right after ``send()`` (the race), or
    once the broker's welcome came back (*wait_welcome*: evidence from the receiving side)."""
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.connect(endpoint)
    sock.send_multipart([json.dumps(["ready", name]).encode()])
    try:
        if wait_welcome:
            sock.recv_multipart()
        print("ready", flush=True)
        while True:
            sock.recv_multipart()
    except KeyboardInterrupt:  # the test's stop
        pass
    finally:
        sock.close(linger=0)
        context.term()


class BrokerTest(ProcessTestCase):
    """A broker and a client socket to it (no tests of its own)."""

    def setUp(self):
        self.workers = self.new_endpoint()
        self.broker = self.start_process(broker, self.workers, self.endpoint)
        self.client = self.socket(zmq.DEALER, connect=self.endpoint, name="client")
        self.set_stop_message(self.broker, self.client, ["plzdiekthxbye", None])


class TestAnAloneBroker(BrokerTest):
    def test_knows_no_worker(self):
        yield ("send", self.client, [], ["workers", None])
        self.assertEqual((yield ("recv", self.client)), [["workers", []]])

    def test_answers_an_unknown_question(self):
        yield ("send", self.client, [], ["weather", None])
        self.assertEqual((yield ("recv", self.client)), [["weather", None]])


class TestBrokerClients(BrokerTest):
    def test_two_clients_get_their_own_answers(self):
        other = self.socket(zmq.DEALER, connect=self.endpoint, name="other")
        yield ("send", other, [], ["weather", None])
        yield ("send", self.client, [], ["workers", None])
        self.assertEqual((yield ("recv", self.client)), [["workers", []]])
        self.assertEqual((yield ("recv", other)), [["weather", None]])

    def test_answers_in_order(self):
        for question in ("a", "b", "c"):
            yield ("send", self.client, [], [question, None])
        answers = []
        for _ in range(3):
            answers.append((yield ("recv", self.client))[0][0])
        self.assertEqual(answers, ["a", "b", "c"])


class TestWorkerRegistration(BrokerTest):
    """The racy test: the last class of the module."""

    WAIT_WELCOME = False

    def setUp(self):
        workers = self.new_endpoint()
        # Started together, the broker first: the test does not wait between them.
        self.broker = self.start_process(broker, workers, self.endpoint)
        self.worker = self.start_process(worker, workers, "w1", self.WAIT_WELCOME)
        self.client = self.socket(zmq.DEALER, connect=self.endpoint, name="client")
        self.set_stop_message(self.broker, self.client, ["plzdiekthxbye", None])

    def test_the_broker_knows_a_ready_worker(self):
        yield ("wait_output", self.worker, "ready")
        yield ("send", self.client, [], ["workers", None])
        self.assertEqual((yield ("recv", self.client)), [["workers", ["w1"]]])
