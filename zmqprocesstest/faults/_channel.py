"""Calls into a selector thread: other threads ask, the selector's thread answers.

A :class:`Channel` queues calls and wakes the thread through a pipe whose read end
(:attr:`Channel.wake_fd`) the thread's selector watches. The thread runs what is queued
(:meth:`Channel.serve`); each caller waits, bounded, for its own answer. The fault link's
proxy (:mod:`zmqprocesstest.faults._proxy`) changes its state only this way, on its own thread.
"""
from __future__ import annotations

import collections
import os
import threading
from typing import Any, Callable, Deque, Optional, Tuple

__unittest = True
__tracebackhide__ = True

__all__ = ["Channel"]


class _Call:
    __slots__ = ("name", "args", "done", "result", "error")

    def __init__(self, name: str, args: Tuple[Any, ...]) -> None:
        self.name, self.args = name, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None


class Channel:
    """A queue of calls to one thread, with a wake-up pipe for its selector."""

    def __init__(self) -> None:
        self._calls: Deque[_Call] = collections.deque()
        self._lock = threading.Lock()
        #: Readable when calls are waiting: register it with the thread's selector.
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)

    def ask(self, name: str, args: Tuple[Any, ...], timeout: float) -> Tuple[bool, Any]:
        """Queue the call *name* and wait at most *timeout* seconds: ``(True, answer)``, or
        ``(False, None)`` if the thread did not answer. What the call raised is raised here."""
        call = _Call(name, args)
        with self._lock:
            self._calls.append(call)
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass
        if not call.done.wait(timeout):
            return False, None
        if call.error is not None:
            raise call.error
        return True, call.result

    def serve(self, run: Callable[..., Any], last: str) -> bool:
        """On the thread: answer every queued call with ``run(name, *args)``; return whether
        the call *last* (the one that ends the thread) was among them."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            calls, self._calls = self._calls, collections.deque()
        ended = False
        for call in calls:
            try:
                call.result = run(call.name, *call.args)
            except Exception as exc:
                call.error = exc
            ended = ended or call.name == last
            call.done.set()
        return ended

    def cancel(self, error: Callable[[str], Optional[BaseException]]) -> None:
        """When the thread ends: answer the calls still queued with ``error(name)`` (``None``: no error)."""
        with self._lock:
            calls, self._calls = list(self._calls), collections.deque()
        for call in calls:
            call.error = error(call.name)
            call.done.set()

    def close(self) -> None:
        """Close the wake-up pipe (after the thread has ended)."""
        for fd in (self.wake_fd, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
