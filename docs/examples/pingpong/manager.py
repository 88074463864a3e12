"""A process that starts its own child on a random port.

``Manager`` binds a REP socket for clients and a PAIR socket on a random loopback
port, starts a ``Worker`` with that port, and hands each client request to the worker,
returning the worker's answer. The worker doubles numbers.
"""
import json
import multiprocessing
import signal

import zmq


class Worker(multiprocessing.Process):
    """Connects to the manager's random port and answers ``['double', n]``."""

    def __init__(self, port):
        super().__init__(name="worker")
        self.port = port

    def run(self):
        context = zmq.Context()
        sock = context.socket(zmq.PAIR)
        sock.linger = 0
        sock.connect(f"tcp://127.0.0.1:{self.port}")
        try:
            while True:
                msg_type, data = sock.recv_json()
                if msg_type == "stop":
                    break
                sock.send_json(["doubled", data * 2])
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
            context.term()


class Manager(multiprocessing.Process):
    """Serves clients on *endpoint*; the work is done by a Worker child."""

    def __init__(self, endpoint):
        super().__init__(name="manager")
        self.endpoint = endpoint

    def run(self):
        context = zmq.Context()
        clients = context.socket(zmq.REP)
        worker_sock = context.socket(zmq.PAIR)
        for sock in (clients, worker_sock):
            sock.linger = 0
        clients.bind(self.endpoint)
        port = worker_sock.bind_to_random_port("tcp://127.0.0.1")
        worker = Worker(port)
        worker.start()
        try:
            while True:
                msg_type, data = json.loads(clients.recv_multipart()[-1])
                if msg_type == "plzdiekthxbye":
                    break
                worker_sock.send_json(["double", data])
                clients.send_json(worker_sock.recv_json())
        except KeyboardInterrupt:
            pass
        finally:
            # Stopping now: a second SIGINT (Ctrl-C pressed twice) must not cut the
            # clean-up short in worker.join().
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                worker_sock.send_json(["stop", None], zmq.NOBLOCK)
            except zmq.Again:
                pass  # the worker is gone already (SIGINT reaches the whole group)
            worker.join(1)
            clients.close()
            worker_sock.close()
            context.term()
