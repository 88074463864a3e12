"""Python version shims: the ``add_note`` backport, and :class:`PerProcess` for what
must not cross a ``fork`` (the library's kept threads). The operating system's
specifics are in :mod:`zmqprocesstest.processes._os`.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Generic, Optional, TypeVar

__all__ = ["PerProcess", "add_note"]


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also before Python 3.11 (appended to a one-string message)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    elif len(exc.args) == 1 and isinstance(exc.args[0], str):
        exc.args = (exc.args[0] + "\n" + note,)
    elif isinstance(getattr(exc, "_notes", None), list):  # SocketTimeout keeps its own
        exc._notes.append(note)  # type: ignore[attr-defined]


_T = TypeVar("_T")


class PerProcess(Generic[_T]):
    """One object per process, made on first use by *make*: a forked child, where the
    parent's threads do not exist, makes its own. For the library's kept daemon threads
    (output drainer, context terminator, hard-timeout watchdog)."""

    def __init__(self, make: Callable[[], _T]) -> None:
        self._make = make
        self._value: Optional[_T] = None
        self._pid = 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def get(self) -> _T:
        """This process's object, made now if there is none yet."""
        value = self._value
        if value is not None and self._pid == os.getpid():
            return value  # made already: no lock (several calls a test)
        with self._lock:
            if self._value is None or self._pid != os.getpid():
                self._value, self._pid = self._make(), os.getpid()
            return self._value

    def current(self) -> Optional[_T]:
        """This process's object if one was made, else ``None`` (never makes one)."""
        return self._value if self._pid == os.getpid() else None

    def forget(self) -> None:
        """Drop this process's object: the next :meth:`get` makes a new one."""
        with self._lock:
            self._value = None

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # another thread of the parent may have held it
