"""Taps (a fault link that records every message through it) and the aimed drops and names of fault links."""
import random
import re
import shutil
import tempfile
import threading
import time
import unittest

import zmq
from zmq.auth.thread import ThreadAuthenticator

from zmqprocesstest import ProcessTestCase, Tap, make_sock
from zmqprocesstest.faults import FaultLink, FaultLinkError, make_link
from zmqprocesstest.faults._zmtp import Tally, Tracker
from zmqprocesstest.report import timeline
from zmqprocesstest.report.html import page_html
from zmqprocesstest.report.timeline import Rendered

from .support import only_problem, problems, run_case
from .test_faults import greeting, message

WAIT = 5.0  # bound of every wait for something that should happen
QUIET = 0.2  # how long "nothing arrives" is watched


def echo_server(endpoint, secret_key=None):
    """A REP server, the process under test: replies ``[b'echo', *request]``."""
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    if secret_key is not None:
        rep.curve_server = True
        rep.curve_secretkey = secret_key
    rep.bind(endpoint)
    try:
        while True:
            rep.send_multipart([b"echo"] + rep.recv_multipart())
    except KeyboardInterrupt:  # the stop protocol's SIGINT: a clean exit
        rep.close(0)
        ctx.term()


def plain_req(test, endpoint, **options):
    """The user's own client: a plain zmq REQ socket (not a test socket), bounded waits."""
    ctx = zmq.Context()
    test.addCleanup(ctx.destroy, linger=0)
    req = ctx.socket(zmq.REQ)
    req.rcvtimeo = req.sndtimeo = int(WAIT * 1000)
    for name, value in options.items():
        setattr(req, name, value)
    test.addCleanup(req.close, 0)
    req.connect(endpoint)
    return req


def tap_entries(entries, name="client"):
    return [(kind, data) for _, kind, source, data in entries if source == name]


