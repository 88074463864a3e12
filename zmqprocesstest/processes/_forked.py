"""Forked processes under test: :class:`multiprocessing.Process` objects, started by fork.

Fork (whatever multiprocessing's default start method is) is what lets a patch such as
a :class:`~zmqprocesstest.ProcessMock` reach the child, and lets the child be set up
before any of its own code runs: a session and process group of its own, default
signal dispositions, stdout/stderr into a pipe the test drains, and the logging of a
fresh interpreter (not the runner's handlers and level).

There is no start window: the child waits, before any of its own code runs, until the
runner has registered its session with the guardian (:mod:`zmqprocesstest.processes._guardian`),
and exits at once if the runner is gone by then. A runner killed at any moment after
``start_process`` was called leaves nothing behind.
"""
from __future__ import annotations

import functools
import inspect
import multiprocessing
import multiprocessing.util
import os
import select
import sys
import threading
import warnings
from typing import Any, Callable, Collection, Dict, Optional, Sequence

from . import _guardian, _reaper
from .. import _perturb
from .._config import SESSION_TIMEOUT, scaled
from ._output import Output
from .managed import ManagedProcess, default_signals, endpoints_in, unique_name, word

__unittest = True
__tracebackhide__ = True

__all__ = ["ForkedProcess"]

_pending = threading.local()
#: Exit status of a forked child whose runner vanished before it was covered.
ORPHANED_AT_START = 70
_FORK_WARNS = sys.version_info >= (3, 12)  # fork() in a process with threads warns from 3.12 on


def _in_forked_child(_: object) -> None:
    if not getattr(_pending, "active", False):
        return
    _pending.active = False
    output: Optional[Output] = _pending.output
    try:
        os.setsid()  # session, and group, of its own: pid == pgid == sid
    except OSError:
        os.setpgid(0, 0)
    default_signals()
    # What it execs carries the runner's token, as commands do: found by the guardian
    # even after leaving this session (a daemon).
    os.environ[_guardian.ENV_NAME] = _pending.tokens
    started_r, started_w = _pending.started
    go_r, go_w = _pending.go
    os.close(started_r)
    os.close(go_w)
    for fd in list(_perturb.held_fds):  # the words of starts held by the stress are not this child's
        try:
            os.close(fd)
        except OSError:
            pass  # given (and closed) by the runner's clock thread as it forked
    os.write(started_w, b"!")  # signals sent from now on are not lost in the fork
    os.close(started_w)
    # Wait for the runner's word that the guardian covers this session. End-of-file
    # means the runner died (or gave up) first: nobody would ever stop this process.
    try:
        word = os.read(go_r, 1)
    except OSError:
        word = b""
    os.close(go_r)
    if not word:
        os._exit(ORPHANED_AT_START)
    if output is not None:
        os.dup2(output.write_fd, 1)
        os.dup2(output.write_fd, 2)
        os.close(output.write_fd)
        os.close(output.read_fd)
        # The runner may have replaced sys.stdout (pytest's capture does): write to the
        # pipe, a line at a time, so waits on output see each line at once.
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    _reset_logging()


def _reset_logging() -> None:
    """Give the child the logging of a fresh interpreter: no handlers on the root logger,
    its level WARNING, nothing disabled.

    A runner configures logging in the test process (pytest's and nose2's log capture
    add root handlers and set a level), and a forked child inherits that: its own
    ``logging.basicConfig(level=INFO)`` would do nothing (the root has handlers) and its
    records would go to the runner's handlers, not to its output. The handlers are
    removed, not closed: they belong to the runner (closing one could flush what it
    buffered a second time).
    """
    logging = sys.modules.get("logging")
    if logging is None:  # never imported: a fresh start already
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    logging.disable(logging.NOTSET)


