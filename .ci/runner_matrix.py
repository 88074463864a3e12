"""Run the library's test suite (tests/) and the example application's tests
(docs/examples) under every runner and compare the counts, suite by suite.

Under each runner a suite must report the same number of tests run, passed, failed and
skipped as under the first runner, and exit 0. Test bodies that really ran to the end
are recorded through ZMQPROCESSTEST_BODY_LOG (by ProcessTestCase tests), so that no
runner collects a generator test twice, skips one silently, or "passes" one without
running it:

* docs/examples: every test is a ProcessTestCase, so passes must equal bodies run;
* tests/: most tests are plain unittest.TestCase tests (no body log), and the inner
  test cases they run log bodies of their own, some passing and some not by design;
  there the bodies checked are those of the example tests that tests/test_examples.py
  holds: under every runner they must be the same tests, and as many as the examples
  suite passed on its own.

Runners run JOBS at a time (default 2; ``-j 1`` runs them one after the other). Each
runner is started in a session of its own; one that outlives TIMEOUT is killed with its
whole process group (its worker processes too).

With ``--stress``, one CPU-burning process per core (``os.cpu_count()``) runs beside
the suites for the whole run, started and always stopped by this script: timing bugs
that a quiet machine hides (a guardian starved or slow to start, a bound that only holds
on an idle CPU) show up. CI runs the matrix without it.

Usage: python3 .ci/runner_matrix.py [--stress] [-j JOBS] [SUITE...]   (from anywhere,
inside the venv; SUITE is tests or docs/examples, both by default)
"""
import contextlib
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "docs", "examples")
TESTS = os.path.join(ROOT, "tests")
PY = sys.executable
BIN = os.path.dirname(PY)
#: Seconds one runner may take on one suite.
TIMEOUT = 900
#: Runners run at once by default: the suites wait more than they compute (timeouts,
#: process start-up), so two share a two-CPU CI machine without slowing each other much.
JOBS = 2


def test_modules(top, start):
    """Dotted names of the test*.py modules under *start*, relative to *top*."""
    modules = []
    for folder, _, files in os.walk(start):
        for name in sorted(files):
            if name.startswith("test") and name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name[:-3]), top)
                modules.append(rel.replace(os.sep, "."))
    return sorted(modules)


