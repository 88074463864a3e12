"""Cost per example of a Hypothesis @given process test against a single process test.

N examples of one @given generator test of PongProc (each example: its own PongProc
started in setUp, one round trip with a generated payload, the stop message), run as
one test by unittest, vs. N single process tests doing the same with a fixed payload.
Rounds alternate; it reports ms per example and per test, their ratio and the median
per-round ratio. Target: an example costs at most 1.2x a single process test.

Usage: python benchmarks/given_cost.py [--quick] [-n N] [--rounds R]
"""
import multiprocessing
import sys

import _bench  # sets sys.path: repo root and docs/examples first
from _bench import STOP, median, perf_counter, require_success, run_tests, target

import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqprocesstest import ProcessTestCase
from pingpong.pongproc import PongProc

TARGET_RATIO = 1.2
EXAMPLES = 100


class _Pong(ProcessTestCase):
    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, STOP)


class OnePing(_Pong):
    """A single process test."""

    def test_ping(self):
        yield ("send", self.req, [], ["ping", "payload"])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", "payload"]])


def given_case(n):
    """A fresh class (Hypothesis wants one executor per @given test) with an n-example test."""

    class GivenPing(_Pong):
        @settings(max_examples=n, deadline=None, database=None)
        @given(payload=st.text(max_size=20))
        def test_ping(self, payload):
            yield ("send", self.req, [], ["ping", payload])
            reply = yield ("recv", self.req)
            self.assertEqual(reply, [["pong", payload]])

    return GivenPing


def per_example(n):
    cls = given_case(n)
    start = perf_counter()
    require_success(run_tests([cls("test_ping")]), "@given test")
    return (perf_counter() - start) / n * 1e3


def per_test(n):
    start = perf_counter()
    require_success(run_tests([OnePing("test_ping") for _ in range(n)]), "single tests")
    return (perf_counter() - start) / n * 1e3


def run(args):
    n = args.n or (30 if args.quick else EXAMPLES)
    rounds = args.rounds or (1 if args.quick else 5)
    _bench.header("zmqprocesstest @given cost benchmark")
    per_test(5)  # warm-up: imports, first fork, Hypothesis's first draw
    per_example(5)
    rows = {"given": [], "single": []}
    for r in range(rounds):
        order = [("given", per_example), ("single", per_test)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            rows[name].append(fn(n))
    med = {k: median(v) for k, v in rows.items()}
    paired = median([g / s for g, s in zip(rows["given"], rows["single"])])
    print(f"{n} examples of one @given test vs {n} single process tests (PongProc started per example/test, "
          f"one round trip, stop message); {rounds} alternating round(s)")
    print(f"  {'':36s} {'ms each':>8s} {'ratio':>6s} {'paired':>7s}  rounds (ms each)")
    print(f"  {'single process test':36s} {med['single']:8.2f} {1:6.2f} {1:7.2f}  "
          f"{', '.join(f'{v:.2f}' for v in rows['single'])}")
    print(f"  {'example of a @given process test':36s} {med['given']:8.2f} {med['given'] / med['single']:6.2f} "
          f"{paired:7.2f}  {', '.join(f'{v:.2f}' for v in rows['given'])}")
    ratio = med["given"] / med["single"]
    target(f"cost per example <= {TARGET_RATIO} x a single process test", ratio <= TARGET_RATIO,
           f"ratio {ratio:.2f}, paired {paired:.2f}")


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=0, help=f"examples and tests per round (default {EXAMPLES}, quick 30)")
    p.add_argument("--rounds", type=int, default=0, help="alternating rounds (default 5, quick 1)")
    multiprocessing.set_start_method("fork", force=True)
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
