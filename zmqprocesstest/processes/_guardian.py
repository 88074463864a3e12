"""The guardian: nothing started by a test outlives the runner.

Each runner process (the process that runs the tests: ``python -m unittest``, one
pytest-xdist worker...) gets, on first use, a small *guardian* process of its own. The
runner tells it, over a pipe, which process groups and private directories the tests
own right now. The guardian holds the pipe's read end; the write end exists only in the
runner (close-on-exec, and closed in every forked child). However the runner ends --
normal exit, ``SIGINT``, ``SIGTERM``, ``SIGHUP``, ``SIGKILL``, ``os._exit`` -- the
kernel closes the write end and the guardian reads end-of-file (it also watches the
runner through a pidfd, in case a stray fork kept the write end). It then

* ``SIGKILL``\\s every registered process group, and every process of the session of
  the same number (each process under test leads a session of its own, so a
  descendant that moved to another group with ``setpgid`` is found too),
* ``SIGKILL``\\s every process whose environment carries the runner's marker token
  (:data:`ENV_NAME`, put there by :func:`child_env`; it survives ``exec``, ``fork`` and
  ``setsid``, so commands that daemonize are found too), repeating until none is left,
* ``SIGKILL``\\s the processes the test process made itself: what it execs carries the
  runner's *own* marker (the token with :data:`OWN_SUFFIX`, put in the runner's
  ``os.environ`` when the guardian starts), and every child it forks registers itself
  (``+p PID START``, from the fork hook, before the child runs a line of its own); the
  guardian kills those and their descendants,
* removes the registered directories, and exits.

The guardian lives in a session of its own (a Ctrl-C in the terminal does not reach it),
ignores ``SIGINT``/``SIGTERM``/``SIGHUP``, and has ``/dev/null`` for stdout and stderr, so
it never keeps a capture pipe of the runner open.

While the runner lives, orphaned descendants are found after each test by
:mod:`zmqprocesstest.processes._reaper`. The guardian's own code is
:mod:`zmqprocesstest.processes._guardian_process`.

A forked process under test is registered before it runs a line of its own (it waits
for the runner's word, see :mod:`zmqprocesstest.processes._forked`), and the guardian is started
before the first process under test is, so there is no start window.

Not covered: a descendant of a *forked* process under test that leaves its session with
``setsid`` without ``exec`` and is still running when the runner dies before the
per-test check saw it (the kernel shows such a process with the environment the runner
was started with, so the token cannot be seen there; what it execs carries it); a
process started with the ``spawn`` or ``forkserver`` method, between its start and
its registration; a descendant that execs with a scrubbed environment (or whose environment the
guardian may not read: setuid, non-dumpable); of the processes the test process starts
itself, one started with an explicit environment without the marker, a descendant of a
forked one that outlives its parent without ``exec``, and such a descendant of a child
started before the guardian first ran (``docs/guarantees.rst`` lists them); anything outside Linux (no
guardian starts and :func:`new_descendants` finds nothing there).

The runner checks its guardian through a pidfd before each test, at each process start
and after each test: one that died is replaced with everything replayed (the groups,
the directories, and the runner's children running then), a start that failed is tried
again (:func:`check`).
"""
from __future__ import annotations

import atexit
import os
import select
import signal
import sys
import threading
import time
import warnings
from typing import Any, Dict, List, Optional, Set

from .._config import GUARDIAN_EXIT_TIMEOUT, GUARDIAN_WRITE_TIMEOUT
from ._os import LINUX, child_pids, enlarge_pipe, open_pidfd, proc_stat, wait_gone

__all__ = [
    "ENV_NAME",
    "OWN_SUFFIX",
    "check",
    "child_env",
    "forget_group",
    "forget_path",
    "guardian_fds",
    "guardian_pid",
    "guardian_pids",
    "start",
    "started_by_runner",
    "stop",
    "token",
    "watch_group",
    "watch_path",
]

#: The environment variable that carries the marker tokens (space-separated: a command
#: started by a runner that was itself started under a guardian carries both tokens).
ENV_NAME = "ZMQPROCESSTEST_GUARD"
#: Appended to the token in the runner's own ``os.environ``: what the test process
#: starts itself carries ``TOKEN`` + this (killed with the runner, but not a process
#: under test); processes under test carry the bare token (:func:`child_env`).
OWN_SUFFIX = ".own"

_IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # what the guardian ignores
_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_guardian_process.py")



