"""Run the example application's tests (docs/examples) and the library's test suite
(tests/) under the runners and compare the counts, suite by suite.

The runners run what they can prove something on:

* docs/examples under every runner: the examples are what users run, each a
  ProcessTestCase collected and run by the runner itself;
* tests/ in full under unittest, nose2 and pytest (FULL_SUITE_RUNNERS);
* the runner-sensitive tests of tests/ (RUNNER_SENSITIVE: those whose outcome depends on
  the process the runner runs them in) under every other runner. The rest of tests/ runs
  its inner test cases into its own results, or starts the runners it is about itself
  (child runners), so it proves the same under any runner.

Under each runner a suite must report the same number of tests run, passed, failed and
skipped as under the first runner of that suite, and exit 0. Test bodies that really ran to the end
are recorded through ZMQPROCESSTEST_BODY_LOG (by ProcessTestCase tests), so that no
runner collects a generator test twice, skips one silently, or "passes" one without
running it:

* docs/examples: every test is a ProcessTestCase, so passes must equal bodies run;
* tests/: most tests are plain unittest.TestCase tests (no body log), and the inner
  test cases they run log bodies of their own, some passing and some not by design;
  there the bodies checked are those of the example tests that tests/test_examples.py
  holds: under every full-suite runner they must be the same tests, and as many as the
  examples suite passed on its own.

``--unittest-run LOG BODY_LOG`` takes the full suite's run under ``python -m unittest
discover`` from its output LOG and body log instead of running it again: ``.ci/run``
passes README's command 2, which is that run (with ``-W error::ResourceWarning``).

Runners run JOBS at a time (default 2; ``-j 1`` runs them one after the other). Each
runner is started in a session of its own; one that outlives TIMEOUT is killed with its
whole process group (its worker processes too).

With ``--stress``, one CPU-burning process per core (``os.cpu_count()``) runs beside
the suites for the whole run, started and always stopped by this script: timing bugs
that a quiet machine hides (a guardian starved or slow to start, a bound that only holds
on an idle CPU) show up. CI runs the matrix without it.

Usage: python3 .ci/runner_matrix.py [--stress] [-j JOBS] [--unittest-run LOG BODY_LOG] [SUITE...]
(from anywhere, inside the venv; SUITE is docs/examples or tests (both by default), or one
part of tests: "tests (runner-sensitive)")
"""
import contextlib
import concurrent.futures
import fnmatch
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


