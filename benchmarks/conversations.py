"""Cost of recorded conversations: replay speed, and what recording adds to a tap.

(a) Replay: a recording of N ping-pong exchanges (2 N messages) replayed by the
    ``replay`` event over a REQ test socket against a running PongProc (REP, ipc),
    inside a process test; the replay alone is timed (not the test's set-up). Median
    over R rounds, in messages (sent and received) a second.
(b) Recording: N round trips of a plain pyzmq REQ client (the user's own, not a test
    socket) to PongProc through a tap, with and without ``record=``, in alternating
    rounds inside process tests; the median per-round ratio of the round-trip times, by
    the wall clock and by the CPU time of the test's process (its thread and the tap's:
    what recording costs, and steadier than the wall clock on a loaded machine).

Usage: python benchmarks/conversations.py [--quick] [-n N] [--rounds R]
"""
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

import _bench  # sets sys.path: repo root and docs/examples first
from _bench import STOP, median, perf_counter, target

import zmq

from zmqprocesstest import ProcessTestCase
from pingpong.pongproc import PongProc

REPLAY_TARGET = 5000  # messages a second, at least
RECORD_TARGET = 1.10  # round trip through a recording tap / through a tap, at most


def write_recording(path, n):
    with open(path, "w") as f:
        f.write(json.dumps({"conversation": 1, "codec": "json", "client": "REQ", "server": "REP"}) + "\n")
        for i in range(n):
            f.write(json.dumps({"t": 0.0, "dir": "to_server", "conn": 1, "frames": ["", {"json": ["ping", i]}]}) + "\n")
            f.write(json.dumps({"t": 0.0, "dir": "to_client", "conn": 1, "frames": ["", {"json": ["pong", i]}]}) + "\n")


def replay_case(path, timings):
    class Replay(ProcessTestCase):
        def setUp(self):
            self.req = self.socket(zmq.REQ, connect=self.endpoint)
            self.proc = self.start_process(PongProc, self.endpoint)
            self.set_stop_message(self.proc, self.req, STOP)

        def test_replay(self):
            start = perf_counter()
            result = yield ("replay", self.req, path)
            timings.append((perf_counter() - start, len(result.sent) + len(result.received)))

    return Replay("test_replay")


def tap_case(n, record, timings, tmpdir):
    class Tapped(ProcessTestCase):
        def setUp(self):
            self.proc = self.start_process(PongProc, self.endpoint)
            kwargs = {"record": os.path.join(tmpdir, "tapped.jsonl")} if record else {}
            self.link = self.tap(self.endpoint, name="client", **kwargs)
            self.ctx = zmq.Context()
            self.addCleanup(self.ctx.term)
            self.client = self.ctx.socket(zmq.REQ)
            self.addCleanup(self.client.close, 0)
            self.client.rcvtimeo = self.client.sndtimeo = int(_bench.WAIT * 1000)
            self.client.connect(self.link.endpoint)

        def test_roundtrips(self):
            send, recv, dumps = self.client.send_multipart, self.client.recv_multipart, json.dumps
            send([dumps(["ping", -1]).encode()])
            recv()  # connected
            start, cpu = perf_counter(), time.process_time()
            for i in range(n):
                send([dumps(["ping", i]).encode()])
                recv()
            timings.append(((perf_counter() - start) / n, (time.process_time() - cpu) / n))

    return Tapped("test_roundtrips")


def run(args):
    n = args.n or (500 if args.quick else 2500)
    rounds = args.rounds or (3 if args.quick else 5)
    tmpdir = tempfile.mkdtemp(prefix="zpt-bench-")
    try:
        _bench.header("zmqprocesstest recorded conversations benchmark")
        path = os.path.join(tmpdir, "pings.jsonl")
        write_recording(path, n)
        print(f"(a) replay of {2 * n} messages (REQ -> REP PongProc over ipc), {rounds} rounds")
        timings = []
        for _ in range(rounds):
            _bench.require_success(_bench.run_tests([replay_case(path, timings)]), "replay")
        rates = [count / seconds for seconds, count in timings]
        print(f"  median {median(rates):,.0f} messages/s (min {min(rates):,.0f}, max {max(rates):,.0f})")
        target(f"replay >= {REPLAY_TARGET} messages/s", median(rates) >= REPLAY_TARGET,
               f"median {median(rates):,.0f} messages/s")

        print(f"(b) {n} round trips of a pyzmq REQ client through a tap to PongProc (ipc), with and without "
              f"record=, {rounds} alternating rounds")
        plain, recorded = [], []
        for round_ in range(rounds):  # alternating which goes first
            for record in ((False, True) if round_ % 2 == 0 else (True, False)):
                _bench.require_success(_bench.run_tests([tap_case(n, record, recorded if record else plain, tmpdir)]),
                                       "recording tap" if record else "tap")
        for what, i in (("wall clock", 0), ("CPU of the test's process (its thread and the tap's)", 1)):
            ratios = [r[i] / p[i] for r, p in zip(recorded, plain)]
            print(f"  {what}: tap {median([p[i] for p in plain]) * 1e6:.1f} us, recording tap "
                  f"{median([r[i] for r in recorded]) * 1e6:.1f} us per round trip (medians); per-round ratio "
                  f"median {median(ratios):.3f}")
            target(f"recording adds at most {RECORD_TARGET - 1:.0%} to a tap's round trip ({what})",
                   median(ratios) <= RECORD_TARGET, f"ratio {median(ratios):.3f}")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0], default_deadline=120)
    p.add_argument("-n", type=int, default=0, help="exchanges per measurement (default 2500, quick 500)")
    p.add_argument("--rounds", type=int, default=0, help="rounds (default 5, quick 3)")
    multiprocessing.set_start_method("fork", force=True)  # what the library and the other benchmarks assume
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
