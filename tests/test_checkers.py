"""Tests of checkers.py: each contract holds for a good history and names what breaks it."""
import random
import unittest

from zmqprocesstest.checkers import CheckFailed, Counter, Register, delivery, linearizable, ops_in_flight, request_reply
from zmqprocesstest.history import History


def history_of(*entries):
    """A history from ``(kind, process, f_or_value, value)`` tuples, in order."""
    h = History()
    for kind, process, *rest in entries:
        if kind == "invoke":
            h.invoke(process, *rest)
        else:
            h.complete(kind, process, *rest)
    return h


class TestRequestReply(unittest.TestCase):
    def test_answered_and_unanswered_requests_hold(self):
        h = history_of(("invoke", "c", "request", 1), ("ok", "c", "r1"), ("invoke", "c", "request", 2), ("info", "c"))
        self.assertTrue(request_reply(h))

    def test_a_reply_without_a_request_is_named(self):
        h = history_of(("invoke", "c", "request", 1), ("ok", "c", "r1"))
        h._add("ok", "c", "request", "r?", None)  # as History.record stores a reply nobody asked for
        result = request_reply(h)
        self.assertFalse(result)
        self.assertEqual(result.problems, ["request #0 was answered twice: #1 and #2"])
        h2 = History()
        h2._add("ok", "c", "request", "r?", None)
        self.assertEqual(request_reply(h2).problems, ["reply #0 answers no request of 'c'"])
        with self.assertRaisesRegex(CheckFailed, r"does not hold\n  reply #0 answers no request of 'c'\n"
                                                 r"  operations involved .*\n    #0 \+[\d.]+s c ok request 'r\?'"):
            request_reply(h2).assert_valid()


class TestDelivery(unittest.TestCase):
    def pipeline(self, received, sent=(1, 2, 3), unknown=()):
        h = History()
        for n in sent:
            h.invoke("producer", "send", n)
            h.ok("producer")
        for n in unknown:
            h.invoke("producer", "send", n)
            h.info("producer")
        for n in received:
            h._add("ok", "consumer", "recv", n, None)
        return h

    def test_exactly_once_holds(self):
        self.assertTrue(delivery(self.pipeline([3, 1, 2]), at_most_once=True, at_least_once=True))

    def test_a_duplicate_breaks_at_most_once_only(self):
        h = self.pipeline([1, 2, 2, 3])
        self.assertFalse(delivery(h))
        self.assertTrue(delivery(h, at_most_once=False, at_least_once=True))
        self.assertRegex(delivery(h).problems[0], r"message 2 was received 2 times: #\d+, #\d+")

    def test_a_loss_breaks_at_least_once_only(self):
        h = self.pipeline([1, 3])
        self.assertTrue(delivery(h))
        self.assertEqual(delivery(h, at_least_once=True).problems,
                         ["message 2 was sent (#2, confirmed) but never received"])

    def test_unknown_sends_may_or_may_not_arrive_and_strangers_are_named(self):
        self.assertTrue(delivery(self.pipeline([1, 2, 3, 4], unknown=[4, 5]), at_least_once=True))
        self.assertEqual(delivery(self.pipeline([1, 2, 3, 9])).problems, ["message 9 was received (#9) but never sent"])


class TestLinearizable(unittest.TestCase):
    def test_concurrent_register_operations_that_can_be_ordered(self):
        h = history_of(("invoke", "a", "write", 1), ("invoke", "b", "read"), ("ok", "b", 1), ("ok", "a"),
                       ("invoke", "b", "read"), ("ok", "b", 1))
        self.assertTrue(linearizable(h, Register(0)))
        h2 = history_of(("invoke", "a", "write", 1), ("invoke", "b", "read"), ("ok", "b", 0), ("ok", "a"))
        self.assertTrue(linearizable(h2, Register(0)))  # the read took effect before the write

    def test_a_stale_read_after_the_write_completed_is_named(self):
        h = history_of(("invoke", "a", "write", 1), ("ok", "a"), ("invoke", "b", "read"), ("ok", "b", 0))
        result = linearizable(h, Register(0))
        self.assertFalse(result)
        self.assertRegex(result.problems[0], r"no order of the operations explains read None -> 0 by 'b' \(#2\.\.#3\); "
                                             r"the longest order found takes 1 operations to state 1")
        self.assertEqual([op.index for op in result.ops], [2, 3])

    def test_unknown_outcomes_may_or_may_not_have_happened_and_failures_did_not(self):
        h = history_of(("invoke", "a", "incr", 1), ("info", "a"), ("invoke", "b", "read"), ("ok", "b", 0),
                       ("invoke", "b", "read"), ("ok", "b", 1))
        self.assertTrue(linearizable(h, Counter()))
        h2 = history_of(("invoke", "a", "incr", 1), ("fail", "a"), ("invoke", "b", "read"), ("ok", "b", 1))
        self.assertFalse(linearizable(h2, Counter()))

    def test_compare_and_set(self):
        h = history_of(("invoke", "a", "cas", (0, 5)), ("ok", "a"), ("invoke", "b", "cas", (0, 7)), ("ok", "b"))
        self.assertFalse(linearizable(h, Register(0)))

    def test_a_budget_gives_undecided_never_a_wrong_answer(self):
        h = self.random_counter_history(random.Random(1), 200, in_flight=8)
        self.assertIsNone(linearizable(h, Counter(), max_states=50).valid)
        self.assertTrue(linearizable(h, Counter()))

    def test_a_few_hundred_operations_with_several_in_flight(self):
        rng = random.Random(7)
        h = self.random_counter_history(rng, 300, in_flight=6)
        self.assertLessEqual(ops_in_flight(h), 6)
        self.assertTrue(linearizable(h, Counter()))

    @staticmethod
    def random_counter_history(rng, count, in_flight):
        """A correct history: each increment takes effect at its completion, and reads
        see the count at theirs."""
        h, value, pending = History(), 0, []
        for n in range(count):
            if len(pending) < in_flight and (not pending or rng.random() < 0.6):
                process = f"p{n}"
                f = rng.choice(["incr", "read"])
                h.invoke(process, f, 1 if f == "incr" else None)
                pending.append((process, f))
            else:
                process, f = pending.pop(rng.randrange(len(pending)))
                if f == "incr":
                    value += 1
                    h.ok(process)
                else:
                    h.ok(process, value)
        for process, _ in pending:
            h.info(process)
        return h


if __name__ == "__main__":
    unittest.main()
