"""A checked history: concurrent clients, a lossy link, and a linearizability check of the counter.

Three clients send increments and reads at once through a link that loses a fifth of
the replies (seeded: the same replies each run). A client whose reply is lost does not
know whether its increment happened: the history records that as ``info``, and the
checker decides whether *some* order of the operations explains every read.
"""
import random

import zmq

from zmqprocesstest import ProcessTestCase, process
from zmqprocesstest.checkers import Counter, linearizable
from zmqprocesstest.history import History
from counter.service import CounterProc


@process
class TestCounterHistory(ProcessTestCase):
    timeout = 2.0

    def setUp(self):
        state_file = self.endpoint[len("ipc://"):] + ".state"
        self.proc = self.start_process(CounterProc, self.endpoint, state_file)
        self.link = self.fault_link(self.endpoint)
        self.clients = [self.socket(zmq.DEALER, connect=self.link.endpoint, name=f"c{i}") for i in range(3)]

    def test_concurrent_increments_and_reads_are_linearizable(self):
        history, rng = History(), random.Random(5)
        yield ("loss", self.link, 0.2, "to_client", None, 7)  # seeded: the same replies are lost each run
        for round_no in range(20):
            for n, client in enumerate(self.clients):  # all three in flight at once
                f = rng.choice(["incr", "read"])
                history.invoke(n, f, 1 if f == "incr" else None)
                # the service sends the header frames back: they say which request a reply answers
                yield ("send", client, [str(round_no).encode()], [f, 1 if f == "incr" else None])
            for n, client in enumerate(self.clients):
                reply = yield from self.reply_to(client, str(round_no).encode())
                if reply is None:  # lost: it may or may not have happened
                    history.info(n)
                else:
                    history.ok(n, reply[1] if reply[0] == "value" else None)
        self.assertGreater(self.link.stats["to_client"].lost_messages, 0)
        linearizable(history, Counter()).assert_valid()

    def reply_to(self, client, request_id):
        """The reply to *request_id*, or None if none comes within 0.1 s (a late one to an
        earlier request is passed over)."""
        while True:
            try:
                header, body = yield ("recv", client, -1, 0.1)
            except AssertionError:
                return None
            if header == request_id:
                return body
