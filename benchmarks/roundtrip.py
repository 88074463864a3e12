"""Round-trip and per-test cost of ProcessTestCase against the fastest bare pyzmq code.

(a) N ping-pong round trips against one running PongProc (REP on an ipc endpoint):
    raw blocking REQ send_multipart/recv_multipart + json, vs. the same loop yielded
    as ProcessTestCase events; also the same events against a PongProc the test
    started itself (so the socket waits also watch its pidfd). Rounds alternate
    and medians are reported.
(b) 100 process tests (start PongProc, one round trip, stop message) run with
    unittest vs. 100 bare multiprocessing cycles doing the same with a 2 ms
    RECONNECT_IVL (the ~8 ms floor of performance.md).

Usage: python benchmarks/roundtrip.py [--quick] [-n N] [--rounds R] [--tests T]
"""
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
from time import thread_time

import _bench  # sets sys.path: repo root and docs/examples first
from _bench import STOP, WAIT, BenchError, bare_cycle, median, perf_counter, run_tests, require_success, target

import zmq

from zmqprocesstest import ProcessTestCase
from pingpong.pongproc import PongProc

TARGET_RATIO = 1.3


# -- (a) round trips -------------------------------------------------------------------
def raw_loop(sock, n):
    """The fastest bare code: blocking multipart send/recv (RCVTIMEO bounds the wait)."""
    send, recv, dumps, loads = sock.send_multipart, sock.recv_multipart, json.dumps, json.loads
    cpu, start = thread_time(), perf_counter()
    for i in range(n):
        send([dumps(["ping", i]).encode()])
        if loads(recv()[-1]) != ["pong", i]:
            raise BenchError(f"raw loop: unexpected reply to ping {i}")
    return perf_counter() - start, thread_time() - cpu


class LoopCase(ProcessTestCase):
    """Round trips through the event loop; the generator times only the loop."""

    shared_endpoint = None  # set by the script: the running PongProc
    n = 0
    timings = []

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.shared_endpoint, name="req")

    def test_loop(self):
        req = self.req
        yield ("send", req, [], ["ping", -1])  # connected and warm before the clock starts
        yield ("recv", req)
        n = self.n
        cpu, start = thread_time(), perf_counter()
        for i in range(n):
            yield ("send", req, [], ["ping", i])
            reply = yield ("recv", req)
            if reply != [["pong", i]]:
                raise AssertionError(f"unexpected reply to ping {i}: {reply!r}")
        type(self).timings.append((perf_counter() - start, thread_time() - cpu))


class OwnProcLoopCase(LoopCase):
    """The same loop against a PongProc this test started (its pidfd is watched)."""

    timings = []

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, STOP)


def run_case(cls):
    before = len(cls.timings)
    result = run_tests([cls("test_loop")])
    require_success(result, cls.__name__)
    if len(cls.timings) != before + 1:
        raise BenchError(f"{cls.__name__} did not record its loop time")
    return cls.timings[-1]


def bench_roundtrips(n, rounds, tmpdir, cpus=None):
    """Alternate the three loops; with *cpus*, this thread (so the libzmq threads, the
    PongProcs and the test's helper threads it starts) runs on those CPUs only."""
    if cpus:
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cpus)
        try:
            return bench_roundtrips(n, rounds, tmpdir)
        finally:
            os.sched_setaffinity(0, allowed)
    endpoint = f"ipc://{tmpdir}/pong-shared"
    proc = PongProc(endpoint)
    proc.daemon = True
    proc.start()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.rcvtimeo = sock.sndtimeo = int(WAIT * 1000)
    sock.reconnect_ivl = 2
    try:
        sock.connect(endpoint)
        raw_loop(sock, 200)  # warm-up (connect, caches)
        LoopCase.shared_endpoint = endpoint
        LoopCase.n = OwnProcLoopCase.n = n
        LoopCase.timings, OwnProcLoopCase.timings = [], []
        rows = {"raw": [], "case": [], "own": []}  # (wall, main-thread cpu) in us per round trip
        for r in range(rounds):
            order = [("raw", lambda: raw_loop(sock, n)), ("case", lambda: run_case(LoopCase)),
                     ("own", lambda: run_case(OwnProcLoopCase))]
            if r % 2:
                order.reverse()
            for name, fn in order:
                wall, cpu = fn()
                rows[name].append((wall / n * 1e6, cpu / n * 1e6))
        sock.send_multipart([json.dumps(STOP).encode()])
        proc.join(WAIT)
        if proc.exitcode != 0:
            raise BenchError(f"the shared PongProc did not stop on its stop message (exit code {proc.exitcode})")
    finally:
        sock.close(linger=0)
        ctx.term()
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    return rows


