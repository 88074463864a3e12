"""Tests of the faults wing: a fault link between real ZeroMQ sockets (ipc, tcp), its ZMTP tracker, its events."""
import inspect
import os
import random
import shutil
import socket
import tempfile
import threading
import time
import unittest

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from zmqprocesstest import ProcessTestCase, make_sock
from zmqprocesstest.faults._zmtp import Tally, Tracker, frame_bodies
from zmqprocesstest.faults import FaultEvents, FaultLink, FaultLinkError, LinkStats, make_link
from zmqprocesstest.faults.events import faults_of
from zmqprocesstest.loop import EVENT_ATTR, EventError, dispatch

from .support import only_problem, problems, run_case

WAIT = 2.0  # bound of every wait for something that should happen
QUIET = 0.2  # how long "nothing arrives" is watched


def greeting(mechanism=b"NULL", major=3, minor=1):
    return b"\xff" + b"\0" * 8 + b"\x7f" + bytes([major, minor]) + mechanism.ljust(20, b"\0") + b"\0" * 32


def frame(body, more=False, command=False):
    flags = (1 if more else 0) | (4 if command else 0)
    if len(body) > 255:
        return bytes([flags | 2]) + len(body).to_bytes(8, "big") + body
    return bytes([flags, len(body)]) + body


def message(*parts):
    return b"".join(frame(p, more=i < len(parts) - 1) for i, p in enumerate(parts))