class TestTapOfATest(unittest.TestCase):
    """self.tap(): the user's own client through a tap to a process under test, recorded in the reports."""

    def test_a_plain_req_client_is_recorded_both_ways_as_whole_messages(self):
        seen = {}

        class Through(ProcessTestCase):
            def test_it(self):
                self.start_process(echo_server, self.endpoint)
                tap = self.tap(self.endpoint, name="client")
                req = plain_req(self, tap.endpoint, routing_id=b"mine")
                for i in range(2):
                    req.send_multipart([b"hello", b"%d" % i, b"x" * 300])
                    self.assertEqual(req.recv_multipart(), [b"echo", b"hello", b"%d" % i, b"x" * 300])
                running = timeline.current()
                seen.update(entries=list(running.entries), lanes=dict(running.lanes), rows=running.lines(),
                            chart=running.chart(), connections=tap.connections,
                            page=page_html(self.id(), "passed", 0.0, running, ""))

        self.assertEqual(problems(run_case(Through)), [])
        mine = tap_entries(seen["entries"])
        self.assertEqual([kind for kind, _ in mine], ["note", "sent", "received", "sent", "received"])
        # connection 1 unless the client came before the server listened (the tap then closed it at once)
        self.assertRegex(mine[0][1], r"^connection \d+: a REQ client, identity b'mine'$")
        self.assertEqual(list(mine[1][1][:3]), [b"", b"hello", b"0"])  # the whole message, its envelope too
        self.assertEqual(mine[1][1][3].length, 300)
        self.assertEqual(list(mine[4][1][:4]), [b"", b"echo", b"hello", b"1"])
        self.assertEqual(seen["lanes"]["client"][0], "socket")
        self.assertIn("tap ", seen["lanes"]["client"][1])
        self.assertEqual(list(seen["connections"].values()), [{"Socket-Type": b"REQ", "Identity": b"mine"}])
        texts = [text for _, kind, source, text in seen["rows"] if source == "client" and kind == "received"]
        self.assertTrue(texts[0].startswith("[b'', b'echo', b'hello', b'0', b'xxx"), texts)
        self.assertIn("|<-", seen["chart"])
        self.assertIn("b&#x27;echo&#x27;" if "&#x27;" in seen["page"] else "b'echo'", seen["page"])
        self.assertIn(">client<", seen["page"])  # its own lane in the picture

    def test_a_curve_connection_is_shown_as_sizes_and_said_once(self):
        seen = {}
        server_public, server_secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()

        class Sealed(ProcessTestCase):
            def test_it(self):
                self.start_process(echo_server, self.endpoint, server_secret)
                tap = self.tap(self.endpoint)
                req = plain_req(self, tap.endpoint, curve_serverkey=server_public, curve_publickey=client_public,
                                curve_secretkey=client_secret)
                for _ in range(2):
                    req.send(b"secret")
                    self.assertEqual(req.recv_multipart(), [b"echo", b"secret"])
                seen.update(entries=list(timeline.current().entries), report=tap.report())

        self.assertEqual(problems(run_case(Sealed)), [])
        mine = tap_entries(seen["entries"])
        notes = [data for kind, data in mine if kind == "note"]
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("cannot read the messages (the CURVE mechanism encrypts each message", notes[0])
        frames = [(kind, data) for kind, data in mine if kind != "note"]
        # each frame is encrypted on its own (REQ's delimiter too), which frames make a message is hidden
        self.assertEqual([kind for kind, _ in frames], ["sent", "sent", "received", "received", "received"] * 2)
        for _, data in frames:
            self.assertIsInstance(data, Rendered)
            self.assertRegex(data, r"^<encrypted frame, \d+ bytes>$")
            self.assertNotIn("secret", data)
        self.assertIn("ZMTP 3.1, CURVE", seen["report"])

    def test_a_fault_through_a_tap_and_the_held_message_recorded_when_delivered(self):
        seen = {}

        class Faulty(ProcessTestCase):
            def test_it(self):
                self.start_process(echo_server, self.endpoint)
                tap = self.tap(self.endpoint, name="client")
                req = plain_req(self, tap.endpoint)
                req.send(b"before")
                self.assertEqual(req.recv_multipart(), [b"echo", b"before"])
                yield ("partition", tap)
                req.send(b"held")
                self.assertFalse(req.poll(int(QUIET * 1000)))  # the partition holds it: no reply
                yield ("heal", tap)
                self.assertEqual(req.recv_multipart(), [b"echo", b"held"])
                seen.update(entries=list(timeline.current().entries), stats=tap.stats, report=tap.report())

        self.assertEqual(problems(run_case(Faulty)), [])
        mine = [(kind, data if kind == "fault" else list(data)) for kind, data in tap_entries(seen["entries"])
                if kind != "note"]
        self.assertEqual(mine, [("sent", [b"", b"before"]), ("received", [b"", b"echo", b"before"]),
                                ("fault", "partition"), ("fault", "heal"), ("sent", [b"", b"held"]),
                                ("received", [b"", b"echo", b"held"])])
        times = [when for when, *_ in seen["entries"]]
        self.assertEqual(times, sorted(times))
        self.assertEqual((seen["stats"]["to_server"].messages, seen["stats"]["to_client"].messages), (2, 2))
        self.assertIn("Tap ", seen["report"])
        self.assertIn("name: client", seen["report"])

    def test_a_failing_test_shows_the_tap_in_its_report(self):
        class Fails(ProcessTestCase):
            def test_it(self):
                self.start_process(echo_server, self.endpoint)
                tap = self.tap(self.endpoint, name="sdk")
                req = plain_req(self, tap.endpoint)
                req.send_multipart([b"get", b"key"])
                req.recv_multipart()
                self.fail("on purpose")

        text = only_problem(self, run_case(Fails))
        self.assertRegex(text, r"sdk +-> \[b'', b'get', b'key'\]")
        self.assertRegex(text, r"sdk +<- \[b'', b'echo', b'get', b'key'\]")
        self.assertRegex(text, r"Tap ipc://\S+ -> ipc://\S+\n  state: forwarding\n  name: sdk")


