"""Tests of sockets.py: timeouts by polling, errors that say what happened."""
import inspect
import os
import socket
import time
import unittest
from unittest import mock

import zmq

from zmqprocesstest import SocketTimeout, TestSocket, make_sock
from zmqprocesstest._config import TIMEOUT_SCALE_ENV, scaled
from zmqprocesstest.endpoints import EndpointParts, check_loopback, parse_endpoint, socket_address
from zmqprocesstest import timeline
from zmqprocesstest.sockets import decode_json
from zmqprocesstest.timeline import Timeline, short


class SocketTestBase(unittest.TestCase):
    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, linger=0)
        self.dir = self.enterContext_tmpdir()

    def make(self, *args, **kwargs):
        sock = make_sock(self.ctx, *args, **kwargs)
        self.addCleanup(sock.close)
        return sock

    def enterContext_tmpdir(self):
        import tempfile
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        return tmp.name

    def pair(self, name="a"):
        endpoint = f"ipc://{self.dir}/{name}"
        server = self.make(zmq.PAIR, bind=endpoint, timeout=0.2, name="server")
        client = self.make(zmq.PAIR, connect=endpoint, timeout=0.2, name="client")
        return server, client


class TestTimeouts(SocketTestBase):
    def test_recv_times_out_after_its_timeout_with_a_clear_message(self):
        server, _ = self.pair()
        start = time.monotonic()
        with self.assertRaises(SocketTimeout) as caught:
            server.recv_multipart(timeout=0.1)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.1)
        self.assertLess(elapsed, 0.5)
        self.assertIsInstance(caught.exception, AssertionError)
        self.assertRegex(str(caught.exception), r"^recv_multipart on socket 'server' \(PAIR, bind ipc://.*/a\) "
                                                r"timed out after 0.1 s; last received on it: nothing$")

    def test_every_send_and_recv_variant_has_a_timeout(self):
        server, _ = self.pair()
        for method in ("recv", "recv_multipart", "recv_json", "recv_string"):
            with self.subTest(method=method), self.assertRaises(SocketTimeout):
                getattr(server, method)(timeout=0.01)
        sender = self.make(zmq.PUSH, connect=f"ipc://{self.dir}/nobody", timeout=0.01, sndhwm=1)
        with self.assertRaises(SocketTimeout):
            for _ in range(10):  # fills the (tiny) queue, then cannot send
                sender.send(b"x")
        for method, arg in (("send_multipart", [b"x"]), ("send_json", 1), ("send_string", "x")):
            with self.subTest(method=method), self.assertRaises(SocketTimeout):
                getattr(sender, method)(arg)

    def test_a_queued_message_is_returned_at_once(self):
        server, client = self.pair()
        client.send_multipart([b"hello", b"world"])
        self.assertTrue(server.poll(1.0))
        start = time.perf_counter()
        self.assertEqual(server.recv_multipart(), [b"hello", b"world"])
        self.assertLess(time.perf_counter() - start, 0.01)

    def test_json_and_string_round_trip(self):
        server, client = self.pair()
        client.send_json({"a": [1, 2]})
        self.assertEqual(server.recv_json(), {"a": [1, 2]})
        client.send_string("grüß")
        self.assertEqual(server.recv_string(), "grüß")

    def test_last_received_is_shown_on_timeout(self):
        server, client = self.pair()
        client.send_multipart([b"first", b"x" * 500])
        server.recv_multipart()
        with self.assertRaises(SocketTimeout) as caught:
            server.recv(timeout=0.01)
        self.assertIn("last received on it: [b'first', b'xxxxx", str(caught.exception))
        self.assertIn("... (500 bytes)", str(caught.exception))

    def test_timeout_scale_env_multiplies_defaults_only(self):
        with mock.patch.dict(os.environ, {TIMEOUT_SCALE_ENV: "3"}):
            self.assertEqual(scaled(1.5), 4.5)
            sock = self.make(zmq.PAIR)
            self.assertEqual(sock.timeout, 3.0)
            explicit = self.make(zmq.PAIR, timeout=0.5)
            self.assertEqual(explicit.timeout, 0.5)
        with mock.patch.dict(os.environ, {TIMEOUT_SCALE_ENV: "fast"}), self.assertRaises(ValueError) as caught:
            scaled(1)
        self.assertIn("must be a positive number, got 'fast'", str(caught.exception))


