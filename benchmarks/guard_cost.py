"""What the never-orphan bookkeeping costs per test: guardian and subreaper on vs off.

The same suite of typical process tests (start PongProc, one round trip, stop message)
runs with the bookkeeping as shipped, and with it replaced by no-ops (no group or
directory registered with the guardian, no token in a command's environment, no
subreaper, no scan for descendants), in alternating rounds in one run. The budget is
0.5 ms per test. The hard timeout (an itimer armed for setUp, the test, an overridden
tearDown and each cleanup, each block also watched by the kept watchdog thread: a lock
and a list append and remove, no wake-up) is measured the same way.
"""
import multiprocessing
import sys
from unittest import mock

import _bench
from _bench import median, perf_counter, require_success, run_tests, target
from roundtrip import OnePingCase  # the typical process test the per-test cost is measured on
from zmqprocesstest.processes import _guardian, _reaper
from zmqprocesstest import case

BUDGET_MS = 0.5


def without_guards():
    """Patches that turn the guardian and subreaper bookkeeping into no-ops."""
    noop = lambda *args, **kwargs: None  # noqa: E731
    return [mock.patch.object(_guardian, name, noop) for name in ("watch_group", "forget_group", "watch_path",
                                                                 "forget_path")] + [
        mock.patch.object(_guardian, "child_env", lambda env=None: dict(env or {})),
        mock.patch.object(_reaper, "become_subreaper", lambda: False),
        mock.patch.object(_reaper, "new_descendants", lambda before, known: []),
    ]


class _NoTimer:
    def __init__(self, *args):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def check(self, event=None):
        return None


def without_hard_timeout():
    # case.py bounds every phase: setUp, the test, tearDown and each cleanup.
    return [mock.patch.object(case, "hard_timeout", _NoTimer)]


def measure(count, patches=()):
    for patch in patches:
        patch.start()
    try:
        start = perf_counter()
        result = run_tests([OnePingCase("test_ping") for _ in range(count)])
        elapsed = perf_counter() - start
    finally:
        for patch in patches:
            patch.stop()
    require_success(result, "OnePing suite")
    return elapsed / count * 1e3


def run(args):
    count = args.tests or (40 if args.quick else 200)
    rounds = 2 if args.quick else 6
    _bench.header("zmqprocesstest bookkeeping cost benchmark")
    measure(5)  # warm-up: imports, the guardian's start
    configs = [("as shipped", lambda: ()), ("no guardian/subreaper", without_guards),
               ("no hard timeout", without_hard_timeout)]
    rows = {name: [] for name, _ in configs}
    for r in range(rounds):
        for name, patches in (configs if r % 2 == 0 else configs[::-1]):
            rows[name].append(measure(count, patches()))
    base = {name: median(values) for name, values in rows.items()}
    print(f"{count} tests x {rounds} alternating rounds; each: start PongProc, one round trip, stop message")
    for name, values in rows.items():
        print(f"  {name:24s} {base[name]:7.3f} ms/test  rounds: {', '.join(f'{v:.2f}' for v in values)}")
    guard = median([a - b for a, b in zip(rows["as shipped"], rows["no guardian/subreaper"])])
    timer = median([a - b for a, b in zip(rows["as shipped"], rows["no hard timeout"])])
    print(f"  guardian + subreaper bookkeeping: {guard:+.3f} ms/test (median of per-round differences)")
    print(f"  hard per-test timeout:            {timer:+.3f} ms/test")
    target(f"guardian + subreaper bookkeeping <= {BUDGET_MS} ms per test", guard <= BUDGET_MS, f"{guard:+.3f} ms")


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0])
    p.add_argument("--tests", type=int, default=0, help="tests per suite (default 200, quick 40)")
    multiprocessing.set_start_method("fork", force=True)
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
