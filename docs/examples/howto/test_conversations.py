"""Recorded conversations: the ping client's session with PongProc, replayed both ways."""
import datetime
import os
import sys
import uuid

import zmq

from zmqprocesstest import ProcessTestCase, normalise_timestamps, process
from pingpong.pongproc import PongProc

EXAMPLES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PING = [sys.executable, "-m", "pingpong.ping"]  # the real client: python -m pingpong.ping ENDPOINT COUNT
PING_ENV = dict(os.environ, PYTHONPATH=EXAMPLES)


@process
class TestRecordThroughATap(ProcessTestCase):
    """Record the real ping client's session with PongProc."""

    def test_record_the_real_client(self):
        self.start_process(PongProc, self.endpoint)
        path = os.path.join(self.tmpdir, "pingpong.jsonl")  # conversations/pingpong.jsonl, to keep it
        tap = self.tap(self.endpoint, name="ping", record=path)
        client = self.start_command(PING + [tap.endpoint, "3"], env=PING_ENV)
        yield ("wait_exit", client)
        # What it recorded replays against PongProc.
        req = self.socket(zmq.REQ, connect=self.endpoint, name="replay")
        result = yield ("replay", req, path)
        self.assertEqual(len(result.received), 3)


@process
class TestReplayTheClient(ProcessTestCase):
    """Does PongProc still answer the recorded ping session the same?"""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="ping")
        self.proc = self.start_process(PongProc, self.endpoint)

    def test_pongproc_answers_as_recorded(self):
        yield ("replay", self.req, "conversations/pingpong.jsonl")


@process
class TestReplayTheServer(ProcessTestCase):
    """The real ping client, tested without the real PongProc."""

    def test_the_client_gets_the_recorded_replies(self):
        rep = self.socket(zmq.REP, bind=self.endpoint, name="pong")
        client = self.start_command(PING + [self.endpoint, "3"], env=PING_ENV)
        yield ("replay", rep, "conversations/pingpong.jsonl", "server")
        yield ("wait_exit", client)  # and it exits 0
        self.assertIn("ping 3 -> ['pong', 3]", self.output_of(client))


class StampedPong(PongProc):
    """PongProc whose pongs carry what changes on every run: an id and the time."""

    @staticmethod
    def reply(sock, header, body):
        body = body + [{"id": uuid.uuid4().hex, "at": datetime.datetime.now().isoformat()}]
        PongProc.reply(sock, header, body)


@process
class TestNormalised(ProcessTestCase):
    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="ping")
        self.proc = self.start_process(StampedPong, self.endpoint)

    def test_ids_and_times_are_normalised(self):
        yield ("replay", self.req, "conversations/stamped.jsonl", "client", [normalise_timestamps, "*.id"])
