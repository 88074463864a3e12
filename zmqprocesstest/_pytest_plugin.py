"""Optional pytest plugin (entry point ``pytest11``): zmqprocesstest marks as pytest marks.

It imports nothing from pytest: pytest calls these hooks by name, and
``item.add_marker`` takes a mark name as a string. So ``pytest -m process`` selects
tests marked with :func:`zmqprocesstest.process`, and ``--strict-markers`` knows the
``process`` and ``system`` marks.
"""
from typing import Any, List

from .marks import MARKS_ATTR, class_marks

__all__ = ["pytest_configure", "pytest_collection_modifyitems"]


_registered = {"process", "system"}


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "process: a zmqprocesstest process test")
    config.addinivalue_line("markers", "system: a zmqprocesstest system test")


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    for item in items:
        func = getattr(item, "obj", None)
        names = set(getattr(func, MARKS_ATTR, ()))
        cls = getattr(item, "cls", None)
        if cls is not None:
            names |= class_marks(cls)
        for name in sorted(names):
            if name not in _registered:
                # Your own marks are known too, so --strict-markers and pytest's
                # unknown-mark warning accept them.
                config.addinivalue_line("markers", f"{name}: a zmqprocesstest mark")
                _registered.add(name)
            if item.get_closest_marker(name) is None:
                item.add_marker(name)