class TestTracker(unittest.TestCase):
    """The ZMTP tracker alone: messages counted and dropped across any chunking."""

    def stream(self):
        ready = frame(b"\x05READY\x0bSocket-Type\0\0\0\x06DEALER", command=True)
        msgs = [message(b"", b"one"), message(b"a" * 300, b"b" * 70000), message(b"three"),
                message(b"x", b"y", b"z"), message(b"")]
        ping = frame(b"\x04PING\0\0", command=True)
        # a heartbeat between the frames of a multipart message is not part of it
        msgs[3] = frame(b"x", more=True) + ping + frame(b"y", more=True) + frame(b"z")
        return greeting() + ready, msgs, ping

    def run_chunks(self, data, sizes, armed=0):
        tally = Tally()
        tally.armed = armed
        tracker = Tracker(tally, lambda t: None)
        kept, count, i = [], 0, 0
        view = memoryview(data)
        for size in sizes:
            chunk = bytearray(view[i:i + size])
            i += size
            msgs, segs = tracker.feed(memoryview(chunk), len(chunk))
            count += msgs
            kept.append(bytes(chunk) if segs is None else b"".join(segs))
        self.assertEqual(i, len(data))
        return b"".join(kept), count, tally, tracker

    def chunkings(self, length):
        rng = random.Random(7)
        yield [length]
        yield [1] * length if length < 200 else [1] * 200 + [length - 200]
        for _ in range(20):
            sizes, left = [], length
            while left:
                sizes.append(min(left, rng.choice((1, 2, 3, 9, 10, 64, 65, 1000, 65536))))
                left -= sizes[-1]
            yield sizes

    def test_counts_messages_in_any_chunking(self):
        head, msgs, ping = self.stream()
        data = head + b"".join(msgs) + ping
        for sizes in self.chunkings(len(data)):
            kept, count, tally, tracker = self.run_chunks(data, sizes)
            self.assertEqual((kept, count), (data, 5))
            self.assertEqual(tracker.protocol, "ZMTP 3.1, NULL")
            self.assertIsNone(tracker.reason)

    def test_drops_whole_messages_and_keeps_commands(self):
        head, msgs, ping = self.stream()
        data = head + b"".join(msgs) + ping
        for armed, expected in ((1, msgs[1:]), (2, msgs[2:]), (4, [ping, msgs[4]])):  # the ping inside msgs[3] stays
            for sizes in self.chunkings(len(data)):
                kept, count, tally, _ = self.run_chunks(data, sizes, armed)
                want = head + b"".join(expected) + ping
                self.assertEqual(kept, want, f"armed {armed}, chunks {sizes[:8]}...")
                self.assertEqual((count, tally.dropped_messages, tally.armed), (5 - armed, armed, 0))
                self.assertEqual(tally.dropped_bytes, len(data) - len(want))

    def test_a_rewrite_changes_body_bytes_of_the_messages_it_picks_and_nothing_else(self):
        head, msgs, ping = self.stream()
        data = head + b"".join(msgs) + ping

        class EveryOther:
            label = "every other"

            def __init__(self):
                self.picked = 0

            def pick(self):
                self.picked += 1
                return self.edit if self.picked % 2 else None

            def edit(self, bodies):
                filled = [body for body in bodies if len(body)]
                if filled:  # msgs[4] has only an empty body
                    filled[-1][0] ^= 0xFF  # the first byte of the last frame with one

        want = bytearray(data)
        for number in (0, 2):  # the first, third and fifth messages are picked
            start = len(head) + sum(map(len, msgs[:number])) + len(msgs[number])
            want[start - len(b"one" if number == 0 else b"three")] ^= 0xFF
        for sizes in self.chunkings(len(data)):
            tally = Tally()
            tally.rewrites["test"] = EveryOther()
            tracker = Tracker(tally, lambda t: None)
            kept, count, i = [], 0, 0
            for size in sizes:
                chunk = bytearray(data[i:i + size])
                i += size
                msgs_done, segs = tracker.feed(memoryview(chunk), len(chunk))
                count += msgs_done
                kept.append(bytes(chunk) if segs is None else b"".join(segs))
            self.assertEqual(b"".join(kept), bytes(want), f"chunks {sizes[:8]}...")
            self.assertEqual((count, tally.dropped_messages, tally.dropped_bytes), (5, 0, 0))

    def test_frame_bodies_are_the_bodies_of_whole_frames(self):
        frames = bytearray(frame(b"ab", more=True) + frame(b"") + frame(b"x" * 300))
        self.assertEqual([bytes(b) for b in frame_bodies(frames)], [b"ab", b"", b"x" * 300])

    def test_encrypted_and_old_protocols_are_passed_over(self):
        cases = [(greeting(b"CURVE"), "ZMTP 3.1, CURVE", "nonce sequence"),
                 (greeting(b"GSSAPI"), "ZMTP 3.1, GSSAPI", "not understood"),
                 (b"\xff" + b"\0" * 8 + b"\x7f\x01\x05", "ZMTP 2.0 or older", "ZMTP 2.0 or older"),
                 (b"\x01\x00" + message(b"hello"), "ZMTP 2.0 or older", "ZMTP 1.0")]
        for head, protocol, reason in cases:
            data = head + message(b"hello") * 3
            kept, count, tally, tracker = self.run_chunks(data, [5, len(data) - 5], armed=1)
            self.assertEqual((kept, count, tally.armed), (data, 0, 1))
            self.assertEqual(tracker.protocol, protocol)
            self.assertIn(reason, tracker.reason)

    def test_an_old_peer_makes_both_directions_opaque(self):
        seen = []
        up, down = Tracker(Tally(), seen.append), Tracker(Tally(), seen.append)
        up.peer, down.peer = down, up
        first = bytearray(greeting()[:11])
        up.feed(memoryview(first), len(first))  # this side offers 3.x
        old = bytearray(b"\xff" + b"\0" * 8 + b"\x7f\x01\x05")
        down.feed(memoryview(old), len(old))  # the peer answers 2.0
        self.assertEqual([t.protocol for t in (up, down)], ["ZMTP 2.0 or older"] * 2)
        self.assertEqual(len(seen), 2)


