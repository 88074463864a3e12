"""Optional pytest plugin (entry point ``pytest11``): marks, and module scopes released.

It imports nothing from pytest: pytest calls these hooks by name, and
``item.add_marker`` takes a mark name as a string. So ``pytest -m process`` selects
tests marked with :func:`zmqprocesstest.process`, and ``--strict-markers`` knows the
``process`` and ``system`` marks.

The marks registered so far are kept on each pytest config object, never in the
module: every pytest session in one interpreter (``pytest.main`` called twice, a plugin
test running pytest inline) registers the marks it meets with its own config.

The options of the runs wing (``--zpt-repeat``, ``--zpt-stress``...) are registered here;
the wing itself (:mod:`zmqprocesstest.runs`) is imported only when one of them is given
or the environment asks for it.

pytest runs no ``unittest.addModuleCleanup`` cleanups, so what a
:func:`~zmqprocesstest.module_scope` shares is released here instead, after the last
test of its module (``pytest_runtest_teardown``).
"""
import sys
from typing import Any, List, Optional, Set

from ._config import PYTEST_RUN_OPTIONS, runs_requested
from .marks import MARKS_ATTR, class_marks
from .scopes import PYTEST_PLUGIN_SESSIONS, release_module

__all__ = ["pytest_addoption", "pytest_configure", "pytest_collection_modifyitems", "pytest_report_header",
           "pytest_runtest_logreport", "pytest_runtest_teardown", "pytest_sessionfinish", "pytest_terminal_summary",
           "pytest_unconfigure"]

#: Attribute of the pytest config holding the mark names registered with it.
_REGISTERED_ATTR = "_zmqprocesstest_registered_marks"
_BUILTIN = {
    "process": "a zmqprocesstest process test",
    "system": "a zmqprocesstest system test",
}


def _registered(config: Any) -> Set[str]:
    """The mark names registered with *config* (a set stored on it)."""
    names = getattr(config, _REGISTERED_ATTR, None)
    if names is None:
        names = set()
        setattr(config, _REGISTERED_ATTR, names)
    return names


def _register(config: Any, name: str, description: str) -> None:
    registered = _registered(config)
    if name not in registered:
        config.addinivalue_line("markers", f"{name}: {description}")
        registered.add(name)


_RUNS_SIDE = "zmqprocesstest.runs._pytest_runs"


def _runs_side() -> Any:
    """The runs wing's pytest side if this interpreter imported it (an option or the
    environment asked for it), else ``None``."""
    return sys.modules.get(_RUNS_SIDE)


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("zmqprocesstest", "zmqprocesstest: hunting flaky tests")
    for name, (_, kind, text) in PYTEST_RUN_OPTIONS.items():
        if kind is None:
            group.addoption(name, action="store_true", default=False, help=text)
        else:
            group.addoption(name, type=kind, default=None, help=text)


def pytest_configure(config: Any) -> None:
    PYTEST_PLUGIN_SESSIONS.append(config)  # module scopes are released (pytest_runtest_teardown)
    for name, description in _BUILTIN.items():
        _register(config, name, description)
    getoption = getattr(config, "getoption", None)  # None: a stand-in config (tests)
    asked = getoption is not None and any(getoption(name, default=None) not in (None, False)
                                          for name in PYTEST_RUN_OPTIONS)
    if asked or runs_requested():
        from .runs import _pytest_runs
        _pytest_runs.configure(config)


def pytest_unconfigure(config: Any) -> None:
    if config in PYTEST_PLUGIN_SESSIONS:
        PYTEST_PLUGIN_SESSIONS.remove(config)


def pytest_report_header(config: Any) -> List[str]:
    side = _runs_side()
    return side.report_header() if side is not None else []


def pytest_runtest_logreport(report: Any) -> None:
    side = _runs_side()
    if side is not None:
        side.logreport(report)


def pytest_sessionfinish(session: Any) -> None:
    side = _runs_side()
    if side is not None:
        side.sessionfinish(session)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    side = _runs_side()
    if side is not None:
        side.terminal_summary(terminalreporter)


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    for item in items:
        func = getattr(item, "obj", None)
        names = set(getattr(func, MARKS_ATTR, ()))
        cls = getattr(item, "cls", None)
        if cls is not None:
            names |= class_marks(cls)
        for name in sorted(names):
            # Your own marks are known too, so --strict-markers and pytest's
            # unknown-mark warning accept them.
            _register(config, name, "a zmqprocesstest mark")
            if item.get_closest_marker(name) is None:
                item.add_marker(name)
    side = _runs_side()
    if side is not None:
        side.arrange(config, items)  # shard and shuffle


def pytest_runtest_teardown(item: Any, nextitem: Optional[Any]) -> None:
    module = getattr(item, "module", None)
    if module is not None and getattr(nextitem, "module", None) is not module:
        release_module(module.__name__)  # its last test (in this worker) has run


# After pytest's own teardown (as @pytest.hookimpl(trylast=True) marks it): the class of
# the module's last test releases what it shares first, as unittest orders it (see the
# test tests/test_marks.py test_pytest_releases_a_module_scope_after_the_class_of_its_last_test).
pytest_runtest_teardown.pytest_impl = {"trylast": True}  # type: ignore[attr-defined]