class _Base:
    """Taps and links between sockets of this process (no process under test)."""

    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, linger=0)
        self.tmpdir = tempfile.mkdtemp(prefix="zpt-test-tap-")
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self.count = 0
        self.timeline = timeline.Timeline(20)
        previous = timeline.activate(self.timeline)
        self.addCleanup(timeline.activate, previous)

    def endpoint(self):
        self.count += 1
        return f"ipc://{self.tmpdir}/{self.count}"

    def sock(self, sock_type, **options):
        sock = make_sock(self.ctx, sock_type, timeout=WAIT, **options)
        self.addCleanup(sock.close)
        return sock

    def link(self, target, cls=FaultLink, **kwargs):
        link = make_link(target, self.endpoint, cls=cls, **kwargs)
        self.addCleanup(link.close)
        return link


class TestTap(_Base, unittest.TestCase):
    def test_a_codec_renders_the_messages(self):
        class Upper:
            def render(self, frames):
                return "MSG " + b"/".join(f for f in frames if f).decode().upper()

        rep = self.sock(zmq.REP, bind=self.endpoint())
        tap = self.link(rep.last_endpoint, Tap, name="client", codec=Upper())
        req = self.sock(zmq.REQ, connect=tap.endpoint)
        req.recorded = False  # only the tap's records
        rep.recorded = False
        req.send_multipart([b"get", b"key"])
        rep.send_multipart([b"value"] + rep.recv_multipart())
        self.assertEqual(req.recv_multipart(), [b"value", b"get", b"key"])
        rows = [(kind, text) for _, kind, source, text in self.timeline.lines() if source == "client"]
        self.assertEqual(rows[1:], [("sent", "MSG GET/KEY"), ("received", "MSG VALUE/GET/KEY")])

    def test_tcp_and_plain_are_read(self):
        auth = ThreadAuthenticator(self.ctx)
        auth.start()
        self.addCleanup(auth.stop)
        auth.configure_plain(domain="*", passwords={"user": "secret"})
        router = self.sock(zmq.ROUTER, bind="tcp://127.0.0.1:0", plain_server=1)
        tap = self.link(router.last_endpoint, Tap, transport="tcp", name="worker")
        self.assertTrue(tap.endpoint.startswith("tcp://127.0.0.1:"))
        dealer = self.sock(zmq.DEALER, connect=tap.endpoint, plain_username=b"user", plain_password=b"secret",
                           routing_id=b"w9")
        dealer.send_multipart([b"", b"READY", b"echo"])
        self.assertEqual(router.recv_multipart(), [b"w9", b"", b"READY", b"echo"])
        mine = [(kind, data) for _, kind, source, data in self.timeline.entries if source == "worker"]
        self.assertEqual(mine, [("note", "connection 1: a DEALER client, identity b'w9'"),
                                ("sent", (b"", b"READY", b"echo"))])
        self.assertNotIn(b"secret", repr(mine).encode())  # the handshake's password is never recorded

    def test_what_a_codec_or_a_recorder_raises_is_told_and_raised_by_close(self):
        class Broken:
            def render(self, frames):
                raise ValueError("cannot render")

        rep = self.sock(zmq.REP, bind=self.endpoint())
        tap = Tap(rep.last_endpoint, endpoint=self.endpoint(), codec=Broken())
        self.addCleanup(tap.close)
        tap.recorders.append(lambda m: 1 / 0)
        req = self.sock(zmq.REQ, connect=tap.endpoint)
        req.send(b"ping")
        rep.send(rep.recv())
        self.assertEqual(req.recv(), b"ping")  # the link goes on
        self.assertIn("its codec's render raised ValueError: cannot render", tap.report())
        with self.assertRaises(FaultLinkError) as caught:
            tap.close()
        self.assertIn("ZeroDivisionError", str(caught.exception))
        messages = [list(data) for _, kind, source, data in self.timeline.entries if kind == "sent"
                    and source == tap.name]
        self.assertEqual(messages, [[b"", b"ping"]])  # shown as by default

    def test_recorders_get_every_message_with_its_connection_and_identity(self):
        router = self.sock(zmq.ROUTER, bind=self.endpoint())
        tap = self.link(router.last_endpoint, Tap)
        got = []
        tap.recorders.append(got.append)
        dealer = self.sock(zmq.DEALER, connect=tap.endpoint, routing_id=b"w1")
        dealer.send_multipart([b"", b"ready"])
        self.assertEqual(router.recv_multipart(), [b"w1", b"", b"ready"])
        router.send_multipart([b"w1", b"", b"job", b"x" * 70000])
        self.assertEqual(dealer.recv_multipart()[1], b"job")
        self.assertEqual([(m.direction, m.connection, m.identity) for m in got],
                         [("to_server", 1, b"w1"), ("to_client", 1, b"w1")])
        self.assertEqual(got[0].frames, [b"", b"ready"])
        self.assertEqual(got[1].frames[:2], [b"", b"job"])
        self.assertEqual(got[1].frames[2].length, 70000)  # beyond the bound: its head and its length
        self.assertLessEqual(len(got[1].frames[2].head), 64)

    def test_records_from_the_links_thread_and_the_tests_stay_in_time_order(self):
        rep = self.sock(zmq.REP, bind=self.endpoint())
        tap = self.link(rep.last_endpoint, Tap)
        req = self.sock(zmq.REQ, connect=tap.endpoint)
        stop = threading.Event()

        def other():
            while not stop.is_set():
                timeline.record("note", "other", "x")
                time.sleep(0)  # lets the GIL go: the round trips interleave with these records

        thread = threading.Thread(target=other)
        thread.start()
        try:
            for i in range(300):
                req.send(b"%d" % i)
                rep.send(rep.recv())
                req.recv()
        finally:
            stop.set()
            thread.join(WAIT)
        entries = list(self.timeline.entries)
        self.assertEqual(len(entries), timeline.TIMELINE_LENGTH)  # bounded
        times = [when for when, *_ in entries]
        self.assertEqual(times, sorted(times))


