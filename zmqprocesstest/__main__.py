"""``python -m zmqprocesstest -m EXPR [unittest arguments]``.

Runs unittest (same arguments as ``python -m unittest``) but first removes the tests
that the mark expression does not select, so they are not run or counted at all.
Without ``-m`` the expression comes from ``ZMQPROCESSTEST_MARKS`` or ``setup.cfg``.
"""
import os
import sys
import unittest
from typing import Any, List, Optional

from .marks import MARKS_ENV, deselection_reason, parse_expression, selection_expression


def _filtered(suite: Any, expr: str) -> unittest.TestSuite:
    kept = unittest.TestSuite()
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            kept.addTest(_filtered(test, expr))
        elif deselection_reason(test, expr) is None:
            kept.addTest(test)
    return kept


def _loader(expr: str) -> unittest.TestLoader:
    class MarkFilteringLoader(unittest.TestLoader):
        def loadTestsFromTestCase(self, testCaseClass: Any) -> unittest.TestSuite:
            return _filtered(super().loadTestsFromTestCase(testCaseClass), expr)

    return MarkFilteringLoader()


def main(argv: Optional[List[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    expr = None
    if "-m" in args:
        at = args.index("-m")
        if at + 1 >= len(args):
            sys.exit("usage: python -m zmqprocesstest -m EXPR [unittest arguments]")
        expr = args[at + 1]
        del args[at:at + 2]
    expr = selection_expression(expr)
    try:
        parse_expression(expr)
    except ValueError as exc:
        sys.exit(str(exc))
    os.environ[MARKS_ENV] = expr  # so tests that are run agree with the filter
    unittest.main(module=None, argv=["python -m zmqprocesstest"] + args, testLoader=_loader(expr))


if __name__ == "__main__":
    main()
