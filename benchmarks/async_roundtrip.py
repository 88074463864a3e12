"""Coroutine tests against the fastest bare zmq.asyncio code: round trips and per-test cost.

(a) N ping-pong round trips against a PongProc (REP on an ipc endpoint) started for
    each measurement, side by side, rounds alternating:
    - the floor: a bare zmq.asyncio REQ socket, plain awaits of send_multipart and
      recv_multipart (+ json), on a fresh event loop;
    - an async generator test's events (``yield ("send", ...)``, ``yield ("recv", ...)``);
    - a coroutine test awaiting a test socket (``await req.asyncio.send_multipart``...);
    - a coroutine test awaiting the user's own zmq.asyncio socket (from the test's
      ``asyncio_context``).
    The tests start their PongProc themselves, so the death watch (its pidfd, a reader
    of the loop) is on. Each times only its loop. On one CPU (taskset-like, ``--cpu``) and unpinned.
(b) Per test: T process tests (start PongProc, one round trip, stop message) as an
    ``async def`` test awaiting its test socket vs. the same as a generator test.

Usage: python benchmarks/async_roundtrip.py [--quick] [-n N] [--rounds R] [--tests T] [--cpu C]
The last line reads ``async round trip vs bare zmq.asyncio: X.XX (one CPU), Y.YY (unpinned)``:
the slowest of the three library rows, as a ratio of the medians to the floor.
"""
import asyncio
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
from time import thread_time

import _bench  # sets sys.path: repo root and docs/examples first
from _bench import STOP, WAIT, BenchError, median, perf_counter, require_success, run_tests, target

import zmq
import zmq.asyncio

from zmqprocesstest import ProcessTestCase
from pingpong.pongproc import PongProc

ROUNDTRIP_TARGET = 1.15
PER_TEST_TARGET = 1.1
LABELS = {"bare": "bare zmq.asyncio REQ (plain awaits)",
          "agen": "async generator test, events",
          "coro": "coroutine test, awaited test socket",
          "own": "coroutine test, own zmq.asyncio socket, watched"}


# -- (a) round trips -------------------------------------------------------------------
async def bare_loop(sock, n):
    send, recv, dumps, loads = sock.send_multipart, sock.recv_multipart, json.dumps, json.loads
    cpu, start = thread_time(), perf_counter()
    for i in range(n):
        await send([dumps(["ping", i]).encode()])
        if loads((await recv())[-1]) != ["pong", i]:
            raise BenchError(f"bare loop: unexpected reply to ping {i}")
    return perf_counter() - start, thread_time() - cpu


def run_bare(endpoint, n):
    """The floor on a fresh loop (as each test gets one), against a PongProc of its own
    (as each test starts one: a long-running PongProc answers measurably slower):
    socket, warm-up, n round trips."""
    proc = PongProc(endpoint)
    proc.daemon = True
    proc.start()
    try:
        return _run_bare(endpoint, n)
    finally:
        proc.kill()
        proc.join(WAIT)


def _run_bare(endpoint, n):
    async def main():
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.REQ)
        sock.linger = 0
        sock.connect(endpoint)
        try:
            await asyncio.wait_for(bare_loop(sock, 1), WAIT)  # connected and warm before the clock starts
            return await asyncio.wait_for(bare_loop(sock, n), WAIT + n * 0.01)
        finally:
            sock.close(linger=0)
            ctx.term()
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


