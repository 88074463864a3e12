"""Tests of conversations.py: the recording format, its reader's errors, and the replay event."""
import io
import json
import os
import re
import shutil
import sys
import tempfile
import unittest
from contextlib import redirect_stderr
from unittest import mock

import zmq

from zmqprocesstest import ProcessTestCase, codecs, normalise_regex, normalise_timestamps, run_program
from zmqprocesstest.conversations import (TO_CLIENT, TO_SERVER, ConversationError, ConversationWriter, decode_frame,
                                          encode_frame, read_conversation)
from zmqprocesstest.systemtests import UPDATE_GOLDEN_ENV

from .support import EXAMPLES, only_problem, problems, run_case

from pingpong.pongproc import PongProc  # noqa: E402  (EXAMPLES is on sys.path: support)


def pings(*numbers, wire=True):
    """Lines of a REQ/REP ping-pong recording (as a tap sees it: with the empty delimiter)."""
    lines = [{"conversation": 1, "codec": "json", "client": "REQ", "server": "REP"}]
    head = [""] if wire else []
    for n, reply in numbers:
        lines.append({"t": 0.0, "dir": TO_SERVER, "conn": 1, "frames": head + [{"json": ["ping", n]}]})
        lines.append({"t": 0.001, "dir": TO_CLIENT, "conn": 1, "frames": head + [{"json": reply}]})
    return "".join(json.dumps(line) + "\n" for line in lines)


