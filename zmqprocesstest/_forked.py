"""Forked processes under test: :class:`multiprocessing.Process` objects, started by fork.

Fork (whatever multiprocessing's default start method is) is what lets a patch such as
a :class:`~zmqprocesstest.ProcessMock` reach the child, and lets the child be set up
before any of its own code runs: its own process group, default signal dispositions,
and stdout/stderr into a pipe the test drains.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import select
import sys
import threading
import warnings
from typing import Any, Callable, Dict, Optional, Sequence

from ._config import scaled
from ._output import Output
from .processes import ManagedProcess, default_signals
from .stopping import DEFAULT_STOP_STEPS, DEFAULT_STOP_TIMEOUTS, check_stop_steps

__unittest = True
__tracebackhide__ = True

__all__ = ["ForkedProcess"]

_pending = threading.local()


def _in_forked_child(_: object) -> None:
    if not getattr(_pending, "active", False):
        return
    _pending.active = False
    output: Optional[Output] = _pending.output
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    default_signals()
    started_r, started_w = _pending.started
    os.close(started_r)
    os.write(started_w, b"!")  # signals sent from now on are not lost in the fork
    os.close(started_w)
    if output is not None:
        os.dup2(output.write_fd, 1)
        os.dup2(output.write_fd, 2)
        os.close(output.write_fd)
        os.close(output.read_fd)
        # The runner may have replaced sys.stdout (pytest's capture does): write to the
        # pipe, a line at a time, so waits on output see each line at once.
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)


class _Hook:
    """Anchor for multiprocessing's after-fork registry (it holds weak references)."""


_HOOK = _Hook()
multiprocessing.util.register_after_fork(_HOOK, _in_forked_child)


class ForkedProcess(ManagedProcess):
    """A :class:`multiprocessing.Process` (or a function run in one) under test."""

    _started_fd: Optional[int] = None

    @classmethod
    def start(cls, target: Any, args: Sequence[Any], kwargs: Dict[str, Any], *, name: Optional[str] = None,
              capture: bool = True, stop_timeouts: Dict[str, float] = DEFAULT_STOP_TIMEOUTS,
              stop_steps: Sequence[str] = DEFAULT_STOP_STEPS, start_method: Optional[str] = "fork") -> "ForkedProcess":
        """Start a :class:`multiprocessing.Process` subclass, or a function in one.

        With the fork start method (the default here, whatever multiprocessing's default
        is) the child moves into its own process group, gets default signal dispositions
        and sends its stdout/stderr to a pipe the parent drains, before any of its code
        runs; a :class:`~zmqprocesstest.ProcessMock` patched in the test is inherited. A
        class made for an explicit context (``get_context("spawn").Process``) keeps its
        own method.
        """
        if isinstance(target, type) and issubclass(target, multiprocessing.process.BaseProcess):
            make: Callable[[], Any] = lambda: target(*args, **kwargs)  # noqa: E731
        elif callable(target):
            make = lambda: factory(target=target, args=tuple(args), kwargs=kwargs)  # noqa: E731
        else:
            raise TypeError(f"expected a multiprocessing.Process subclass or a callable, got {target!r}")
        context = multiprocessing.get_context(start_method) if start_method else None
        factory = context.Process if context is not None else multiprocessing.Process  # type: ignore[attr-defined]
        check_stop_steps(stop_steps)
        output = Output() if capture else None
        started_r, started_w = os.pipe()
        _pending.active, _pending.output, _pending.started = True, output, (started_r, started_w)
        # Parallel runners run tests in daemonic pool workers, which multiprocessing
        # forbids to have children (they could be orphaned). The test case stops and
        # reaps its processes itself, and kills leftovers at exit, so lift the rule
        # while the process is made (so it does not inherit the flag) and started.
        me = multiprocessing.current_process()
        daemonic = me.daemon
        try:
            if daemonic:
                me.daemon = False
            proc = make()
            if context is not None and getattr(proc, "_start_method", None) is None:
                proc._Popen = context.Process._Popen  # type: ignore[attr-defined]
                if hasattr(context.Process, "_after_fork"):  # type: ignore[attr-defined]  # 3.10+ only
                    proc._after_fork = context.Process._after_fork  # type: ignore[attr-defined]
            with warnings.catch_warnings():
                # Python 3.12+ warns that fork() in a process with threads may deadlock
                # the child. The test's zmq context has libzmq threads by design, and
                # forking is the documented choice (start_method); the child never uses them.
                warnings.filterwarnings("ignore", r"This process .* is multi-threaded, use of fork\(\)",
                                        DeprecationWarning)
                proc.start()
        except BaseException:
            if output is not None:
                output.discard()
            os.close(started_r)
            raise
        finally:
            if daemonic:
                me.daemon = True
            _pending.active, _pending.output, _pending.started = False, None, None
            os.close(started_w)
        if output is not None:
            output.start()
        managed = cls(proc, name or proc.name, output, stop_timeouts, stop_steps)
        managed.relaunch = lambda: cls.start(target, args, kwargs, name=name, capture=capture, stop_timeouts=stop_timeouts,
                                             stop_steps=stop_steps, start_method=start_method)
        managed._started_fd = started_r
        return managed

    def _poll(self) -> Optional[int]:
        return self.obj.exitcode

    def _block(self, timeout: float) -> None:
        self.obj.join(timeout)

    def _exit_fd(self) -> Optional[int]:
        return self.obj.sentinel

    def wait_until_blocked(self, timeout: float = 0.5) -> None:
        if self._started_fd is not None:
            # The fork hook writes this (or it closes on exit) once the child can take signals.
            select.select([self._started_fd], [], [], scaled(timeout))
        super().wait_until_blocked(timeout)

    def _release(self) -> None:
        if self._started_fd is not None:
            os.close(self._started_fd)
            self._started_fd = None
        if self.exitcode() is not None:
            self.obj.close()
