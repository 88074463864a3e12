"""Descendants that leave their process group: the runner as their reaper.

A process under test that daemonizes (double fork and ``setsid``) leaves the process
group that the stop protocol signals. With :func:`become_subreaper` (Linux
``prctl(PR_SET_CHILD_SUBREAPER)``) such orphans reparent to the runner instead of init,
so after each test :func:`new_descendants` finds the ones that are new, and
:func:`kill_and_reap` ends them; the test then fails naming each (pid and command line).
The test process's own children -- a ``subprocess`` the test started, multiprocessing's
resource tracker and forkserver, pool workers -- are not orphans, and are left alone
(:func:`is_own`); the leak check (``check_leaks``) is what fails a test that leaves
them.
Elsewhere there is no such mechanism: nothing is found, and daemons are left to the
guardian's token scan (:mod:`zmqprocesstest.processes._guardian`).
"""
from __future__ import annotations

import contextlib
import os
import signal
import _signal  # type: ignore[import-not-found]  # the C module behind signal
import sys
import threading
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from .._config import KILL_WAIT
from ._os import EXITED, Stat, alive, command_line, environ, orphan_pids, proc_stat, set_child_subreaper, wait_gone
from ._guardian import guardian_pids, started_by_runner, start as start_guardian

__all__ = ["become_subreaper", "describe", "is_own", "kill_and_reap", "multiprocessing_helpers", "new_descendants",
           "other_reapers_held", "prepare_runner", "reap_group", "wait_group_gone"]

_subreaper_pid: Optional[int] = None  # the process that became one (not inherited by forks)
_prepared_pid: Optional[int] = None  # the process prepare_runner set up (not inherited by forks)
_getsignal = _signal.getsignal  # without the enum conversion of signal.getsignal: run on every start


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ``prctl``).

    A process under test that daemonizes (double fork and ``setsid``) then stays our
    descendant, and :func:`new_descendants` sees it. Idempotent; ``False`` where it is
    not available. Not inherited by forked children.
    """
    global _subreaper_pid
    if _subreaper_pid == os.getpid():
        return True
    ok = set_child_subreaper()
    if ok:
        _subreaper_pid = os.getpid()
    return ok


def prepare_runner() -> None:
    """Before a process under test starts: everything the runner needs to cover it.

    * The runner becomes a child subreaper (:func:`become_subreaper`) before its first
      fork, so a process that daemonizes in its first microseconds still reparents to it.
    * A ``SIGCHLD`` inherited as ignored (some supervisors, shells and CI agents start
      programs that way) goes back to the default: with it ignored the kernel reaps
      children at once and their exit statuses are lost, so a clean stop would look like
      a process that survived ``SIGKILL``. Only the main thread can change it.
    * The guardian runs (:func:`zmqprocesstest.processes._guardian.start`), so the new process can
      be registered before it runs a line of its own.

    The subreaper and the guardian are set up once per process (a forked child that
    runs tests of its own does it again); ``SIGCHLD``, which a test may set to ignored
    at any time, is looked at on every call. A guardian stopped since is started again
    by the next registration (a forked child waits for it; a command carries the token).
    """
    global _prepared_pid
    if _getsignal(signal.SIGCHLD) == signal.SIG_IGN and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if _prepared_pid == os.getpid():
        return
    become_subreaper()
    start_guardian()
    _prepared_pid = os.getpid()


@contextlib.contextmanager
def other_reapers_held() -> Iterator[None]:
    """While a process under test starts and its pidfd is opened: a ``SIGCHLD`` handler
    of the test process's own (a Python function, such as a supervisor's loop on
    ``os.waitpid(-1, os.WNOHANG)``) is held back, and run once afterwards if ``SIGCHLD``
    came meanwhile.

    A process that exits at once (a command that fails its first line, a forked function
    that returns) could otherwise be reaped before it has a pidfd, and its exit status
    would be lost to the test. From its pidfd on, the status is read without reaping it
    (:func:`~zmqprocesstest.processes._os.exit_status`). Only the main thread can change
    a handler: elsewhere nothing is held back.
    """
    handler = signal.getsignal(signal.SIGCHLD)
    if not callable(handler) or threading.current_thread() is not threading.main_thread():
        yield
        return
    came: List[Any] = []
    signal.signal(signal.SIGCHLD, lambda _signum, frame: came.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, handler)
        if came:
            handler(signal.SIGCHLD, came[-1])


def describe(pid: int) -> str:
    """The command line of *pid* (its kernel name in brackets if it has none)."""
    stat = proc_stat(pid)
    return "" if stat is None else command_line(pid) or f"[{stat.name}]"


def is_own(pid: int, stat: Stat) -> bool:
    """Whether *pid*, a child of this process, was started by this process itself rather
    than left to it by a process under test (an orphan that re-parented to the subreaper).

    A child this process started is in its session, or leads a session of its own
    (``start_new_session``, ``setsid``): it cannot be in any other. A descendant of a
    process under test is never in the runner's session (every process under test leads
    its own, or is a ``spawn`` child whose daemon has left it). A session leader is told
    by the marker its environment carries: the runner's own (``subprocess``, ``spawn``,
    ``forkserver``) or a process under test's (see
    :func:`zmqprocesstest.processes._guardian.started_by_runner`). A session leader with
    neither (forked without ``exec``) counts as an orphan.
    """
    if stat.session == os.getsid(0):
        return True
    if stat.session != pid:
        return False
    return started_by_runner(environ(pid)) is True


def multiprocessing_helpers() -> Tuple[Set[int], Set[int]]:
    """The pids, and the file descriptors this process holds to them, of
    :mod:`multiprocessing`'s own helper processes (the resource tracker, the forkserver):
    started on first use and kept for the run, like the guardian, so never a test's leak."""
    tracker = getattr(sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None)
    server = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    pids = {getattr(tracker, "_pid", None), getattr(server, "_forkserver_pid", None)}
    fds = {getattr(tracker, "_fd", None), getattr(server, "_forkserver_alive_fd", None)}
    return {int(p) for p in pids if p}, {int(fd) for fd in fds if fd is not None}


