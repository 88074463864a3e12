"""Captured output of a process under test: a pipe drained as it comes, bounded in size.

The child writes stdout and stderr to one pipe. One daemon thread per runner process
(:class:`_Drainer`, started on first use) reads every such pipe as data comes, so a child
never blocks on a full pipe, and waits on output (``wait_output``) wake on each new line.
One shared thread rather than one per process: starting a thread costs more than a whole
round trip, and a test starts a process or more. What is left when the process is
closed is read by the closing thread itself (no hand-over to the drainer). At most
:data:`CAPTURE_LIMIT` bytes are kept per process (the newest).
"""
from __future__ import annotations

import os
import re
import selectors
import threading
import time
from typing import List, Optional, Set

from ..report import timeline as _timeline
from .._compat import PerProcess
from .._config import OUTPUT_CLOSE

__all__ = ["CAPTURE_LIMIT", "Output", "TAIL_LINES", "drainer_fds"]

#: How many lines of captured output a report shows.
TAIL_LINES = 20
#: How many bytes of output are kept per process (older output is dropped).
CAPTURE_LIMIT = 4 * 1024 * 1024


class Output:
    """One process's captured output: the pipe, and what was read from it so far.

    After :meth:`start` the read end belongs to the drainer thread, which closes it at
    end of file or when :meth:`close` gives up waiting for it.
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.data = bytearray()
        self.dropped = 0
        self.cond = threading.Condition()
        self.closed = False  # the pipe was read to its end (or given up on)
        #: Whose output it is: the lane of its lines in the running test's timeline.
        self.name = "process"
        self._started = False

    def start(self, name: str = "process") -> None:
        """The child has its copy of the write end: close ours and start draining the
        output of process *name* (its lines' lane in the timeline)."""
        self.name = name
        os.close(self.write_fd)
        self.write_fd = -1
        self._started = True
        os.set_blocking(self.read_fd, False)  # read by the drainer, or by close(): neither may block
        _drainer().add(self)

    def _feed(self, chunk: bytes) -> None:
        _timeline.record("output", self.name, chunk)  # the time it arrived; split into lines when shown
        with self.cond:
            self.data += chunk
            if len(self.data) > CAPTURE_LIMIT:
                cut = len(self.data) - CAPTURE_LIMIT
                del self.data[:cut]
                self.dropped += cut
            self.cond.notify_all()

    def _end(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def settle(self, timeout: float) -> None:
        """Wait, at most *timeout* seconds, until everything written has been read.

        For a process that has exited: the pipe ends when the last writer (it, or a
        child that inherited its output) is gone.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(remaining)

    def text(self) -> str:
        with self.cond:
            return self.data.decode("utf-8", "replace")

    def tail(self, lines: int = TAIL_LINES) -> str:
        text = self.text().rstrip("\n")
        if not text:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, pattern: "re.Pattern[str]", timeout: float) -> Optional["re.Match[str]"]:
        """The first match of *pattern* in the output, waiting at most *timeout* seconds
        for it (``None`` if the output ended or the time ran out without one)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                match = pattern.search(self.data.decode("utf-8", "replace"))
                if match or self.closed:
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)  # woken by new output, or by its end

    def close(self, timeout: float = OUTPUT_CLOSE) -> None:
        """Read the pipe to its end (at most *timeout* seconds), then release it."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1
        if not self._started:
            self.discard()
            return
        self._read_to_end()
        self.settle(timeout)
        if not self.closed:  # a writer outlived the process: stop reading, keep what came
            _drainer().drop(self)
            self.settle(timeout)

    def _read_to_end(self) -> None:
        """Read what is in the pipe now, in this thread, and end it if that is all: the
        process has exited, and its output is usually complete already (no hand-over
        to the drainer thread). A writer still there (a descendant) is left to it."""
        with self.cond:
            while self.read_fd >= 0 and not self.closed:
                try:
                    chunk = os.read(self.read_fd, 65536)
                except BlockingIOError:
                    return
                except OSError:
                    chunk = b""
                if not chunk:
                    _drainer().end(self)
                    return
                self._feed(chunk)

    def discard(self) -> None:
        """Close both ends of a pipe whose process never started."""
        for fd in (self.write_fd, self.read_fd):
            if fd >= 0:
                os.close(fd)
        self.write_fd = self.read_fd = -1
        self.closed = True


class _Drainer:
    """The thread that reads every started :class:`Output`'s pipe (one per process)."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.pending: List[Output] = []  # to drop
        self.thread = threading.Thread(target=self._run, name="zmqprocesstest-output", daemon=True)
        self.thread.start()

    def fds(self) -> Set[int]:
        fileno = getattr(self.selector, "fileno", None)  # epoll and kqueue have one
        return {self.wake_r, self.wake_w} | ({fileno()} if fileno is not None else set())

    def add(self, output: Output) -> None:
        """Start reading *output*'s pipe. Registered from the caller's thread: epoll
        takes that while the drainer waits, and the selector's map is updated first,
        so no wake-up (and no handover of the GIL) is needed to start a process."""
        self.selector.register(output.read_fd, selectors.EVENT_READ, output)
        if not hasattr(self.selector, "fileno"):  # select() or poll(): it sees the fd on its next call only
            os.write(self.wake_w, b"!")

    def drop(self, output: Output) -> None:
        """Ask the thread to stop reading *output*'s pipe (it owns closing it)."""
        with self.lock:
            self.pending.append(output)
        os.write(self.wake_w, b"!")

    def _run(self) -> None:
        while True:
            for key, _ in self.selector.select():
                output: Optional[Output] = key.data
                if output is None:
                    os.read(self.wake_r, 4096)
                    with self.lock:
                        pending, self.pending = self.pending, []
                    for dropped in pending:
                        self._drop(dropped)
                else:
                    with output.cond:  # one reader at a time: this thread or Output.close
                        if output.read_fd != key.fd:
                            continue  # dropped, or read to its end, earlier
                        try:
                            chunk = os.read(key.fd, 65536)
                        except BlockingIOError:
                            continue  # read by Output.close meanwhile
                        except OSError:
                            chunk = b""
                        if chunk:
                            output._feed(chunk)
                        else:
                            self._drop(output)

    def end(self, output: Output) -> None:
        """*output*'s pipe was read to its end (by :meth:`Output.close`): stop watching it."""
        self._drop(output)

    def _drop(self, output: Output) -> None:
        with output.cond:
            if output.read_fd >= 0:
                self.selector.unregister(output.read_fd)
                os.close(output.read_fd)
                output.read_fd = -1
            output._end()


_DRAINER: PerProcess[_Drainer] = PerProcess(_Drainer)


def _drainer() -> _Drainer:
    return _DRAINER.get()


def drainer_fds() -> Set[int]:
    """The file descriptors the drainer holds open for good (a leak check must skip them)."""
    drainer = _DRAINER.current()
    return drainer.fds() if drainer is not None else set()
