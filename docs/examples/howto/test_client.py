"""Tests of a client library of your own: docs/examples/kvsync's blocking KVClient
against its real server, the server watched while the client blocks, a tap putting the
client's messages in the reports. docs/howto/client.rst shows these tests."""
import json
import queue

from zmqprocesstest import ProcessDied, ProcessTestCase, codecs, process, timeline
from kvsync.client import KVClient
from kvsync.server import KVServer


@process
class TestKVClient(ProcessTestCase):
    def setUp(self):
        self.server = self.start_process(KVServer, self.endpoint)
        self.client = KVClient(self.endpoint)
        self.addCleanup(self.client.close)

    def test_put_then_get(self):
        self.client.put("colour", "green")
        self.assertEqual(self.client.get("colour"), "green")

    def test_the_server_dies_during_get(self):
        # The server's bug kills it; get() would block for ever. ProcessDied ends it here.
        with self.assertRaises(ProcessDied):
            self.client.get("shape")

    def test_a_shutdown_by_the_clients_own_message(self):
        self.assertEqual(self.client.shutdown(), "bye")  # the reply sent before the exit is ours
        self.wait_exit(self.server)  # the exit asked for, with its code checked (0)

    def test_allow_exit(self):
        with self.allow_exit(self.server):  # it may exit within the block, unwatched
            self.client.shutdown()
        self.wait_exit(self.server)


@process
class TestThroughATap(ProcessTestCase):
    def setUp(self):
        self.server = self.start_process(KVServer, self.endpoint)
        self.link = self.tap(self.endpoint, name="client", codec=codecs.json)  # in front of the server
        self.client = KVClient(self.link.endpoint)  # the client connects to the tap
        self.addCleanup(self.client.close)

    def test_the_clients_messages_in_the_reports(self):
        seen = queue.Queue()
        self.link.recorders.append(seen.put)  # each message, once the tap has passed it on
        self.client.put("colour", "green")
        self.assertEqual(self.client.get("colour"), "green")
        messages = [seen.get(timeout=5) for _ in range(4)]
        self.assertEqual([m.direction for m in messages], ["to_server", "to_client"] * 2)
        self.assertEqual([json.loads(m.frames[-1]) for m in messages],
                         [{"op": "put", "key": "colour", "value": "green"}, "ok",
                          {"op": "get", "key": "colour"}, "green"])
        # The same messages are in the test's timeline, on the tap's lane:
        shown = [(kind, text) for _, kind, source, text in timeline.current().lines()
                 if source == "client" and kind != "note"]
        self.assertEqual(shown, [("sent", "[b'', {'op': 'put', 'key': 'colour', 'value': 'green'}]"),
                                 ("received", "[b'', 'ok']"),
                                 ("sent", "[b'', {'op': 'get', 'key': 'colour'}]"),
                                 ("received", "[b'', 'green']")])