def _multiprocessing_children() -> Dict[int, Any]:
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return {}
    return {p.pid: p for p in mp.active_children()}


def new_descendants(before: Set[int], known: Set[int]) -> List[Tuple[int, str]]:
    """Orphans: children of this process not in *before* or *known* that a process under
    test left (:func:`is_own` is false), with their command lines.

    After :func:`become_subreaper` these are the orphaned descendants (a daemon a process
    under test left behind). The guardian and the test process's own children are never
    listed. Orphans that already exited (zombies, such as the middle process of a double
    fork) are reaped here and not listed -- except :mod:`multiprocessing` children, which
    it reaps itself.
    """
    skip = before | known | guardian_pids()
    found: List[Tuple[int, str]] = []
    exited: List[int] = []
    for pid in orphan_pids():
        if pid in skip:
            continue
        stat = proc_stat(pid)
        if stat is None or is_own(pid, stat):
            continue
        if stat.state in EXITED:
            exited.append(pid)
        else:
            found.append((pid, command_line(pid) or f"[{stat.name}]"))
    if exited:
        ours = _multiprocessing_children()
        for pid in exited:
            if pid not in ours:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
    return found


def kill_and_reap(pids: Iterable[Any], timeout: float = KILL_WAIT) -> List[int]:
    """``SIGKILL`` each pid (or ``(pid, command)`` pair) and reap those that are our children.

    :mod:`multiprocessing` children are joined instead (it reaps its own). Waits at most
    *timeout* seconds in all; returns the pids still running after that.
    """
    pids = [p[0] if isinstance(p, tuple) else int(p) for p in pids]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    ours = _multiprocessing_children() if pids else {}
    deadline = time.monotonic() + timeout
    left = []
    for pid in pids:
        remaining = max(0.0, deadline - time.monotonic())
        if pid in ours:
            ours[pid].join(remaining)
            if ours[pid].exitcode is None:
                left.append(pid)
            continue
        wait_gone(pid, remaining)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if alive(pid):
            left.append(pid)
    return left


def reap_group(pgid: int) -> None:
    """Reap the children of ours (orphans that reparented to us) that exited in group *pgid*.

    After a killed group's members die, those that were orphans are zombies of the
    subreaper until someone reaps them.
    """
    for pid in orphan_pids():
        stat = proc_stat(pid)
        if stat is not None and stat.state in EXITED and stat.pgrp == pgid:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait at most *timeout* seconds until no member of process group *pgid* is left running."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)  # no member, not even a zombie: gone (the usual case, without a look at /proc)
        except (ProcessLookupError, PermissionError):
            return True
        reap_group(pgid)  # members that were orphans exit as zombies of ours (subreaper)
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        if time.monotonic() > deadline:
            return False
        # Members that are not our children give nothing to wait on but the clock.
        time.sleep(0.005)
