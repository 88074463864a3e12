"""The guardian: nothing started by a test outlives the runner.

Each runner process (the process that runs the tests: ``python -m unittest``, one
pytest-xdist worker...) gets, on first use, a small *guardian* process of its own. The
runner tells it, over a pipe, which process groups and private directories the tests
own right now. The guardian holds the pipe's read end; the write end exists only in the
runner (close-on-exec, and closed in every forked child). However the runner ends --
normal exit, ``SIGINT``, ``SIGTERM``, ``SIGHUP``, ``SIGKILL``, ``os._exit`` -- the
kernel closes the write end and the guardian reads end-of-file (it also watches the
runner through a pidfd, in case a stray fork kept the write end). It then

* ``SIGKILL``\\s every registered process group,
* ``SIGKILL``\\s every process whose environment carries the runner's marker token
  (:data:`ENV_NAME`, put there by :func:`child_env`; it survives ``exec``, ``fork`` and
  ``setsid``, so commands that daemonize are found too), repeating until none is left,
* removes the registered directories, and exits.

The guardian lives in a session of its own (a Ctrl-C in the terminal does not reach it),
ignores ``SIGINT``/``SIGTERM``/``SIGHUP``, and has ``/dev/null`` for stdout and stderr, so
it never keeps a capture pipe of the runner open.

While the runner lives, :func:`become_subreaper` makes orphaned descendants reparent to
it, and :func:`new_descendants`/:func:`kill_and_reap` find and end them after each test.

Not covered: a descendant forked (without ``exec``) from the runner itself -- a
:mod:`multiprocessing` child -- that leaves its process group with ``setsid`` and is
still running when the runner dies before the per-test check saw it (it carries no
token); a descendant that execs with a scrubbed environment (or whose environment the
guardian may not read: setuid, non-dumpable); anything outside Linux (no guardian
starts and :func:`new_descendants` finds nothing there).

This file runs as the guardian itself (``python -I -S _guardian.py TOKEN RUNNER_PID``),
so it imports nothing but the standard library.
"""
from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import sys
import threading
import time
import warnings
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

__all__ = [
    "ENV_NAME",
    "watch_group",
    "forget_group",
    "watch_path",
    "forget_path",
    "child_env",
    "become_subreaper",
    "new_descendants",
    "kill_and_reap",
    "start",
    "stop",
    "guardian_pid",
    "guardian_fds",
]

#: The environment variable that carries the marker tokens (space-separated: a command
#: started by a runner that was itself started under a guardian carries both tokens).
ENV_NAME = "ZMQPROCESSTEST_GUARD"

_LINUX = sys.platform.startswith("linux")
_PR_SET_CHILD_SUBREAPER = 36
_WRITE_TIMEOUT = 5.0  # a guardian that reads nothing for this long is treated as gone
_EXIT_TIMEOUT = 5.0  # how long the runner waits at exit for the guardian to clean up
_KILL_ROUNDS = 50  # bounds the guardian's kill-until-nothing-is-left loop


# ---------------------------------------------------------------------------------------
# The runner's side.

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
        self.failed = False  # starting failed once: warned, do not retry on every call
        self.subreaper = False


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
        try:
            os.close(old.write_fd)
        except OSError:
            pass
    for popen in [old.popen] + old.retired:
        if popen is not None and popen.returncode is None:
            popen.returncode = 0  # the parent's child, not ours: never wait for it, never warn
    _state = _State()


def _token(state: _State) -> str:
    if state.token is None:
        state.token = os.urandom(16).hex()
    return state.token


def _guardian_argv(token: str) -> List[str]:
    here = os.path.abspath(__file__)
    runner = str(os.getpid())
    if here.endswith(".py") and os.path.isfile(here):
        return [sys.executable, "-I", "-S", here, token, runner]
    return [sys.executable, "-m", "zmqprocesstest._guardian", token, runner]  # pragma: no cover


def _start(state: _State) -> bool:
    """Start the guardian unless it runs; replay what it must know. Caller holds the lock."""
    if state.write_fd is not None:
        return True
    if not _LINUX or state.failed:
        return False
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != ENV_NAME}  # its own token would kill it
    if not os.path.isfile(os.path.abspath(__file__)):  # pragma: no cover - zipped install
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    read_fd, write_fd = os.pipe()  # both close-on-exec (PEP 446)
    try:
        popen = subprocess.Popen(
            _guardian_argv(_token(state)), stdin=read_fd, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True, env=env, cwd="/",
        )
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        state.failed = True
        warnings.warn(f"zmqprocesstest: could not start the guardian ({exc}); processes under test "
                      "may outlive a runner that is killed", RuntimeWarning, stacklevel=4)
        return False
    os.close(read_fd)
    os.set_blocking(write_fd, False)
    state.popen, state.write_fd = popen, write_fd
    replay = [b"+g %d\n" % g for g in sorted(state.groups)] + [_dir_line(b"+d", d) for d in sorted(state.dirs)]
    for line in replay:
        if not _write(state, line):
            return False
    return True


