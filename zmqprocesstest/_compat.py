"""Platform and version shims: Linux ``/proc`` readers, the ``add_note`` backport, and
:class:`PerProcess` for what must not cross a ``fork`` (the library's kept threads).

Everything here degrades quietly where ``/proc`` is missing (empty answers), so callers
need no platform checks of their own.
"""
from __future__ import annotations

import os
import select
import threading
import time
from typing import Any, Callable, Dict, Generic, List, Optional, TypeVar

__all__ = ["PerProcess", "add_note", "alive", "blocking_call", "child_pids", "command_line", "group_members",
           "open_fds", "orphan_pids", "signal_main_thread", "thread_state", "wait_gone"]


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also before Python 3.11 (appended to a one-string message)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    elif len(exc.args) == 1 and isinstance(exc.args[0], str):
        exc.args = (exc.args[0] + "\n" + note,)
    elif isinstance(getattr(exc, "_notes", None), list):  # SocketTimeout keeps its own
        exc._notes.append(note)  # type: ignore[attr-defined]


def _stat_fields(path: str) -> Optional[List[bytes]]:
    """The fields of a ``/proc/.../stat`` file after the command name, or ``None``."""
    try:
        with open(path, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()


def open_fds() -> Dict[int, str]:
    """This process's open file descriptors and what each points to."""
    fds: Dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return fds
    for name in names:
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return fds


def _task_children(pid: int, tid: object) -> Optional[List[int]]:
    """Children started (or adopted) by thread *tid* of *pid*; ``None`` if unreadable."""
    try:
        with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # no such file on this kernel, or the thread just ended
        return None


def child_pids(parent: Optional[int] = None) -> List[int]:
    """Pids of the processes whose parent is *parent* (default: this process).

    Read from ``/proc/PID/task/*/children`` where the kernel has it (cheap), else by a
    scan of every ``/proc/PID/stat``.
    """
    parent = os.getpid() if parent is None else parent
    found: List[int] = []
    try:
        tids = os.listdir(f"/proc/{parent}/task")
    except OSError:
        tids = []
    if tids and os.path.exists(f"/proc/{parent}/task/{tids[0]}/children"):
        for tid in tids:
            found.extend(_task_children(parent, tid) or ())
        return found
    return _processes_where(1, parent)


def orphan_pids() -> List[int]:
    """Children of this process that are where orphans land: the main thread's.

    An orphan re-parents to the first live thread of its subreaper's thread group,
    the main thread (Linux ``find_new_reaper``), and the library forks from the thread
    that runs the test, so this one file usually lists all that matters, at a fraction
    of the cost of :func:`child_pids`. Falls back to it where the file is missing.
    """
    pid = os.getpid()
    found = _task_children(pid, pid)
    return child_pids() if found is None else found


def _processes_where(field: int, value: int) -> List[int]:
    """Pids whose ``/proc/PID/stat`` field *field* (after the state: 1 ppid, 2 pgrp) is *value*."""
    found: List[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit():
            fields = _stat_fields(f"/proc/{entry}/stat")
            if fields is not None and int(fields[field]) == value:
                found.append(int(entry))
    return found


def thread_state(pid: int, tid: Optional[int] = None) -> str:
    """The one-letter state (``R``, ``S``, ``Z``...) of thread *tid* (default: main) of *pid*; ``''`` if unknown."""
    fields = _stat_fields(f"/proc/{pid}/task/{pid if tid is None else tid}/stat")
    return fields[0].decode() if fields else ""


def blocking_call(pid: int) -> Optional[str]:
    """The system call the main thread of *pid* is in, with its arguments and stack and
    program pointers (``/proc/PID/syscall``): the same text twice means the very same
    call, not left in between. ``'running'`` if it is not in one; ``None`` if unknown."""
    try:
        with open(f"/proc/{pid}/task/{pid}/syscall", "rb") as f:
            return f.read().decode("ascii", "replace").strip() or None
    except OSError:
        return None


def command_line(pid: int) -> str:
    """The command line of *pid*, space-separated (``''`` if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def open_pidfd(pid: int) -> Optional[int]:
    """A file descriptor readable when *pid* exits (Linux 5.3+ ``pidfd_open``), or ``None``."""
    try:
        return getattr(os, "pidfd_open")(pid)  # type: ignore[no-any-return]
    except (AttributeError, OSError):
        return None


def wait_gone(pid: int, timeout: float) -> None:
    """Wait until *pid* has exited (not reaped), at most *timeout* seconds, without sleeping."""
    fd = open_pidfd(pid)
    if fd is None:
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    """True if *pid* exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X", b"x")


def group_members(pgid: int) -> List[int]:
    """Pids of the processes in process group *pgid* (empty where ``/proc`` is missing).

    Found by walking down from the group's leader and from this process's own children
    (orphans reparent to it as a subreaper) through ``/proc/PID/task/*/children``, which
    costs microseconds; where the kernel lacks those files, by a scan of all of ``/proc``.
    """
    me = os.getpid()
    if not os.path.exists(f"/proc/{me}/task/{me}/children"):
        return _processes_where(2, pgid)
    members: List[int] = []
    todo, seen = [pgid] + child_pids(), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        fields = _stat_fields(f"/proc/{pid}/stat")
        if fields is not None and int(fields[2]) == pgid:
            members.append(pid)
            todo.extend(child_pids(pid))
    return members


_tgkill: Any = None


def signal_main_thread(pid: int, sig: int) -> None:
    """Send *sig* to the main thread of process *pid* (Linux ``tgkill``), else to the process.

    A signal sent to a process may land on any of its threads that does not block it:
    on a libzmq thread in the instant before it masks signals, CPython only sets a flag,
    and the main thread, blocked in ``poll``, never learns of it. Sent to the main
    thread, the signal interrupts its blocking call and the handler runs at once.

    :raises ProcessLookupError: the process is gone.
    """
    global _tgkill
    if _tgkill is None:
        try:
            import ctypes

            _tgkill = ctypes.CDLL(None, use_errno=True).tgkill
        except (OSError, AttributeError):
            _tgkill = False
    if _tgkill and _tgkill(pid, pid, sig) == 0:
        return
    os.kill(pid, sig)  # no tgkill, or it failed: the process-directed signal (raises if gone)


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
