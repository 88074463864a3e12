"""Run the example application's tests under every runner and compare the counts.

Each runner must report the same number of tests run, passed, failed and skipped, and
the number of passes must equal the number of test bodies that really ran to the end
(recorded through ZMQPROCESSTEST_BODY_LOG), so no runner collects a generator test
twice, skips one silently, or "passes" one without running it.

Usage: python .ci/runner_matrix.py   (from the repository root, inside the venv)
"""
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "docs", "examples")
PY = sys.executable
BIN = os.path.dirname(PY)


def example_modules():
    modules = []
    for folder, _, files in os.walk(EXAMPLES):
        for name in sorted(files):
            if name.startswith("test") and name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name[:-3]), EXAMPLES)
                modules.append(rel.replace(os.sep, "."))
    return sorted(modules)


RUNNERS = [
    ("python -m unittest MODULES", [PY, "-m", "unittest", *example_modules()]),
    ("python -m unittest discover", [PY, "-m", "unittest", "discover", "-s", ".", "-t", "."]),
    ("nose2", [PY, "-m", "nose2", "-s", ".", "-t", "."]),
    ("nose2 (mp plugin, 2 processes)", [PY, "-m", "nose2", "--plugin", "nose2.plugins.mp", "-N", "2", "-s", ".", "-t", "."]),
    ("pytest", [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "."]),
    ("pytest-xdist (-n 2)", [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "."]),
    ("unittest-parallel (-j 2)", [os.path.join(BIN, "unittest-parallel"), "-s", ".", "-t", ".", "-j", "2"]),
    ("xmlrunner (JUnit XML)", [PY, "-m", "xmlrunner", "discover", "-s", ".", "-t", ".", "-o", "REPORTS"]),
]


def parse(output):
    """(run, passed, failed, skipped) from unittest-style or pytest-style summaries."""
    ran = re.search(r"^Ran (\d+) tests? in", output, re.M)
    if ran:
        total = int(ran.group(1))
        tail = output[ran.end():]
        counts = {key: int(value) for key, value in re.findall(r"(failures|errors|skipped|expected failures|unexpected successes)=(\d+)", tail)}
        failed = counts.get("failures", 0) + counts.get("errors", 0) + counts.get("unexpected successes", 0)
        skipped = counts.get("skipped", 0)
        return total, total - failed - skipped - counts.get("expected failures", 0), failed, skipped
    summary = re.findall(r"(\d+) (passed|failed|skipped|error|errors|deselected)", output.splitlines()[-1] if output else "")
    if summary:
        counts = {}
        for value, key in summary:
            counts[key.rstrip("s") if key.startswith("error") else key] = int(value)
        failed = counts.get("failed", 0) + counts.get("error", 0)
        passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
        return passed + failed + skipped, passed, failed, skipped
    return None


def main():
    results, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv in RUNNERS:
            body_log = os.path.join(tmp, re.sub(r"\W+", "_", label) + ".log")
            argv = [os.path.join(tmp, "reports") if arg == "REPORTS" else arg for arg in argv]
            env = dict(os.environ, ZMQPROCESSTEST_BODY_LOG=body_log)
            start = time.monotonic()
            proc = subprocess.run(argv, cwd=EXAMPLES, env=env, capture_output=True, text=True, timeout=600)
            elapsed = time.monotonic() - start
            output = (proc.stdout + "\n" + proc.stderr).strip()
            counts = parse(output)
            bodies = 0
            if os.path.exists(body_log):
                with open(body_log) as f:
                    bodies = len(set(f.read().split()))
            results.append((label, counts, bodies, proc.returncode, elapsed))
            if counts is None or proc.returncode != 0:
                ok = False
                print(f"--- {label} failed (exit {proc.returncode}):\n{output[-4000:]}\n")
            if label.startswith("xmlrunner") and not any(n.endswith(".xml") for n in os.listdir(os.path.join(tmp, "reports"))):
                ok = False
                print("--- xmlrunner wrote no JUnit XML report")
    reference = results[0][1]
    print(f"{'runner':34} {'run':>4} {'passed':>6} {'failed':>6} {'skipped':>7} {'bodies':>6} {'secs':>6}")
    for label, counts, bodies, code, elapsed in results:
        run, passed, failed, skipped = counts or (-1, -1, -1, -1)
        flags = []
        if counts != reference:
            flags.append("COUNTS DIFFER")
        if bodies != passed:
            flags.append("PASSES != BODIES RUN")
        ok = ok and not flags
        print(f"{label:34} {run:>4} {passed:>6} {failed:>6} {skipped:>7} {bodies:>6} {elapsed:>6.1f} {' '.join(flags)}")
    print("runner matrix:", "all runners agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
