"""One test, one outcome: what a test run tells the runner's result object.

A test that has failed can fail again in its cleanup: a process that needs more than
the polite stop, a socket the leak check finds, a context that will not terminate, a
fault link whose thread failed. Runners count each call of ``addFailure``/``addError``
as a problem of its own (unittest prints ``Ran 2 tests ... failures=3``; pytest, ``2
failed, 1 error``), so :class:`OneOutcome`, the result object a
:class:`~zmqprocesstest.ProcessTestCase` hands to unittest's ``run()``, holds a test's
first failure or error until the test ends, adds every later one of the same test to
its report, and then passes that one outcome on. A problem in the cleanup of a test
that passed is still reported, as the test's only outcome. Subtests and other tests
(a suite inside a test) pass straight through.

The report directory's watcher (:mod:`zmqprocesstest.report_html`) sees the outcome as
the runner does.
"""
from __future__ import annotations

import sys
import traceback
from typing import Any, Callable, Optional, Tuple

from ._compat import add_note
from ._config import RUNS_MODULE
from .report import html as _report

__unittest = True

__all__ = ["OneOutcome", "run_test"]


class OneOutcome:
    """The runner's result object, seen through by one test: its problems become one."""

    def __init__(self, result: Any, test: Any) -> None:
        self._result, self._test = result, test
        self._held: Optional[Tuple[str, Any, Any]] = None  # (method, test, err) of the first problem

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def _problem(self, method: str, test: Any, err: Any) -> None:
        if test is not self._test or not isinstance(err, tuple) or err[1] is None:
            getattr(self._result, method)(test, err)
        elif self._held is None:
            self._held = (method, test, err)
        else:  # a later problem of the same test (its cleanup): part of the first one's report
            add_note(self._held[2][1], "\nThe test's cleanup failed too, after that:\n" + self._format(test, err))

    def _format(self, test: Any, err: Any) -> str:
        try:
            return str(self._result._exc_info_to_string(err, test)).rstrip()
        except Exception:  # not unittest's own result class (pytest's, nose2's)
            return "".join(traceback.format_exception(*err)).rstrip()

    def addFailure(self, test: Any, err: Any) -> None:
        self._problem("addFailure", test, err)

    def addError(self, test: Any, err: Any) -> None:
        self._problem("addError", test, err)

    def flush(self) -> None:
        """Pass the held outcome on (at the end of the test)."""
        held, self._held = self._held, None
        if held is not None:
            method, test, err = held
            getattr(self._result, method)(test, err)

    def stopTest(self, test: Any) -> None:
        if test is self._test:
            self.flush()
        self._result.stopTest(test)


def run_test(test: Any, result: Any, run: Callable[[Any], Any]) -> Any:
    """Run *test* (its ``TestCase.run``, *run*) into *result* through one outcome, with a
    report directory its page, and under the run's settings (stress, until-failure:
    :mod:`zmqprocesstest.runs`)."""
    runs = sys.modules.get(RUNS_MODULE)  # imported by the metaclass, the command line or pytest when asked for
    if runs is not None and runs.ACTIVE:
        inner, run = run, lambda into: runs.run_test(test, into, inner)
    if result is None:
        return run(None)  # called by hand: unittest makes a result of its own; nothing to merge
    watcher = _report.watch(test, result)
    outcome = OneOutcome(result if watcher is None else watcher, test)
    try:
        run(outcome)
        return result
    finally:
        outcome.flush()
        if watcher is not None:
            watcher.finish(test)