def _dir_line(verb: bytes, path: str) -> bytes:
    return verb + b" " + os.fsencode(path).hex().encode() + b"\n"


def _write(state: _State, data: bytes) -> bool:
    """Write a command line; False if the guardian is gone. Caller holds the lock.

    The write end is non-blocking: a line under ``PIPE_BUF`` goes in whole or not at all.
    A guardian that reads nothing for :data:`_WRITE_TIMEOUT` seconds (stopped?) keeps its
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
        deadline = deadline or now + _WRITE_TIMEOUT
        if now >= deadline or not select.select([], [fd], [], deadline - now)[1]:
            warnings.warn(f"zmqprocesstest: the guardian (pid {state.popen.pid}) reads nothing; "
                          f"dropped {bytes(data)!r}", RuntimeWarning, stacklevel=5)
            return True
    return True


def _retire(state: _State) -> None:
    """The guardian stopped reading: close our end, reap it later (never block a test)."""
    if state.write_fd is not None:
        os.close(state.write_fd)
        state.write_fd = None
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
            registry.add(item)
        elif item in registry:
            registry.discard(item)
        else:
            return
        if state.retired:
            _reap_retired(state)
        for _attempt in range(2):  # a guardian that died is replaced once, with everything replayed
            if not _start(state):
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
    """Start the guardian now (it starts on first use anyway); True if it runs."""
    state = _current()
    with state.lock:
        return _start(state)


def stop(timeout: float = _EXIT_TIMEOUT) -> bool:
    """Close the pipe: the guardian kills what is still registered, cleans up and exits.

    Waits at most *timeout* seconds for it and reaps it; True if it exited. Called at
    interpreter exit; a later registration starts a new guardian (with the same token).
    """
    state = _current()
    with state.lock:
        state.groups.clear()  # the guardian ends them now; never replay them to a new one
        state.dirs.clear()
        popen = state.popen
        if state.write_fd is not None:
            os.close(state.write_fd)
            state.write_fd = None
        state.popen = None
        if popen is not None:
            state.retired.append(popen)
        deadline = time.monotonic() + timeout
        for p in state.retired:
            _wait_exit(p.pid, max(0.0, deadline - time.monotonic()))
        _reap_retired(state)
        return not state.retired


def guardian_pid() -> Optional[int]:
    """The pid of this runner's guardian, or ``None`` if it does not run (it is a child of
    the runner: a check for leftover children must skip it)."""
    state = _current()
    return None if state.popen is None else state.popen.pid


def guardian_fds() -> Set[int]:
    """The file descriptors the guardian machinery holds open (a leak check must skip them)."""
    state = _current()
    return set() if state.write_fd is None else {state.write_fd}


def _wait_exit(pid: int, timeout: float) -> None:
    """Wait until *pid* has exited (not reaped), at most *timeout* seconds, without sleeping."""
    try:
        fd = getattr(os, "pidfd_open")(pid)
    except (AttributeError, OSError):
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    """True if *pid* exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X", b"x")


def _shutdown_at_exit() -> None:
    state = _state
    if state.owner == os.getpid() and (state.write_fd is not None or state.retired):
        stop()


# ---------------------------------------------------------------------------------------
# The per-test check: orphans reparent to the runner, which finds and ends them.

def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ``prctl``).

    A process under test that daemonizes (double fork and ``setsid``) then stays our
    descendant, and :func:`new_descendants` sees it. Idempotent; ``False`` where it is
    not available. Not inherited by forked children.
    """
    state = _current()
    if state.subreaper:
        return True
    if not _LINUX:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        ok = bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
    state.subreaper = ok
    return ok


_children_files: Optional[bool] = None


def _children() -> List[int]:
    """Pids of this process's children (``/proc/self/task/*/children``, else a ``/proc`` scan)."""
    global _children_files
    me = os.getpid()
    if _children_files is None:
        _children_files = os.path.exists(f"/proc/{me}/task/{me}/children")
    if not _children_files:
        return _scan_children(me)
    found: List[int] = []
    try:
        tids = os.listdir(f"/proc/{me}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{me}/task/{tid}/children", "rb") as f:
                found.extend(int(p) for p in f.read().split())
        except OSError:  # the thread just ended
            continue
    return found


