"""The guardian process: ``python -I -S _guardian_process.py TOKEN RUNNER_PID [CONTROLLER_PID]``.

It follows the runner's commands on its stdin (``+g PGID``/``-g PGID`` for process
groups, ``+d HEXPATH``/``-d HEXPATH`` for directories, ``+p PID START`` for a child the
runner forked, written by that child) until the runner is gone (end-of-file on the
pipe, or the runner's pidfd fires), then kills every registered process group, every
process in a session of the same number, every registered child still running (the same
start time: not a process that reused its pid) with its descendants, and every process
whose environment carries TOKEN (or TOKEN.own, the runner's own marker), until none is
left, and removes the directories. Given the
pid of the parallel controller the runner is a worker of, it also watches that process
through a pidfd and, when it dies, kills the runner first (a worker whose controller is
gone would run its test to the end). It runs as a script in isolated mode, so it
imports nothing but the standard library and the package's OS seam,
:mod:`zmqprocesstest.processes._os` (which imports nothing of the package). See
:mod:`zmqprocesstest.processes._guardian` for the runner's side.
"""
import os
import select
import shutil
import signal
import sys
from typing import Dict, List, Optional, Set, Tuple

# Run as a script in isolated mode: the package's OS seam is imported from beside it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _os import HAS_PIDFD, all_pids, environ, open_pidfd, pidfd_signal, proc_stat  # type: ignore[import-not-found]  # beside it, found at run time

ENV_NAME = "ZMQPROCESSTEST_GUARD"  # the same name as _guardian.ENV_NAME
OWN_SUFFIX = ".own"  # the same as _guardian.OWN_SUFFIX
_KILL_ROUNDS = 50  # bounds the kill-until-nothing-is-left loop
_DRAIN_EVERY = 0.25  # seconds between reads of the runner's commands


def _serve(token: str, runner: int, controller: Optional[int]) -> None:
    ignored = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in ignored:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, ignored)  # the runner blocked them across exec
    groups: Set[int] = set()
    dirs: Set[bytes] = set()
    forks: Dict[int, int] = {}
    try:
        _follow(runner, controller, groups, dirs, forks)
    finally:
        _clean_up(token.encode(), groups, dirs, forks)


def _follow(runner: int, controller: Optional[int], groups: Set[int], dirs: Set[bytes],
            forks: Dict[int, int]) -> None:
    """Apply the runner's commands until it is gone (end-of-file, or its pidfd fires).

    The pipe is polled for its end only (no ``POLLIN``) and read every
    :data:`_DRAIN_EVERY` seconds, so the runner's writes, a few per test, never wake this
    process in the middle of the runner's work.
    """
    pidfd = open_pidfd(runner)
    poller = select.poll()
    poller.register(0, 0)  # POLLHUP/POLLERR only: reported whatever the mask
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    os.set_blocking(0, False)
    buffer = b""
    # After the pidfd is open, a parent that is still the runner proves it is the runner's.
    runner_gone = os.getppid() != runner
    boss = None if controller is None or runner_gone else _watch_controller(controller, runner, pidfd)
    if boss is not None:
        poller.register(boss, select.POLLIN)
    while not runner_gone:
        ready = poller.poll(_DRAIN_EVERY * 1000)
        if boss is not None and any(fd == boss for fd, _ in ready):
            _kill_runner(runner, pidfd)  # its controller died; its own death ends this loop
            poller.unregister(boss)
            ready = [event for event in ready if event[0] != boss]
        buffer, ended = _drain(buffer, groups, dirs, forks)
        runner_gone = ended or bool(ready) or os.getppid() != runner
    _drain(buffer, groups, dirs, forks)  # the runner is dead: take what it wrote, then clean up


def _start_time(pid: int) -> Optional[int]:
    stat = proc_stat(pid)
    return None if stat is None else stat.start


