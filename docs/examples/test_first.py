import zmq
from zmqprocesstest import ProcessTestCase


def echo(endpoint):  # the process under test: a REP server that echoes each request
    with zmq.Context() as ctx, ctx.socket(zmq.REP) as rep:
        rep.bind(endpoint)
        try:
            while True:
                rep.send(rep.recv())
        except KeyboardInterrupt:  # SIGINT: how the test case stops it after the test
            pass


class TestEcho(ProcessTestCase):
    def test_echo(self):
        req = self.socket(zmq.REQ, connect=self.endpoint)
        self.start_process(echo, self.endpoint)
        yield ("send", req, [], {"hello": 1})
        reply = yield ("recv", req)
        self.assertEqual(reply, [{"hello": 1}])
