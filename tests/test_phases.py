"""Every phase around a test is bounded: a blocking one fails naming itself and its line,
and the run goes on (later cleanups run, the next test starts). Under each runner."""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SAMPLE = os.path.join(HERE, "samples", "phases_sample.py")
LIMIT = 0.5
OTHER = '''import os, unittest
class TestOther(unittest.TestCase):
    def test_other(self):
        with open(os.environ["PHASE_LOG"], "a") as f:
            f.write("other module test ran\\n")
'''
MOD = "test_phases_sample"
# phase blocked: (what the failure names, what must have happened after it)
PHASES = {
    "tearDown": (f"{MOD}.TestA.test_1 (tearDown)", ["cleanup of test_1 ran", "test_2 ran", "test_b ran"]),
    "cleanup": (f"{MOD}.TestA.test_1 (cleanup block)", ["cleanup of test_1 ran", "test_2 ran", "test_b ran"]),
    "setUpClass": (f"{MOD}.TestA (setUpClass)", ["class cleanup ran", "test_b ran"]),
    "tearDownClass": (f"{MOD}.TestA (tearDownClass)", ["class cleanup ran", "test_b ran"]),
    "classCleanup": (f"{MOD}.TestA (class cleanup block)", ["class cleanup ran", "test_b ran"]),
    "classScopeCleanup": (f"{MOD}.TestA (release of what it shares)", ["class cleanup ran", "test_b ran"]),
    "setUpModule": (f"{MOD} (setUpModule)", ["module cleanup ran", "other module test ran"]),
    "tearDownModule": (f"{MOD} (tearDownModule)", ["module cleanup ran", "other module test ran"]),
    "moduleCleanup": (f"{MOD} (module cleanup block)", ["module cleanup ran", "other module test ran"]),
    "moduleScopeCleanup": (f"{MOD}.module_scope('{MOD}') (release of what it shares)",
                           ["module cleanup ran", "other module test ran"]),
}


def blocking_line():
    with open(SAMPLE) as f:
        return [n for n, text in enumerate(f, 1) if text.rstrip().endswith("# BLOCKS")][0]


def runners():
    py = sys.executable
    return [("unittest", None,
             [py, "-m", "unittest", "discover", "-s", ".", "-t", ".", "-p", "test_phases_sample*.py"]),
            ("nose2", "nose2", [py, "-m", "nose2", "-s", ".", "-t", "."]),
            ("pytest", "pytest", [py, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:randomly"])]


class BlockingPhases(unittest.TestCase):
    def start(self, runner, command, phase):
        work = tempfile.mkdtemp(prefix="phases-")
        self.addCleanup(shutil.rmtree, work, True)
        shutil.copy(SAMPLE, os.path.join(work, f"{MOD}.py"))
        with open(os.path.join(work, f"{MOD}2.py"), "w") as f:
            f.write(OTHER)
        env = dict(os.environ, PHASE_BLOCK=phase, PHASE_LOG=os.path.join(work, "log"), PHASE_LIMIT=str(LIMIT),
                   PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "CI", "BUILD_NUMBER"):
            env.pop(name, None)
        proc = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(self.kill_group, proc)
        return proc, work, time.monotonic()

    def kill_group(self, proc):
        """Whatever happened to the test (even an interrupted run): no child runner lives on."""
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait()

    def test_each_blocking_phase_fails_and_the_run_goes_on(self):
        line = blocking_line()
        for runner, module, command in runners():
            if module is not None and importlib.util.find_spec(module) is None:
                continue
            started = [(phase, self.start(runner, command, phase)) for phase in PHASES
                       if not (runner == "pytest" and phase == "moduleCleanup")]  # pytest runs no module cleanups
            deadline = time.monotonic() + 60  # for all of them: they run at the same time
            for phase, (proc, work, start) in started:
                with self.subTest(runner=runner, phase=phase), proc:
                    try:
                        out, _ = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, 9)
                        out, _ = proc.communicate()
                        self.fail(f"{runner} blocked in {phase} still ran after 60 s:\n{out.decode(errors='replace')}")
                    elapsed = time.monotonic() - start
                    text = out.decode(errors="replace")
                    with open(os.path.join(work, "log")) as f:
                        log = f.read().splitlines()
                    names, after = PHASES[phase]
                    self.assertIn(f"blocking {phase}", log, text)
                    self.assertNotEqual(proc.returncode, 0, text)
                    self.assertIn(f"{names} ran longer than run_timeout ({LIMIT:g} s)", text)
                    self.assertRegex(text, rf"{MOD}\.py\"?[,:] line {line}\b|{MOD}\.py:{line}\b", text)
                    if runner == "pytest":  # pytest runs no unittest module cleanups
                        after = [a for a in after if a != "module cleanup ran"]
                    for step in after:  # (nose2 may run the other module first)
                        seen = log if step == "other module test ran" else log[log.index(f"blocking {phase}"):]
                        self.assertIn(step, seen, f"{step}\n{text}")
                    self.assertLess(elapsed, 30, text)