class Files(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def write(self, text, name="rec.jsonl"):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def read(self, name="rec.jsonl"):
        with open(os.path.join(self.dir, name), encoding="utf-8") as f:
            return f.read()


class Format(Files):
    FRAMES = [b"", b"ping", json.dumps({"a": [1, 2.5, None]}).encode(), b'{"a":1,"b":[true]}',
              json.dumps(["h\u00e9"], ensure_ascii=False).encode(), b'{"a":  1}', b"{not json", b"[1, 2]",
              b"\x00k\x8bEg", bytes(range(256)), "caf\u00e9".encode(), b"\x01topic", b"42"]

    def test_every_frame_reads_back_exactly(self):
        for frame in self.FRAMES:
            form = encode_frame(frame)
            through_the_file = json.loads(json.dumps(form, ensure_ascii=False))
            self.assertEqual(decode_frame(through_the_file), frame, form)

    def test_json_bodies_stay_json_and_text_stays_text(self):
        self.assertEqual(encode_frame(b'["ping", 1]'), {"json": ["ping", 1]})
        self.assertEqual(encode_frame(b'{"a":1}'), {"json": {"a": 1}, "style": "compact"})
        self.assertEqual(encode_frame(b"ping"), "ping")
        self.assertEqual(encode_frame(b"{not json"), "{not json")
        self.assertEqual(encode_frame(b'{"a":  1}'), '{"a":  1}')  # not a style it knows: text, exactly
        self.assertEqual(encode_frame(b"\xff\x00"), {"b64": "/wA="})

    def test_writer_writes_one_readable_line_per_message_and_reader_reads_them(self):
        path = os.path.join(self.dir, "sub", "rec.jsonl")
        with ConversationWriter(path, meta={"client": "DEALER", "server": "ROUTER"}) as writer:
            writer.message(TO_SERVER, 1, [b"", b'["ping", 1]'], peer=b"alice", at=10.0)
            writer.message(TO_CLIENT, 1, [b"", b'["pong", 1]'], at=10.25)
            writer.message(TO_SERVER, 2, [b"\xff"], at=11.0)
        self.assertEqual(writer.count, 3)
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual(lines, [
            '{"conversation": 1, "codec": "json", "client": "DEALER", "server": "ROUTER"}',
            '{"t": 0.0, "dir": "to_server", "conn": 1, "peer": "alice", "frames": ["", {"json": ["ping", 1]}]}',
            '{"t": 0.25, "dir": "to_client", "conn": 1, "frames": ["", {"json": ["pong", 1]}]}',
            '{"t": 1.0, "dir": "to_server", "conn": 2, "frames": [{"b64": "/w=="}]}',
        ])
        conversation = read_conversation(path)
        self.assertEqual(conversation.meta, {"client": "DEALER", "server": "ROUTER"})
        self.assertEqual([(m.direction, m.conn, m.frames, m.peer, m.line) for m in conversation.messages], [
            (TO_SERVER, 1, (b"", b'["ping", 1]'), b"alice", 2),
            (TO_CLIENT, 1, (b"", b'["pong", 1]'), None, 3),
            (TO_SERVER, 2, (b"\xff",), None, 4)])

    def test_a_hand_edited_file_reads(self):
        path = self.write('{"conversation": 1}\n\n{"t": 0, "dir": "to_server", "conn": 1, '
                          '"frames": [{"hex": "00ff"}, {"json": {"b": 1, "a": 2}}]}\n')
        message = read_conversation(path).messages[0]
        self.assertEqual(message.frames, (b"\x00\xff", b'{"b": 1, "a": 2}'))
        self.assertEqual(message.line, 3)

    def test_writer_refuses_what_it_cannot_write(self):
        with ConversationWriter(os.path.join(self.dir, "w.jsonl")) as writer:
            with self.assertRaisesRegex(ValueError, "expected a direction 'to_server' or 'to_client', got 'up'"):
                writer.message("up", 1, [b"x"])
            with self.assertRaisesRegex(ValueError, "expected a connection number >= 1, got 0"):
                writer.message(TO_SERVER, 0, [b"x"])
        with self.assertRaisesRegex(ValueError, "is closed"):
            writer.message(TO_SERVER, 1, [b"x"])


class ReaderErrors(Files):
    HEADER = '{"conversation": 1, "codec": "json"}\n'

    def error(self, text):
        path = self.write(text)
        with self.assertRaises(ConversationError) as caught:
            read_conversation(path)
        return str(caught.exception).replace(path, "FILE")

    def test_each_error_names_the_line_what_was_expected_and_what_came(self):
        cases = [
            ("", "FILE: expected a recording"),
            ('{"t": 0}\n', 'FILE:1: expected the first line of a recording, {"conversation": 1, "codec": ...}, '
                           'got {"t": 0}'),
            (self.HEADER + "\n{oops\n", "FILE:3: expected a JSON object on one line"),
            (self.HEADER + '{"t": 0, "dir": "up", "conn": 1, "frames": ["x"]}\n',
             'FILE:2: expected "dir" to be "to_server" or "to_client", got up'),
            (self.HEADER + '{"t": -1, "dir": "to_server", "conn": 1, "frames": ["x"]}\n',
             'FILE:2: expected "t" to be seconds since the first message (a number >= 0), got -1'),
            (self.HEADER + '{"t": 0, "dir": "to_server", "conn": "a", "frames": ["x"]}\n',
             'FILE:2: expected "conn" to be a connection number >= 1, got a'),
            (self.HEADER + '{"t": 0, "dir": "to_server", "conn": 1, "frames": []}\n',
             'FILE:2: expected "frames" to be a list of at least one frame, got []'),
            (self.HEADER + '{"t": 0, "dir": "to_server", "conn": 1}\n', 'FILE:2: expected a message with "frames"'),
            (self.HEADER + '{"t": 0, "dir": "to_server", "conn": 1, "frames": ["x"], "when": 3}\n',
             "FILE:2: expected only the keys t, dir, conn, peer, frames, got when"),
            (self.HEADER + '{"t": 0, "dir": "to_server", "conn": 1, "frames": [3]}\n',
             'FILE:2: expected frame 0 to be a string (UTF-8 text), {"json": VALUE}, {"b64": "..."} or '
             '{"hex": "..."}, got 3'),
            (self.HEADER + '{"t": 0, "dir": "to_server", "conn": 1, "frames": [{"b64": "!!"}]}\n',
             "FILE:2: expected base64 in frame 0, got '!!'"),
            (self.HEADER + '{"t": 0, "dir": "to_server", "conn": 1, "frames": [{"json": 1, "style": "x"}]}\n',
             "FILE:2: expected the style of frame 0 to be one of default, compact, utf8, compact-utf8, got 'x'"),
        ]
        for text, expected in cases:
            with self.subTest(text=text):
                self.assertTrue(self.error(text).startswith(expected), self.error(text))


# -- replay ---------------------------------------------------------------------------------------
class OddPong(PongProc):
    """PongProc changed to answer ping 2 differently."""

    def reply(self, sock, header, body):
        if body == ["pong", 2]:
            body = ["pong", "two"]
        super().reply(sock, header, body)


def stamping_server(endpoint):
    """A REP server that answers with the time and a fresh id: fields that change from run to run."""
    import datetime
    import uuid
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.linger = 0
    sock.bind(endpoint)
    while True:
        n = json.loads(sock.recv())
        if n is None:
            break
        sock.send_json({"n": n, "id": uuid.uuid4().hex, "at": f"at {datetime.datetime.now().isoformat()}"})
    sock.close()
    ctx.term()


def two_dealers(endpoint):
    """A client under test of two DEALER connections, which must get the right answer each."""
    ctx = zmq.Context()
    socks = []
    for _ in range(2):
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.rcvtimeo = 5000
        sock.connect(endpoint)
        socks.append(sock)
    first, second = socks
    first.send_multipart([b"", b'["hello", "a"]'])
    assert first.recv_multipart() == [b"", b'["welcome", "a"]']
    second.send_multipart([b"", b'["hello", "b"]'])
    assert second.recv_multipart() == [b"", b'["welcome", "b"]']
    first.send_multipart([b"", b'["bye", "a"]'])
    assert first.recv_multipart() == [b"", b'["later", "a"]']
    for sock in socks:
        sock.close()
    ctx.term()


def publisher(endpoint):
    """An XPUB publisher that starts its three ticks when its subscriber's subscription arrives."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.linger = 0
    sock.bind(endpoint)
    try:
        topic = sock.recv()[1:]
        for n in range(3):
            sock.send_multipart([topic, json.dumps({"tick": n}).encode()])
        sock.recv()  # until stopped
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        ctx.term()


TWO_PEERS = [
    (TO_SERVER, 1, ["", {"json": ["hello", "a"]}]), (TO_CLIENT, 1, ["", {"json": ["welcome", "a"]}]),
    (TO_SERVER, 2, ["", {"json": ["hello", "b"]}]), (TO_CLIENT, 2, ["", {"json": ["welcome", "b"]}]),
    (TO_SERVER, 1, ["", {"json": ["bye", "a"]}]), (TO_CLIENT, 1, ["", {"json": ["later", "a"]}]),
]


def recording(entries, **meta):
    lines = [{"conversation": 1, "codec": "json", **meta}]
    lines += [{"t": 0.0, "dir": d, "conn": c, "frames": f} for d, c, f in entries]
    return "".join(json.dumps(line) + "\n" for line in lines)


class ReplayClientSide(Files):
    def case(self, proc_class=PongProc, name="rec.jsonl", socket_name="client"):
        path = os.path.join(self.dir, name)

        class Client(ProcessTestCase):
            def setUp(self):
                self.req = self.socket(zmq.REQ, connect=self.endpoint, name=socket_name)
                self.proc = self.start_process(proc_class, self.endpoint)
                self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

            def test_replay(self):
                result = yield ("replay", self.req, path)
                self.assertEqual(len(result.sent), len(result.received))

        return Client

    def test_replaying_the_client_side_against_pongproc_passes(self):
        self.write(pings((1, ["pong", 1]), (2, ["pong", 2]), (3, ["pong", 3])))
        self.assertEqual(problems(run_case(self.case())), [])

    def test_a_recording_without_the_delimiter_replays_too(self):
        self.write(pings((1, ["pong", 1]), wire=False))
        self.assertEqual(problems(run_case(self.case())), [])

    def test_a_changed_answer_fails_at_its_index_with_a_diff(self):
        self.write(pings((1, ["pong", 1]), (2, ["pong", 2]), (3, ["pong", 3])))
        text = only_problem(self, run_case(self.case(OddPong)))
        self.assertIn("differs at message 3 of 6 (to_client, connection 1, on socket 'client' (REQ", text)
        self.assertIn("line 5", text)
        self.assertIn('--- recorded (line 5)\n+++ received\n', text)
        self.assertIn('-  2\n+  "two"\n', text)
        self.assertIn(f"Rerun with {UPDATE_GOLDEN_ENV}=1", text)
        self.assertIn("replay ", text)  # the timeline shows the replay...
        self.assertIn("client   <- [b'[\"pong\", \"two\"]']", text)  # ...and its messages

    def test_the_howto_shows_the_failure_a_changed_pongproc_gives(self):
        os.mkdir(os.path.join(self.dir, "conversations"))
        shutil.copy(os.path.join(EXAMPLES, "howto", "conversations", "pingpong.jsonl"),
                    os.path.join(self.dir, "conversations"))
        text = only_problem(self, run_case(self.case(OddPong, "conversations/pingpong.jsonl", "ping")))
        got = text[text.index("AssertionError: replay of"):text.index("\nTimeline")]
        got = re.sub(r"ipc://[^)]*", "ipc:///tmp/zpt-.../1", got.replace(self.dir, "..."))
        with open(os.path.join(EXAMPLES, os.pardir, "howto", "conversations.rst"), encoding="utf-8") as f:
            page = f.read()
        block = page[page.index("   AssertionError: replay of"):page.index("\n\nThe timeline below it")]
        lines = [line[3:] for line in block.splitlines()]
        self.assertEqual(got.splitlines(), [" ".join(lines[:3])] + lines[3:])

    def test_update_mode_rewrites_the_differing_messages_and_says_so(self):
        self.write(pings((1, ["pong", 1]), (2, ["pong", "old"]), (3, ["pong", 3])))
        before = self.read().splitlines()
        stderr = io.StringIO()
        with mock.patch.dict(os.environ, {UPDATE_GOLDEN_ENV: "1"}), redirect_stderr(stderr):
            self.assertEqual(problems(run_case(self.case())), [])
        self.assertIn(f"zmqprocesstest: updated recording {os.path.join(self.dir, 'rec.jsonl')} (message 3 changed)",
                      stderr.getvalue())
        after = self.read().splitlines()
        self.assertEqual([i for i, (a, b) in enumerate(zip(before, after)) if a != b], [4])
        self.assertEqual(after[4], '{"t": 0.001, "dir": "to_client", "conn": 1, "frames": ["", {"json": ["pong", 2]}]}')
        self.assertEqual(problems(run_case(self.case())), [])  # and it replays as it is now

    def test_a_missing_recording_says_how_to_make_one(self):
        text = only_problem(self, run_case(self.case()), "error")
        self.assertIn("expected a recording at", text)
        self.assertIn("record=", text)


class ReplayNormalised(Files):
    def case(self, normalise):
        path = self.write(recording([
            (TO_SERVER, 1, ["1"]),
            (TO_CLIENT, 1, [{"json": {"n": 1, "id": "f00", "at": "at 2020-01-01T00:00:00.000001"}}]),
        ]))

        class Stamps(ProcessTestCase):
            def setUp(self):
                self.req = self.socket(zmq.REQ, connect=self.endpoint, name="client")
                self.proc = self.start_process(stamping_server, self.endpoint)
                self.set_stop_message(self.proc, self.req, None)

            def test_replay(self):
                yield ("replay", self.req, path, "client", normalise)

        return Stamps

    def test_normalisers_and_json_paths_take_out_what_changes(self):
        self.assertEqual(problems(run_case(self.case([normalise_timestamps, "id"]))), [])
        self.assertEqual(problems(run_case(self.case([normalise_timestamps, "$.id"]))), [])

    def test_without_them_it_differs(self):
        text = only_problem(self, run_case(self.case([normalise_timestamps])))
        self.assertIn('-  "id": "f00"', text)
        self.assertIn('"at": "at <TIME>"', text)  # normalised on both sides: not in the diff as a change
        self.assertNotIn('-  "at"', text)

    def test_a_bad_normaliser_is_named(self):
        text = only_problem(self, run_case(self.case([3])), "error")
        self.assertIn("expected normalise to be a normaliser", text)
        text = only_problem(self, run_case(self.case("a..b")), "error")
        self.assertIn("expected a JSON path such as 'header.msg_id'", text)


class ReplayServerSide(Files):
    def test_the_real_ping_client_gets_the_recorded_replies_and_exits_0(self):
        path = self.write(pings((1, ["pong", 1]), (2, ["pong", 2]), (3, ["pong", 3])))

        class Server(ProcessTestCase):
            def test_replay(self):
                rep = self.socket(zmq.REP, bind=self.endpoint, name="server")
                client = self.start_command([sys.executable, "-m", "pingpong.ping", self.endpoint, "3"],
                                            env=dict(os.environ, PYTHONPATH=EXAMPLES))
                yield ("replay", rep, path, "server")
                yield ("wait_exit", client)
                self.assertIn("ping 3 -> ['pong', 3]", self.output_of(client))

        self.assertEqual(problems(run_case(Server)), [])

    def test_a_client_that_asks_something_else_fails_at_that_message(self):
        path = self.write(pings((1, ["pong", 1]), (5, ["pong", 5])))

        class Server(ProcessTestCase):
            def test_replay(self):
                rep = self.socket(zmq.REP, bind=self.endpoint, name="server")
                self.start_command([sys.executable, "-m", "pingpong.ping", self.endpoint, "2"],
                                   env=dict(os.environ, PYTHONPATH=EXAMPLES))
                yield ("replay", rep, path, "server")

        text = only_problem(self, run_case(Server))
        self.assertIn("(server side) differs at message 2 of 4 (to_server, connection 1", text)
        self.assertIn('-  5\n+  2\n', text)


class ReplayDealerRouter(Files):
    def test_client_side_with_a_socket_per_connection(self):
        path = self.write(recording([
            (TO_SERVER, 1, ["", {"json": ["ping", 1]}]), (TO_SERVER, 2, ["", {"json": ["ping", 2]}]),
            (TO_CLIENT, 2, ["", {"json": ["pong", 2]}]), (TO_CLIENT, 1, ["", {"json": ["pong", 1]}]),
        ]))

        class Dealers(ProcessTestCase):
            def test_replay(self):
                self.start_process(PongProc, self.endpoint, zmq.ROUTER)
                a = self.socket(zmq.DEALER, connect=self.endpoint, name="a")
                b = self.socket(zmq.DEALER, connect=self.endpoint, name="b")
                yield ("replay", [a, b], path)

        self.assertEqual(problems(run_case(Dealers)), [])

    def test_server_side_maps_two_peers_identities_to_their_connections(self):
        path = self.write(recording(TWO_PEERS))

        class Router(ProcessTestCase):
            def test_replay(self):
                router = self.socket(zmq.ROUTER, bind=self.endpoint, name="server")
                client = self.start_process(two_dealers, self.endpoint)
                result = yield ("replay", router, path, "server")
                yield ("wait_exit", client)
                identities = {frames[0] for frames in result.sent}
                self.assertEqual(len(identities), 2)

        self.assertEqual(problems(run_case(Router)), [])

    def test_one_socket_for_two_connections_is_refused(self):
        path = self.write(recording(TWO_PEERS))

        class Dealer(ProcessTestCase):
            def test_replay(self):
                a = self.socket(zmq.DEALER, connect=self.endpoint, name="a")
                yield ("replay", a, path)

        text = only_problem(self, run_case(Dealer), "error")
        self.assertIn("expected one socket per connection of", text)
        self.assertIn("(2: connections 1, 2), got 1", text)


class ReplayPubSub(Files):
    def test_the_subscriber_side_takes_the_recorded_subscription(self):
        path = self.write(recording([(TO_SERVER, 1, ["\u0001weather"])] + [
            (TO_CLIENT, 1, ["weather", {"json": {"tick": n}}]) for n in range(3)]))

        class Subscriber(ProcessTestCase):
            def test_replay(self):
                self.start_process(publisher, self.endpoint)
                sub = self.socket(zmq.SUB, connect=self.endpoint, subscribe=[], name="sub")
                result = yield ("replay", sub, path)
                self.assertEqual(len(result.received), 3)

        self.assertEqual(problems(run_case(Subscriber)), [])


class ReplayArguments(Files):
    def test_bad_arguments_are_named(self):
        path = self.write(pings((1, ["pong", 1])))
        cases = [((path, "middle"), "expected the side to replay to be 'client' or 'server', got 'middle'"),
                 ((3,), "expected the path of a recording (str), got 3"),
                 ((path, "client", (), -1), "expected timeout to be a finite number of seconds")]
        for args, expected in cases:
            class Bad(ProcessTestCase):
                given = args

                def test_replay(self):
                    req = self.socket(zmq.REQ, connect=self.endpoint)
                    yield ("replay", req, *self.given)

            with self.subTest(args=args):
                self.assertIn(expected, only_problem(self, run_case(Bad), "error"))


# -- recording through a tap -------------------------------------------------------------------------
def two_pingers(endpoint, identities=(b"", b"")):
    """A client under test of two DEALER connections to a ROUTER PongProc (identities if given)."""
    ctx = zmq.Context()
    socks = []
    for identity in identities:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.rcvtimeo = 5000
        if identity:
            sock.routing_id = identity
        sock.connect(endpoint)
        socks.append(sock)
    a, b = socks
    for sock, n in ((a, 1), (b, 2), (a, 3)):
        sock.send_multipart([b"", json.dumps(["ping", n]).encode()])
        assert sock.recv_multipart() == [b"", json.dumps(["pong", n]).encode()], n
    for sock in socks:
        sock.close()
    ctx.term()


class TapRecording(Files):
    def record_ping_session(self, path):
        class Record(ProcessTestCase):
            def test_record(self):
                self.start_process(PongProc, self.endpoint)
                tap = self.tap(self.endpoint, name="ping", record=path)
                client = self.start_command([sys.executable, "-m", "pingpong.ping", tap.endpoint, "3"],
                                            env=dict(os.environ, PYTHONPATH=EXAMPLES))
                yield ("wait_exit", client)

        self.assertEqual(problems(run_case(Record)), [])

    def test_the_real_ping_session_recorded_through_a_tap_replays_both_ways(self):
        path = os.path.join(self.dir, "rec.jsonl")
        self.record_ping_session(path)
        conversation = read_conversation(path)
        self.assertEqual(conversation.meta, {"client": "REQ"})
        self.assertEqual([(m.direction, m.conn, m.frames) for m in conversation.messages], [
            (direction, 1, (b"", json.dumps([word, n]).encode()))
            for n in (1, 2, 3) for direction, word in ((TO_SERVER, "ping"), (TO_CLIENT, "pong"))])
        self.assertEqual(self.read().splitlines()[1],
                         '{"t": 0.0, "dir": "to_server", "conn": 1, "frames": ["", {"json": ["ping", 1]}]}')
        cases = ReplayClientSide(), ReplayServerSide()
        for case in cases:
            case.dir = self.dir
        self.assertEqual(problems(run_case(cases[0].case())), [])
        text = only_problem(self, run_case(cases[0].case(OddPong)))
        self.assertIn("differs at message 3 of 6 (to_client, connection 1", text)

        class Server(ProcessTestCase):
            def test_replay(self):
                rep = self.socket(zmq.REP, bind=self.endpoint, name="server")
                client = self.start_command([sys.executable, "-m", "pingpong.ping", self.endpoint, "3"],
                                            env=dict(os.environ, PYTHONPATH=EXAMPLES))
                yield ("replay", rep, path, "server")
                yield ("wait_exit", client)

        self.assertEqual(problems(run_case(Server)), [])

    def test_two_dealer_peers_recorded_through_a_tap_replay_with_identities_mapped(self):
        path = os.path.join(self.dir, "two.jsonl")

        class Record(ProcessTestCase):
            def test_record(self):
                self.start_process(PongProc, self.endpoint, zmq.ROUTER)
                tap = self.tap(self.endpoint, record=path)
                client = self.start_process(two_pingers, tap.endpoint, (b"alice", b"bob"))
                yield ("wait_exit", client)

        self.assertEqual(problems(run_case(Record)), [])
        messages = read_conversation(path).messages
        self.assertEqual([(m.direction, m.conn, m.peer) for m in messages], [
            (TO_SERVER, 1, b"alice"), (TO_CLIENT, 1, b"alice"), (TO_SERVER, 2, b"bob"), (TO_CLIENT, 2, b"bob"),
            (TO_SERVER, 1, b"alice"), (TO_CLIENT, 1, b"alice")])

        class Router(ProcessTestCase):
            def test_replay(self):
                router = self.socket(zmq.ROUTER, bind=self.endpoint, name="server")
                client = self.start_process(two_pingers, self.endpoint)  # new peers, no identities of their own
                result = yield ("replay", router, path, "server")
                yield ("wait_exit", client)
                self.assertEqual(len({frames[0] for frames in result.sent}), 2)
                self.assertNotIn(b"alice", {frames[0] for frames in result.sent})

        class Dealers(ProcessTestCase):
            def test_replay(self):
                self.start_process(PongProc, self.endpoint, zmq.ROUTER)
                a = self.socket(zmq.DEALER, connect=self.endpoint, name="a")
                b = self.socket(zmq.DEALER, connect=self.endpoint, name="b")
                yield ("replay", [a, b], path)

        self.assertEqual(problems(run_case(Router)), [])
        self.assertEqual(problems(run_case(Dealers)), [])

    def test_a_message_the_tap_kept_only_in_part_is_not_recorded_silently(self):
        path = os.path.join(self.dir, "big.jsonl")

        class Big(ProcessTestCase):
            def test_big(self):
                self.start_process(PongProc, self.endpoint)
                tap = self.tap(self.endpoint, record=path)
                req = self.socket(zmq.REQ, connect=tap.endpoint)
                yield ("send", req, [], ["ping", "x" * 100000])
                yield ("recv", req)

        text = only_problem(self, run_case(Big))
        self.assertIn(f"the recording to {path} raised ValueError: expected whole frames to record, got frame 1 of "
                      "a message to_server on connection 1 kept only in part (100012 bytes; a tap keeps at most "
                      "65536 bytes of a message)", text)


class RecordCommand(Files):
    def test_it_records_until_ctrl_c_and_says_what_it_wrote(self):
        path = os.path.join(self.dir, "cli.jsonl")

        class Record(ProcessTestCase):
            def test_record(self):
                listen = self.new_endpoint()
                self.start_process(PongProc, self.endpoint)
                recorder = self.start_command([sys.executable, "-m", "zmqprocesstest", "record", "--listen", listen,
                                               "--connect", self.endpoint, "-o", path])
                yield ("wait_output", recorder, "Ctrl-C to stop", 10)  # once it has started (python, imports)
                req = self.socket(zmq.REQ, connect=listen)
                for n in (1, 2):
                    yield ("send", req, [], ["ping", n])
                    self.assertEqual((yield ("recv", req)), [["pong", n]])
                yield ("signal", recorder)
                yield ("wait_exit", recorder)
                self.assertIn(f"record: wrote 4 messages (1 connection) to {path}", self.output_of(recorder))

        self.assertEqual(problems(run_case(Record)), [])
        self.assertEqual(len(read_conversation(path).messages), 4)

    def test_bad_arguments_are_named(self):
        result = run_program([sys.executable, "-m", "zmqprocesstest", "record", "--listen", "tcp://127.0.0.1:0",
                              "--connect", "tcp://127.0.0.1:1", "-o", "x.jsonl", "--codec", "jupyter"], cwd=self.dir)
        self.assertEqual(result.returncode, 2)
        self.assertIn("expected --key KEY with --codec jupyter", result.stderr)
        result = run_program([sys.executable, "-m", "zmqprocesstest", "record", "--connect", "tcp://127.0.0.1:1"],
                             cwd=self.dir)
        self.assertIn("the following arguments are required: --listen, -o/--output", result.stderr)


# -- a real Jupyter kernel -----------------------------------------------------------------------------
try:
    import ipykernel  # noqa: F401 - only whether it is there
    from jupyter_client import BlockingKernelClient
    HAVE_KERNEL = True
except ImportError:
    HAVE_KERNEL = False
NO_KERNEL = "ipykernel and jupyter_client are not installed (pip install ipykernel jupyter_client, or the test extra)"
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
#: What changes from one kernel to the next: ids, sessions, dates, the banner's random tip
#: (the signatures are the codec's to check).
JUPYTER_CHANGES = ["header.msg_id", "header.session", "header.date", "metadata.started", "metadata.engine",
                   "content.banner", normalise_timestamps,
                   normalise_regex(r"kernel\.[0-9a-f-]{36}\.", "kernel.<ID>.")]  # iopub topics: the kernel's id


def close_client_loop():
    """Close the event loop jupyter_client's blocking calls made for this thread (kept by
    jupyter_core for the next call: the leak check counts its descriptors)."""
    import asyncio
    from jupyter_core import utils
    loop = utils._loop.get()
    if loop is not None and not loop.is_closed():
        loop.close()
        asyncio.set_event_loop(None)


def start_kernel(case, key):
    """A kernel on tcp (its five ports reserved together), started, stopped by its shutdown message; its ports."""
    ports = {name: int(ep.rsplit(":", 1)[1]) for name, ep in zip(CHANNELS, case.endpoints(5))}
    path = os.path.join(case.tmpdir, "kernel.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"transport": "tcp", "ip": "127.0.0.1", "key": key, "signature_scheme": "hmac-sha256",
                   "kernel_name": "", **{f"{name}_port": port for name, port in ports.items()}}, f)
    control = case.socket(zmq.DEALER, connect=f"tcp://127.0.0.1:{ports['control']}", codec=codecs.jupyter(key),
                          name="control")
    kernel = case.start_command([sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", path],
                                name="kernel")  # (frozen modules: the debugger warns on stderr, at its own pace)
    case.set_stop_message(kernel, control, {"msg_type": "shutdown_request", "content": {"restart": False}})
    # Started once it answers on control; nobody hears its "starting" status on iopub yet.
    case.send(control, [], {"msg_type": "kernel_info_request", "content": {}})
    case.recv(control, timeout=30)
    return {name: f"tcp://127.0.0.1:{port}" for name, port in ports.items()}


@unittest.skipUnless(HAVE_KERNEL, NO_KERNEL)
class JupyterKernel(Files):
    def record(self):
        """jupyter_client's BlockingKernelClient through two taps: kernel_info, then an execute
        with stream output; the shell and iopub recordings."""
        shell_path, iopub_path = os.path.join(self.dir, "shell.jsonl"), os.path.join(self.dir, "iopub.jsonl")

        class Record(ProcessTestCase):
            timeout = 30.0  # a kernel's start imports IPython: seconds on a loaded machine
            # A kernel answers shutdown_request once its loops have stopped, then exits: seconds
            # on a loaded machine, past the default 2 s of the polite stop step.
            stop_timeouts = dict(ProcessTestCase.stop_timeouts, message=10.0)

            def test_record(self):
                endpoints = start_kernel(self, "first-key")
                codec = codecs.jupyter("first-key")
                shell = self.tap(endpoints["shell"], name="shell", codec=codec, record=shell_path)
                iopub = self.tap(endpoints["iopub"], name="iopub", codec=codec, record=iopub_path)
                ports = {name: int(ep.rsplit(":", 1)[1]) for name, ep in endpoints.items()}
                ports.update(shell=int(shell.endpoint.rsplit(":", 1)[1]), iopub=int(iopub.endpoint.rsplit(":", 1)[1]))
                context = zmq.Context()
                self.addCleanup(context.term)
                self.addCleanup(close_client_loop)
                client = BlockingKernelClient(context=context)
                client.load_connection_info({"transport": "tcp", "ip": "127.0.0.1", "key": b"first-key",
                                             "signature_scheme": "hmac-sha256",
                                             **{f"{name}_port": port for name, port in ports.items()}})
                client.start_channels()
                self.addCleanup(client.stop_channels)
                welcome = client.get_iopub_msg(timeout=30)  # the subscription is live: nothing is missed
                self.assertEqual(welcome["msg_type"], "iopub_welcome")
                client.kernel_info()
                self.assertEqual(client.get_shell_msg(timeout=30)["msg_type"], "kernel_info_reply")
                msg_id = client.execute("print(6 * 7)")
                self.assertEqual(client.get_shell_msg(timeout=30)["content"]["status"], "ok")
                while True:
                    message = client.get_iopub_msg(timeout=30)
                    if message["parent_header"].get("msg_id") == msg_id and message["content"].get(
                            "execution_state") == "idle":
                        break

        self.assertEqual(problems(run_case(Record)), [])
        return shell_path, iopub_path

    def test_a_recorded_session_replays_against_a_fresh_kernel(self):
        shell_path, iopub_path = self.record()
        kinds = [json.loads(m.frames[m.frames.index(b"<IDS|MSG>") + 2])["msg_type"]
                 for m in read_conversation(iopub_path).messages]
        self.assertEqual(kinds, ["iopub_welcome", "status", "status", "status", "execute_input", "stream", "status"])
        self.assertEqual([json.loads(m.frames[m.frames.index(b"<IDS|MSG>") + 2])["msg_type"]
                          for m in read_conversation(shell_path).messages],
                         ["kernel_info_request", "kernel_info_reply", "execute_request", "execute_reply"])

        class Replay(ProcessTestCase):
            timeout = 30.0
            # A kernel answers shutdown_request once its loops have stopped, then exits: seconds
            # on a loaded machine, past the default 2 s of the polite stop step.
            stop_timeouts = dict(ProcessTestCase.stop_timeouts, message=10.0)

            def test_replay(self):
                endpoints = start_kernel(self, "another-key")
                codec = codecs.jupyter("another-key")
                shell = self.socket(zmq.DEALER, connect=endpoints["shell"], codec=codec, name="shell")
                iopub = self.socket(zmq.SUB, connect=endpoints["iopub"], codec=codec, name="iopub")
                self.assertTrue(iopub.poll(30))  # the welcome: the subscription is live (read by the replay)
                yield ("replay", shell, shell_path, "client", JUPYTER_CHANGES)
                yield ("replay", iopub, iopub_path, "client", JUPYTER_CHANGES)

        self.assertEqual(problems(run_case(Replay)), [])

        class Unsigned(ProcessTestCase):
            def test_replay(self):
                shell = self.socket(zmq.DEALER, connect=self.endpoint, name="shell")
                yield ("replay", shell, shell_path)

        self.assertIn("expected a socket with codec=codecs.jupyter(key) to replay",
                      only_problem(self, run_case(Unsigned), "error"))

    def test_the_howto_shows_the_kernel_replay(self):
        with open(os.path.join(EXAMPLES, os.pardir, "howto", "conversations.rst"), encoding="utf-8") as f:
            page = f.read()
        block = page[page.index("   JUPYTER_CHANGES = "):page.index("\n\nThe banner ends")]
        with open(__file__, encoding="utf-8") as f:
            here = f.read()
        for line in block.splitlines():
            self.assertIn(line.strip(), here)


# -- scaffold ---------------------------------------------------------------------------------------
class Scaffold(Files):
    SESSION = pings((1, ["pong", 1]), (2, ["pong", 2]))

    def scaffold(self, *args, name="ping-session.jsonl", text=None):
        self.write(self.SESSION if text is None else text, name)
        return run_program([sys.executable, "-m", "zmqprocesstest", "scaffold", name, *args], cwd=self.dir)

    def test_it_writes_a_test_as_a_person_would(self):
        result = self.scaffold("--process", "pingpong.pongproc:PongProc")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "wrote test_ping_session.py: TestPingSession.test_ping_session, 2 sends and "
                                        "2 receives checked, the client side of ping-session.jsonl\n")
        expected = '''"""The conversation recorded in ping-session.jsonl, as a test.