class Bench(ProcessTestCase):
    """The three library loops, each against a PongProc the test started (watched: its
    pidfd is a reader of the loop); each test times only its loop."""

    n = 0
    timings = {}
    run_timeout = 120.0

    def setUp(self):
        self.proc = self.start_process(PongProc, self.endpoint)
        if self._testMethodName != "test_own":
            self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
            self.set_stop_message(self.proc, self.req, STOP)

    def done(self, name, cpu, start):
        self.timings.setdefault(name, []).append((perf_counter() - start, thread_time() - cpu))

    async def test_agen(self):
        req = self.req
        yield ("send", req, [], ["ping", -1])
        yield ("recv", req)
        cpu, start = thread_time(), perf_counter()
        for i in range(self.n):
            yield ("send", req, [], ["ping", i])
            reply = yield ("recv", req)
            if reply != [["pong", i]]:
                raise AssertionError(f"unexpected reply to ping {i}: {reply!r}")
        self.done("agen", cpu, start)

    async def test_coro(self):
        req = self.req.asyncio
        send, recv, dumps, loads = req.send_multipart, req.recv_multipart, json.dumps, json.loads
        await send([b'["ping", -1]'])
        await recv()
        cpu, start = thread_time(), perf_counter()
        for i in range(self.n):
            await send([dumps(["ping", i]).encode()])
            if loads((await recv())[-1]) != ["pong", i]:
                raise AssertionError(f"unexpected reply to ping {i}")
        self.done("coro", cpu, start)

    async def test_own(self):
        sock = self.asyncio_context.socket(zmq.REQ)
        sock.linger = 0
        sock.connect(self.endpoint)
        try:
            send, recv, dumps, loads = sock.send_multipart, sock.recv_multipart, json.dumps, json.loads
            await send([b'["ping", -1]'])
            await recv()
            cpu, start = thread_time(), perf_counter()
            for i in range(self.n):
                await send([dumps(["ping", i]).encode()])
                if loads((await recv())[-1]) != ["pong", i]:
                    raise AssertionError(f"unexpected reply to ping {i}")
            self.done("own", cpu, start)
        finally:
            sock.close(linger=0)


def run_case(name):
    before = len(Bench.timings.get(name, []))
    require_success(run_tests([Bench("test_" + name)]), f"Bench.test_{name}")
    if len(Bench.timings.get(name, [])) != before + 1:
        raise BenchError(f"Bench.test_{name} did not record its loop time")
    return Bench.timings[name][-1]


def bench_roundtrips(n, rounds, tmpdir, cpus=None):
    """Alternate the four loops; with *cpus*, this thread (so libzmq's threads and the
    PongProcs it starts) runs on those CPUs only."""
    if cpus:
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cpus)
        try:
            return bench_roundtrips(n, rounds, tmpdir)
        finally:
            os.sched_setaffinity(0, allowed)
    Bench.n, Bench.timings = n, {}
    run_bare(f"ipc://{tmpdir}/pong-warm", 1)  # warm-up (imports, first fork, caches)
    rows = {name: [] for name in LABELS}  # (wall, main-thread cpu) in us per round trip
    for r in range(rounds):
        order = [("bare", lambda r=r: run_bare(f"ipc://{tmpdir}/pong-{r}", n))] + [
            (name, lambda name=name: run_case(name)) for name in ("agen", "coro", "own")]
        if r % 2:
            order.reverse()
        for name, fn in order:
            wall, cpu = fn()
            rows[name].append((wall / n * 1e6, cpu / n * 1e6))
    return rows


def report_roundtrips(rows, rounds, where):
    """Print the rows; return the slowest library row's ratio of medians to the floor."""
    wall = {k: median([w for w, _ in v]) for k, v in rows.items()}
    cpu = {k: median([c for _, c in v]) for k, v in rows.items()}
    paired = {k: median([v[i][0] / rows["bare"][i][0] for i in range(rounds)]) for k, v in rows.items()}
    print(f"  {'':50s} {'wall us/rt':>10s} {'ratio':>6s} {'paired':>7s} {'client cpu us/rt':>17s} {'ratio':>6s}")
    for k, label in LABELS.items():
        print(f"  {label:50s} {wall[k]:10.1f} {wall[k] / wall['bare']:6.2f} {paired[k]:7.2f} "
              f"{cpu[k]:17.1f} {cpu[k] / cpu['bare']:6.2f}")
        print(f"  {'':50s} rounds (wall us/rt): {', '.join(f'{w:.1f}' for w, _ in rows[k])}")
    print("  (ratio: of the medians; paired: median of the per-round ratios; client cpu: main-thread CPU\n"
          "   time of the test side per round trip)")
    worst = max(wall[k] / wall["bare"] for k in ("agen", "coro", "own"))
    for k in ("agen", "coro", "own"):
        target(f"{LABELS[k]} <= {ROUNDTRIP_TARGET} x bare zmq.asyncio, {where}",
               wall[k] / wall["bare"] <= ROUNDTRIP_TARGET, f"wall ratio {wall[k] / wall['bare']:.2f}")
    return worst