def runners(top, start, selection=None):
    """(label, argv) of each runner, run in *top* on the tests under *start*: all of them,
    or only the test classes named in *selection* (dotted names)."""
    rel = os.path.relpath(start, top)
    # A selection is given to each runner its own way: unittest and nose2 take names,
    # pytest node ids, the discovering runners a name pattern each (-k).
    names = list(selection or test_modules(top, start))
    nose2_names = list(selection or ())
    pytest_ids = [f"{os.path.join(*name.split('.')[:-1])}.py::{name.split('.')[-1]}" for name in selection or ()]
    patterns = [arg for name in selection or () for arg in ("-k", name + ".")]
    if selection:
        patterns += ["-p", SELECTION_FILES]
    return [
        ("python -m unittest MODULES", [PY, "-m", "unittest", *names]),
        ("python -m unittest discover", [PY, "-m", "unittest", "discover", "-s", rel, "-t", ".", *patterns]),
        ("nose2", [PY, "-m", "nose2", "-s", rel, "-t", ".", *nose2_names]),
        ("nose2 (mp plugin, 2 processes)",
         [PY, "-m", "nose2", "--plugin", "nose2.plugins.mp", "-N", "2", "-s", rel, "-t", ".", *nose2_names]),
        ("pytest", [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", rel] if not selection else
         [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *pytest_ids]),
        ("pytest-xdist (-n 2)", [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "-n", "2",
                                 *(pytest_ids or [rel])]),
        # The local stand-in for pytest-xdist over ssh (--tx ssh=user@host//python=...):
        # the same gateway specs, spawned here (pytest-xdist >= 3 keeps -d and --tx).
        ("pytest-xdist (-d --tx 2*popen)",
         [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "-d", "--tx", f"2*popen//python={PY}",
          *(pytest_ids or [rel])]),
        ("unittest-parallel (-j 2)",
         [os.path.join(BIN, "unittest-parallel"), "-s", rel, "-t", ".", "-j", "2", *patterns]),
        ("unittest-parallel (-j 2, --level class)",
         [os.path.join(BIN, "unittest-parallel"), "-s", rel, "-t", ".", "-j", "2", "--level", "class", *patterns]),
        ("xmlrunner (JUnit XML)", [PY, "-m", "xmlrunner", "discover", "-s", rel, "-t", ".", "-o", "REPORTS",
                                   *patterns]),
    ]


#: The runners that run the whole of tests/: the standard library's, and the two other
#: runners with a collection and a result of their own. README's command 2 is the first.
FULL_SUITE_RUNNERS = ("python -m unittest discover", "nose2", "pytest")

#: The runner-sensitive tests of tests/, run under every runner: test classes whose
#: outcome depends on the process the runner runs them in (the main process or a pool
#: worker, daemonic or not; the signal handlers, itimer and threads the runner has).
#: The rest of tests/ runs under FULL_SUITE_RUNNERS only: its tests run their inner test
#: cases into results of their own (the outer runner plays no part), or start the
#: runners they are about as child runners themselves (test_marks' runner selection,
#: test_phases, test_controllers, test_watchdog's UnderEachRunner...). What the runners
#: collect and count of ProcessTestCase tests is proved on docs/examples, under every
#: runner.
RUNNER_SENSITIVE = {
    "tests.test_guardian.TestInProcess":
        "the guardian is the runner process's own: a multiprocessing pool worker (nose2 mp, unittest-parallel) "
        "or a pytest-xdist worker gets one of its own, a forked child neither",
    "tests.test_processes.TestNoOrphans":
        "no process is left behind by a test run in a daemonic pool worker, which multiprocessing forbids to "
        "have children (start_process lifts that rule)",
    "tests.test_processes.TestSignalsForTheRunner":
        "a signal for the runner's own process arriving during a wait",
    "tests.test_guarantees.TestInheritedSignalDispositions":
        "processes under test start with default signal dispositions whatever the runner's process has "
        "(a worker may ignore SIGINT)",
    "tests.test_watchdog.InterruptsBlockingCode":
        "the hard timeout interrupts the main thread of the runner's process",
    "tests.test_watchdog.Restores":
        "the hard timeout gives back the runner's own SIGALRM handler and itimer",
    "tests.test_watchdog.Fallbacks":
        "the watchdog thread when SIGALRM is taken, in the runner's process",
    "tests.test_timeout_adversary.HardTimeoutAgainstTheTest":
        "tests that fight the hard timeout's signals, in the runner's process",
    "tests.test_hostile.TestLeakCheck":
        "the leak check compares the threads and descriptors of the runner's process (a worker has threads "
        "of its own)",
    "tests.test_async.Timeouts":
        "a coroutine test's hard timeout reaches the event loop running in the runner's main thread",
    "tests.test_async.Deaths":
        "a death during an await is seen through a pidfd reader on the test's loop in the runner's process",
    "tests.test_async_example.DeathDuringAClientCall":
        "a service's death during a client library's await on its own zmq.asyncio socket, seen through the "
        "pidfd reader on the test's loop in the runner's process",
    "tests.test_faults.TestFaultLinkOfATest":
        "the link's thread is found among the runner process's threads (failed once run first in a fresh "
        "nose2 mp worker)",
}


#: The test files the discovering runners look in for a selection (-k): unittest loads a
#: TestCase class with no test methods but a runTest whatever -k says, and
#: tests/test_examples.py holds one (the counter state machine's CounterMachineTestCase).
SELECTION_FILES = "test_[!e]*.py"
_outside = [name for name in RUNNER_SENSITIVE if not fnmatch.fnmatch(name.split(".")[-2] + ".py", SELECTION_FILES)]
assert not _outside, f"runner-sensitive tests in files the selection leaves out ({SELECTION_FILES}): {_outside}"


#: name -> (directory the runners run in, directory of the tests, the runners' labels
#: (None: all), the test classes run (None: all))
SUITES = {
    "docs/examples": (EXAMPLES, EXAMPLES, None, None),
    "tests": (ROOT, TESTS, FULL_SUITE_RUNNERS, None),
    "tests (runner-sensitive)": (ROOT, TESTS, None, tuple(RUNNER_SENSITIVE)),
}
#: What a suite named on the command line runs.
GROUPS = {"docs/examples": ("docs/examples",), "tests": ("tests", "tests (runner-sensitive)")}


def suite_runners(name):
    """(label, argv) of the runners of suite *name*: every runner not in FULL_SUITE_RUNNERS
    on the runner-sensitive tests, with the unittest command line (MODULES) as the
    reference whose counts the others must equal."""
    top, start, labels, selection = SUITES[name]
    found = runners(top, start, selection)
    if labels is not None:
        return [(label, argv) for label, argv in found if label in labels]
    if selection is not None:
        return [(label, argv) for label, argv in found
                if label not in FULL_SUITE_RUNNERS or label == "python -m unittest MODULES"]
    return found


#: pytest's summary line, with -q or without: "3 passed, 1 skipped in 1.21s", or between
#: "=" rules, with "(0:01:02)" after the seconds when a run took a minute or more.
PYTEST_SUMMARY = re.compile(r"^=*\s*(?:\d+ [a-z]+(?: [a-z]+)?, )*\d+ [a-z]+(?: [a-z]+)? in [\d.]+s(?: \([\d:]+\))?"
                            r"\s*=*$", re.M)


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
    # pytest's own summary line, the last one printed: not the output's last line, which
    # may be what a plugin writes to stderr after it (a warning at exit).
    lines = PYTEST_SUMMARY.findall(output)
    summary = re.findall(r"(?<!subtests )(\d+) (passed|failed|skipped|error|errors|deselected)",
                         lines[-1] if lines else "")
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
    top = SUITES[name][0]
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


def given_run(log, body_log):
    """The result of a run made before the matrix (README's command 2): (label, counts,
    body ids, exit code (0 if its summary says OK), secs (from the summary))."""
    with open(log, encoding="utf-8", errors="replace") as f:
        output = f.read()
    bodies = set()
    if os.path.exists(body_log):
        with open(body_log) as f:
            bodies = set(f.read().split())
    ran = list(re.finditer(r"^Ran \d+ tests? in ([\d.]+)s\n+(OK\b)?", output, re.M))
    code = 0 if ran and ran[-1].group(2) else "not OK"
    secs = float(ran[-1].group(1)) if ran else 0.0
    return ("python -m unittest discover", parse(output), bodies, code, secs), output


def run_suites(names, tmp, jobs, given=None):
    """Run the runners of every suite in *names*, *jobs* at a time.

    Returns ({suite: [(label, counts, body ids, exit code, secs)] in runner order}, ok).
    The longest suites' runners start first; problems are printed as each runner ends.
    *given*: the full suite's run under ``python -m unittest discover``, already made.
    """
    tasks = [(name, label, argv) for name in sorted(names, key=lambda n: n != "tests")
             for label, argv in suite_runners(name)
             if not (given and name == "tests" and label == "python -m unittest discover")]
    done, ok, lock = {}, True, threading.Lock()
    if given:
        result, output = given
        done[("tests", result[0])] = result
        if result[1] is None or result[3] != 0:
            ok = False
            print(f"--- tests: README's command 2 ({result[0]}) failed; failing tests:"
                  + "".join(f"\n  {test}" for test in failing_tests(output)), flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(run_one, name, label, argv, tmp): (name, label) for name, label, argv in tasks}
        for future in concurrent.futures.as_completed(futures):
            result, problems = future.result()
            done[futures[future]] = result
            with lock:
                for problem in problems:
                    ok = False
                    print(problem, flush=True)
    results = {name: [done[(name, label)] for label, _ in suite_runners(name)] for name in names}
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
    check = {"docs/examples": "passes == bodies run",
             "tests": "example bodies == examples passed, same under every runner"}.get(name, "")
    check = "; " + check if check else ""
    print(f"\nsuite {name} (checked: counts equal under every runner{check})")
    print(f"{'runner':34} {'run':>4} {'passed':>6} {'failed':>6} {'skipped':>7} {'bodies':>6} {'secs':>6}")
    for label, counts, bodies, code, elapsed in results:
        run, passed, failed, skipped = counts or (-1, -1, -1, -1)
        flags = []
        if counts is None or code != 0:
            flags.append(f"EXIT {code}")
        if counts != reference_counts:
            flags.append("COUNTS DIFFER")
        if name != "docs/examples":
            shown = len(example_bodies(bodies))
            if example_bodies(bodies) != reference_bodies:
                flags.append("OTHER EXAMPLE BODIES RAN")
            if name == "tests" and examples_passed is not None and shown != examples_passed:
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
    given = None
    if "--unittest-run" in args:
        at = args.index("--unittest-run")
        if len(args) < at + 3 or not os.path.isfile(args[at + 1]):
            print(f"expected --unittest-run LOG BODY_LOG (LOG an existing file), got {args[at + 1:at + 3]}")
            return 2
        given, args = given_run(args[at + 1], args[at + 2]), args[:at] + args[at + 3:]
    asked = args or ["docs/examples", "tests"]
    unknown = [name for name in asked if name not in GROUPS and name not in SUITES]
    if unknown:
        print(f"expected suites among {sorted(set(GROUPS) | set(SUITES))}, got {unknown}")
        return 2
    names = list(dict.fromkeys(name for group in asked for name in GROUPS.get(group, (group,))))
    with tempfile.TemporaryDirectory() as tmp, burners((os.cpu_count() or 1) if stress else 0):
        results, ok = run_suites(names, tmp, jobs, given if "tests" in names else None)
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
