"""Seeded faults on fault links: loss, duplicates, one-way partitions, jitter, rate limits, cuts, corruption."""
import json
import random
import time
import unittest

import zmq

from zmqprocesstest import ProcessTestCase
from zmqprocesstest.faults._seeded import Chance, Pace, jittered
from zmqprocesstest.faults._zmtp import Tally, Tracker

from .support import only_problem, run_case
from .test_faults import frame, greeting, message
from pingpong.pongproc import PongProc  # support puts docs/examples on sys.path

QUIET = 100  # ms a socket must stay silent to count as "nothing arrived"


def _ping(n, payload=None):
    return [b"", json.dumps(["ping", n if payload is None else [n, payload]]).encode()]


class _LinkCase(ProcessTestCase):
    """A DEALER test socket talking to a PongProc (ROUTER) through a fault link."""

    timeout = 5.0

    def setUp(self):
        self.proc = self.start_process(PongProc, self.endpoint, zmq.ROUTER)
        self.link = self.fault_link(self.endpoint)
        self.dealer = self.socket(zmq.DEALER, connect=self.link.endpoint, name="dealer")
        self.dealer.send_multipart(_ping(-1))  # connected, and the server is up
        self.assertEqual(self.dealer.recv_multipart()[-1], b'["pong", -1]')

    def pongs(self, until):
        """The numbers of the pongs received up to the pong of *until*."""
        got = []
        while True:
            n = json.loads(self.dealer.recv_multipart()[-1])[1]
            if n == until:
                return got
            got.append(n)