# -- (b) per-test cost -----------------------------------------------------------------
class OnePing(ProcessTestCase):
    """A typical process test: start PongProc, one round trip, stop it with a message."""

    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, STOP)

    def test_generator(self):
        yield ("send", self.req, [], ["ping", 1])
        reply = yield ("recv", self.req)
        self.assertEqual(reply, [["pong", 1]])

    async def test_async(self):
        await self.req.asyncio.send_json(["ping", 1])
        self.assertEqual(await self.req.asyncio.recv_json(), ["pong", 1])


def suite(name, count):
    result = run_tests([OnePing(name) for _ in range(count)])
    require_success(result, f"OnePing.{name} suite")
    return result


def bench_per_test(count, rounds):
    suite("test_generator", 5), suite("test_async", 5)  # warm-up: imports, first fork
    rows = {"test_generator": [], "test_async": []}
    for r in range(rounds):
        order = list(rows)
        if r % 2:
            order.reverse()
        for name in order:
            start = perf_counter()
            suite(name, count)
            rows[name].append((perf_counter() - start) / count * 1e3)
    paired = median([a / g for a, g in zip(rows["test_async"], rows["test_generator"])])
    return {k: median(v) for k, v in rows.items()}, rows, paired


def run(args):
    n = args.n or (300 if args.quick else 3000)
    rounds = args.rounds or (3 if args.quick else 7)
    tests = args.tests or (30 if args.quick else 100)
    test_rounds = 2 if args.quick else 5
    tmpdir = tempfile.mkdtemp(prefix="zpt-bench-")
    ratios = {}
    try:
        _bench.header("zmqprocesstest async round-trip benchmark")
        placements = [("one CPU", {args.cpu}), ("unpinned", None)]
        for where, cpus in placements:
            print(f"(a) ping-pong round trips over ipc, REQ -> REP PongProc, {where}"
                  f"{f' (cpu {args.cpu})' if cpus else ''}: {rounds} alternating rounds x {n}")
            ratios[where] = report_roundtrips(bench_roundtrips(n, rounds, tmpdir, cpus), rounds, where)

        print(f"(b) per test: start PongProc, 1 round trip, stop message; {test_rounds} alternating rounds "
              f"of {tests} tests")
        med, rows, paired = bench_per_test(tests, test_rounds)
        gen, coro = med["test_generator"], med["test_async"]
        print(f"  {'':40s} {'ms/test':>8s} {'ratio':>6s} {'paired':>7s}  rounds (ms/test)")
        print(f"  {'generator process test':40s} {gen:8.2f} {1:6.2f} {1:7.2f}  "
              f"{', '.join(f'{v:.2f}' for v in rows['test_generator'])}")
        print(f"  {'async def process test':40s} {coro:8.2f} {coro / gen:6.2f} {paired:7.2f}  "
              f"{', '.join(f'{v:.2f}' for v in rows['test_async'])}")
        target(f"async process test <= {PER_TEST_TARGET} x generator process test", coro / gen <= PER_TEST_TARGET,
               f"ratio {coro / gen:.2f}")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return ratios


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=0, help="round trips per measurement (default 3000, quick 300)")
    p.add_argument("--rounds", type=int, default=0, help="alternating rounds of (a) (default 7, quick 3)")
    p.add_argument("--tests", type=int, default=0, help="tests per suite in (b) (default 100, quick 30)")
    p.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)),
                   help="CPU for the pinned run of (a) (default: the last one)")
    multiprocessing.set_start_method("fork", force=True)  # what the library and the floor assume
    found = {}
    code = _bench.main_wrapper(lambda args: found.update(run(args)), p.parse_args())
    if code == 0:
        print(f"async round trip vs bare zmq.asyncio: {found['one CPU']:.2f} (one CPU), "
              f"{found['unpinned']:.2f} (unpinned)")
    sys.exit(code)
