"""``python -m zmqprocesstest -m EXPR [--repeat N ...] [unittest arguments]``.

``python -m zmqprocesstest scaffold FILE`` writes a recorded conversation out as a test
(:mod:`zmqprocesstest._scaffold`); ``python -m zmqprocesstest record --listen EP --connect
EP -o FILE`` records one through a tap until Ctrl-C (:mod:`zmqprocesstest._record`).

Runs unittest (same arguments as ``python -m unittest``) but first removes the tests
that the mark expression does not select, so they are not run or counted at all.
Without ``-m`` the expression comes from ``ZMQPROCESSTEST_MARKS`` or ``setup.cfg``.
``--report-dir DIR`` writes an HTML page of each failing test there (``--report-all``:
of every test) and an ``index.html`` (see :mod:`zmqprocesstest.report_html`).
Then the suite is sharded, shuffled and repeated as ``--shard``, ``--shuffle`` and
``--repeat`` say (:mod:`zmqprocesstest.runs`, which lists the options).
"""
import os
import sys
import unittest
from typing import Any, List, Optional

from . import _record, _scaffold
from .runs import session as runs
from ._config import REPORT_ALL_ENV, REPORT_DIR_ENV
from .marks import MARKS_ENV, deselection_reason, parse_expression, selection_expression


# unittest's stand-in for a module or name that could not be loaded.
_LOAD_FAILURES = tuple(cls for cls in (getattr(unittest.loader, "_FailedTest", None),) if cls is not None)


def _filtered(test: Any, expr: str) -> unittest.TestSuite:
    """*test* (a suite, nested or not, or one test) without the unselected tests.

    Placeholders for tests that failed to load (an import error) are kept, so such an
    error is never deselected away.
    """
    kept = unittest.TestSuite()
    if isinstance(test, unittest.TestSuite):
        for inner in test:
            if isinstance(inner, unittest.TestSuite):
                kept.addTest(_filtered(inner, expr))
            elif _selected(inner, expr):
                kept.addTest(inner)
    elif _selected(test, expr):
        kept.addTest(test)
    return kept


def _selected(test: Any, expr: str) -> bool:
    if isinstance(test, _LOAD_FAILURES):
        return True
    return deselection_reason(test, expr) is None


class _MarkFilteringProgram(unittest.TestProgram):
    """unittest's main program, removing unselected tests from whatever it loaded:
    test names (``loadTestsFromName``), modules, and ``discover`` alike."""

    exit: bool  # set by unittest.TestProgram.__init__

    def __init__(self, mark_expression: str, settings: runs.Settings, argv_seen: List[str], **kwargs: Any) -> None:
        self.mark_expression = mark_expression  # set first: __init__ loads and runs the tests
        self.settings, self.argv_seen = settings, argv_seen
        super().__init__(**kwargs)

    def createTests(self, *args: Any, **kwargs: Any) -> None:
        super().createTests(*args, **kwargs)
        self.test: unittest.TestSuite = runs.arrange(_filtered(self.test, self.mark_expression), self.settings)

    def runTests(self) -> None:
        settings, leave = self.settings, self.exit
        if settings.list_only:
            for test in runs.flat(self.test):  # runs.arrange: test cases, or rounds of them
                if isinstance(test, unittest.TestCase):
                    print(test.id())
            sys.exit(0)
        self.failfast = self.failfast or settings.until_failure
        if settings.record_durations:
            self.testRunner = type("DurationsRunner", (unittest.TextTestRunner,), {"resultclass": runs.DurationsResult})
        self.exit = False
        super().runTests()
        if settings.record_durations:
            runs.write_durations(settings.record_durations)
        problems = self.result.errors + self.result.failures
        if settings.until_failure and problems:
            test = problems[0][0]
            runs.note_failure(test.id(), runs.base_id(test), runs.repeat_of(type(test))[0])
            run = runs.cli_command([sys.executable] + self.argv_seen[1:], settings)  # this interpreter
            print(runs.reproduce_message(run), file=sys.stderr)
        if leave:
            sys.exit(not self.result.wasSuccessful())


def _own_help() -> str:
    """The options this command adds to unittest's, for ``--help`` (printed before unittest's)."""
    lines = ["python -m zmqprocesstest [options below] [unittest arguments]", "",
             "zmqprocesstest's options (unittest's own follow):",
             "  -m EXPR                   run only the tests the mark expression selects (see ZMQPROCESSTEST_MARKS)",
             "  --report-dir DIR          write an HTML page of each failing test and an index.html to DIR",
             "  --report-all              with --report-dir: a page for every test"]
    lines += [f"  {name + (' VALUE' if takes else ''):<25} {text}" for name, (takes, text) in runs.OPTIONS.items()]
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["scaffold"]:  # python -m zmqprocesstest scaffold FILE: a recording as a test
        sys.exit(_scaffold.main(args[1:]))
    if args[:1] == ["record"]:  # python -m zmqprocesstest record --listen EP --connect EP -o FILE
        sys.exit(_record.main(args[1:]))
    if "-h" in args or "--help" in args:
        print(_own_help())  # then unittest prints its own help and exits
    expr = None
    if "-m" in args:
        at = args.index("-m")
        if at + 1 >= len(args):
            sys.exit("usage: python -m zmqprocesstest -m EXPR [unittest arguments]")
        expr = args[at + 1]
        del args[at:at + 2]
    _report_options(args)
    expr = selection_expression(expr)
    try:
        parse_expression(expr)
    except ValueError as exc:
        sys.exit(str(exc))
    os.environ[MARKS_ENV] = expr  # so tests that are run agree with the filter
    try:
        settings, args = runs.split_options(args)
    except ValueError as exc:
        sys.exit(str(exc))
    runs.configure(settings)
    seen = getattr(sys, "orig_argv", None) if argv is None else None
    _MarkFilteringProgram(expr, settings, list(seen or ["python", "-m", "zmqprocesstest", *(argv or sys.argv[1:])]),
                          module=None, argv=["python -m zmqprocesstest"] + args)


# -- the HTML report (zmqprocesstest.report_html): --report-dir DIR, --report-all ----------------
def _report_options(args: List[str]) -> None:
    """Take ``--report-dir DIR`` and ``--report-all`` out of *args* into the environment
    (so the tests, and runners they start, see them)."""
    if "--report-dir" in args:
        at = args.index("--report-dir")
        if at + 1 >= len(args) or args[at + 1].startswith("-"):
            sys.exit("usage: python -m zmqprocesstest --report-dir DIR [--report-all] [unittest arguments]")
        os.environ[REPORT_DIR_ENV] = os.path.abspath(args[at + 1])
        del args[at:at + 2]
    if "--report-all" in args:
        if not os.environ.get(REPORT_DIR_ENV):
            sys.exit("--report-all needs --report-dir DIR (or ZMQPROCESSTEST_REPORT_DIR)")
        os.environ[REPORT_ALL_ENV] = "1"
        args.remove("--report-all")


if __name__ == "__main__":
    main()