class _Cases:
    class Loss(_LinkCase):
        def lost_of_1000(self, seed, direction):
            stats = self.link.stats[direction]
            lost_before, got = stats.lost_messages, []
            self.link.loss(0.3, direction, seed=seed)
            for n in range(1000):
                self.dealer.send_multipart(_ping(n))
            deadline = time.monotonic() + 10
            # every ping is either answered or counted lost by the link: wait for that, bounded
            while len(got) + self.link.stats[direction].lost_messages - lost_before < 1000:
                self.assertLess(time.monotonic(), deadline, "the pings did not all come back or get lost")
                if self.dealer.poll(50):
                    got.append(json.loads(self.dealer.recv_multipart()[-1])[1])
            self.link.loss(0, direction)
            self.assertEqual(got, sorted(got))
            return sorted(set(range(1000)) - set(got))

        def test_loss_to_server(self):
            runs = [self.lost_of_1000(1234, "to_server") for _ in range(2)]
            type(self).found = runs, self.link.stats["to_server"].lost_messages, self.link.history

    class Duplicate(_LinkCase):
        def test_reply_twice(self):
            yield ("duplicate", self.link, 1.0, "to_client", 5)
            yield ("send", self.dealer, [b""], ["ping", 7])
            self.assertEqual((yield ("recv", self.dealer)), [b"", ["pong", 7]])
            self.assertEqual((yield ("recv", self.dealer)), [b"", ["pong", 7]])
            yield ("recv_nothing", self.dealer, QUIET / 1000)
            stats = self.link.stats
            self.assertEqual((stats["to_client"].duplicated_messages, stats["to_server"].duplicated_messages), (1, 0))

    class OneWay(_LinkCase):
        def test_partition_to_client(self):
            yield ("partition", self.link, "to_client")
            yield ("send", self.dealer, [b""], ["ping", 1])
            yield ("recv_nothing", self.dealer, 0.3)
            stats = self.link.stats
            # the request went through (the server answered), the reply is held
            self.assertEqual((stats["to_server"].messages, stats["to_server"].held_messages), (2, 0))
            self.assertEqual((stats["to_client"].messages, stats["to_client"].held_messages), (1, 1))
            self.assertEqual(self.link.state, "partitioned to_client only")
            yield ("heal", self.link)
            self.assertEqual((yield ("recv", self.dealer)), [b"", ["pong", 1]])

        def test_partition_to_server(self):
            yield ("partition", self.link, "to_server")
            yield ("send", self.dealer, [b""], ["ping", 1])
            yield ("recv_nothing", self.dealer, 0.3)
            stats = self.link.stats
            self.assertEqual((stats["to_server"].messages, stats["to_server"].held_messages), (1, 1))
            self.assertEqual(stats["to_client"].messages, 1)
            yield ("heal", self.link)
            self.assertEqual((yield ("recv", self.dealer)), [b"", ["pong", 1]])

    class Pacing(_LinkCase):
        def test_rate_limit(self):
            yield ("rate", self.link, 20000, "to_client")
            payload = "x" * 4000
            started = time.monotonic()
            for n in range(2):
                self.dealer.send_multipart(_ping(n, payload))
            for n in range(2):
                self.assertEqual(json.loads(self.dealer.recv_multipart()[-1])[1][0], n)
            elapsed = time.monotonic() - started
            self.assertGreaterEqual(elapsed, 0.35, "8 KB at 20 KB/s take 0.4 s")
            yield ("rate", self.link, None, "to_client")
            self.assertIn("rate 20000 B/s to_client", [what for _, what in self.link.history])

        def test_jitter(self):
            seed = yield ("jitter", self.link, 0.05, "to_client")
            times = []
            for n in range(10):
                started = time.monotonic()
                yield ("send", self.dealer, [b""], ["ping", n])
                yield ("recv", self.dealer)
                times.append(time.monotonic() - started)
            self.assertLessEqual(max(times), 1.0)
            self.assertGreater(max(times) - min(times), 0.005, "the delays vary")
            self.assertIn(f"jitter 0.05 s to_client (seed {seed})", [what for _, what in self.link.history])
            self.assertIn("to_client: jitter 0.05 s", self.link.state)

    class Cut(_LinkCase):
        def test_close_after(self):
            accepted = self.link.stats.accepted  # 2 if the dealer came before the server listened
            yield ("close_after", self.link, 150, "to_server")
            yield ("send", self.dealer, [b""], ["ping", "a" * 100])  # 150 bytes not reached yet
            self.assertEqual((yield ("recv", self.dealer))[1][0], "pong")
            yield ("send", self.dealer, [b""], ["ping", "b" * 100])  # reaches it: goes whole, then the cut
            yield ("recv_nothing", self.dealer, 0.3)  # the connection closed before the pong came back
            stats = self.link.stats
            self.assertEqual((stats["to_server"].cuts, stats["to_server"].messages), (1, 3))
            yield ("send", self.dealer, [b""], ["ping", 3])  # the dealer reconnects
            self.assertEqual((yield ("recv", self.dealer)), [b"", ["pong", 3]])
            self.assertEqual(self.link.stats.accepted, accepted + 1)  # one reconnection, after the cut


    class ForkAfterLink(_LinkCase):
        def test_a_restart_while_partitioned_then_heal(self):
            # The restarted process is forked while the link holds the client's connection:
            # it must not keep a copy of it open, or the client never sees the close on heal.
            yield ("partition", self.link)
            self.proc = yield ("restart", self.proc)
            yield ("wait_endpoint", self.endpoint)  # a ping sent while the dealer reconnects is lost
            yield ("heal", self.link)
            yield ("send", self.dealer, [b""], ["ping", 2])
            self.assertEqual((yield ("recv", self.dealer)), [b"", ["pong", 2]])

    class Corrupt(ProcessTestCase):
        """REQ -> link -> REP: what the REP receives against what the REQ sent."""

        timeout = 5.0
        seed = 7
        found = {}  # seed: [(frame, offset) of the byte changed, per message] of its last run

        def setUp(self):
            self.rep = self.socket(zmq.REP, bind=self.endpoint, name="rep")
            self.link = self.fault_link(self.endpoint)
            self.req = self.socket(zmq.REQ, connect=self.link.endpoint, name="req")

        def exchange(self, frames):
            """Send *frames* through the link; the frames the REP received (its reply comes back whole)."""
            self.req.send_multipart(frames)
            received = self.rep.recv_multipart()
            self.rep.send_multipart([b"ok"])
            self.assertEqual(self.req.recv_multipart(), [b"ok"])  # to_client is left alone
            return received

        def test_corrupt(self):
            sent = [bytes(range(256)) * 4, b"second frame", b"", b"x"]
            self.assertEqual(self.exchange(sent), sent)
            seed = yield ("corrupt", self.link, 1.0, "to_server", self.seed)
            self.assertEqual(seed, self.seed)
            self.assertIn("to_server: corrupt 1", self.link.state)
            changed = []
            for _ in range(5):
                received = self.exchange(sent)
                self.assertEqual([len(f) for f in received], [len(f) for f in sent])  # the framing is intact
                diff = [(i, j) for i, (got, want) in enumerate(zip(received, sent))
                        for j in range(len(want)) if got[j] != want[j]]
                self.assertEqual(len(diff), 1, f"one byte changed, got {diff}")
                i, j = diff[0]
                self.assertEqual(received[i][j], sent[i][j] ^ 0xFF)
                changed.append(diff[0])
            type(self).found[self.seed] = changed
            self.assertEqual((self.link.stats["to_server"].corrupted_messages,
                              self.link.stats["to_client"].corrupted_messages), (5, 0))
            self.assertIn("5 corrupted", self.link.report())
            yield ("corrupt", self.link, 0, "to_server")  # p=0: off
            for _ in range(20):
                self.assertEqual(self.exchange(sent), sent)
            self.assertEqual(self.link.stats["to_server"].corrupted_messages, 5)
            self.assertEqual([what.split(" (seed")[0] for _, what in self.link.history],
                             ["corrupt 1 to_server", "corrupt 0 to_server"])
            self.assertEqual(self.link.history[0][1], f"corrupt 1 to_server (seed {self.seed})")

        def test_p_0_corrupts_nothing(self):
            seed = self.link.corrupt(0.0)
            self.assertIsInstance(seed, int)
            for _ in range(50):
                self.assertEqual(self.exchange([b"body", b"more"]), [b"body", b"more"])
            self.assertEqual(self.link.stats["to_server"].corrupted_messages, 0)

        def test_bad_arguments(self):
            yield ("corrupt", self.link, 1.5)


