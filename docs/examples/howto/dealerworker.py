"""A worker that connects a DEALER socket to a broker (a ROUTER) and plays pong."""
import json
import multiprocessing

import zmq


class PongWorker(multiprocessing.Process):
    """Says ``['ready', None]``, then answers ``['ping', n]`` with ``['pong', n]``.

    Messages carry an empty delimiter frame before the JSON body, as REQ/REP peers expect.
    ``['plzdiekthxbye', None]`` stops it.
    """

    def __init__(self, broker_endpoint):
        super().__init__(name="worker")
        self.broker_endpoint = broker_endpoint

    def run(self):
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(self.broker_endpoint)
        try:
            sock.send_multipart([b"", json.dumps(["ready", None]).encode()])
            while True:
                _empty, body = sock.recv_multipart()
                msg_type, data = json.loads(body)
                if msg_type == "plzdiekthxbye":
                    break
                sock.send_multipart([b"", json.dumps(["pong", data]).encode()])
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
            context.term()
