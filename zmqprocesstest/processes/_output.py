"""Captured output of a process under test: a pipe drained as it comes, bounded in size.

The child writes stdout and stderr to one pipe. One daemon thread per runner process
(:class:`_Drainer`, started on first use) reads every such pipe as data comes, so a child
never blocks on a full pipe, and waits on output (``wait_output``) wake on each new line.
One shared thread rather than one per process: starting a thread costs more than a whole
round trip, and a test starts a process or more. What is left when the process is
closed is read by the closing thread itself (no hand-over to the drainer).

Nothing is cut. The newest :data:`CAPTURE_LIMIT` bytes of a process's output stay in
memory (what reports show); once it has written more, all of it goes to a file in the
private directory of the test (or class, or module) that owns the process
(:attr:`Output.spill_path`, named in its report), which :meth:`Output.text` reads.
Waits (:meth:`Output.wait_for`) consume what they matched: each starts after the end of
the previous match, as pexpect's ``expect`` does.
"""
from __future__ import annotations

import os
import re
import selectors
import shutil
import tempfile
import threading
import time
from typing import Callable, List, Optional, Set

from ..report import timeline as _timeline
from .._compat import PerProcess
from .._config import OUTPUT_CLOSE, REPORT_DIR_ENV

__all__ = ["CAPTURE_LIMIT", "Output", "TAIL_LINES", "drainer_fds"]

#: How many lines of captured output a report shows.
TAIL_LINES = 20
#: How many bytes of a process's output are kept in memory (the newest); beyond it,
#: all of its output is also written to a file (see :attr:`Output.spill_path`).
CAPTURE_LIMIT = 4 * 1024 * 1024
#: The file a process's output goes to once it passes :data:`CAPTURE_LIMIT`.
SPILL_NAME = "output-{name}-{pid}.log"