class TestMakeSock(SocketTestBase):
    def test_options_pass_through(self):
        sock = self.make(zmq.DEALER, identity=b"me", sndhwm=5)
        self.assertEqual(sock.getsockopt(zmq.IDENTITY), b"me")
        self.assertEqual(sock.getsockopt(zmq.SNDHWM), 5)
        self.assertEqual(sock.getsockopt(zmq.LINGER), 0)
        sock.setsockopt(zmq.RCVHWM, 7)
        self.assertEqual(sock.sock.getsockopt(zmq.RCVHWM), 7)

    def test_connecting_sockets_reconnect_fast(self):
        sock = self.make(zmq.REQ, connect=f"ipc://{self.dir}/x")
        self.assertEqual(sock.getsockopt(zmq.RECONNECT_IVL), 2)

    def test_seed_style_host_port_tuple_and_last_endpoint(self):
        sock = self.make(zmq.REP, bind=("127.0.0.1", 0))
        self.assertRegex(sock.last_endpoint, r"^tcp://127\.0\.0\.1:\d+$")

    def test_bind_refuses_non_loopback_unless_allowed(self):
        for endpoint in ("tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.1.2.3:5555"):
            with self.subTest(endpoint=endpoint), self.assertRaises(ValueError) as caught:
                self.make(zmq.REP, bind=endpoint)
            self.assertIn("expected a loopback address", str(caught.exception))
        for endpoint in ("tcp://127.0.0.1:0", "tcp://localhost:0", "tcp://[::1]:0"):
            with self.subTest(endpoint=endpoint):
                sock = self.make(zmq.REP, bind=endpoint, ipv6=True)
                sock.close()
        sock = self.make(zmq.REP, bind="tcp://0.0.0.0:0", allow_remote=True)
        sock.close()

    def test_later_binds_apply_the_same_loopback_rule(self):
        refused = ("tcp://0.0.0.0:0", "tcp://*:0", "tcp://eth0:0", "ws://0.0.0.0:0/x", "ws://*:0",
                   "wss://10.1.2.3:5555/x", "udp://*:5555")
        sock = self.make(zmq.REP)
        for endpoint in refused:
            with self.subTest(endpoint=endpoint), self.assertRaises(ValueError) as caught:
                sock.bind(endpoint)
            self.assertIn(f"refusing to bind a test socket to {endpoint!r}: expected a loopback address",
                          str(caught.exception))
        for addr in ("tcp://0.0.0.0", "tcp://*", "ws://*"):
            with self.subTest(addr=addr), self.assertRaises(ValueError) as caught:
                sock.bind_to_random_port(addr)
            self.assertIn("expected a loopback address", str(caught.exception))
        self.assertEqual(sock.endpoints, [], "nothing was bound")
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        sock.bind("tcp://localhost:0")
        self.assertEqual(sock.endpoints[0], f"bind tcp://127.0.0.1:{port}")
        self.assertEqual(len(sock.endpoints), 2)

    def test_loopback_ws_and_udp_are_accepted_by_the_rule(self):
        for endpoint in ("ws://127.0.0.1:0/x", "ws://[::1]:5555", "wss://localhost:5555/a/b", "udp://127.0.0.1:5555",
                         "ipc:///tmp/x", "inproc://x"):
            with self.subTest(endpoint=endpoint):
                check_loopback(endpoint)

    def test_allow_remote_holds_for_later_binds(self):
        sock = self.make(zmq.REP, allow_remote=True)
        sock.bind("tcp://0.0.0.0:0")
        self.assertGreater(sock.bind_to_random_port("tcp://*"), 0)

    def test_sub_subscribes_to_everything_by_default(self):
        endpoint = f"ipc://{self.dir}/pub"
        pub = self.make(zmq.XPUB, bind=endpoint)
        self.make(zmq.SUB, connect=endpoint)
        self.assertEqual(pub.recv(timeout=1.0), b"\x01")

    def test_subscribe_on_a_non_sub_socket_is_refused(self):
        with self.assertRaises(TypeError) as caught:
            self.make(zmq.PULL, subscribe=b"x")
        self.assertEqual(str(caught.exception), "subscribe= needs a SUB socket, got a PULL socket")

    def test_wrong_direction_is_a_clear_error(self):
        pub = self.make(zmq.PUB)
        with self.assertRaises(TypeError) as caught:
            pub.recv_multipart()
        self.assertIn("cannot receive on socket 'PUB' (PUB, not bound or connected): a PUB socket only sends",
                      str(caught.exception))
        pull = self.make(zmq.PULL)
        with self.assertRaises(TypeError) as caught:
            pull.send(b"x")
        self.assertIn("a PULL socket only receives", str(caught.exception))

    def test_closed_socket_is_a_clear_error(self):
        sock = self.make(zmq.PAIR, name="gone")
        sock.close()
        with self.assertRaises(ValueError) as caught:
            sock.recv()
        self.assertIn("socket 'gone' (PAIR, not bound or connected) is closed", str(caught.exception))
        self.assertIn("closed", repr(sock))

    def test_failed_bind_closes_the_socket(self):
        with self.assertRaises(zmq.ZMQError):
            make_sock(self.ctx, zmq.PAIR, bind="bogus://x")
        self.assertEqual([s for s in self.ctx._sockets if not s.closed], [])