def _watch_controller(controller: int, runner: int, runner_fd: Optional[int]) -> Optional[int]:
    """A pidfd of the runner's *controller*; if it is gone already, kill the runner now.

    A controller starts before its worker: a process with its pid that started later
    took the pid of a controller that died.
    """
    if not HAS_PIDFD:
        return None  # no pidfds: the controller is not watched
    boss = open_pidfd(controller)  # None: gone already
    started, runner_started = _start_time(controller), _start_time(runner)
    if boss is None or started is None or runner_started is None or started > runner_started:
        _kill_runner(runner, runner_fd)
        return None
    return boss


def _kill_runner(runner: int, runner_fd: Optional[int]) -> None:
    try:
        if runner_fd is not None:
            pidfd_signal(runner_fd, signal.SIGKILL)
        elif os.getppid() == runner:  # still our parent: the pid is the runner's
            os.kill(runner, signal.SIGKILL)
    except OSError:
        pass


def _drain(buffer: bytes, groups: Set[int], dirs: Set[bytes], forks: Dict[int, int]) -> Tuple[bytes, bool]:
    """Apply what the runner wrote so far; also say whether the pipe has ended."""
    while True:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return buffer, False
        except OSError:
            return buffer, True
        if not data:
            return buffer, True
        buffer = _apply(buffer + data, groups, dirs, forks)


def _apply(buffer: bytes, groups: Set[int], dirs: Set[bytes], forks: Dict[int, int]) -> bytes:
    *lines, rest = buffer.split(b"\n")
    for line in lines:
        verb, _, arg = line.partition(b" ")
        try:
            if verb == b"+g":
                groups.add(int(arg))
            elif verb == b"-g":
                groups.discard(int(arg))
            elif verb == b"+d":
                dirs.add(bytes.fromhex(arg.decode()))
            elif verb == b"-d":
                dirs.discard(bytes.fromhex(arg.decode()))
            elif verb == b"+p":
                pid, start = arg.split()
                forks[int(pid)] = int(start)
        except ValueError:
            continue
    return rest


def _marked(token: bytes, sessions: Set[int], forks: Dict[int, int]) -> List[int]:
    """Pids of processes in one of *sessions*, registered in *forks* (pid: start time)
    or descended from one, or whose environment carries *token* (or the runner's own
    marker) in :data:`ENV_NAME`.

    A registered group is also a session (every process under test starts one), and a
    descendant that moved to a group of its own with ``setpgid`` is still in it; one that
    left it with ``setsid`` (a daemon) keeps the token if it was started from a command.
    """
    me = os.getpid()
    prefix = ENV_NAME.encode() + b"="
    wanted = {token, token + OWN_SUFFIX.encode()}
    found = []
    parents: Dict[int, int] = {}
    for pid in all_pids():
        if pid == me:
            continue
        stat = proc_stat(pid)
        if stat is None:
            continue
        parents[pid] = stat.ppid
        if stat.session in sessions or forks.get(pid) == stat.start:
            found.append(pid)
            continue
        env = environ(pid)
        if token not in env:
            continue
        for item in env.split(b"\0"):
            if item.startswith(prefix) and wanted & set(item[len(prefix):].split()):
                found.append(pid)
                break
    # Descendants of the registered children (forked without exec: no token to see).
    roots = {pid for pid in found if pid in forks}
    for pid in parents if roots else ():
        chain, ancestor = 0, parents[pid]
        while ancestor > 1 and ancestor not in roots and chain < len(parents):
            ancestor, chain = parents.get(ancestor, 0), chain + 1
        if ancestor in roots and pid not in found:
            found.append(pid)
    return found


def _clean_up(token: bytes, groups: Set[int], dirs: Set[bytes], forks: Dict[int, int]) -> None:
    """Kill the groups, their sessions and the marked processes until a scan finds no
    new one; remove the directories."""
    own_group, own_session = os.getpgrp(), os.getsid(0)
    groups = {g for g in groups if g > 1 and g != own_group}
    sessions = {g for g in groups if g != own_session}
    killed: Set[int] = set()
    for _round in range(_KILL_ROUNDS):
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        fresh = [pid for pid in _marked(token, sessions, forks) if pid not in killed]
        for pid in fresh:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            killed.add(pid)
        if not fresh:  # a killed process forks no more; one that forked before we saw it is fresh
            break
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