class LinkTestBase:
    """The link's tests, run over each transport (subclasses set ``transport``)."""

    transport = "ipc"

    def setUp(self):
        self.threads = threading.active_count()
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, linger=0)
        self.tmpdir = tempfile.mkdtemp(prefix="zpt-test-faults-")
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self.count = 0

    def endpoint(self):
        self.count += 1
        return f"ipc://{self.tmpdir}/{self.count}" if self.transport == "ipc" else "tcp://127.0.0.1:0"

    def server(self, sock_type=zmq.REP, **options):
        sock = make_sock(self.ctx, sock_type, bind=self.endpoint(), timeout=WAIT, **options)
        self.addCleanup(sock.close)
        return sock

    def client(self, endpoint, sock_type=zmq.REQ, **options):
        sock = make_sock(self.ctx, sock_type, connect=endpoint, timeout=WAIT, **options)
        self.addCleanup(sock.close)
        return sock

    def link(self, server):
        link = make_link(server.last_endpoint, lambda: self.endpoint())
        self.addCleanup(link.close)
        self.assertTrue(link.endpoint.startswith(self.transport + "://"))
        return link

    def round_trip(self, req, rep, body=b"ping"):
        req.send(body)
        self.assertEqual(rep.recv(), body)
        rep.send(body + b" back")
        self.assertEqual(req.recv(), body + b" back")

    def monitor(self, sock):
        mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_ACCEPTED)
        self.addCleanup(mon.close, 0)
        self.addCleanup(sock.disable_monitor)
        return mon

    def reset_and_wait(self, link, client_mon):
        """Reset *link*; return once the client has seen the disconnect (a request sent
        before that could be taken by the dying connection and lost, as with any REQ)."""
        count = link.reset()
        self.assertEqual(self.next_event(client_mon), "DISCONNECTED")
        return count

    def next_event(self, mon, timeout=WAIT):
        """The next monitor event name within *timeout* seconds, or None."""
        if not mon.poll(int(timeout * 1000)):
            return None
        return recv_monitor_message(mon)["event"].name

    # -- forwarding ----------------------------------------------------------------------
    def test_round_trips_go_through(self):
        rep = self.server()
        link = self.link(rep)
        req = self.client(link.endpoint)
        for i in range(3):
            self.round_trip(req, rep, b"ping %d" % i)
        stats = link.stats
        self.assertIsInstance(stats, LinkStats)
        self.assertEqual((stats["to_server"].messages, stats["to_client"].messages), (3, 3))
        self.assertEqual((stats.accepted, stats.open, stats.failed), (1, 1, 0))
        self.assertEqual(stats.to_server.held_bytes + stats.to_client.dropped_messages, 0)
        self.assertGreater(stats["to_server"].bytes, 64 + 3 * 8)  # greeting, READY, 3 requests

    def test_partition_holds_and_heal_delivers(self):
        rep = self.server()
        mon = self.monitor(rep.sock)
        link = self.link(rep)
        req = self.client(link.endpoint)
        self.round_trip(req, rep)
        self.assertEqual(self.next_event(mon), "ACCEPTED")
        link.partition()
        req.send(b"held")
        self.assertFalse(rep.poll(QUIET), "a request went through the partition")
        held = link.stats["to_server"]
        self.assertEqual((held.held_messages, held.messages), (1, 1))
        link.heal()
        self.assertEqual(rep.recv(), b"held")  # the same connection: a REQ never resends
        rep.send(b"done")
        self.assertEqual(req.recv(), b"done")
        self.assertIsNone(self.next_event(mon, 0), "the server saw a disconnect")
        self.assertEqual(link.stats.accepted, 1)

    def test_a_close_during_the_partition_is_closed_through_on_heal(self):
        rep = self.server(zmq.ROUTER)
        mon = self.monitor(rep.sock)
        link = self.link(rep)
        dealer = self.client(link.endpoint, zmq.DEALER)
        dealer.send(b"hello")
        rep.recv_multipart()
        self.assertEqual(self.next_event(mon), "ACCEPTED")
        link.partition()
        dealer.close()
        self.assertIsNone(self.next_event(mon, QUIET), "the close went through the partition")
        link.heal()
        self.assertEqual(self.next_event(mon), "DISCONNECTED")

    def test_the_partition_holds_a_bounded_amount_then_pushes_back(self):
        rep = self.server(zmq.ROUTER, rcvhwm=0)
        link = self.link(rep)
        link.hold_limit = 65536
        dealer = self.client(link.endpoint, zmq.DEALER, sndhwm=0)
        dealer.send(b"first")
        rep.recv_multipart()
        link.partition()
        big, count = b"x" * 65536, 128  # 8 MiB: more than socket buffers and the hold limit
        for i in range(count):
            dealer.send_multipart([b"%d" % i, big])
        self.assertFalse(rep.poll(QUIET))
        held = link.stats["to_server"].held_bytes
        self.assertLessEqual(held, link.hold_limit + 65536)
        self.assertGreater(held, 0)
        link.heal()
        for i in range(count):
            self.assertEqual(rep.recv_multipart()[1:], [b"%d" % i, big])
        self.assertEqual(link.stats["to_server"].messages, count + 1)

    def test_many_connections_on_one_thread(self):
        router = self.server(zmq.ROUTER)
        link = self.link(router)
        self.assertEqual(threading.active_count(), self.threads + 1)
        dealers = [self.client(link.endpoint, zmq.DEALER) for _ in range(5)]
        for i, dealer in enumerate(dealers):
            dealer.send(b"%d" % i)
        self.assertEqual(sorted(router.recv_multipart()[1] for _ in dealers), [b"%d" % i for i in range(5)])
        link.partition()
        for dealer in dealers:
            dealer.send(b"held")
        self.assertFalse(router.poll(QUIET))
        self.assertEqual(link.stats["to_server"].held_messages, 5)
        link.heal()
        self.assertEqual([router.recv_multipart()[1] for _ in dealers], [b"held"] * 5)
        self.assertEqual(threading.active_count(), self.threads + 1)
        self.assertEqual(link.reset(), 5)

    # -- connection faults -------------------------------------------------------------------
    def test_reset_closes_and_the_client_reconnects(self):
        rep = self.server()
        mon = self.monitor(rep.sock)
        link = self.link(rep)
        req = self.client(link.endpoint)
        req_mon = self.monitor(req.sock)
        self.round_trip(req, rep)
        self.assertEqual(self.next_event(mon), "ACCEPTED")
        start = time.monotonic()
        self.assertEqual(link.reset(), 1)
        self.assertEqual(link.stats.open, 0)  # closed before reset() returned
        self.assertEqual(self.next_event(req_mon), "DISCONNECTED")
        req.send(b"after reset")
        self.assertEqual(rep.recv(), b"after reset")
        took = time.monotonic() - start
        self.assertLess(took, 0.5, f"the first message on the new connection took {took:.3f} s")
        rep.send(b"ok")
        self.assertEqual(req.recv(), b"ok")
        self.assertEqual(self.next_event(mon), "DISCONNECTED")
        self.assertEqual(link.stats.accepted, 2)

    def test_refuse_blocks_new_connections_until_turned_off(self):
        rep = self.server()
        link = self.link(rep)
        early = self.client(link.endpoint)
        self.round_trip(early, rep)
        link.refuse()
        self.assertRaises(ConnectionRefusedError, self.raw_connect, link)
        late = self.client(link.endpoint)
        late.send(b"late")
        self.assertFalse(rep.poll(QUIET), "a connection was made while refusing")
        self.assertEqual(link.stats.accepted, 1)
        link.refuse(False)
        self.assertEqual(rep.recv(), b"late")  # the client retried on its own
        rep.send(b"welcome")
        self.assertEqual(late.recv(), b"welcome")
        self.round_trip(early, rep)  # the open connection never noticed
        self.assertEqual(link.stats.accepted, 2)

    def raw_connect(self, link):
        if link.transport == "ipc":
            sock = socket.socket(socket.AF_UNIX)
            address = link.endpoint[len("ipc://"):]
        else:
            sock = socket.socket()
            host, port = link.endpoint[len("tcp://"):].rsplit(":", 1)
            address = (host, int(port))
        self.addCleanup(sock.close)
        sock.settimeout(WAIT)
        sock.connect(address)
        return sock

    def test_delay_adds_at_least_the_delay_each_way(self):
        rep = self.server()
        link = self.link(rep)
        req = self.client(link.endpoint)
        self.round_trip(req, rep)
        link.delay(0.1)
        start = time.monotonic()
        self.round_trip(req, rep)
        self.assertGreaterEqual(time.monotonic() - start, 0.2)
        link.delay(0)
        start = time.monotonic()
        self.round_trip(req, rep)
        self.assertLess(time.monotonic() - start, 0.1)

    def test_a_target_that_is_down_closes_the_client_at_once(self):
        if self.transport == "ipc":
            target = f"ipc://{self.tmpdir}/nobody"
        else:
            bound = socket.socket()  # a port that is bound, so free of listeners
            self.addCleanup(bound.close)
            bound.bind(("127.0.0.1", 0))
            target = "tcp://127.0.0.1:%d" % bound.getsockname()[1]
        link = make_link(target, self.endpoint)
        self.addCleanup(link.close)
        try:  # the link may close it before the connect returns
            self.assertEqual(self.raw_connect(link).recv(1), b"")
        except ConnectionResetError:
            pass
        self.assertEqual(link.stats.failed, 1)
        self.assertIn("closed at once (target unreachable)", link.report())

    # -- dropping messages -------------------------------------------------------------------
    def test_drop_to_server_drops_exactly_one_request(self):
        router = self.server(zmq.ROUTER)
        link = self.link(router)
        dealer = self.client(link.endpoint, zmq.DEALER)
        dealer.send_multipart([b"", b"warm"])
        router.recv_multipart()
        link.drop(1, "to_server")
        dealer.send_multipart([b"", b"a", b"b" * 1000])  # a multipart message goes whole
        dealer.send_multipart([b"", b"two"])
        dealer.send_multipart([b"", b"three"])
        self.assertEqual(router.recv_multipart()[1:], [b"", b"two"])
        self.assertEqual(router.recv_multipart()[1:], [b"", b"three"])
        self.assertFalse(router.poll(QUIET))
        stats = link.stats["to_server"]
        self.assertEqual((stats.messages, stats.dropped_messages, stats.drops_armed), (3, 1, 0))
        self.assertEqual(stats.dropped_bytes, 2 + 2 + 1 + 9 + 1000)

    def test_drop_to_client_drops_one_reply(self):
        router = self.server(zmq.ROUTER)
        link = self.link(router)
        req = self.client(link.endpoint, zmq.REQ, req_relaxed=1, req_correlate=1)
        req.send(b"first")
        peer, *request = router.recv_multipart()
        link.drop(1, "to_client")
        router.send_multipart([peer] + request[:-1] + [b"lost"])
        self.assertFalse(req.poll(QUIET), "the reply was not dropped")
        req.send(b"retry")  # a REQ client with a retry (relaxed, correlated)
        peer, *request = router.recv_multipart()
        self.assertEqual(request[-1], b"retry")
        router.send_multipart([peer] + request[:-1] + [b"answer"])
        self.assertEqual(req.recv(), b"answer")
        self.assertEqual(link.stats["to_client"].dropped_messages, 1)

    def test_drop_keeps_heartbeats_and_large_frames_intact(self):
        options = dict(heartbeat_ivl=10, heartbeat_timeout=200)
        router = self.server(zmq.ROUTER, **options)
        mon = self.monitor(router.sock)
        link = self.link(router)
        dealer = self.client(link.endpoint, zmq.DEALER, **options)
        big = bytes(range(256)) * 1024  # 256 KiB: a long frame over several chunks
        dealer.send_multipart([b"warm"])
        router.recv_multipart()
        link.drop(2, "to_server")
        for i in range(4):
            dealer.send_multipart([b"%d" % i, big])
        for i in (2, 3):
            self.assertEqual(router.recv_multipart()[1:], [b"%d" % i, big])
        self.assertFalse(router.poll(0.3))  # heartbeats went on meanwhile: no timeout
        self.assertEqual(self.next_event(mon), "ACCEPTED")
        self.assertIsNone(self.next_event(mon, 0))
        self.assertEqual(link.stats["to_server"].dropped_messages, 2)

    def test_drop_works_with_plain(self):
        auth = ThreadAuthenticator(self.ctx)
        auth.start()
        self.addCleanup(auth.stop)
        auth.configure_plain(domain="*", passwords={"user": "secret"})
        router = self.server(zmq.ROUTER, plain_server=1)
        link = self.link(router)
        dealer = self.client(link.endpoint, zmq.DEALER, plain_username=b"user", plain_password=b"secret")
        dealer.send(b"one")
        self.assertEqual(router.recv_multipart()[1:], [b"one"])
        link.drop(1, "to_server")
        dealer.send(b"two")
        dealer.send(b"three")
        self.assertEqual(router.recv_multipart()[1:], [b"three"])
        self.assertIn("ZMTP 3.1, PLAIN", link.report())

    def test_curve_takes_connection_faults_and_refuses_drop(self):
        server_public, server_secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()
        rep = self.server(zmq.REP, curve_server=1, curve_secretkey=server_secret)
        link = self.link(rep)
        link.drop(1, "to_client")  # armed before the link knows; it cannot apply
        req = self.client(link.endpoint, zmq.REQ, curve_serverkey=server_public, curve_publickey=client_public,
                          curve_secretkey=client_secret)
        req_mon = self.monitor(req.sock)
        self.round_trip(req, rep)
        with self.assertRaises(FaultLinkError) as caught:
            link.drop(1, "to_server")
        for words in ("CURVE", "nonce", "partition, heal, reset, refuse, delay"):
            self.assertIn(words, str(caught.exception))
        link.partition()
        req.send(b"held")
        self.assertFalse(rep.poll(QUIET))
        link.heal()
        self.assertEqual(rep.recv(), b"held")
        rep.send(b"ok")
        self.assertEqual(req.recv(), b"ok")
        self.reset_and_wait(link, req_mon)
        self.round_trip(req, rep, b"after reset")
        stats = link.stats
        self.assertEqual((stats["to_server"].messages, stats.accepted), (0, 2))  # messages are not visible
        self.assertGreater(stats["to_server"].bytes, 0)
        report = link.report()
        self.assertIn("ZMTP 3.1, CURVE", report)
        self.assertIn("messages are not visible (byte counts only)", report)
        self.assertIn("drops armed (1 to_client) cannot apply", report)

    # -- what the link tells ---------------------------------------------------------------------
    def test_history_and_report(self):
        rep = self.server()
        link = self.link(rep)
        req = self.client(link.endpoint)
        self.round_trip(req, rep)
        self.assertIn("faults: none", link.report())
        link.partition()
        link.delay(0.05)
        link.refuse()
        link.heal()
        link.refuse(False)
        link.delay(0)
        link.drop(2, "to_client")
        link.refuse()
        link.reset()  # while refusing: the client cannot come back
        link.partition()
        link.delay(0.25)
        names = [what for _, what in link.history]
        self.assertEqual(names, ["partition", "delay 0.05 s", "refuse", "heal", "refuse off", "delay off",
                                 "drop 2 to_client", "refuse", "reset", "partition", "delay 0.25 s"])
        times = [at for at, _ in link.history]
        self.assertEqual(times, sorted(times))
        self.assertTrue(0 <= times[0] < 5)
        report = link.report()
        for text in (f"Fault link {link.endpoint} -> {link.target}",
                     "state: partitioned, refusing new connections, delay 0.25 s",
                     "protocol: ZMTP 3.1, NULL", "connections: 1 accepted, 0 open",
                     "to_server: 1 messages", "to_client: 1 messages", "2 more to drop",
                     "faults (seconds since the link started):", "drop 2 to_client"):
            self.assertIn(text, report)
        self.assertIn("(partitioned, refusing new connections, delay 0.25 s)", link.describe())

    def test_close_leaves_no_thread_socket_or_file(self):
        fds = set(os.listdir("/proc/self/fd"))
        threads = threading.active_count()
        ctx = zmq.Context()
        rep = make_sock(ctx, zmq.REP, bind=self.endpoint(), timeout=WAIT)
        link = FaultLink(rep.last_endpoint, endpoint=self.endpoint() if self.transport == "ipc" else None)
        self.assertEqual(threading.active_count(), threads + 1)
        req = make_sock(ctx, zmq.REQ, connect=link.endpoint, timeout=WAIT)
        self.round_trip(req, rep)
        link.partition()
        req.send(b"held")
        self.assertFalse(rep.poll(QUIET))
        link.refuse()  # closing while refusing and holding
        link.close()
        link.close()  # idempotent
        self.assertEqual(threading.active_count(), threads)
        if self.transport == "ipc":
            self.assertFalse(os.path.exists(link.endpoint[len("ipc://"):]))
        self.assertRaises(FaultLinkError, link.partition)
        self.assertEqual(link.stats.to_server.held_messages, 1)  # as it was when closed
        self.assertIn("closed", link.describe())
        req.close()
        rep.close()
        ctx.term()
        self.assertEqual(set(os.listdir("/proc/self/fd")), fds)

    def test_a_link_of_its_own_makes_and_removes_its_directory(self):
        rep = self.server()
        with FaultLink(rep.last_endpoint, transport="ipc") as link:
            path = link.endpoint[len("ipc://"):]
            req = self.client(link.endpoint)
            self.round_trip(req, rep)
        self.assertFalse(os.path.exists(os.path.dirname(path)))

    def test_arguments_are_checked(self):
        rep = self.server()
        link = self.link(rep)
        for call, words in ((lambda: link.drop(0), "n to be a number of messages >= 1, got 0"),
                            (lambda: link.drop("1"), "n to be a number of messages (int), got '1'"),
                            (lambda: link.drop(True), "got True"),
                            (lambda: link.drop(1, "up"), "direction to be 'to_server' or 'to_client', got 'up'"),
                            (lambda: link.delay(-1), "seconds to be a finite number of seconds >= 0, got -1"),
                            (lambda: link.delay(None), "got None"),
                            (lambda: link.refuse("yes"), "on to be True or False, got 'yes'")):
            with self.assertRaises(TypeError) as caught:
                call()
            self.assertIn(words, str(caught.exception))
        self.assertEqual(link.history, [])
        with self.assertRaisesRegex(ValueError, "tcp://host:port or ipc://path"):
            FaultLink("udp://127.0.0.1:5")
        with self.assertRaisesRegex(ValueError, "loopback"):
            FaultLink(link.target, endpoint="tcp://8.8.8.8:5555")
        with self.assertRaisesRegex(KeyError, "to_server"):
            link.stats["up"]


