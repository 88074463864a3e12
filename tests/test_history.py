"""Tests of history.py: recording operations by hand and from a test socket."""
import unittest

import zmq

from zmqprocesstest import ProcessTestCase
from zmqprocesstest.checkers import request_reply
from zmqprocesstest.history import History, HistoryError

from .samples import cases as samples
from .support import problems, run_case


def fake_clock(times):
    it = iter(times)
    return lambda: next(it)


class TestRecordingByHand(unittest.TestCase):
    def test_invocations_pair_with_their_completions(self):
        h = History(clock=fake_clock([10.0, 10.1, 10.2, 10.3, 10.4]))
        h.invoke("c1", "write", 3)
        h.invoke("c2", "read")
        h.ok("c1")
        h.info("c2")
        pairs = [(i.process, i.f, i.value, d.type, round(d.time, 3)) for i, d in h.pairs()]
        self.assertEqual(pairs, [("c1", "write", 3, "ok", 0.3), ("c2", "read", None, "info", 0.4)])
        self.assertEqual(h.ops[2].invoke_index, 0)
        self.assertEqual(h.pending(), [])

    def test_wrong_recordings_are_clear_errors(self):
        h = History()
        with self.assertRaisesRegex(HistoryError, r"expected an operation of 'c1' to be pending before its "
                                                  r"completion \(ok 1\); none is"):
            h.ok("c1", 1)
        h.invoke("c1", "read")
        with self.assertRaisesRegex(HistoryError, r"expected 'c1' to complete #0 .* before invoking 'write'"):
            h.invoke("c1", "write", 2)
        with self.assertRaisesRegex(HistoryError, r"expected a completion kind, one of ok, fail, info; got 'done'"):
            h.complete("done", "c1")

    def test_keys_allow_several_pending_operations_of_one_process(self):
        h = History()
        h.invoke("dealer", "request", "a", key=1)
        h.invoke("dealer", "request", "b", key=2)
        h.ok("dealer", "B", key=2)
        self.assertEqual([op.value for op in h.pending()], ["a"])
        self.assertIn("#1", h.format())


class TestRecordingASocket(unittest.TestCase):
    def test_a_req_socket_records_requests_and_replies(self):
        seen = {}

        class Records(samples.PongCase):
            def test_it(self):
                history = History()
                history.record(self.req)
                for n in range(3):
                    yield ("send", self.req, [], ["ping", n])
                    yield ("recv", self.req)
                seen["history"] = history

        self.assertEqual(problems(run_case(Records)), [])
        history = seen["history"]
        self.assertEqual([(op.type, op.process) for op in history.ops], [("invoke", "req"), ("ok", "req")] * 3)
        self.assertEqual(history.ops[1].value, [b'["pong", 0]'])
        self.assertTrue(request_reply(history))

    def test_a_duplicate_reply_is_recorded_and_found(self):
        seen = {}

        class Duplicates(ProcessTestCase):
            def test_it(self):
                endpoint = self.new_endpoint()
                server = self.socket(zmq.ROUTER, bind=endpoint, name="server")
                client = self.socket(zmq.DEALER, connect=endpoint, name="client")
                history = History()
                history.record(client, key=lambda frames: frames[0])
                yield ("send_raw", client, [b"r1", b"hello"])
                who, rid, body = yield ("recv_raw", server)
                for _ in range(2):  # a faulty server answers twice
                    yield ("send_raw", server, [who, rid, body.upper()])
                    yield ("recv_raw", client)
                seen["result"] = request_reply(history)

        self.assertEqual(problems(run_case(Duplicates)), [])
        result = seen["result"]
        self.assertFalse(result)
        self.assertEqual(result.problems, ["request #0 was answered twice: #1 and #2"])
        self.assertEqual([op.index for op in result.ops], [0, 1, 2])


if __name__ == "__main__":
    unittest.main()
