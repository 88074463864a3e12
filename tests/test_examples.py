"""The example application's process and system tests (docs/examples) join this suite.

``load_tests`` adds every test under docs/examples, so ``python -m unittest discover
-s tests`` runs the documentation's examples too: the docs cannot drift from the code.
"""
import unittest

from .support import EXAMPLES


def load_tests(loader, standard_tests, pattern):
    examples = unittest.TestLoader().discover(EXAMPLES, pattern="test*.py", top_level_dir=EXAMPLES)
    standard_tests.addTests(examples)
    return standard_tests