class TestLinkOverIpc(LinkTestBase, unittest.TestCase):
    transport = "ipc"


class TestLinkOverTcp(LinkTestBase, unittest.TestCase):
    transport = "tcp"

    def test_reset_is_a_tcp_reset(self):
        rep = self.server()
        link = self.link(rep)
        raw = self.raw_connect(link)
        raw.sendall(greeting()[:10])
        self.assertEqual(raw.recv(10)[:1], b"\xff")  # the server's greeting came through
        link.reset()
        with self.assertRaises(ConnectionResetError):
            while raw.recv(1024):
                pass

    def test_an_old_protocol_refuses_drop(self):
        server = socket.socket()
        self.addCleanup(server.close)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(WAIT)
        link = FaultLink("tcp://127.0.0.1:%d" % server.getsockname()[1])
        self.addCleanup(link.close)
        raw = self.raw_connect(link)
        peer, _ = server.accept()
        self.addCleanup(peer.close)
        peer.settimeout(WAIT)
        old = b"\xff" + b"\0" * 8 + b"\x7f\x01\x05"  # a ZMTP 2.0 greeting
        raw.sendall(old)
        received = b""
        while len(received) < len(old):  # the link looked at it before it forwarded it
            received += peer.recv(64)
        with self.assertRaisesRegex(FaultLinkError, "ZMTP 2.0 or older"):
            link.drop(1, "to_server")