def _scan_children(me: int) -> List[int]:
    found: List[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rfind(b")") + 2:].split()[1]) == me:
                found.append(int(entry))
    return found


def _describe(pid: int) -> Tuple[Optional[str], str]:
    """(state letter, command line) of *pid*; state ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None, ""
    state = stat[stat.rfind(b")") + 2:][:1].decode()
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = ""
    if not cmdline:
        cmdline = "[" + stat[stat.find(b"(") + 1:stat.rfind(b")")].decode(errors="replace") + "]"
    return state, cmdline


def _multiprocessing_children() -> Dict[int, Any]:
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return {}
    return {p.pid: p for p in mp.active_children()}


def new_descendants(before: Set[int], known: Set[int]) -> List[Tuple[int, str]]:
    """Children of this process not in *before* or *known*, with their command lines.

    After :func:`become_subreaper` these include orphaned descendants (a daemon a process
    under test left behind). The guardian is never listed. Children that already exited
    (zombies, such as the middle process of a double fork) are reaped here and not
    listed -- except :mod:`multiprocessing` children, which it reaps itself.
    """
    state = _current()
    skip = before | known | {p.pid for p in [state.popen] + state.retired if p is not None}
    found: List[Tuple[int, str]] = []
    exited: List[int] = []
    for pid in _children():
        if pid in skip:
            continue
        letter, cmdline = _describe(pid)
        if letter is None:
            continue
        if letter in ("Z", "X", "x"):
            exited.append(pid)
        else:
            found.append((pid, cmdline))
    if exited:
        ours = _multiprocessing_children()
        for pid in exited:
            if pid not in ours:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
    return found


def kill_and_reap(pids: Iterable[Any], timeout: float = 5.0) -> List[int]:
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
        _wait_exit(pid, remaining)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if _alive(pid):
            left.append(pid)
    return left


# ---------------------------------------------------------------------------------------
# The guardian's side: ``python -I -S _guardian.py TOKEN RUNNER_PID``.

def _serve(token: str, runner: int) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups: Set[int] = set()
    dirs: Set[bytes] = set()
    try:
        _follow(runner, groups, dirs)
    finally:
        _clean_up(token.encode(), groups, dirs)


def _follow(runner: int, groups: Set[int], dirs: Set[bytes]) -> None:
    """Apply the runner's commands until it is gone (end-of-file, or its pidfd fires)."""
    watch: List[int] = [0]
    try:
        pidfd = getattr(os, "pidfd_open")(runner)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        watch.append(pidfd)
    # After the pidfd is open, a parent that is still the runner proves it is the runner's.
    runner_gone = os.getppid() != runner
    buffer = b""
    while not runner_gone:
        ready = select.select(watch, [], [], None if pidfd is not None else 1.0)[0]
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:
                return
            buffer = _apply(buffer + data, groups, dirs)
        if pidfd in ready or os.getppid() != runner:
            runner_gone = True
    os.set_blocking(0, False)  # the runner is dead: take what it wrote, then clean up
    while True:
        try:
            data = os.read(0, 65536)
        except (BlockingIOError, OSError):
            break
        if not data:
            break
        buffer = _apply(buffer + data, groups, dirs)


def _apply(buffer: bytes, groups: Set[int], dirs: Set[bytes]) -> bytes:
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
        except ValueError:
            continue
    return rest


def _marked(token: bytes) -> List[int]:
    """Pids of processes whose environment carries *token* in :data:`ENV_NAME`."""
    me = os.getpid()
    prefix = ENV_NAME.encode() + b"="
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if token not in environ:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(prefix) and token in item[len(prefix):].split():
                found.append(int(entry))
                break
    return found


def _clean_up(token: bytes, groups: Set[int], dirs: Set[bytes]) -> None:
    """Kill the groups and the marked processes until a scan finds no new one; remove dirs."""
    own_group = os.getpgrp()
    groups = {g for g in groups if g > 1 and g != own_group}
    killed: Set[int] = set()
    for _round in range(_KILL_ROUNDS):
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        fresh = [pid for pid in _marked(token) if pid not in killed]
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
    _serve(sys.argv[1], int(sys.argv[2]))
elif hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
    atexit.register(_shutdown_at_exit)