class TestHelpers(unittest.TestCase):
    def test_decode_json_errors_name_the_socket_and_show_frames(self):
        ctx = zmq.Context()
        self.addCleanup(ctx.destroy, linger=0)
        sock = TestSocket(ctx.socket(zmq.PAIR), timeout=0.1, name="s")
        self.addCleanup(sock.close)
        with self.assertRaises(ValueError) as caught:
            decode_json(sock, [b"hdr", b"\xff\xfe"], -1)
        self.assertIn("expected JSON in frame -1 of the message on socket 's' (PAIR, not bound or connected), "
                      "got b'\\xff\\xfe'", str(caught.exception))
        self.assertIn("whole message: [b'hdr', b'\\xff\\xfe']", str(caught.exception))
        with self.assertRaises(IndexError) as caught:
            decode_json(sock, [b"1"], 3)
        self.assertIn("expected a JSON frame at index 3", str(caught.exception))
        self.assertIn("but it has 1 frame(s): [b'1']", str(caught.exception))

    def test_one_parser_takes_endpoints_apart(self):
        self.assertEqual(parse_endpoint("tcp://127.0.0.1:5555"), EndpointParts("tcp", "127.0.0.1", "5555"))
        self.assertEqual(parse_endpoint("tcp://[::1]:*"), EndpointParts("tcp", "::1", "*"))
        self.assertEqual(parse_endpoint("ipc:///tmp/x:1"), EndpointParts("ipc", "/tmp/x:1", ""))
        self.assertEqual(parse_endpoint("inproc://a"), EndpointParts("inproc", "a", ""))
        with self.assertRaisesRegex(ValueError, "expected an endpoint transport://address, got '127.0.0.1:5'"):
            parse_endpoint("127.0.0.1:5")
        self.assertEqual(socket_address("ipc:///tmp/x"), (socket.AF_UNIX, "/tmp/x"))
        self.assertEqual(socket_address("tcp://localhost:5"), (socket.AF_INET, ("127.0.0.1", 5)))
        for bad in ("tcp://127.0.0.1:*", "udp://127.0.0.1:5", "ipc://", "x"):
            with self.subTest(endpoint=bad), self.assertRaisesRegex(ValueError, "tcp://host:port or ipc://path"):
                socket_address(bad, "target")

    def test_short_cuts_huge_frames(self):
        text = short(b"a" * 50_000_000)
        self.assertLess(len(text), 120)
        self.assertIn("(50000000 bytes)", text)

    def test_the_timeline_report_is_bounded(self):
        transcript = Timeline(maxlen=3, keep=3)
        previous = timeline.activate(transcript)
        try:
            for n in range(10):
                timeline.record("sent", "s", [str(n).encode()])
        finally:
            timeline.activate(previous)
        text = transcript.format()
        self.assertEqual(len(text.splitlines()), 3)
        self.assertIn("s -> [b'9']", text)
        self.assertNotIn("b'6'", text)


if __name__ == "__main__":
    unittest.main()


class TestEveryMethodOfZmqSocket(SocketTestBase):
    """Every send*/recv* of zmq.Socket is bounded by the test socket's timeout, or refused."""

    ARGUMENTS = {"data": b"x", "msg_parts": [b"x"], "u": "x", "obj": 1, "msg": 1, "serialize": lambda m: [b"x"],
                 "deserialize": lambda frames: frames, "buffer": bytearray(8)}

    def call(self, sock, name):
        method = getattr(zmq.Socket, name)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = [p for p in inspect.signature(method).parameters.values()
                  if p.name != "self" and p.default is p.empty and p.kind in positional]
        missing = [p.name for p in params if p.name not in self.ARGUMENTS]
        self.assertEqual(missing, [], f"zmq.Socket.{name} takes arguments this test does not know: add them")
        return getattr(sock, name)(*(self.ARGUMENTS[p.name] for p in params))

    def test_each_one_times_out_or_is_refused(self):
        server, _ = self.pair()
        lonely = self.make(zmq.DEALER, timeout=0.2, name="lonely")  # no peer: nothing can be sent
        names = sorted(n for n in dir(zmq.Socket)
                       if n.startswith(("send", "recv")) and callable(getattr(zmq.Socket, n)))
        self.assertIn("recv_pyobj", names)
        for raw in (server.sock, lonely.sock):  # were a call handed over unbounded, it would end in zmq.Again
            raw.rcvtimeo = raw.sndtimeo = 2000
        for name in names:
            sock = server if name.startswith("recv") else lonely
            with self.subTest(method=name):
                start = time.monotonic()
                try:
                    self.call(sock, name)
                except SocketTimeout as exc:
                    self.assertLess(time.monotonic() - start, 1.0)
                    self.assertEqual(exc.timeout, 0.2)
                except TypeError as exc:
                    self.assertIn("pyobj", name)
                    self.assertIn("is refused", str(exc))
                    self.assertIn(f".sock.{name}(", str(exc))  # says how to do it on purpose
                else:
                    self.fail(f"{name} returned instead of timing out")


class TestPollZero(SocketTestBase):
    def test_poll_with_no_time_still_looks_once(self):
        server, client = self.pair()
        self.assertFalse(server.poll(0))
        client.send(b"x")
        self.assertTrue(server.poll(1.0))  # it has arrived
        self.assertTrue(server.poll(0))
        self.assertEqual(server.recv(timeout=0), b"x")
