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

Usage: python3 .ci/runner_matrix.py [SUITE...]   (from anywhere, inside the venv;
SUITE is tests or docs/examples, both by default)
"""
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "docs", "examples")
TESTS = os.path.join(ROOT, "tests")
PY = sys.executable
BIN = os.path.dirname(PY)
#: Seconds one runner may take on one suite.
TIMEOUT = 900


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
        ("nose2 (mp plugin, 2 processes)", [PY, "-m", "nose2", "--plugin", "nose2.plugins.mp", "-N", "2", "-s", rel, "-t", "."]),
        ("pytest", [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", rel]),
        ("pytest-xdist (-n 2)", [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "-n", "2", rel]),
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
    for ran in re.finditer(r"^Ran (\d+) tests? in", output, re.M):
        pass  # the last summary is the runner's own
    if ran:
        total = int(ran.group(1))
        tail = output[ran.end():]
        counts = {key: int(value) for key, value in re.findall(r"(failures|errors|skipped|expected failures|unexpected successes)=(\d+)", tail)}
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


def run_suite(name, tmp):
    """Run suite *name* under every runner: [(label, counts, body ids, exit code, secs)], ok."""
    top, start = SUITES[name]
    results, ok = [], True
    for label, argv in runners(top, start):
        slug = re.sub(r"\W+", "_", f"{name} {label}")
        body_log = os.path.join(tmp, slug + ".log")
        reports = os.path.join(tmp, slug + ".reports")
        argv = [reports if arg == "REPORTS" else arg for arg in argv]
        env = dict(os.environ, ZMQPROCESSTEST_BODY_LOG=body_log)
        env.pop("ZMQPROCESSTEST_MARKS", None)
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=top, env=env, capture_output=True, text=True, timeout=TIMEOUT)
            code, output = proc.returncode, (proc.stdout + "\n" + proc.stderr).strip()
        except subprocess.TimeoutExpired as exc:
            code = "timeout"
            output = f"did not finish within {TIMEOUT} s\n" + "\n".join(
                (part.decode("utf-8", "replace") if isinstance(part, bytes) else part or "")
                for part in (exc.stdout, exc.stderr))
        elapsed = time.monotonic() - started
        counts = parse(output)
        bodies = set()
        if os.path.exists(body_log):
            with open(body_log) as f:
                bodies = set(f.read().split())
        results.append((label, counts, bodies, code, elapsed))
        if counts is None or code != 0:
            ok = False
            print(f"--- {name}: {label} failed (exit {code}):\n{output[-4000:]}\n")
        if label.startswith("xmlrunner") and not (os.path.isdir(reports)
                                                  and any(n.endswith(".xml") for n in os.listdir(reports))):
            ok = False
            print(f"--- {name}: xmlrunner wrote no JUnit XML report")
    return results, ok


def example_bodies(bodies):
    """The body-log ids of the example tests (not of the inner test cases of tests/)."""
    return {test_id for test_id in bodies if not test_id.startswith("tests.")}


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


def main(argv=None):
    names = list(argv if argv is not None else sys.argv[1:]) or ["docs/examples", "tests"]
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        print(f"expected suites among {sorted(SUITES)}, got {unknown}")
        return 2
    ok, tables = True, []
    examples_passed = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            results, ran_ok = run_suite(name, tmp)
            ok = ok and ran_ok
            if name == "docs/examples":
                counts = results[0][1]
                examples_passed = counts[1] if counts else None
            tables.append((name, results))
    for name, results in tables:
        ok = report(name, results, examples_passed) and ok
    print("\nrunner matrix:", "all runners agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
