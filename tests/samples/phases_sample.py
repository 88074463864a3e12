"""A test module whose phase named by PHASE_BLOCK blocks forever (run by tests/test_phases.py).

tests/test_phases.py copies it into a temporary directory as test_phases_sample.py (with
a second module, test_phases_sample2.py, whose test shows that the run went on) and runs
it under each runner. Every step it reaches is appended to the file PHASE_LOG.
"""
import os
import time
import unittest

from zmqprocesstest import ProcessTestCase, module_scope

BLOCK = os.environ.get("PHASE_BLOCK", "")
LIMIT = float(os.environ.get("PHASE_LIMIT", "0.5"))


def log(what):
    with open(os.environ["PHASE_LOG"], "a") as f:
        f.write(what + "\n")


def block(phase):
    if BLOCK == phase:
        log(f"blocking {phase}")
        time.sleep(600)  # BLOCKS


def setUpModule():
    unittest.addModuleCleanup(log, "module cleanup ran")
    unittest.addModuleCleanup(block, "moduleCleanup")
    scope = module_scope(__name__)
    scope.run_timeout = LIMIT
    scope._resources().closers.append(lambda: block("moduleScopeCleanup"))
    block("setUpModule")


def tearDownModule():
    block("tearDownModule")


class TestA(ProcessTestCase):
    run_timeout = LIMIT

    @classmethod
    def setUpClass(cls):
        cls.addClassCleanup(log, "class cleanup ran")
        cls.addClassCleanup(block, "classCleanup")
        cls._resources().closers.append(lambda: block("classScopeCleanup"))
        block("setUpClass")

    @classmethod
    def tearDownClass(cls):
        block("tearDownClass")

    def setUp(self):
        self.addCleanup(log, f"cleanup of {self._testMethodName} ran")
        self.addCleanup(block, "cleanup")

    def tearDown(self):
        block("tearDown")

    def test_1(self):
        log("test_1 ran")

    def test_2(self):
        log("test_2 ran")


class TestB(ProcessTestCase):
    def test_b(self):
        log("test_b ran")
