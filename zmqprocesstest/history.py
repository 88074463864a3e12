"""Histories of operations, as Jepsen records them, for checkers to judge afterwards.

A test that drives a service through many concurrent clients cannot assert each reply
on its own: what a correct reply is depends on what else happened at the same time.
So it records a :class:`History` -- each operation's *invoke*, then its completion:
``ok`` (it happened, with its result), ``fail`` (it certainly did not happen) or
``info`` (unknown: a timeout, a crash) -- and a checker in
:mod:`zmqprocesstest.checkers` judges the whole history at the end.

Times are seconds on the same monotonic clock as the test's timeline, so a problem a
checker finds can be found in the report's messages too. A test socket can record into
a history by itself (:meth:`History.record`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, Iterator, List, Optional, Sequence, Tuple

__unittest = True

__all__ = ["History", "HistoryError", "Op"]

#: The kinds of entry: an invocation, and the three ways it can complete.
INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
_COMPLETIONS = (OK, FAIL, INFO)


class HistoryError(ValueError):
    """A history was recorded wrongly (a completion with nothing pending, a bad kind)."""


@dataclass(frozen=True)
class Op:
    """One entry of a :class:`History`."""

    #: Position in the history (0 is the first entry).
    index: int
    #: ``"invoke"``, ``"ok"``, ``"fail"`` or ``"info"``.
    type: str
    #: Who did it: a client's name, a socket's name, a process.
    process: Hashable
    #: What was done: ``"read"``, ``"write"``, ``"incr"``, ``"request"``...
    f: str
    #: The argument (on an invoke) or the result (on an ok).
    value: Any
    #: Seconds since the history began.
    time: float
    #: What pairs a completion with its invocation when a process has several pending
    #: (a request id); ``None`` for one pending operation per process, as in Jepsen.
    key: Hashable = None
    #: For a completion: the index of its invocation.
    invoke_index: Optional[int] = field(default=None, compare=False)

    def describe(self) -> str:
        """``#3 +0.0123s client-1 ok read 4`` for messages."""
        key = "" if self.key is None else f" [{self.key!r}]"
        return f"#{self.index} +{self.time:.4f}s {self.process} {self.type} {self.f}{key} {self.value!r}"


class History:
    """Operations and their outcomes, in the order they happened.

    Each process (client) has at most one operation pending unless operations carry a
    *key* (then one per key), as a DEALER client has several requests in flight::

        history.invoke("c1", "write", 3)
        history.ok("c1")
        history.invoke("c2", "read")
        history.info("c2")  # timed out: it may or may not have happened
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, start: Optional[float] = None) -> None:
        self.clock = clock
        #: Clock reading at time 0 (the test's timeline start, to share one clock).
        self.start = clock() if start is None else start
        #: Every entry, in order.
        self.ops: List[Op] = []
        self._pending: Dict[Tuple[Hashable, Hashable], Op] = {}

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def _add(self, kind: str, process: Hashable, f: str, value: Any, key: Hashable,
             invoke_index: Optional[int] = None) -> Op:
        op = Op(len(self.ops), kind, process, f, value, self.clock() - self.start, key, invoke_index)
        self.ops.append(op)
        return op

    def invoke(self, process: Hashable, f: str, value: Any = None, key: Hashable = None) -> Op:
        """Record that *process* began operation *f* with argument *value*."""
        if (process, key) in self._pending:
            pending = self._pending[(process, key)]
            raise HistoryError(f"expected {process!r} to complete {pending.describe()} before invoking {f!r}"
                               + ("" if key is None else f" with the same key {key!r}"))
        op = self._add(INVOKE, process, f, value, key)
        self._pending[(process, key)] = op
        return op

    def complete(self, kind: str, process: Hashable, value: Any = None, key: Hashable = None) -> Op:
        """Record the completion (*kind*: ``ok``, ``fail`` or ``info``) of the pending
        operation of *process* (with *key*); *value* is its result."""
        if kind not in _COMPLETIONS:
            raise HistoryError(f"expected a completion kind, one of {', '.join(_COMPLETIONS)}; got {kind!r}")
        pending = self._pending.pop((process, key), None)
        if pending is None:
            raise HistoryError(f"expected an operation of {process!r}" + ("" if key is None else f" with key {key!r}")
                               + f" to be pending before its completion ({kind} {value!r}); none is")
        return self._add(kind, process, pending.f, value, key, pending.index)

    def ok(self, process: Hashable, value: Any = None, key: Hashable = None) -> Op:
        """The pending operation of *process* happened; *value* is its result."""
        return self.complete(OK, process, value, key)

    def fail(self, process: Hashable, value: Any = None, key: Hashable = None) -> Op:
        """The pending operation of *process* certainly did not happen."""
        return self.complete(FAIL, process, value, key)

    def info(self, process: Hashable, value: Any = None, key: Hashable = None) -> Op:
        """The outcome of the pending operation of *process* is unknown (timeout, crash)."""
        return self.complete(INFO, process, value, key)

    def pending(self) -> List[Op]:
        """Invocations with no completion yet (at the end of a test: unknown outcome)."""
        return sorted(self._pending.values(), key=lambda op: op.index)

    def pairs(self) -> List[Tuple[Op, Optional[Op]]]:
        """Each invocation with its completion (``None`` if there is none), in invocation order."""
        done = {op.invoke_index: op for op in self.ops if op.invoke_index is not None}
        return [(op, done.get(op.index)) for op in self.ops if op.type == INVOKE]

    def format(self, ops: Optional[Sequence[Op]] = None, limit: int = 50) -> str:
        """The entries (or *ops*), one a line, at most *limit* (the last ones)."""
        shown = list(self.ops if ops is None else ops)
        lines = [("  " + op.describe()) for op in shown[-limit:]]
        if len(shown) > limit:
            lines.insert(0, f"  ... {len(shown) - limit} earlier entries")
        return "\n".join(lines) or "  (empty history)"

    def record(self, sock: Any, process: Optional[Hashable] = None,
               key: Optional[Callable[[List[Any]], Hashable]] = None, f: str = "request") -> None:
        """Record the requests and replies of test socket *sock* from now on.

        Each message it sends is an invocation of *f* by *process* (default: the
        socket's name), each message it receives an ``ok`` of the pending one, with the
        frames as values. With *key* (frames -> a request id) several requests may be
        pending at once (a DEALER), and each reply completes the one with its key; a
        reply with no pending request is recorded as an ``ok`` with no invocation,
        which :func:`~zmqprocesstest.checkers.request_reply` reports. Recording stops
        when the socket is closed.
        """
        who = sock.name if process is None else process

        def on_message(direction: str, frames: Any) -> None:
            frames = list(frames) if isinstance(frames, (list, tuple)) else [frames]
            k = key(frames) if key is not None else None
            if direction == "sent":
                self.invoke(who, f, frames, k)
            elif (who, k) in self._pending:
                self.ok(who, frames, k)
            else:
                self._add(OK, who, f, frames, k)  # a reply nothing asked for: for the checker to find

        sock.recorders = [*sock.recorders, on_message]