def _takes_name(target: Any) -> bool:
    """Whether *target* (a class or function) takes a ``name`` keyword argument."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # no signature to read: passed on, as before
        return True
    return any(p.name == "name" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.kind == p.VAR_KEYWORD
               for p in parameters)


def _own_name(proc: Any, target: Any, kwargs: Dict[str, Any]) -> str:
    """The name of a process nobody named: the one its class gave it, else its target's
    ``__name__`` (not multiprocessing's ``ForkProcess-7``)."""
    default = f"{type(proc).__name__}-{':'.join(str(i) for i in getattr(proc, '_identity', ()))}"
    if proc.name != default:
        return str(proc.name)
    if isinstance(target, type) and target.__module__.startswith("multiprocessing"):
        target = kwargs.get("target", target)  # Process(target=serve): serve's name
    while isinstance(target, functools.partial):
        target = target.func
    return str(getattr(target, "__name__", None) or proc.name)


class _Hook:
    """Anchor for multiprocessing's after-fork registry (it holds weak references)."""


_HOOK = _Hook()
multiprocessing.util.register_after_fork(_HOOK, _in_forked_child)


class ForkedProcess(ManagedProcess):
    """A :class:`multiprocessing.Process` (or a function run in one) under test."""

    _started_fd: Optional[int] = None  # readable once the child has its own session

    @classmethod
    def start(cls, target: Any, args: Sequence[Any], kwargs: Dict[str, Any], *, name: Optional[str] = None,
              capture: bool = True, start_method: Optional[str] = "fork",
              taken: Collection[str] = ()) -> "ForkedProcess":
        """Start a :class:`multiprocessing.Process` subclass, or a function in one.

        With the fork start method (the default here, whatever multiprocessing's default
        is) the child moves into a session and process group of its own, gets default
        signal dispositions, sends its stdout/stderr to a pipe the parent drains and
        waits until the guardian covers it, before any of its code runs; a
        :class:`~zmqprocesstest.ProcessMock` patched in the test is inherited. A class
        made for an explicit context (``get_context("spawn").Process``) keeps its own
        method.

        Its name (in every report) is *name*, else the ``name`` keyword argument (passed
        on to *target* only if it takes one, as :class:`multiprocessing.Process` does),
        else the name the process object was given by its class, else *target*'s own
        name (a function's or class's ``__name__``); made unique among the names *taken*
        (``worker#2``...).
        """
        if "name" in kwargs and name is None:
            name = kwargs["name"]
            if not isinstance(name, str) or not name:
                raise TypeError(f"expected the process's name to be a non-empty str, got {name!r}")
            if not _takes_name(target):
                kwargs = {k: v for k, v in kwargs.items() if k != "name"}
        with _reaper.other_reapers_held():  # until it has a pidfd
            return cls._start(target, args, kwargs, name=name, capture=capture, start_method=start_method,
                              taken=taken)

    @classmethod
    def _start(cls, target: Any, args: Sequence[Any], kwargs: Dict[str, Any], *, name: Optional[str],
               capture: bool, start_method: Optional[str], taken: Collection[str] = ()) -> "ForkedProcess":
        if isinstance(target, type) and issubclass(target, multiprocessing.process.BaseProcess):
            make: Callable[[], Any] = lambda: target(*args, **kwargs)  # noqa: E731
        elif callable(target):
            make = lambda: factory(target=target, args=tuple(args), kwargs=kwargs)  # noqa: E731
        else:
            raise TypeError(f"expected a multiprocessing.Process subclass or a callable, got {target!r}")
        context = multiprocessing.get_context(start_method) if start_method else None
        factory = context.Process if context is not None else multiprocessing.Process  # type: ignore[attr-defined]
        _reaper.prepare_runner()  # subreaper, exit statuses and guardian, before the fork
        output = Output() if capture else None
        started_r, started_w = os.pipe()
        go_r, go_w = os.pipe()
        tokens = os.environ.get(_guardian.ENV_NAME, "").split() + [_guardian.token()]  # the child's, made here
        _pending.active, _pending.output, _pending.tokens = True, output, " ".join(tokens)
        _pending.started, _pending.go = (started_r, started_w), (go_r, go_w)
        # Parallel runners run tests in daemonic pool workers, which multiprocessing
        # forbids to have children (they could be orphaned). The test case stops and
        # reaps its processes itself, and kills leftovers at exit, so lift the rule
        # while the process is made (so it does not inherit the flag) and started.
        me = multiprocessing.current_process()
        daemonic = me.daemon
        pgid = None
        held = False
        try:
            if daemonic:
                me.daemon = False
            proc = make()
            name = unique_name(name or _own_name(proc, target, kwargs), taken)
            if proc.name != name:
                proc.name = name  # the child's multiprocessing.current_process().name too
            if context is not None and getattr(proc, "_start_method", None) is None:
                proc._Popen = context.Process._Popen  # type: ignore[attr-defined]
                if hasattr(context.Process, "_after_fork"):  # type: ignore[attr-defined]  # 3.10+ only
                    proc._after_fork = context.Process._after_fork  # type: ignore[attr-defined]
            if _FORK_WARNS:
                with warnings.catch_warnings():
                    # Python 3.12+ warns that fork() in a process with threads may deadlock
                    # the child. The test's zmq context has libzmq threads by design, and
                    # forking is the documented choice (start_method); the child never uses them.
                    warnings.filterwarnings("ignore", r"This process .* is multi-threaded, use of fork\(\)",
                                            DeprecationWarning)
                    proc.start()
            else:
                proc.start()
            if getattr(getattr(proc, "_popen", None), "method", None) == "fork":
                # The child makes its own session (pgid == pid), then waits for this word:
                # registered first, it is covered before it runs a line of its own.
                pgid = proc.pid
                _guardian.watch_group(pgid)
                if _perturb.hold is not None:  # stress: it may run its own code later
                    _perturb.hold(name or proc.name, word(go_w, b"!"))
                    held = True
                else:
                    os.write(go_w, b"!")
        except BaseException:
            if output is not None:
                output.discard()
            os.close(started_r)
            raise
        finally:
            if daemonic:
                me.daemon = True
            _pending.active, _pending.output, _pending.started, _pending.go = False, None, None, None
            for fd in (started_w, go_r, -1 if held else go_w):  # a child still waiting reads end-of-file and exits
                if fd != -1:
                    os.close(fd)
        if output is not None:
            output.start(name)
        managed = cls(proc, name, output, pgid=pgid)
        managed.endpoints = endpoints_in(list(args) + list(kwargs.values()))
        managed._started_fd = started_r
        kept = name
        managed.relaunch = lambda: cls.start(target, args, kwargs, name=kept, capture=capture,
                                             start_method=start_method)
        return managed

    def _poll(self) -> Optional[int]:
        return self.obj.exitcode

    def _reaped(self, code: Optional[int]) -> Optional[int]:
        # multiprocessing's Popen reaps with waitpid(pid) and, if someone else reaped the
        # child (ECHILD), says "running" forever: told the code, its join, close and
        # active_children see the process ended.
        popen = getattr(self.obj, "_popen", None)
        known = getattr(popen, "returncode", None)
        if known is not None or code is None:
            return known
        if self.obj.exitcode is None and popen is not None:
            popen.returncode = code
        return code

    def _block(self, timeout: float) -> None:
        self.obj.join(timeout)

    def _exit_fd(self) -> Optional[int]:
        return self.obj.sentinel

    def _deliver(self, sig: int, group: bool) -> None:
        if self._started_fd is not None:
            # Its session exists once the child has written (or died: end of file); a
            # signal to its group before that would find no such group. The start did not
            # wait for it, so the test's own set-up ran meanwhile.
            select.select([self._started_fd], [], [], scaled(SESSION_TIMEOUT))
            os.close(self._started_fd)
            self._started_fd = None
        super()._deliver(sig, group)

    def _release(self) -> None:
        if self._started_fd is not None:
            os.close(self._started_fd)
            self._started_fd = None
        if not self.alive():
            popen = getattr(self.obj, "_popen", None)
            if popen is not None and popen.returncode is None:
                # Exited, reaped by another reaper and its status lost (ExitStatusLost,
                # reported): its object is released all the same.
                popen.returncode = -1
            self.obj.close()