class TestFaultEvents(unittest.TestCase):
    """The fault events on a test case that mixes FaultEvents in."""

    def test_fault_events(self):
        # FaultEvents mixed in, unless ProcessTestCase has it among its bases already
        bases = (ProcessTestCase,) if issubclass(ProcessTestCase, FaultEvents) else (FaultEvents, ProcessTestCase)

        class Case(*bases):
            def setUp(self):
                self.rep = self.socket(zmq.REP, bind=self.endpoint)
                self.link = FaultLink(self.endpoint, endpoint=self.new_endpoint("ipc"))
                self.addCleanup(self.link.close)
                self.req = self.socket(zmq.REQ, connect=self.link.endpoint)

            def test_faults(self):
                yield ("partition", self.link)
                yield ("send", self.req, [], "held")
                yield ("recv_nothing", self.rep, QUIET)
                yield ("heal", self.link)
                self.assertEqual((yield ("recv", self.rep)), ["held"])
                yield ("drop", self.link, 1, "to_client")
                yield ("send", self.rep, [], "lost")
                yield ("recv_nothing", self.req, QUIET)
                yield ("delay", self.link, 0.01)
                yield ("refuse", self.link, False)
                self.assertEqual((yield ("reset", self.link)), 1)
                self.assertEqual([what for _, what in self.link.history],
                                 ["partition", "heal", "drop 1 to_client", "delay 0.01 s", "refuse off", "reset"])

            def test_bad_drop(self):
                yield ("drop", self.link, 0)

            def test_not_a_link(self):
                yield ("partition", "ipc:///x")

        result = run_case(Case, "test_faults")
        self.assertEqual(problems(result), [])
        text = only_problem(self, run_case(Case, "test_bad_drop"), "error")
        self.assertIn("expected n to be a number of messages >= 1, got 0; event 'drop' takes "
                      "('drop', link, n=1, direction='to_server', connection=None, match=None)", text)
        text = only_problem(self, run_case(Case, "test_not_a_link"), "error")
        self.assertIn("expected a FaultLink (made by self.fault_link() or FaultLink()), got 'ipc:///x'", text)


    def test_each_fault_is_one_marked_method_and_its_event_is_made_from_it(self):
        faults = faults_of(FaultLink)
        self.assertGreaterEqual(len(faults), 11)
        for name, method in faults:
            with self.subTest(fault=name):
                handler = getattr(FaultEvents, name)
                self.assertIs(getattr(ProcessTestCase, name), handler)
                self.assertTrue(getattr(handler, EVENT_ATTR, False), "not marked @event as hand-written events are")
                fault_params = list(inspect.signature(method).parameters.values())
                event_params = list(inspect.signature(handler).parameters.values())
                self.assertEqual([p.name for p in event_params], ["self", "link"] + [p.name for p in fault_params[1:]])
                self.assertEqual([p.default for p in event_params[2:]], [p.default for p in fault_params[1:]])
                first = inspect.cleandoc(method.__doc__).split("\n\n")[0]
                self.assertEqual(inspect.getdoc(handler).split("\n\n")[0],
                                 f"Event: on *link*, {first[0].lower()}{first[1:]}")
        self.assertFalse([name for name in vars(FaultEvents) if not name.startswith("_")
                          and name not in dict(faults)], "an event of FaultEvents written by hand")

    def test_an_event_applies_its_fault_to_the_link_given_first(self):
        class Case(ProcessTestCase):
            pass

        with FaultLink("tcp://127.0.0.1:9") as link:
            case = Case()
            self.assertEqual(case.reset(link), 0)
            case.partition(link, "to_client")
            self.assertEqual(dispatch(case, ("duplicate", link, 0.5, "to_server", 7)), 7)
            self.assertEqual([what for _, what in link.history],
                             ["reset", "partition to_client only", "duplicate 0.5 to_server (seed 7)"])
            with self.assertRaisesRegex(EventError, r"bad arguments for event 'heal': too many positional arguments; "
                                        r"expected \('heal', link\)"):
                dispatch(case, ("heal", link, 1))