Written by python -m zmqprocesstest scaffold; edit it as your own test.
"""
import zmq

from zmqprocesstest import ProcessTestCase

from pingpong.pongproc import PongProc


class TestPingSession(ProcessTestCase):
    """Plays the client side of ping-session.jsonl."""

    def setUp(self):
        self.client = self.socket(zmq.REQ, connect=self.endpoint, name="client")
        self.proc = self.start_process(PongProc, self.endpoint)

    def test_ping_session(self):
        yield ("send", self.client, [], ["ping", 1])
        reply = yield ("recv", self.client)
        self.assertEqual(reply, [["pong", 1]])
        yield ("send", self.client, [], ["ping", 2])
        reply = yield ("recv", self.client)
        self.assertEqual(reply, [["pong", 2]])
'''
        self.assertEqual(self.read("test_ping_session.py"), expected)

    def test_the_written_test_passes_unchanged_under_unittest_nose2_and_pytest(self):
        self.assertEqual(self.scaffold("--process", "pingpong.pongproc:PongProc").returncode, 0)
        env = dict(os.environ, PYTHONPATH=EXAMPLES)
        runners = {"unittest": ["-m", "unittest", "-v", "test_ping_session"],
                   "pytest": ["-m", "pytest", "-p", "no:cacheprovider", "-v", "test_ping_session.py"],
                   "nose2": ["-m", "nose2", "-v", "-s", ".", "test_ping_session"]}
        for runner, args in runners.items():
            with self.subTest(runner=runner):
                result = run_program([sys.executable, *args], cwd=self.dir, env=env, timeout=60)  # a loaded machine
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertRegex(result.stdout + result.stderr, r"test_ping_session.*(ok|PASSED)")

    def test_raw_frames_the_server_side_and_a_router(self):
        text = recording([(TO_SERVER, 1, ["", {"json": {"a":1}, "style": "compact"}]),
                          (TO_CLIENT, 1, ["", {"b64": "/w=="}])] + TWO_PEERS[2:])
        self.assertEqual(self.scaffold("--command", "python -m server {endpoint}", name="raw.jsonl",
                                       text=text).returncode, 0)
        written = self.read("test_raw.py")
        self.assertIn('yield ("send_raw", self.client1, [b"", b\'{"a":1}\'])', written)
        self.assertIn('reply = yield ("recv_raw", self.client1)\n        self.assertEqual(reply, [b"", b"\\xff"])',
                      written)
        self.assertIn('self.proc = self.start_command([sys.executable, "-m", "server", self.endpoint])', written)
        self.scaffold("--side", "server", "-o", "test_server.py", name="raw.jsonl", text=text)
        written = self.read("test_server.py")
        self.assertIn('self.server = self.socket(zmq.ROUTER, bind=self.endpoint, name="server")', written)
        self.assertIn("peer2 = request[0]", written)
        self.assertIn('yield ("send", self.server, [peer2, b""], ["welcome", "b"])', written)
        self.assertIn('self.fail("start the process under test here', written)

    def test_the_howto_shows_what_scaffold_writes(self):
        howto = os.path.join(EXAMPLES, "howto")
        out = os.path.join(self.dir, "test_pingpong_scaffolded.py")
        result = run_program([sys.executable, "-m", "zmqprocesstest", "scaffold", "conversations/pingpong.jsonl",
                              "--process", "pingpong.pongproc:PongProc", "-o", out], cwd=howto)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(howto, "test_pingpong_scaffolded.py"), encoding="utf-8") as f:
            self.assertEqual(self.read("test_pingpong_scaffolded.py"), f.read())

    def test_refusals_say_why(self):
        self.scaffold()
        result = self.scaffold()
        self.assertEqual(result.returncode, 2)
        self.assertIn("test_ping_session.py exists; expected a new file (--force replaces it)", result.stderr)
        result = self.scaffold(name="bad.jsonl", text="{}\n")
        self.assertIn("bad.jsonl:1: expected the first line of a recording", result.stderr)
        result = self.scaffold("--process", "nocolon", name="x.jsonl")
        self.assertIn("expected --process MODULE:NAME (pingpong.pongproc:PongProc), got 'nocolon'", result.stderr)


if __name__ == "__main__":
    unittest.main()
