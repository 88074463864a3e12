"""A stateful process test: Hypothesis generates increments, reads, restarts and partitions.

The machine drives a real counter service (``counter/service.py``) through a fault link,
keeps the count it expects, and checks every answer against it. Each run of the
machine starts a service of its own; Hypothesis runs many, each a different sequence of
steps, and shrinks a failing one to the fewest steps that still fail.

``ZMQPROCESSTEST_COUNTER_RUNS`` sets how many runs (default 25; 200 for the how-to's proof).
"""
import os

import zmq
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from zmqprocesstest.stateful import ProcessStateMachine
from counter.service import CounterProc

RUNS = int(os.environ.get("ZMQPROCESSTEST_COUNTER_RUNS", "25"))


class CounterMachine(ProcessStateMachine):
    """Increments, reads, restarts and partitions against one counter service per run."""

    timeout = 2.0  # a lost answer fails the step in 2 s
    transcript_length = 60  # the report shows the steps, messages and connections of a whole run
    planted_bug = False

    def setup(self):
        self.state_file = self.endpoint[len("ipc://"):] + ".state"  # in the run's private directory
        self.proc = self.start_process(CounterProc, self.endpoint, self.state_file, self.planted_bug)
        self.link = self.fault_link(self.endpoint)
        self.client = self.socket(zmq.DEALER, name="client", reconnect_ivl=2)
        self.monitor(self.client)  # before it connects: the monitor sees every connection
        self.client.connect(self.link.endpoint)
        self.count = 0  # what the service should say
        self.partitioned = False
        self.stale = False  # the service restarted while partitioned: the client's connection is dead
        # The steps start from a connected client, so a restart always ends a connection
        # the client had (connecting takes a moment, and the first step may be a restart).
        yield ("wait_handshake", self.client)

    @precondition(lambda self: not self.partitioned)
    @rule(n=st.integers(1, 3))
    def increment(self, n):
        yield ("send", self.client, [b""], ["incr", n])
        self.count += n
        reply = yield ("recv", self.client)
        assert reply == [b"", ["ok", self.count]], f"expected ['ok', {self.count}], got {reply}"

    @precondition(lambda self: not self.partitioned)
    @rule()
    def read(self):
        yield ("send", self.client, [b""], ["read", None])
        reply = yield ("recv", self.client)
        assert reply == [b"", ["value", self.count]], f"expected ['value', {self.count}], got {reply}"

    @rule()
    def restart(self):
        self.proc = yield ("restart", self.proc)
        if self.partitioned:
            self.stale = True  # the client hears of it when the link heals
        else:
            yield from self.reconnected()

    def reconnected(self):
        """Wait until the client has lost its connection and made a new one (to the new service)."""
        yield ("wait_disconnected", self.client)
        yield ("wait_handshake", self.client)

    @precondition(lambda self: not self.partitioned)
    @rule()
    def partition(self):
        yield ("partition", self.link)
        self.partitioned = True

    @precondition(lambda self: self.partitioned)
    @rule()
    def heal(self):
        yield ("heal", self.link)
        self.partitioned = False
        if self.stale:
            self.stale = False
            yield from self.reconnected()
        self.stale = False  # the service restarted while partitioned: the client's connection is dead

    @invariant()
    def the_link_is_as_the_steps_left_it(self):
        assert self.link.state.startswith("partitioned") == self.partitioned, self.link.state


CounterMachine.TestCase.settings = settings(max_examples=RUNS, stateful_step_count=8, deadline=None)
CounterMachineTestCase = CounterMachine.TestCase  # the class's own name: nose2's mp workers find it by it