class Output:
    """One process's captured output: the pipe, and what was read from it so far.

    After :meth:`start` the read end belongs to the drainer thread, which closes it at
    end of file or when :meth:`close` gives up waiting for it.
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        #: The newest output (all of it until :data:`CAPTURE_LIMIT` is passed).
        self.data = bytearray()
        #: Offset in the whole output of ``data[0]`` (bytes no longer in memory).
        self.base = 0
        #: Where the next :meth:`wait_for` starts: the end of the last match.
        self.consumed = 0
        #: A function giving the directory to write all output to once it passes
        #: :data:`CAPTURE_LIMIT` (``None``: none yet, all of it stays in memory).
        self.spill_dir: Optional[Callable[[], Optional[str]]] = None
        #: The file holding all of the output, once it passed :data:`CAPTURE_LIMIT`.
        self.spill_path: Optional[str] = None
        #: Where :attr:`spill_path` is kept after its directory is removed, once a report
        #: named it (:meth:`keep`); ``None`` while no report did.
        self.kept_path: Optional[str] = None
        #: Why the output could not go to a file (it stays in memory then), if it could not.
        self.spill_error: Optional[str] = None
        self._spill_fd = -1
        #: The process's pid (in the file's name).
        self.pid = 0
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

    @property
    def total(self) -> int:
        """How many bytes of output came so far."""
        return self.base + len(self.data)

    def _feed(self, chunk: bytes) -> None:
        _timeline.record("output", self.name, chunk)  # the time it arrived; split into lines when shown
        if self._spill_fd < 0 and len(self.data) + len(chunk) > CAPTURE_LIMIT:
            self._start_spill()
        if self._spill_fd >= 0:
            _write_all(self._spill_fd, chunk)  # before it counts: a reader of the file finds it there
        with self.cond:
            self.data += chunk
            if self._spill_fd >= 0 and len(self.data) > CAPTURE_LIMIT:
                cut = len(self.data) - CAPTURE_LIMIT
                del self.data[:cut]
                self.base += cut
            self.cond.notify_all()

    def _start_spill(self) -> None:
        """Write all output so far to a file in the owner's private directory, and what
        comes from now on too (in the drainer thread). Without a directory (not owned
        by a test yet) the output stays in memory."""
        folder = self.spill_dir() if self.spill_dir is not None else None
        if folder is None:
            return
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)[:40]
        path = os.path.join(folder, SPILL_NAME.format(name=safe, pid=self.pid))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                _write_all(fd, bytes(self.data))  # nothing was cut yet: base is 0
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:  # a full disk: keep all of it in memory rather than lose any
            self.spill_dir = None
            self.spill_error = f"could not write {path}: {exc}"
            return
        self._spill_fd, self.spill_path = fd, path

    def keep(self) -> str:
        """The path where the spilled output is kept after its test's private directory is
        removed (:meth:`move_kept` moves it there): a report names that one, never a file
        that is gone by the time anyone reads the report. The report directory if one is
        set (``ZMQPROCESSTEST_REPORT_DIR``), else the system's temporary directory."""
        if self.kept_path is None:
            folder = os.environ.get(REPORT_DIR_ENV) or tempfile.gettempdir()
            name = f"zmqprocesstest-{os.getpid()}-{os.path.basename(str(self.spill_path))}"
            self.kept_path = os.path.join(folder, name)
        return self.kept_path

    def move_kept(self) -> Optional[str]:
        """Move the spilled output to where :meth:`keep` said (before its directory is
        removed); return a problem to report if it cannot be moved, else ``None``."""
        if self.kept_path is None or self.spill_path is None:
            return None
        try:
            os.makedirs(os.path.dirname(self.kept_path), exist_ok=True)
            shutil.move(self.spill_path, self.kept_path)
        except OSError as exc:
            return f"the output of {self.name!r} could not be kept in {self.kept_path}: {exc}"
        self.spill_path = self.kept_path
        return None

    def _end(self) -> None:
        if self._spill_fd >= 0:  # closed first: whoever waits for the end finds no fd open
            os.close(self._spill_fd)
            self._spill_fd = -1
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

    def _bytes(self, start: int) -> bytes:
        """The output from offset *start* on (from the file for what memory no longer
        holds). Called with :attr:`cond` held."""
        if start >= self.base:
            return bytes(self.data[start - self.base:])
        try:
            with open(str(self.spill_path), "rb") as f:  # output left memory only once it was in the file
                f.seek(start)
                return f.read(self.base - start) + bytes(self.data)
        except OSError as exc:  # removed with its directory after the owner's end
            return (f"[{self.base - start} bytes of earlier output were in {self.spill_path}, which cannot be "
                    f"read now: {exc}]\n").encode() + bytes(self.data)

    def text(self) -> str:
        """All of the output so far."""
        with self.cond:
            return self._bytes(0).decode("utf-8", "replace")

    def tail(self, lines: int = TAIL_LINES) -> str:
        with self.cond:
            text = self.data.decode("utf-8", "replace").rstrip("\n")
        if not text:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, pattern: "re.Pattern[str]", timeout: float, from_start: bool = False,
                 consume: bool = True) -> Optional["re.Match[str]"]:
        """The first match of *pattern* in the output not consumed yet, waiting at most
        *timeout* seconds for it (``None`` if the output ended or the time ran out
        without one). A match consumes the output up to its end: the next wait starts
        there (unless *consume* is false). With *from_start*, search all of the output
        (and consume nothing that was not consumed already).

        A search that fails is taken up again, when more output comes, from the start
        of a line at most :data:`CAPTURE_LIMIT` bytes before the end: every line is
        seen, and a match may span lines (up to that many bytes).
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            start = 0 if from_start else self.consumed
            while True:
                data = self._bytes(start)
                # surrogateescape: offsets in the text map back to offsets in the bytes
                text = data.decode("utf-8", "surrogateescape")
                match = pattern.search(text)
                if match:
                    end = start + len(text[:match.end()].encode("utf-8", "surrogateescape"))
                    if consume:
                        self.consumed = max(self.consumed, end)
                    return match
                if self.closed:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if len(data) > CAPTURE_LIMIT:  # take it up again from a line near the end
                    line = data.find(b"\n", len(data) - CAPTURE_LIMIT)
                    start += line + 1 if line >= 0 else len(data) - CAPTURE_LIMIT
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
