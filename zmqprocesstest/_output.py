"""Captured output of a process under test: a pipe drained on a thread, bounded in size.

The child writes stdout and stderr to one pipe; a daemon thread reads it as it comes, so
the child never blocks on a full pipe, and waits on output (``wait_output``) wake on each
new line. At most :data:`CAPTURE_LIMIT` bytes are kept (the newest).
"""
from __future__ import annotations

import os
import re
import threading
import time
from typing import Callable, Optional

__all__ = ["Output", "TAIL_LINES", "CAPTURE_LIMIT"]

#: How many lines of captured output a report shows.
TAIL_LINES = 20
#: How many bytes of output are kept per process (older output is dropped).
CAPTURE_LIMIT = 4 * 1024 * 1024


class Output:
    """Drains a pipe on a daemon thread so the child can never block on a full pipe."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.data = bytearray()
        self.dropped = 0
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._drain, name="zmqprocesstest-output", daemon=True)

    def start(self) -> None:
        os.close(self.write_fd)
        self.write_fd = -1
        self.thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                if len(self.data) > CAPTURE_LIMIT:
                    cut = len(self.data) - CAPTURE_LIMIT
                    del self.data[:cut]
                    self.dropped += cut
                self.cond.notify_all()

    def settle(self, timeout: float) -> None:
        """Wait, at most *timeout* seconds, until everything written has been read.

        For a process that has exited: the pipe ends when the last writer (it, or a
        child that inherited its output) is gone.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed and self.thread.is_alive():
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

    def wait_for(self, pattern: "re.Pattern[str]", timeout: float, alive: Callable[[], bool]) -> Optional["re.Match[str]"]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                match = pattern.search(self.data.decode("utf-8", "replace"))
                if match or self.closed:
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                # Woken by new output; the bound also lets a dead process be noticed.
                self.cond.wait(min(remaining, 0.05))
                if not alive() and not self.thread.is_alive():
                    return pattern.search(self.data.decode("utf-8", "replace"))

    def close(self, timeout: float = 1.0) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1
        if self.thread.is_alive():
            self.thread.join(timeout)
        if not self.thread.is_alive() and self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1

    def discard(self) -> None:
        """Close both ends of a pipe whose process never started."""
        for fd in (self.write_fd, self.read_fd):
            if fd >= 0:
                os.close(fd)
        self.write_fd = self.read_fd = -1
