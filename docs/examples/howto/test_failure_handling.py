"""Failure handling: a Lazy Pirate client against a server that is killed, frozen,
partitioned away and loses a request; a heartbeat that notices a frozen peer; a client
of the user's own through a tap."""
import json
import signal

import zmq

from zmqprocesstest import ProcessTestCase, process, timeline
from howto.resilience import HeartbeatMonitor, Heartbeater, LazyPirate
from pingpong.pongproc import PongProc


@process
class TestLazyPirate(ProcessTestCase):
    """The client under test talks to PongProc through a fault link the test controls."""

    timeout = 5.0

    def setUp(self):
        self.server = self.start_process(PongProc, self.endpoint)
        self.link = self.fault_link(self.endpoint)
        self.control = self.socket(zmq.PUSH, bind=self.new_endpoint(), name="control")
        self.results = self.socket(zmq.PULL, bind=self.new_endpoint(), name="results")
        self.client = self.start_process(LazyPirate, self.link.endpoint, self.control.last_endpoint,
                                         self.results.last_endpoint)
        self.set_stop_message(self.client, self.control, ["stop", None])

    def outcome(self):
        """Event: what the client reports on the request under way, up to its outcome."""
        reports = [self.recv(self.results)[0]]
        while reports[-1][0] == "retry":
            reports.append(self.recv(self.results)[0])
        return reports

    def test_a_server_killed_and_restarted(self):
        yield ("send", self.control, [], ["request", 1])
        # Answered (on a busy machine after a retry or two: the client gives each try 100 ms).
        self.assertEqual((yield ("outcome",))[-1][:2], ["ok", 1])
        yield ("signal", self.server, signal.SIGKILL)
        yield ("wait_exit", self.server, None, None)
        yield ("send", self.control, [], ["request", 2])
        self.assertEqual((yield ("recv", self.results)), [["retry", 2, 1]])  # nobody answers
        self.server = yield ("restart", self.server)
        reports = yield ("outcome",)
        self.assertEqual(reports[-1][:2], ["ok", 2])

    def test_a_frozen_server_and_thawed(self):
        yield ("freeze", self.server)
        yield ("send", self.control, [], ["request", 3])
        self.assertEqual((yield ("recv", self.results)), [["retry", 3, 1]])  # a hang, not a crash
        yield ("thaw", self.server)
        reports = yield ("outcome",)
        self.assertEqual(reports[-1][:2], ["ok", 3])

    def test_a_partition_healed(self):
        yield ("partition", self.link)
        yield ("send", self.control, [], ["request", 4])
        self.assertEqual((yield ("recv", self.results)), [["retry", 4, 1]])
        yield ("heal", self.link)
        reports = yield ("outcome",)
        self.assertEqual(reports[-1][:2], ["ok", 4])

    def test_one_request_dropped(self):
        yield ("drop", self.link, 1, "to_server")
        yield ("send", self.control, [], ["request", 5])
        self.assertEqual((yield ("outcome",)), [["retry", 5, 1], ["ok", 5, 2]])
        self.assertEqual(self.link.stats["to_server"].dropped_messages, 1)


@process
class TestHeartbeat(ProcessTestCase):
    """The monitor under test must notice a peer that hangs, and notice it come back."""

    timeout = 5.0

    def setUp(self):
        self.results = self.socket(zmq.PULL, bind=self.new_endpoint(), name="results")
        self.peer = self.start_process(Heartbeater, self.endpoint)
        self.start_process(HeartbeatMonitor, self.endpoint, self.results.last_endpoint)

    def test_a_frozen_peer_is_lost_and_found(self):
        self.assertEqual((yield ("recv", self.results)), [["alive"]])
        yield ("freeze", self.peer)
        lost = yield ("recv", self.results)
        self.assertEqual(lost[0][0], "lost")
        yield ("thaw", self.peer)
        self.assertEqual((yield ("recv", self.results)), [["alive"]])


@process
class TestThroughATap(ProcessTestCase):
    """The client under test is the user's own (here a plain zmq REQ socket): a tap in front of
    PongProc puts its messages in the test's timeline and report, and takes the faults."""

    timeout = 5.0

    def test_own_client(self):
        self.start_process(PongProc, self.endpoint)
        tap = self.tap(self.endpoint, name="client")
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        client = ctx.socket(zmq.REQ)  # the user's own socket, not a test socket
        self.addCleanup(client.close, 0)
        client.rcvtimeo = 2000
        client.connect(tap.endpoint)
        client.send(json.dumps(["ping", 1]).encode())
        self.assertEqual(json.loads(client.recv()), ["pong", 1])
        yield ("partition", tap)
        client.send(json.dumps(["ping", 2]).encode())
        self.assertEqual(client.poll(200), 0)  # held by the partition
        yield ("heal", tap)
        self.assertEqual(json.loads(client.recv()), ["pong", 2])
        seen = [(kind, text) for _, kind, lane, text in timeline.current().lines() if lane == "client"]
        self.assertEqual(seen[-3:], [("fault", "heal"), ("sent", "[b'', b'[\"ping\", 2]']"),
                                     ("received", "[b'', b'[\"pong\", 2]']")])
