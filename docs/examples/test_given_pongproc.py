"""Generated payloads: Hypothesis's ``@given`` on a generator test of the pong process.

Each example gets what ``setUp`` makes afresh (a PongProc, a REQ socket, an endpoint),
released after it as after a test; ``deadline=None`` because an example's time includes
starting and stopping its process (``run_timeout`` bounds the whole test, every example).
"""
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqprocesstest import ProcessTestCase, process
from pingpong.pongproc import PongProc

#: JSON values a ping may carry.
PAYLOADS = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=8)


@process
class TestGeneratedPings(ProcessTestCase):
    """Every ping is answered with a pong carrying the same payload."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, ["plzdiekthxbye", None])

    @settings(max_examples=100, deadline=None)
    @given(payload=PAYLOADS)
    def test_pong_echoes_the_payload(self, payload):
        yield ("send", self.req, [], ["ping", payload])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", payload]])