def runners(top, start):
    """(label, argv) of each runner, run in *top* on the tests under *start*."""
    rel = os.path.relpath(start, top)
    return [
        ("python -m unittest MODULES", [PY, "-m", "unittest", *test_modules(top, start)]),
        ("python -m unittest discover", [PY, "-m", "unittest", "discover", "-s", rel, "-t", "."]),
        ("nose2", [PY, "-m", "nose2", "-s", rel, "-t", "."]),
        ("nose2 (mp plugin, 2 processes)",
         [PY, "-m", "nose2", "--plugin", "nose2.plugins.mp", "-N", "2", "-s", rel, "-t", "."]),
        ("pytest", [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", rel]),
        ("pytest-xdist (-n 2)", [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "-n", "2", rel]),
        # The local stand-in for pytest-xdist over ssh (--tx ssh=user@host//python=...):
        # the same gateway specs, spawned here (pytest-xdist >= 3 keeps -d and --tx).
        ("pytest-xdist (-d --tx 2*popen)",
         [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "-d", "--tx", f"2*popen//python={PY}", rel]),
        ("unittest-parallel (-j 2)", [os.path.join(BIN, "unittest-parallel"), "-s", rel, "-t", ".", "-j", "2"]),
        ("unittest-parallel (-j 2, --level class)",
         [os.path.join(BIN, "unittest-parallel"), "-s", rel, "-t", ".", "-j", "2", "--level", "class"]),
        ("xmlrunner (JUnit XML)", [PY, "-m", "xmlrunner", "discover", "-s", rel, "-t", ".", "-o", "REPORTS"]),
    ]


#: name -> (directory the runners run in, directory of the tests)
SUITES = {
    "docs/examples": (EXAMPLES, EXAMPLES),
    "tests": (ROOT, TESTS),
}


def parse(output):
    """(run, passed, failed, skipped) from unittest-style or pytest-style summaries."""
    ran = None
    for match in re.finditer(r"^Ran (\d+) tests? in", output, re.M):
        ran = match  # the last summary is the runner's own
    if ran:
        total = int(ran.group(1))
        tail = output[ran.end():]
        found = re.findall(r"(failures|errors|skipped|expected failures|unexpected successes)=(\d+)", tail)
        counts = {key: int(value) for key, value in found}
        failed = counts.get("failures", 0) + counts.get("errors", 0) + counts.get("unexpected successes", 0)
        skipped = counts.get("skipped", 0)
        return total, total - failed - skipped - counts.get("expected failures", 0), failed, skipped
    summary = re.findall(r"(?<!subtests )(\d+) (passed|failed|skipped|error|errors|deselected)",
                         output.splitlines()[-1] if output else "")
    if summary:
        counts = {}
        for value, key in summary:
            counts[key.rstrip("s") if key.startswith("error") else key] = int(value)
        failed = counts.get("failed", 0) + counts.get("error", 0)
        passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
        # pytest counts a skipped subtest as one more skip beside its passing test;
        # unittest counts the test itself as skipped. Count it unittest's way (-rs
        # lists the subtest skips as SUBSKIPPED [N]).
        subskipped = sum(int(n) for n in re.findall(r"^SUBSKIPPED(?:\[.*?\])? \[(\d+)\]", output, re.M))
        passed -= subskipped
        return passed + failed + skipped, passed, failed, skipped
    return None


def failing_tests(output):
    """The ids of the failed tests as the runner names them (unittest-style and pytest-style)."""
    found = re.findall(r"^(?:FAIL|ERROR|UNEXPECTED SUCCESS): (.+)$", output, re.M)
    found += re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    return list(dict.fromkeys(found))


#: The runners running now (their process groups are killed if the matrix is), and
#: whether the matrix is ending (no runner starts after that).
_RUNNING = set()
_ENDING = threading.Event()


def run_one(name, label, argv, tmp):
    """Run one runner on suite *name*: (label, counts, body ids, exit code, secs, output)."""
    if _ENDING.is_set():
        raise SystemExit("the runner matrix was stopped")
    top, _ = SUITES[name]
    slug = re.sub(r"\W+", "_", f"{name} {label}")
    body_log = os.path.join(tmp, slug + ".log")
    reports = os.path.join(tmp, slug + ".reports")
    argv = [reports if arg == "REPORTS" else arg for arg in argv]
    env = dict(os.environ, ZMQPROCESSTEST_BODY_LOG=body_log)
    env.pop("ZMQPROCESSTEST_MARKS", None)
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=top, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _RUNNING.add(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        code = proc.returncode
        output = (stdout + "\n" + stderr).strip()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its workers
        stdout, stderr = proc.communicate()
        code = "timeout"
        output = f"did not finish within {TIMEOUT} s\n" + (stdout + "\n" + stderr).strip()
    elapsed = time.monotonic() - started
    counts = parse(output)
    bodies = set()
    if os.path.exists(body_log):
        with open(body_log) as f:
            bodies = set(f.read().split())
    problems = []
    if counts is None or code != 0:
        failed = failing_tests(output)
        listed = "".join(f"\n  {test}" for test in failed)
        problems.append(f"--- {name}: {label} failed (exit {code}); failing tests:{listed or ' (none named)'}\n"
                        f"{output[-4000:]}\n")
    if label.startswith("xmlrunner") and not (os.path.isdir(reports)
                                              and any(n.endswith(".xml") for n in os.listdir(reports))):
        problems.append(f"--- {name}: xmlrunner wrote no JUnit XML report")
    return (label, counts, bodies, code, elapsed), problems


def run_suites(names, tmp, jobs):
    """Run every runner on every suite in *names*, *jobs* at a time.

    Returns ({suite: [(label, counts, body ids, exit code, secs)] in runner order}, ok).
    The longest suite's runners start first; problems are printed as each runner ends.
    """
    tasks = [(name, label, argv) for name in sorted(names, key=lambda n: n != "tests")
             for label, argv in runners(*SUITES[name])]
    done, ok, lock = {}, True, threading.Lock()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(run_one, name, label, argv, tmp): (name, label) for name, label, argv in tasks}
        for future in concurrent.futures.as_completed(futures):
            result, problems = future.result()
            done[futures[future]] = result
            with lock:
                for problem in problems:
                    ok = False
                    print(problem, flush=True)
    results = {name: [done[(name, label)] for label, _ in runners(*SUITES[name])] for name in names}
    return results, ok


def example_bodies(bodies):
    """The body-log ids of the example tests: those of a test module under docs/examples
    (not of the inner test cases of tests/, which tests/ also makes in modules of its own,
    such as a synthetic module or a docstring's example)."""
    modules = tuple(module + "." for module in test_modules(EXAMPLES, EXAMPLES))
    return {test_id for test_id in bodies if test_id.startswith(modules)}


def report(name, results, examples_passed):
    """Print the table of one suite; True if every runner agrees."""
    ok = True
    reference_counts, reference_bodies = results[0][1], example_bodies(results[0][2])
    check = "passes == bodies run" if name != "tests" else "example bodies == examples passed, same under every runner"
    print(f"\nsuite {name} (checked: counts equal under every runner; {check})")
    print(f"{'runner':34} {'run':>4} {'passed':>6} {'failed':>6} {'skipped':>7} {'bodies':>6} {'secs':>6}")
    for label, counts, bodies, code, elapsed in results:
        run, passed, failed, skipped = counts or (-1, -1, -1, -1)
        flags = []
        if counts is None or code != 0:
            flags.append(f"EXIT {code}")
        if counts != reference_counts:
            flags.append("COUNTS DIFFER")
        if name == "tests":
            shown = len(example_bodies(bodies))
            if example_bodies(bodies) != reference_bodies:
                flags.append("OTHER EXAMPLE BODIES RAN")
            if examples_passed is not None and shown != examples_passed:
                flags.append("EXAMPLE BODIES != EXAMPLES PASSED")
        else:
            shown = len(bodies)
            if shown != passed:
                flags.append("PASSES != BODIES RUN")
        ok = ok and not flags
        print(f"{label:34} {run:>4} {passed:>6} {failed:>6} {skipped:>7} {shown:>6} {elapsed:>6.1f} {' '.join(flags)}")
    return ok


#: A CPU burner that also ends when this script is gone (SIGKILL runs no ``finally``).
BURNER = ("import os\n"
          "parent = os.getppid()\n"
          "while os.getppid() == parent:\n"
          "    for _ in range(100000):\n"
          "        pass\n")


def _exit_on_signal(signum, _frame):
    # The runners (each in a session of its own) and their workers go too, and no new one
    # starts: otherwise the pool waits for every queued runner before the script can end.
    _ENDING.set()
    for pgid in list(_RUNNING):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    raise SystemExit(128 + signum)  # runs the burners' clean-up on the way out


@contextlib.contextmanager
def burners(count):
    """Run *count* CPU-burning processes while the block runs; always stop them."""
    procs = []
    previous = {sig: signal.signal(sig, _exit_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        for _ in range(count):
            procs.append(subprocess.Popen([PY, "-c", BURNER]))
        yield procs
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def main(argv=None):
    args = list(argv if argv is not None else sys.argv[1:])
    jobs = JOBS
    stress = "--stress" in args
    args = [arg for arg in args if arg != "--stress"]
    if args[:1] == ["-j"] and len(args) > 1 and args[1].isdigit():
        jobs, args = int(args[1]), args[2:]
    names = args or ["docs/examples", "tests"]
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        print(f"expected suites among {sorted(SUITES)}, got {unknown}")
        return 2
    with tempfile.TemporaryDirectory() as tmp, burners((os.cpu_count() or 1) if stress else 0):
        results, ok = run_suites(names, tmp, jobs)
    examples_passed = None
    if "docs/examples" in results:
        counts = results["docs/examples"][0][1]
        examples_passed = counts[1] if counts else None
    for name in names:
        ok = report(name, results[name], examples_passed) and ok
    load = f", {os.cpu_count()} CPU burners beside" if stress else ""
    print(f"\nrunner matrix ({jobs} at a time{load}):", "all runners agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