class TestSeededFaults(unittest.TestCase):
    def test_loss_drops_about_30_percent_and_the_same_seed_the_same_messages(self):
        result = run_case(_Cases.Loss)
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)
        (first, second), lost_counted, history = _Cases.Loss.found
        self.assertTrue(255 <= len(first) <= 345, len(first))
        self.assertEqual(first, second)
        self.assertEqual(lost_counted, 2 * len(first))
        self.assertIn("loss 0.3 to_server (seed 1234)", [what for _, what in history])

    def test_duplicate_delivers_a_reply_twice(self):
        result = run_case(_Cases.Duplicate)
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)

    def test_one_way_partitions(self):
        result = run_case(_Cases.OneWay)
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)

    def test_rate_and_jitter(self):
        result = run_case(_Cases.Pacing)
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)

    def test_a_process_forked_after_the_link_holds_none_of_its_connections(self):
        result = run_case(_Cases.ForkAfterLink)
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)

    def test_close_after(self):
        result = run_case(_Cases.Cut)
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)

    def test_corrupt_flips_one_body_byte_and_the_same_seed_the_same_byte(self):
        case, changed = _Cases.Corrupt, []
        for seed in (7, 7, 8):
            case.seed = seed
            result = run_case(case, "test_corrupt")
            self.assertTrue(result.wasSuccessful(), result.failures + result.errors)
            changed.append(case.found[seed])
        self.assertEqual(changed[0], changed[1], "the same seed, the same bytes")
        self.assertNotEqual(changed[0], changed[2], "another seed, other bytes")
        self.assertEqual({frame for run in changed for frame, _ in run} - {0, 1, 3}, set(), "never the empty frame")
        result = run_case(case, "test_p_0_corrupts_nothing")
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)
        text = only_problem(self, run_case(case, "test_bad_arguments"), "error")
        self.assertIn("expected p to be a probability from 0 to 1, got 1.5; event 'corrupt' takes "
                      "('corrupt', link, p, direction='both', seed=None)", text)


class TestSeededTracker(unittest.TestCase):
    """The tracker alone: duplicates and cuts keep whole messages in any chunking."""

    def run_chunks(self, data, sizes, tally):
        tracker = Tracker(tally, lambda t: None)
        out, i, count = [], 0, 0
        for size in sizes:
            chunk = bytearray(data[i:i + size])
            i += size
            msgs, segs = tracker.feed(memoryview(chunk), len(chunk))
            count += msgs
            out.append(bytes(chunk) if segs is None else b"".join(bytes(s) for s in segs))
            if tracker.cut:
                break
        return b"".join(out), count

    def test_duplicates_follow_their_message_in_any_chunking(self):
        head = greeting() + frame(b"\x05READY", command=True)
        msgs = [message(b"one"), message(b"a" * 300, b"b" * 70000), message(b"x")]
        data = head + b"".join(msgs)
        rng = random.Random(3)
        for _ in range(30):
            sizes, left = [], len(data)
            while left:
                sizes.append(min(left, rng.choice([1, 2, 7, 100, 5000, 70000])))
                left -= sizes[-1]
            tally = Tally()
            tally.chance = Chance()
            tally.chance.set_duplicate(1.0, 0)
            out, count = self.run_chunks(data, sizes, tally)
            self.assertEqual(out, head + b"".join(m + m for m in msgs))
            self.assertEqual((count, tally.duplicated_messages), (6, 3))

    def test_a_cut_ends_after_the_whole_message(self):
        head = greeting()
        data = head + message(b"a" * 50) + message(b"b" * 50) + message(b"c")
        for size in (1, 3, 64, 1000):
            tally = Tally()
            tally.cut_after = len(head) + 60
            out, _ = self.run_chunks(data, [size] * (len(data) // size + 1), tally)
            self.assertEqual(out, head + message(b"a" * 50) + message(b"b" * 50))
            self.assertEqual(tally.cuts, 1)

    def test_the_same_seed_gives_the_same_faults(self):
        def decisions(seed):
            chance = Chance()
            chance.set_loss(0.3, 0.8, seed)
            return [chance.decide() for _ in range(500)]
        self.assertEqual(decisions(9), decisions(9))
        self.assertNotEqual(decisions(9), decisions(10))
        pace_a, pace_b = Pace(), Pace()
        for pace in (pace_a, pace_b):
            pace.jitter, pace.rng = 0.01, random.Random(4)
        self.assertEqual([pace_a.due(i, 10) for i in range(50)], [pace_b.due(i, 10) for i in range(50)])
        self.assertEqual(jittered(1.0, 0.5, 0.0, random.Random(1), previous=2.0), 2.0)

    def test_bursts_are_correlated(self):
        chance = Chance()
        chance.set_loss(0.1, 0.9, 1)
        lost = [chance.decide() == 1 for _ in range(10000)]
        runs = sum(1 for a, b in zip(lost, lost[1:]) if a and b)
        self.assertGreater(runs / max(1, sum(lost)), 0.8)
