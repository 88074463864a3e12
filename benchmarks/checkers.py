"""Cost of the linearizability checker: milliseconds per history, by length and concurrency.

Random counter histories (increments and reads by many clients, each operation taking
effect at its completion, the rest left unknown at the end) of N operations with at
most K in flight at once; each is checked as it is (linearizable: the search finds one
order) and with an impossible read appended (not linearizable: the search must rule
out every order within the window). Reports the median of R checks of each.
Target: a few hundred operations with up to 10 in flight are decided within 1 s.

Usage: python benchmarks/checkers.py [--quick] [--rounds R]
"""
import random
import sys

import _bench  # sets sys.path: repo root and docs/examples first
from _bench import median, perf_counter, target

from zmqprocesstest.checkers import Counter, linearizable, ops_in_flight
from zmqprocesstest.history import History

TARGET_MS = 1000.0


def counter_history(rng, count, in_flight):
    history, value, pending = History(), 0, []
    for n in range(count):
        if len(pending) < in_flight and (not pending or rng.random() < 0.6):
            f = rng.choice(["incr", "read"])
            history.invoke(f"p{n}", f, 1 if f == "incr" else None)
            pending.append((f"p{n}", f))
        else:
            process, f = pending.pop(rng.randrange(len(pending)))
            if f == "incr":
                value += 1
                history.ok(process)
            else:
                history.ok(process, value)
    for process, _ in pending:
        history.info(process)
    return history


def run(args):
    rounds = args.rounds or (1 if args.quick else 5)
    sizes = [(100, 4), (300, 10)] if args.quick else [(100, 4), (100, 10), (300, 4), (300, 10), (600, 10), (300, 16)]
    _bench.header("zmqprocesstest linearizability checker benchmark")
    print(f"random counter histories; median of {rounds} check(s) each")
    print(f"  {'ops':>5} {'in flight':>9} {'linearizable':>14} {'with a bad read':>16}")
    worst = 0.0
    for count, in_flight in sizes:
        good, bad = [], []
        for r in range(rounds):
            history = counter_history(random.Random(count * 1000 + in_flight * 10 + r), count, in_flight)
            if ops_in_flight(history) > in_flight:
                raise _bench.BenchError("the generator broke its own bound")
            start = perf_counter()
            if linearizable(history, Counter(), max_states=5_000_000).valid is not True:
                raise _bench.BenchError("a correct history was judged not linearizable")
            good.append((perf_counter() - start) * 1000)
            history.invoke("z", "read")
            history.ok("z", -1)
            start = perf_counter()
            if linearizable(history, Counter(), max_states=5_000_000).valid is not False:
                raise _bench.BenchError("an impossible read was not found")
            bad.append((perf_counter() - start) * 1000)
        print(f"  {count:>5} {in_flight:>9} {median(good):>11.1f} ms {median(bad):>13.1f} ms")
        if in_flight <= 10 and count <= 300:
            worst = max(worst, median(good), median(bad))
    target(f"histories of up to 300 operations, up to 10 in flight, decided within {TARGET_MS:g} ms",
           worst <= TARGET_MS, f"slowest median {worst:.1f} ms")


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0], default_deadline=300)
    p.add_argument("--rounds", type=int, default=0, help="checks per size (default 5, quick 1)")
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
