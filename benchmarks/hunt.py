"""Hunting the broker race (issue 31): repeats to the first failure, quiet and under --stress.

Each hunt is ``python -m zmqprocesstest --repeat 300 --until-failure [--stress]`` on
``tests/samples/broker_race_sample.py`` (a DEALER worker prints "ready" right after a
``send()`` that only queues, while the ROUTER broker may bind after it connects). It
prints the repeat of each hunt's first failure and the medians. Targets: the median
under ``--stress`` is at most half the quiet one (20 hunts each); a hunt of the whole
module (its racy class last; round by round, the default) finds the race within 5
rounds (median of 5 hunts) and takes at most 10x the time of naming the class; the fixed
sample passes 300 stressed repeats. Stressed hunts use the seeds 1, 2, 3... so a run is
repeatable (the scheduling of the machine is not).
"""
import os
import re
import subprocess
import sys
import time

import _bench
from _bench import median, target

MODULE = "tests.samples.broker_race_sample"
CLASS = MODULE + ".TestWorkerRegistration"
FIXED = "tests.samples.broker_race_fixed_sample"
REPEATS = 300
_FOUND = re.compile(r"first failure: \S+\n  test \S+, repeat (\d+) of \d+")


def hunt(target_name, stress, seed, timeout=120):
    """(repeat of the first failure or None, seconds) of one hunt in a child runner."""
    argv = [sys.executable, "-m", "zmqprocesstest", "--repeat", str(REPEATS), "--until-failure"]
    if stress:
        argv += ["--stress", "--seed", str(seed)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZMQPROCESSTEST_")}
    started = time.perf_counter()
    done = subprocess.run(argv + [target_name], cwd=_bench.REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    seconds = time.perf_counter() - started
    found = _FOUND.search(done.stderr)
    if done.returncode != 0 and found is None:
        raise _bench.BenchError(f"{target_name}: failed without a first failure:\n{done.stderr[-2000:]}")
    return (int(found.group(1)) if found else None), seconds


def series(label, target_name, stress, hunts):
    rows = [hunt(target_name, stress, seed) for seed in range(1, hunts + 1)]
    repeats = [r if r is not None else REPEATS + 1 for r, _ in rows]
    print(f"  {label:40s} median {median(repeats):5.1f}  repeats to the first failure: "
          f"{' '.join(str(r) for r in repeats)}")
    return repeats, [s for _, s in rows]


def run(args):
    hunts = 2 if args.quick else args.hunts  # quick: a smoke run (CI); the proof is TestHuntingTheRace
    _bench.header("zmqprocesstest hunting benchmark")
    print(f"{hunts} hunts each, --repeat {REPEATS} --until-failure, {CLASS}")
    quiet, _ = series("quiet", CLASS, False, hunts)
    stressed, class_seconds = series("--stress", CLASS, True, hunts)
    target("median under --stress <= half the quiet median", median(stressed) <= median(quiet) / 2,
           f"{median(stressed):g} vs {median(quiet):g}")
    module_hunts = min(5, hunts)
    rounds, module_seconds = series("--stress, the whole module (rounds)", MODULE, True, module_hunts)
    ratio = median(module_seconds) / median(class_seconds[:module_hunts])
    print(f"  seconds per hunt: the module {median(module_seconds):.2f}, the class named "
          f"{median(class_seconds[:module_hunts]):.2f} (median), {ratio:.1f}x")
    target("a module hunt finds the race within 5 rounds (median)", median(rounds) <= 5, f"{median(rounds):g}")
    target("a module hunt takes <= 10x naming the class", ratio <= 10, f"{ratio:.1f}x")
    if not args.quick:
        fixed, seconds = hunt(FIXED, True, 1, timeout=300)
        print(f"  fixed sample, {REPEATS} stressed repeats: {'passed' if fixed is None else f'failed at {fixed}'} "
              f"in {seconds:.1f} s")
        target(f"the fixed sample passes {REPEATS} stressed repeats", fixed is None, "")


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0], default_deadline=600)
    p.add_argument("--hunts", type=int, default=20, help="hunts per series (default 20, quick 2)")
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