class _State:
    """Everything this process knows about its guardian; replaced in a forked child."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.token: Optional[str] = None
        self.popen: Any = None  # the guardian's subprocess.Popen
        self.write_fd: Optional[int] = None
        self.groups: Set[int] = set()
        self.dirs: Set[str] = set()
        self.retired: List[Any] = []  # guardians that died and are not reaped yet
        self.pidfd: Optional[int] = None  # readable once the running guardian has exited
        self.wanted = False  # a start was asked for: from now on a guardian must run
        self.failure: Optional[str] = None  # why the last start failed (it is retried)
        self.missed = 0  # registrations made while no guardian ran, since the last check()


_state = _State()


def _current() -> _State:
    """The state of *this* process (a forked child that missed the fork hook starts anew)."""
    if _state.owner != os.getpid():
        _after_fork_in_child()
    return _state


def _after_fork_in_child() -> None:
    """A forked child is not the runner: drop the write end and forget the guardian."""
    global _state
    old = _state
    if old.write_fd is not None:
        if old.owner == _runner_pid[0]:
            _register_self(old.write_fd)
        try:
            os.close(old.write_fd)
        except OSError:
            pass
    if old.pidfd is not None:
        try:
            os.close(old.pidfd)
        except OSError:
            pass
    for popen in [old.popen] + old.retired:
        if popen is not None and popen.returncode is None:
            popen.returncode = 0  # the parent's child, not ours: never wait for it, never warn
    _state = _State()


_runner_pid = [0]  # the process whose guardian is the one forked children register with


def _register_self(write_fd: int) -> None:
    """In a child just forked by the runner: tell its guardian this pid (and start time,
    so that a reused pid is never killed) before the child runs a line of its own.

    A process the test forks itself carries no token the guardian can see (``/proc``
    shows the environment of the runner's ``exec``), so this is how it is found. One
    line under ``PIPE_BUF`` on a non-blocking pipe: written whole, or not at all if the
    guardian has not read for long (then the child is not covered: nothing to tell).
    """
    stat = proc_stat(os.getpid())
    if stat is None:
        return
    try:
        os.write(write_fd, b"+p %d %d\n" % (os.getpid(), stat.start))
    except OSError:
        pass


def _token(state: _State) -> str:
    if state.token is None:
        state.token = os.urandom(16).hex()
    return state.token


def _export_token(token: str) -> None:
    """Put the runner's own marker into ``os.environ``: every process the test process
    starts from now on (``subprocess``, ``spawn``, ``forkserver``, and what forked
    children ``exec``) inherits it, and the guardian kills it if the runner dies."""
    own = token + OWN_SUFFIX
    tokens = os.environ.get(ENV_NAME, "").split()
    if own not in tokens:
        os.environ[ENV_NAME] = " ".join(tokens + [own])


def started_by_runner(env: bytes) -> Optional[bool]:
    """Whether a process with environment *env* (``/proc/PID/environ``) was started by
    the test process itself (``True``), by a process under test (``False``), or neither
    can be told (``None``: no marker of this runner, e.g. a fork that never exec'd)."""
    state = _current()
    if state.token is None:
        return None
    prefix = ENV_NAME.encode() + b"="
    for item in env.split(b"\0"):
        if item.startswith(prefix):
            tokens = item[len(prefix):].decode(errors="replace").split()
            if state.token in tokens:
                return False
            if state.token + OWN_SUFFIX in tokens:
                return True
    return None


def _controller() -> Optional[int]:
    """The pid of the parallel controller this runner is a worker of, or ``None``.

    A :mod:`multiprocessing` child (the pool workers of unittest-parallel, nose2's mp
    plugin) names its parent; a pytest-xdist worker (``PYTEST_XDIST_WORKER`` set, xdist
    loaded) was started by its controller. The guardian kills the worker when the
    controller dies: a worker whose controller is gone runs on for nothing.
    """
    process = sys.modules.get("multiprocessing.process")
    parent = getattr(process, "parent_process", lambda: None)()
    if parent is not None and parent.pid:
        return int(parent.pid)
    if os.environ.get("PYTEST_XDIST_WORKER") and "xdist" in sys.modules:
        return os.getppid()
    return None


def _guardian_argv(token: str) -> List[str]:
    argv = [sys.executable, "-I", "-S", _SCRIPT, token, str(os.getpid())]
    controller = _controller()
    if controller is not None and controller > 1:
        argv.append(str(controller))
    return argv


def _alive(state: _State) -> bool:
    """Whether the running guardian (``state.popen``) has not exited (through its pidfd,
    so a reaper elsewhere in the test process cannot hide its death)."""
    if state.pidfd is not None:
        return not select.select([state.pidfd], [], [], 0)[0]
    return state.popen is not None and state.popen.poll() is None


def _start(state: _State) -> bool:
    """Start the guardian unless it runs (again, if it died or its last start failed);
    replay what it must know. Caller holds the lock."""
    if not LINUX:
        return False
    state.wanted = True
    if state.write_fd is not None:
        if _alive(state):
            _export_token(_token(state))  # again: a test may have restored os.environ
            return True
        pid = state.popen.pid if state.popen is not None else "?"
        _retire(state)
        warnings.warn(f"zmqprocesstest: the guardian (pid {pid}) died; started a new one and registered "
                      f"again what it guarded ({len(state.groups)} process group(s), {len(state.dirs)} "
                      "directory(ies))", RuntimeWarning, stacklevel=4)
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != ENV_NAME}  # its own token would kill it
    if not os.path.isfile(_SCRIPT):  # pragma: no cover - zipped install
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    read_fd, write_fd = os.pipe()  # both close-on-exec (PEP 446)
    # Room for many lines between the guardian's reads (see _guardian_process._follow).
    enlarge_pipe(write_fd, 1 << 20)
    # Blocked across exec: a signal sent to the guardian before it ignores them (its
    # interpreter starts slowly on a loaded machine) stays pending instead of killing it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _IGNORED)
    try:
        popen = subprocess.Popen(
            _guardian_argv(_token(state)), stdin=read_fd, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True, env=env, cwd="/",
        )
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        first, state.failure = state.failure is None, f"could not start the guardian ({exc})"
        if first:  # once until it starts again; the test's end says what is unguarded
            warnings.warn(f"zmqprocesstest: {state.failure}; tried again at the next process start. "
                          "Until then processes under test may outlive a runner that is killed",
                          RuntimeWarning, stacklevel=4)
        return False
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    os.close(read_fd)
    os.set_blocking(write_fd, False)
    state.popen, state.write_fd, state.failure = popen, write_fd, None
    state.pidfd = open_pidfd(popen.pid)  # our child, not reaped yet: it is the guardian's
    _runner_pid[0] = os.getpid()
    _export_token(_token(state))
    replay = [b"+g %d\n" % g for g in sorted(state.groups)] + [_dir_line(b"+d", d) for d in sorted(state.dirs)]
    # The runner's children now: those forked while an old guardian ran registered with
    # it, and those started before any (or while none could start) never did.
    replay.extend(_child_lines({popen.pid} | {p.pid for p in state.retired}))
    for line in replay:
        if not _write(state, line):
            return False
    return True


def _child_lines(guardians: Set[int]) -> List[bytes]:
    """``+p`` lines for the runner's children now (but its *guardians*)."""
    lines = []
    for pid in child_pids():
        stat = proc_stat(pid)
        if pid not in guardians and stat is not None:
            lines.append(b"+p %d %d\n" % (pid, stat.start))
    return lines


def _dir_line(verb: bytes, path: str) -> bytes:
    return verb + b" " + os.fsencode(path).hex().encode() + b"\n"


def _write(state: _State, data: bytes) -> bool:
    """Write a command line; False if the guardian is gone. Caller holds the lock.

    The write end is non-blocking: a line under ``PIPE_BUF`` goes in whole or not at all.
    A guardian that reads nothing for
    :data:`~zmqprocesstest._config.GUARDIAN_WRITE_TIMEOUT` seconds (stopped?) keeps its
    pipe -- closing it would make it kill everything -- and the line is dropped, with a
    warning.
    """
    fd = state.write_fd
    assert fd is not None
    deadline = None
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        except BrokenPipeError:
            _retire(state)
            return False
        now = time.monotonic()
        deadline = deadline or now + GUARDIAN_WRITE_TIMEOUT
        if now >= deadline or not select.select([], [fd], [], deadline - now)[1]:
            warnings.warn(f"zmqprocesstest: the guardian (pid {state.popen.pid}) reads nothing; "
                          f"dropped {bytes(data)!r}", RuntimeWarning, stacklevel=5)
            return True
    return True


def _close_ends(state: _State) -> None:
    """Close the runner's ends of the current guardian: its command pipe and its pidfd."""
    if state.write_fd is not None:
        os.close(state.write_fd)
        state.write_fd = None
    if state.pidfd is not None:
        os.close(state.pidfd)
        state.pidfd = None


def _retire(state: _State) -> None:
    """The guardian stopped reading: close our end, reap it later (never block a test)."""
    _close_ends(state)
    if state.popen is not None:
        state.retired.append(state.popen)
        state.popen = None
    _reap_retired(state)


def _reap_retired(state: _State) -> None:
    state.retired = [p for p in state.retired if p.poll() is None]


def _send(line: bytes, registry: Set[Any], item: Any, add: bool) -> None:
    """Update *registry* and tell the guardian (starting or replacing it as needed)."""
    state = _current()
    with state.lock:
        if add:
            if item in registry and state.write_fd is not None:
                return  # registered already (a forked child's session, before it ran)
            registry.add(item)
        elif item in registry:
            registry.discard(item)
        else:
            return
        if state.retired:
            _reap_retired(state)
        if not add and state.write_fd is None:
            return  # no guardian to tell: one started later learns the registry as it is
        for _attempt in range(2):  # a guardian that died is replaced once, with everything replayed
            if not _start(state):
                state.missed += 1 if add else 0
                return
            if _write(state, line):
                return


def watch_group(pgid: int) -> None:
    """Register the process group *pgid* of a process under test: killed if the runner dies.

    :raises ValueError: for this process's own group (or a pgid below 2).
    """
    pgid = int(pgid)
    if pgid <= 1 or pgid == os.getpgrp():
        raise ValueError(f"refusing to guard process group {pgid}: it is not a group of its own")
    _send(b"+g %d\n" % pgid, _current().groups, pgid, add=True)


def forget_group(pgid: int) -> None:
    """Unregister the process group *pgid* (its processes have been stopped and reaped)."""
    pgid = int(pgid)
    _send(b"-g %d\n" % pgid, _current().groups, pgid, add=False)


def watch_path(path: str) -> None:
    """Register a private temporary directory: removed if the runner dies."""
    path = os.path.abspath(path)
    _send(_dir_line(b"+d", path), _current().dirs, path, add=True)


def forget_path(path: str) -> None:
    """Unregister a directory registered with :func:`watch_path`."""
    path = os.path.abspath(path)
    _send(_dir_line(b"-d", path), _current().dirs, path, add=False)


def token() -> str:
    """This runner's marker token (see :data:`ENV_NAME`)."""
    state = _current()
    with state.lock:
        return _token(state)


def child_env(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A copy of *env* (default ``os.environ``) carrying this runner's marker token.

    Pass it to :class:`subprocess.Popen` for a command under test: the command and every
    descendant that keeps its environment are killed by the guardian if the runner dies.
    Starts the guardian if it does not run yet.
    """
    state = _current()
    with state.lock:
        _start(state)
        token = _token(state)
    result = dict(os.environ if env is None else env)
    tokens = result.get(ENV_NAME, "").split()
    if token not in tokens:
        tokens.append(token)
    result[ENV_NAME] = " ".join(tokens)
    return result


def start() -> bool:
    """Start the guardian now (it starts on first use anyway), or again if it died or its
    last start failed; True if it runs."""
    state = _current()
    with state.lock:
        return _start(state)


def check() -> Optional[str]:
    """At the end of a test: make sure the guardian runs (a dead one is replaced, with
    everything registered again; a failed start is tried again).

    :return: ``None``, or why what it should guard is unguarded: it could not be started,
        and process groups or directories were registered since the last check, or are
        registered now.
    """
    state = _current()
    with state.lock:
        missed, state.missed = state.missed, 0
        if not state.wanted or _start(state) or not (missed or state.groups or state.dirs):
            return None
        return (f"the guardian is not running ({state.failure or 'it could not be started'}): "
                f"{missed} process group(s) or directory(ies) registered since the last test were unguarded, "
                f"{len(state.groups)} process group(s) and {len(state.dirs)} directory(ies) still are: "
                "a runner killed meanwhile would have left them")


def stop(timeout: float = GUARDIAN_EXIT_TIMEOUT) -> bool:
    """Close the pipe: the guardian kills what is still registered, cleans up and exits.

    Waits at most *timeout* seconds for it and reaps it; True if it exited. Called at
    interpreter exit; a later registration starts a new guardian (with the same token).
    """
    state = _current()
    with state.lock:
        state.groups.clear()  # the guardian ends them now; never replay them to a new one
        state.dirs.clear()
        popen = state.popen
        _close_ends(state)
        state.popen = None
        state.wanted = False
        if popen is not None:
            state.retired.append(popen)
        deadline = time.monotonic() + timeout
        for p in state.retired:
            wait_gone(p.pid, max(0.0, deadline - time.monotonic()))
        _reap_retired(state)
        return not state.retired


def guardian_pid() -> Optional[int]:
    """The pid of this runner's running guardian, or ``None``."""
    state = _current()
    return None if state.popen is None else state.popen.pid


def guardian_pids() -> Set[int]:
    """The pids of this runner's guardians, running or not reaped yet (children of the
    runner: a check for leftover children must skip them)."""
    state = _current()
    return {p.pid for p in [state.popen] + state.retired if p is not None}


def guardian_fds() -> Set[int]:
    """The file descriptors the guardian machinery holds open (a leak check must skip them)."""
    state = _current()
    return {fd for fd in (state.write_fd, state.pidfd) if fd is not None}


def _shutdown_at_exit() -> None:
    state = _state
    if state.owner == os.getpid() and (state.write_fd is not None or state.retired):
        stop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
    atexit.register(_shutdown_at_exit)