class TestFaultLinkOfATest(unittest.TestCase):
    """self.fault_link(): owned by the test, closed after it, shown in its failure report."""

    def test_a_failure_while_partitioned_reports_the_link(self):
        seen = {}

        class FailsPartitioned(ProcessTestCase):
            timeout = 0.2

            def test_it(self):
                rep = self.socket(zmq.REP, bind=self.endpoint, name="server")
                link = seen["link"] = self.fault_link(self.endpoint)
                req = self.socket(zmq.REQ, connect=link.endpoint, name="client")
                yield ("send", req, [], ["ping", 1])
                yield ("recv", rep)
                yield ("partition", link)
                yield ("send", rep, [], ["pong", 1])
                yield ("recv", req)  # held by the partition: times out

        text = only_problem(self, run_case(FailsPartitioned))
        self.assertIn("SocketTimeout: recv_multipart on socket 'client'", text)
        self.assertRegex(text, r"Fault link ipc://\S+ -> ipc://\S+\n  state: partitioned")
        self.assertRegex(text, r"to_server: 1 messages \(\d+ B\) forwarded")
        self.assertRegex(text, r"to_client: 0 messages \(\d+ B\) forwarded, 1 held")
        self.assertRegex(text, r"faults \(seconds since the link started\):\n\s+\d+\.\d+  partition")
        self.assertTrue(seen["link"].state.endswith("closed"), seen["link"].state)  # closed after the test
        # And its thread is gone. (Counted by name: the inner test may be the first of
        # this process to start the library's own threads, the hard timeout's watchdog.)
        self.assertEqual([t.name for t in threading.enumerate() if t.name.startswith("zmqprocesstest fault link")],
                         [])

    def test_the_link_of_a_passing_test_leaves_nothing_behind(self):
        class Passes(ProcessTestCase):
            check_leaks = True

            def test_it(self):
                rep = self.socket(zmq.REP, bind=self.endpoint)
                link = self.fault_link(self.endpoint)
                req = self.socket(zmq.REQ, connect=link.endpoint)
                yield ("send", req, [], ["ping", 1])
                yield ("recv", rep)
                yield ("send", rep, [], ["pong", 1])
                self.assertEqual((yield ("recv", req)), [["pong", 1]])

        self.assertEqual(problems(run_case(Passes)), [])


if __name__ == "__main__":
    unittest.main()
