"""pytest only: the example classes that tests/test_examples.py holds get their own
modules' fixtures, the way unittest runs them.

unittest (and nose2, unittest-parallel) run ``setUpModule``, ``tearDownModule`` and the
module cleanups of a class's own module (its ``__module__``), around each run of
consecutive tests from that module. pytest runs the module fixtures of the module it
collected a class from, tests/test_examples.py, which has none: an example module's
``setUpModule`` (test_shared.py's module scope) would never run. This autouse fixture
sets an example module up before the first class of a run of its classes and tears it
down (releasing what its module scope shares: pytest runs no module cleanups) before
the next class of another module, or at the end of the session.
"""
import sys

import pytest

from zmqprocesstest.scopes import release_module

_EXAMPLES_HOLDER = "tests.test_examples"
_current = {"module": None, "error": None}  # the example module set up now, in this process


def _leave():
    module, _current["module"], _current["error"] = _current["module"], None, None
    if module is None:
        return
    try:
        teardown = getattr(module, "tearDownModule", None)
        if teardown is not None:
            teardown()
    finally:
        release_module(module.__name__)


@pytest.fixture(autouse=True, scope="class")
def _example_module_fixtures(request):
    module = sys.modules.get(getattr(request.cls, "__module__", None) or "")
    if request.module.__name__ != _EXAMPLES_HOLDER or module is None or module is request.module:
        _leave()
        yield
        return
    if _current["module"] is not module:
        _leave()
        _current["module"] = module
        setup = getattr(module, "setUpModule", None)
        if setup is not None:
            try:
                setup()
            except Exception as exc:  # as unittest does: every class of the module fails with it
                _current["error"] = exc
    if _current["error"] is not None:
        raise _current["error"]
    yield


def pytest_sessionfinish(session):
    _leave()
