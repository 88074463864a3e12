"""Soak: many process tests in one unittest run; per-test time and resources must not grow.

Each test starts PongProc, does 10 round trips and stops it with the stop message.
Reports the mean per-test time of the first and of the last window (100 tests) and
their ratio (target: last within 10 % of first), and open fds, child processes,
threads, gc-tracked objects, current RSS and peak RSS (ru_maxrss) at the start (after
a short warm-up) and at the end (target: no growth; peak RSS may rise by 2 MiB at most).

Usage: python benchmarks/soak.py [--quick] [--count N] [--window W]
"""
import gc
import multiprocessing
import sys

import _bench  # sets sys.path: repo root and docs/examples first
from _bench import STOP, BenchError, median, perf_counter, resources, run_tests, require_success, target

import zmq

from zmqprocesstest import ProcessTestCase
from pingpong.pongproc import PongProc

DRIFT_TARGET = 1.10  # last window mean / first window mean
RSS_SLACK_KIB = 2048
OBJECT_SLACK = 500  # caches filling up; a per-test leak of even one object exceeds it at 1000 tests
WARMUP = 20


class TenPings(ProcessTestCase):
    def setUp(self):
        self.req = self.socket(zmq.REQ, connect=self.endpoint, name="req")
        self.proc = self.start_process(PongProc, self.endpoint)
        self.set_stop_message(self.proc, self.req, STOP)

    def test_ten_pings(self):
        for n in range(10):
            yield ("send", self.req, [], ["ping", n])
            reply = yield ("recv", self.req)
            self.assertEqual(reply, [["pong", n]])


def run(args):
    count = args.count or (200 if args.quick else 1000)
    window = args.window or max(1, min(100, count // 4))
    if count < 2 * window:
        raise BenchError(f"--count {count} must be at least twice --window {window}")
    _bench.header("zmqprocesstest soak")
    print(f"{count} tests of: start PongProc, 10 round trips, stop message; {WARMUP} warm-up tests first")
    require_success(run_tests([TenPings("test_ten_pings") for _ in range(WARMUP)]), "warm-up")
    tests = [TenPings("test_ten_pings") for _ in range(count)]  # made before the start snapshot
    gc.collect()  # a clean baseline: what the warm-up left for the cyclic GC is not counted
    before = resources()
    start = perf_counter()
    result = run_tests(tests)
    total = perf_counter() - start
    require_success(result, "soak suite")
    after = resources()
    ms = [d * 1e3 for d in result.durations]
    first, last = ms[:window], ms[-window:]
    m_first, m_last = sum(first) / window, sum(last) / window
    print(f"  {count} tests in {total:.1f} s: mean {sum(ms) / count:.2f} ms/test, median {median(ms):.2f}, "
          f"max {max(ms):.2f}")
    print(f"  first {window}: mean {m_first:.2f} ms/test (median {median(first):.2f});  last {window}: "
          f"mean {m_last:.2f} ms/test (median {median(last):.2f});  ratio last/first {m_last / m_first:.3f}")
    tenths = [ms[i * count // 10:(i + 1) * count // 10] for i in range(10)]
    print("  mean ms/test per tenth of the run: " + ", ".join(f"{sum(t) / len(t):.2f}" for t in tenths))
    cpu = [c * 1e3 for c in result.cpu]
    c_first, c_last = sum(cpu[:window]) / window, sum(cpu[-window:]) / window
    print(f"  test-side CPU (main thread): first {window} {c_first:.2f} ms/test, last {window} {c_last:.2f} ms/test, "
          f"ratio {c_last / c_first:.3f}")
    use = result.child_usage  # cumulative, one entry before the first test and after each

    def per_child(lo, hi):
        return (use[hi][0] - use[lo][0]) / (hi - lo) * 1e3, (use[hi][1] - use[lo][1]) / (hi - lo)

    (cc_first, pf_first), (cc_last, pf_last) = per_child(0, window), per_child(count - window, count)
    print(f"  each PongProc child: CPU {cc_first:.2f} -> {cc_last:.2f} ms, minor page faults {pf_first:.0f} -> "
          f"{pf_last:.0f} (first {window} -> last {window}; these grow when the forked parent heap does)")
    target(f"last {window} within {DRIFT_TARGET - 1:.0%} of first {window}", m_last / m_first <= DRIFT_TARGET,
           f"ratio {m_last / m_first:.3f}")

    print(f"  {'resource':22s} {'start':>10s} {'end':>10s} {'change':>8s}")
    labels = {"fds": "open fds", "children": "child processes", "threads": "threads",
              "objects": "gc-tracked objects", "rss_kib": "RSS KiB", "maxrss_kib": "peak RSS KiB (maxrss)"}
    for key, label in labels.items():
        print(f"  {label:22s} {before[key]:10d} {after[key]:10d} {after[key] - before[key]:+8d}")
    for key in ("fds", "children", "threads"):
        target(f"{labels[key]} do not grow", after[key] <= before[key], f"{before[key]} -> {after[key]}")
    target(f"gc-tracked objects do not grow (slack {OBJECT_SLACK})",
           after["objects"] <= before["objects"] + OBJECT_SLACK, f"{before['objects']} -> {after['objects']}")
    grown = after["maxrss_kib"] - before["maxrss_kib"]
    target(f"peak RSS grows by at most {RSS_SLACK_KIB} KiB", grown <= RSS_SLACK_KIB, f"+{grown} KiB")
    # Diagnostics: what a full collection frees now, and the cyclic garbage each test leaves
    # (objects only the cyclic GC can free: they pile up between collections and hold memory).
    freed = gc.collect()
    again = resources()
    print(f"  after gc.collect(): freed {freed} objects; open fds {again['fds']}, threads {again['threads']}, "
          f"RSS {again['rss_kib']} KiB")
    garbage = {}
    for sample in (10, 30):  # the difference cancels what a suite run leaves once
        probe = [TenPings("test_ten_pings") for _ in range(sample)]
        gc.collect()
        gc.disable()
        try:
            require_success(run_tests(probe), "cyclic-garbage probe")
            garbage[sample] = gc.collect()
        finally:
            gc.enable()
    per_test = (garbage[30] - garbage[10]) / 20
    print(f"  cyclic garbage per test: {per_test:.0f} objects (freed only by the cyclic GC, not when the test ends)")
    if after["children"]:
        raise BenchError(f"{after['children']} child process(es) still running after the suite")


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=0, help="number of tests (default 1000, quick 200)")
    p.add_argument("--window", type=int, default=0, help="tests in the first/last window (default 100, quick 50)")
    multiprocessing.set_start_method("fork", force=True)  # what the library and the floor assume
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