class TestAimedDrops(_Base, unittest.TestCase):
    def workers(self, router, link, count):
        """*count* DEALER workers through *link*, connected one by one (connection i is worker i)."""
        workers = []
        for i in range(1, count + 1):
            worker = self.sock(zmq.DEALER, connect=link.endpoint, routing_id=b"w%d" % i)
            worker.send(b"hello")
            self.assertEqual(router.recv_multipart(), [b"w%d" % i, b"hello"])
            workers.append(worker)
        return workers

    def test_a_drop_aimed_at_a_connection_hits_only_it(self):
        router = self.sock(zmq.ROUTER, bind=self.endpoint())
        link = self.link(router.last_endpoint, Tap)
        w1, w2 = self.workers(router, link, 2)
        self.assertEqual(link.connections[2]["Identity"], b"w2")
        link.drop(1, "to_server", connection=2)
        w1.send(b"one from w1")  # sent first: an unaimed drop would take it
        self.assertEqual(router.recv_multipart(), [b"w1", b"one from w1"])
        w2.send(b"lost")
        self.assertFalse(router.poll(QUIET))
        w2.send(b"two from w2")
        self.assertEqual(router.recv_multipart(), [b"w2", b"two from w2"])
        stats = link.stats["to_server"]
        self.assertEqual((stats.dropped_messages, stats.drops_armed), (1, 0))
        self.assertIn("drop 1 to_server on connection 2", [what for _, what in link.history])

    def test_a_drop_aimed_by_a_match_takes_only_matching_messages(self):
        router = self.sock(zmq.ROUTER, bind=self.endpoint())
        link = self.link(router.last_endpoint, name="broker")
        w1, w2 = self.workers(router, link, 2)

        def heartbeat(frames):
            return frames[0] == b"HEARTBEAT"

        link.drop(2, "to_server", match=heartbeat)
        self.assertEqual(link.stats["to_server"].drops_armed, 2)
        w1.send_multipart([b"WORK", b"a" * 1000])
        w2.send(b"HEARTBEAT")
        w1.send(b"HEARTBEAT")
        w1.send(b"HEARTBEAT")  # of the three, one goes through (n=2; which is the connections' race)
        w2.send(b"WORK")
        got = [router.recv_multipart() for _ in range(3)]
        self.assertEqual(sorted(m for m in got if m[1] != b"HEARTBEAT"), [[b"w1", b"WORK", b"a" * 1000],
                                                                         [b"w2", b"WORK"]])
        self.assertEqual(len([m for m in got if m[1] == b"HEARTBEAT"]), 1, got)
        self.assertFalse(router.poll(QUIET))
        self.assertEqual(link.stats["to_server"].dropped_messages, 2)
        self.assertIn("drop 2 to_server matching heartbeat", [what for _, what in link.history])
        self.assertEqual(self.timeline.lanes["broker"][0], "link")  # the name= of a fault link
        self.assertIn("name: broker", link.report())
        self.assertIn(("fault", "broker"), [(kind, source) for _, kind, source, _ in self.timeline.entries])

    def test_a_match_that_raises_lets_the_message_go_and_close_says_so(self):
        rep = self.sock(zmq.REP, bind=self.endpoint())
        link = FaultLink(rep.last_endpoint, endpoint=self.endpoint())
        self.addCleanup(link.close)
        req = self.sock(zmq.REQ, connect=link.endpoint)
        link.drop(1, "to_client", match=lambda frames: frames[5] == b"x")
        req.send(b"ping")
        rep.send(rep.recv())
        self.assertEqual(req.recv(), b"ping")
        self.assertIn("raised IndexError", link.report())
        with self.assertRaises(FaultLinkError) as caught:
            link.close()
        self.assertIn("a drop's match", str(caught.exception))

    def test_arguments_are_checked(self):
        rep = self.sock(zmq.REP, bind=self.endpoint())
        link = self.link(rep.last_endpoint)
        for kwargs, words in (({"connection": 0}, "connection number >= 1, got 0"),
                              ({"connection": "1"}, "connection number (int)"),
                              ({"match": b"x"}, "callable(frames) -> bool")):
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(Exception, re.escape(words)):
                link.drop(1, **kwargs)
        with self.assertRaisesRegex(Exception, "non-empty string"):
            FaultLink(rep.last_endpoint, name="")
        with self.assertRaisesRegex(TypeError, "render"):
            Tap(rep.last_endpoint, codec=object())


