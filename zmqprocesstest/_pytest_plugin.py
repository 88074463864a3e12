"""Optional pytest plugin (entry point ``pytest11``): marks, and module scopes released.

It imports nothing from pytest: pytest calls these hooks by name, and
``item.add_marker`` takes a mark name as a string. So ``pytest -m process`` selects
tests marked with :func:`zmqprocesstest.process`, and ``--strict-markers`` knows the
``process`` and ``system`` marks.

The marks registered so far are kept on each pytest config object, never in the
module: every pytest session in one interpreter (``pytest.main`` called twice, a plugin
test running pytest inline) registers the marks it meets with its own config.

pytest runs no ``unittest.addModuleCleanup`` cleanups, so what a
:func:`~zmqprocesstest.module_scope` shares is released here instead, after the last
test of its module (``pytest_runtest_teardown``).
"""
from typing import Any, List, Optional, Set

from . import _pytest_runs
from .marks import MARKS_ATTR, class_marks
from .scopes import release_module

__all__ = ["pytest_addoption", "pytest_configure", "pytest_collection_modifyitems", "pytest_report_header",
           "pytest_runtest_logreport", "pytest_runtest_teardown", "pytest_sessionfinish", "pytest_terminal_summary"]

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


def pytest_addoption(parser: Any) -> None:
    _pytest_runs.addoption(parser)  # --zpt-repeat, --zpt-stress... (zmqprocesstest.runs)


def pytest_configure(config: Any) -> None:
    for name, description in _BUILTIN.items():
        _register(config, name, description)
    _pytest_runs.configure(config)


def pytest_report_header(config: Any) -> List[str]:
    return _pytest_runs.report_header()


def pytest_runtest_logreport(report: Any) -> None:
    _pytest_runs.logreport(report)


def pytest_sessionfinish(session: Any) -> None:
    _pytest_runs.sessionfinish(session)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _pytest_runs.terminal_summary(terminalreporter)


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
    _pytest_runs.arrange(config, items)  # shard and shuffle


def pytest_runtest_teardown(item: Any, nextitem: Optional[Any]) -> None:
    module = getattr(item, "module", None)
    if module is not None and getattr(nextitem, "module", None) is not module:
        release_module(module.__name__)  # its last test (in this worker) has run


# After pytest's own teardown (as @pytest.hookimpl(trylast=True) marks it): the class of
# the module's last test releases what it shares first, as unittest orders it (see the
# test tests/test_marks.py test_pytest_releases_a_module_scope_after_the_class_of_its_last_test).
pytest_runtest_teardown.pytest_impl = {"trylast": True}  # type: ignore[attr-defined]
