"""Class-scoped process vs a process per test: N tests against one shared PongProc.

Both suites run the same test body (a REQ socket of the test's own, one ping-pong round
trip); one starts and stops a PongProc for every test, the other starts one in
setUpClass and shares it. Measured side by side in alternating rounds in one run; the
target is the shared suite at least 10x cheaper per test.
"""
import multiprocessing
import sys

import zmq

import _bench
from _bench import STOP, PongProc, median, perf_counter, require_success, run_tests, target
from zmqprocesstest import ProcessTestCase

TARGET = 10.0


def ping(self):
    req = self.socket(zmq.REQ, connect=self.ep, name="req")
    yield ("send", req, [], ["ping", 1])
    reply = yield ("recv", req)
    self.assertEqual(reply, [["pong", 1]])


class PerTest(ProcessTestCase):
    """A PongProc of each test's own, stopped with the stop message after it."""

    def setUp(self):
        self.ep = self.endpoint
        proc = self.start_process(PongProc, self.ep)
        self.set_stop_message(proc, self.socket(zmq.REQ, connect=self.ep, name="ctl"), STOP)


class Shared(ProcessTestCase):
    """One PongProc for the class, started in setUpClass and stopped after its last test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ep = cls.new_endpoint()
        proc = cls.start_process(PongProc, cls.ep)
        cls.set_stop_message(proc, cls.socket(zmq.REQ, connect=cls.ep, name="ctl"), STOP)


def suite_of(base, count):
    """*count* tests of the same body, in one class made from *base*."""
    cls = type(base.__name__ + "Suite", (base,), {f"test_{i:04d}": ping for i in range(count)})
    return [cls(f"test_{i:04d}") for i in range(count)]


def measure(base, count):
    tests = suite_of(base, count)
    start = perf_counter()
    result = run_tests(tests)
    elapsed = perf_counter() - start
    require_success(result, base.__name__)
    return elapsed / count * 1e3


def run(args):
    count = args.tests or (50 if args.quick else 300)
    rounds = 1 if args.quick else 3
    _bench.header("zmqprocesstest class-scope benchmark")
    measure(PerTest, 5)
    measure(Shared, 5)  # warm-up
    rows = {"per_test": [], "shared": []}
    for r in range(rounds):
        order = [("per_test", PerTest), ("shared", Shared)]
        for name, base in (order if r % 2 == 0 else order[::-1]):
            rows[name].append(measure(base, count))
    per_test, shared = median(rows["per_test"]), median(rows["shared"])
    paired = median([p / s for p, s in zip(rows["per_test"], rows["shared"])])
    print(f"{count} tests, {rounds} alternating round(s); each test: its own REQ socket, one round trip")
    print(f"  {'':44s} {'ms/test':>8s} {'ratio':>6s}  rounds (ms/test)")
    print(f"  {'a PongProc per test (start, stop message)':44s} {per_test:8.3f} {1:6.2f}  "
          f"{', '.join(f'{v:.3f}' for v in rows['per_test'])}")
    print(f"  {'one PongProc shared by the class':44s} {shared:8.3f} {shared / per_test:6.3f}  "
          f"{', '.join(f'{v:.3f}' for v in rows['shared'])}")
    print(f"  shared is {per_test / shared:.1f}x cheaper per test (paired: {paired:.1f}x)")
    target(f"class-scoped suite >= {TARGET:g}x cheaper per test", per_test / shared >= TARGET,
           f"{per_test / shared:.1f}x")


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0])
    p.add_argument("--tests", type=int, default=0, help="tests per suite (default 300, quick 50)")
    multiprocessing.set_start_method("fork", force=True)
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