# -- (b) per-test cost -----------------------------------------------------------------
class OnePingCase(ProcessTestCase):
    """A typical process test: start PongProc, one round trip, stop it with a message."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, STOP)

    def test_ping(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 1]])


def bare_suite(count, tmpdir, round_no):
    return [bare_cycle(f"ipc://{tmpdir}/bare-{round_no}-{i}") for i in range(count)]


def case_suite(count):
    result = run_tests([OnePingCase("test_ping") for _ in range(count)])
    require_success(result, "OnePingCase suite")
    return result.durations


def bench_per_test(count, rounds, tmpdir):
    case_suite(5)  # warm-up: imports, first fork
    bare_suite(5, tmpdir, "warm")
    rows = {"case": [], "bare": []}
    per_test = {"case": [], "bare": []}
    for r in range(rounds):
        order = [("case", lambda: case_suite(count)), ("bare", lambda r=r: bare_suite(count, tmpdir, r))]
        if r % 2:
            order.reverse()
        for name, fn in order:
            start = perf_counter()
            durations = fn()
            rows[name].append((perf_counter() - start) / count * 1e3)
            per_test[name].extend(d * 1e3 for d in durations)
    paired = median([c / b for c, b in zip(rows["case"], rows["bare"])])
    return {k: median(v) for k, v in rows.items()}, rows, {k: median(v) for k, v in per_test.items()}, paired


def report_roundtrips(rows, rounds, where):
    wall = {k: median([w for w, _ in v]) for k, v in rows.items()}
    cpu = {k: median([c for _, c in v]) for k, v in rows.items()}
    # Each round measures the three side by side: the per-round ratio cancels slow drifts.
    paired = {k: median([v[i][0] / rows["raw"][i][0] for i in range(rounds)]) for k, v in rows.items()}
    labels = {"raw": "raw blocking pyzmq (send/recv_multipart + json)",
              "case": "ProcessTestCase events, shared PongProc",
              "own": "ProcessTestCase events, test's own PongProc"}
    print(f"  {'':50s} {'wall us/rt':>10s} {'ratio':>6s} {'paired':>7s} {'client cpu us/rt':>17s} {'ratio':>6s}")
    for k, label in labels.items():
        print(f"  {label:50s} {wall[k]:10.1f} {wall[k] / wall['raw']:6.2f} {paired[k]:7.2f} "
              f"{cpu[k]:17.1f} {cpu[k] / cpu['raw']:6.2f}")
        print(f"  {'':50s} rounds (wall us/rt): {', '.join(f'{w:.1f}' for w, _ in rows[k])}")
    print("  (ratio: of the medians; paired: median of the per-round ratios; client cpu: main-thread CPU\n"
          "   time of the test side per round trip, i.e. the library's own work without the wait)")
    target(f"round trip through events <= {TARGET_RATIO} x raw, {where}", wall["case"] / wall["raw"] <= TARGET_RATIO,
           f"wall ratio {wall['case'] / wall['raw']:.2f}")
    target(f"round trip with a watched process <= {TARGET_RATIO} x raw, {where}",
           wall["own"] / wall["raw"] <= TARGET_RATIO, f"wall ratio {wall['own'] / wall['raw']:.2f}")



def run(args):
    n = args.n or (500 if args.quick else 5000)
    rounds = args.rounds or (3 if args.quick else 7)
    tests = args.tests or (50 if args.quick else 100)
    test_rounds = 1 if args.quick else 3
    tmpdir = tempfile.mkdtemp(prefix="zpt-bench-")
    try:
        _bench.header("zmqprocesstest roundtrip benchmark")
        placements = [("on one CPU", {args.cpu}), ("where the scheduler puts them", None)]
        if args.cpu < 0:
            placements = placements[1:]
        for where, cpus in placements:
            print(f"(a) ping-pong round trips over ipc, REQ -> REP PongProc, test side and PongProc {where}"
                  f"{f' (cpu {args.cpu})' if cpus else ''}: {rounds} alternating rounds x {n}")
            report_roundtrips(bench_roundtrips(n, rounds, tmpdir, cpus), rounds, where)

        print(f"(b) per test: start PongProc, 1 round trip, stop message; {test_rounds} alternating round(s) "
              f"of {tests} tests vs {tests} bare cycles (RECONNECT_IVL 2 ms)")
        med, rows, per_test, paired = bench_per_test(tests, test_rounds, tmpdir)
        base = med["bare"]
        print(f"  {'':40s} {'ms/test':>8s} {'ratio':>6s} {'paired':>7s} {'median single ms':>17s}  rounds (ms/test)")
        print(f"  {'bare multiprocessing + pyzmq cycle':40s} {base:8.2f} {1:6.2f} {1:7.2f} {per_test['bare']:17.2f}  "
              f"{', '.join(f'{v:.2f}' for v in rows['bare'])}")
        print(f"  {'ProcessTestCase test via unittest':40s} {med['case']:8.2f} {med['case'] / base:6.2f} {paired:7.2f} "
              f"{per_test['case']:17.2f}  {', '.join(f'{v:.2f}' for v in rows['case'])}")
        print("  (ms/test: suite wall time / tests, median over rounds; paired: median of the per-round ratios)")
        target(f"per-test cost <= {TARGET_RATIO} x bare cycle", med["case"] / base <= TARGET_RATIO,
               f"ratio {med['case'] / base:.2f}")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=0, help="round trips per measurement (default 5000, quick 500)")
    p.add_argument("--rounds", type=int, default=0, help="alternating rounds of (a) (default 7, quick 3)")
    p.add_argument("--tests", type=int, default=0, help="tests per suite in (b) (default 100, quick 50)")
    p.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)),
                   help="CPU for the pinned run of (a) (default: the last one; -1: only the unpinned run)")
    multiprocessing.set_start_method("fork", force=True)  # what the library and the floor assume
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