class TestAimedTracker(unittest.TestCase):
    """The tracker alone: an aimed drop takes exactly its messages, across any chunking."""

    def run_chunks(self, data, tally, connection, rng):
        tracker = Tracker(tally, lambda t: None)
        tracker.connection = connection
        kept, i = [], 0
        while i < len(data):
            size = rng.choice((1, 2, 5, 9, 64, 300, 5000))
            chunk = bytearray(data[i:i + size])
            i += size
            _, segs = tracker.feed(memoryview(chunk), len(chunk))
            kept.append(bytes(chunk) if segs is None else b"".join(segs))
        return b"".join(kept)

    def test_any_chunking(self):
        msgs = [message(b"a", b"1"), message(b"b" * 300, b"2"), message(b"a", b"3"), message(b"c")]
        data = greeting() + b"".join(msgs)
        rng = random.Random(3)
        for _ in range(30):
            tally = Tally()
            tally.aimed = [[1, 2, None], [1, None, lambda frames: frames[0] == b"a"]]
            self.assertEqual(self.run_chunks(data, tally, 1, rng), greeting() + b"".join(msgs[1:]))
            self.assertEqual(tally.aimed, [[1, 2, None]])  # the match took the first b"a"; connection 2 never spoke
            self.assertEqual(tally.dropped_bytes, len(msgs[0]))
            tally = Tally()
            tally.aimed = [[1, 2, None]]
            self.assertEqual(self.run_chunks(data, tally, 2, rng), greeting() + b"".join(msgs[1:]))


if __name__ == "__main__":
    unittest.main()
