"""What the HTML report costs per test: report directory off, on, and on with --report-all.

The same suite of typical process tests (start PongProc, one round trip, stop message,
as in guard_cost.py) runs with ``ZMQPROCESSTEST_REPORT_DIR`` unset, set (passing tests
write one result line, no page), and set with ``ZMQPROCESSTEST_REPORT_ALL=1`` (every
passing test writes its page: SVG diagram, timeline), in alternating rounds in one run.
Budget: +0.5 ms per passing test with --report-all. With the directory off a test pays
one environment lookup; the timeline's recording is in every configuration (it is the
failure report), so roundtrip.py measures it.
"""
import multiprocessing
import os
import shutil
import sys
import tempfile

import _bench
from _bench import median, perf_counter, require_success, run_tests, target
from roundtrip import OnePingCase
from zmqprocesstest.report_html import _write, finish_dir, page_html
from zmqprocesstest.timeline import Timeline

BUDGET_MS = 0.5


def measure(count, env):
    saved = {k: os.environ.get(k) for k in ("ZMQPROCESSTEST_REPORT_DIR", "ZMQPROCESSTEST_REPORT_ALL")}
    os.environ.update(env)
    try:
        start = perf_counter()
        result = run_tests([OnePingCase("test_ping") for _ in range(count)])
        elapsed = perf_counter() - start
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    require_success(result, "OnePing suite")
    return elapsed / count * 1e3


def page_cost(directory, count=300):
    """ms to draw and write the page of a typical passing test's timeline (measured directly:
    the suite figures above move by more than that between rounds on a loaded machine)."""
    line = Timeline(20)
    for i, (kind, source, data) in enumerate([
            ("start", "pongproc", "pid 123"), ("sent", "req", [b'["ping", 1]']), ("received", "req", [b'["pong", 1]']),
            ("stop", "pongproc", "stop message ['plzdiekthxbye', None]"), ("sent", "req", [b'["plzdiekthxbye"]']),
            ("exit", "pongproc", "exit code 0")]):
        line.entries.append((line.start + i * 1e-3, kind, source, data))
    line.lane("req", "socket", "connect ipc:///tmp/zpt-x/1")
    line.lane("pongproc", "process")
    start = perf_counter()
    for i in range(count):
        _write(os.path.join(directory, "direct", f"{i}.html"),
               page_html("bench.Case.test_ping", "passed", 0.01, line, ""))
    return (perf_counter() - start) / count * 1e3


def run(args):
    count = args.tests or (40 if args.quick else 200)
    rounds = 2 if args.quick else 6
    _bench.header("zmqprocesstest HTML report cost benchmark")
    directory = tempfile.mkdtemp(prefix="zpt-report-bench-")
    try:
        measure(5, {})  # warm-up
        configs = [("report dir off", {}), ("report dir on", {"ZMQPROCESSTEST_REPORT_DIR": directory}),
                   ("on + --report-all", {"ZMQPROCESSTEST_REPORT_DIR": directory, "ZMQPROCESSTEST_REPORT_ALL": "1"})]
        rows = {name: [] for name, _ in configs}
        for r in range(rounds):
            for name, env in (configs if r % 2 == 0 else configs[::-1]):
                rows[name].append(measure(count, env))
        pages = len(os.listdir(os.path.join(directory, "tests")))
        direct = median([page_cost(directory) for _ in range(3)])
        finish_dir(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"{count} tests x {rounds} alternating rounds; each: start PongProc, one round trip, stop message")
    for name, values in rows.items():
        print(f"  {name:20s} {median(values):7.3f} ms/test  rounds: {', '.join(f'{v:.2f}' for v in values)}")
    on = median([a - b for a, b in zip(rows["report dir on"], rows["report dir off"])])
    every = median([a - b for a, b in zip(rows["on + --report-all"], rows["report dir off"])])
    print(f"  report dir on (result line only): {on:+.3f} ms/test (median of per-round differences)")
    print(f"  on + --report-all (a page each):  {every:+.3f} ms/test ({pages} pages written)")
    print(f"  a page drawn and written, measured directly: {direct:.3f} ms/test (in {tempfile.gettempdir()})")
    target(f"--report-all <= +{BUDGET_MS} ms per passing test (page drawn and written)", direct <= BUDGET_MS,
           f"{direct:+.3f} ms; suite difference {every:+.3f} ms")


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0])
    p.add_argument("--tests", type=int, default=0, help="tests per suite (default 200, quick 40)")
    multiprocessing.set_start_method("fork", force=True)
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
