"""Two small PUB/SUB processes for the how-to guide."""
import json
import multiprocessing

import zmq


class Broadcaster(multiprocessing.Process):
    """Pulls ``['ping', n]`` on *endpoint*, publishes ``[b'pong', ['pong', n]]`` on *pub_endpoint*.

    While idle it publishes ``[b'heartbeat', ['heartbeat', seq]]`` every 10 ms.
    ``['plzdiekthxbye', None]`` stops it.
    """

    def __init__(self, endpoint, pub_endpoint):
        super().__init__(name="broadcaster")
        self.endpoint = endpoint
        self.pub_endpoint = pub_endpoint

    def run(self):
        context = zmq.Context()
        inbox, pub = context.socket(zmq.PULL), context.socket(zmq.PUB)
        for sock in (inbox, pub):
            sock.linger = 0
        inbox.bind(self.endpoint)
        pub.bind(self.pub_endpoint)
        seq = 0
        try:
            while True:
                if not inbox.poll(10):
                    seq += 1
                    pub.send_multipart([b"heartbeat", json.dumps(["heartbeat", seq]).encode()])
                    continue
                msg_type, data = inbox.recv_json()
                if msg_type == "plzdiekthxbye":
                    break
                pub.send_multipart([b"pong", json.dumps(["pong", data]).encode()])
        except KeyboardInterrupt:
            pass
        finally:
            inbox.close()
            pub.close()
            context.term()


class Listener(multiprocessing.Process):
    """Subscribes to ``b'ping'`` on *upstream*, pushes ``['pong', n]`` to *downstream*.

    ``[b'ping', ['plzdiekthxbye', None]]`` stops it.
    """

    def __init__(self, upstream, downstream):
        super().__init__(name="listener")
        self.upstream = upstream
        self.downstream = downstream

    def run(self):
        context = zmq.Context()
        sub, push = context.socket(zmq.SUB), context.socket(zmq.PUSH)
        for sock in (sub, push):
            sock.linger = 0
        sub.subscribe(b"ping")
        sub.connect(self.upstream)
        push.connect(self.downstream)
        try:
            while True:
                _topic, body = sub.recv_multipart()
                msg_type, data = json.loads(body)
                if msg_type == "plzdiekthxbye":
                    break
                push.send_json(["pong", data])
        except KeyboardInterrupt:
            pass
        finally:
            sub.close()
            push.close()
            context.term()
