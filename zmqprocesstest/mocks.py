"""A stand-in for a child process class that tells the test how it was constructed.

When the process under test starts a child process (``B(port)``) on a random port, the
test needs that port. Patch the child's class with a :class:`ProcessMock`; the process
under test "constructs" it, and the mock reports the arguments back through a pipe as
JSON (never pickle). It acts as class and instance alike: calling it returns itself, and
``start``, ``join``, ``terminate``, ``kill``, ``close`` and ``is_alive`` exist and do
nothing. The reporting pipe is closed by :meth:`ProcessMock.close_pipe`, which the test
case calls after the test (for a mock from ``process_mock``), never by the code under test.

It needs the *fork* start method (the default on Linux up to Python 3.13): the patch made
in the test process is inherited by the forked process under test. Under *spawn* or
*forkserver* the child imports its modules afresh, so the patch, and the mock, are not
there; start the process under test with ``multiprocessing.get_context("fork")`` there.
"""
from __future__ import annotations

import json
import multiprocessing
from typing import Any, Dict, List, NamedTuple, Optional

from ._config import DEFAULT_TIMEOUT, Timeout, check_seconds, scaled

__unittest = True
__tracebackhide__ = True

__all__ = ["ProcessMock", "MockCall", "MockTimeout"]


class MockTimeout(Timeout):
    """The mocked process class was not constructed within the timeout."""


class MockCall(NamedTuple):
    """How the mock was constructed: positional and keyword arguments (JSON-decoded)."""

    args: List[Any]
    kwargs: Dict[str, Any]


class ProcessMock:
    """Patch a process class with this; :meth:`wait_for_call` returns its arguments.

    Example::

        mock = self.process_mock("worker")       # its pipe is closed after the test
        with unittest.mock.patch("app.Worker", new=mock):
            self.start_process(app.Manager, self.endpoint)
        port = mock.wait_for_call().args[0]

    Arguments that are not JSON (sockets, objects) arrive as their ``repr``.
    """

    __test__ = False

    def __init__(self, name: str = "process", timeout: Optional[float] = None) -> None:
        #: A name for messages.
        self.name = name
        #: Default wait of :meth:`wait_for_call` in seconds (``None``: 1 s, scaled by
        #: ``ZMQPROCESSTEST_TIMEOUT_SCALE``).
        self.timeout = check_seconds(timeout, "the timeout of a ProcessMock", allow_none=True)
        self._reader, self._writer = multiprocessing.Pipe(duplex=False)
        self.pid: Optional[int] = None
        self.exitcode: Optional[int] = 0
        self.daemon = False

    def __call__(self, *args: Any, **kwargs: Any) -> "ProcessMock":
        payload = json.dumps({"args": list(args), "kwargs": kwargs}, default=repr)
        self._writer.send_bytes(payload.encode("utf-8"))
        return self

    def wait_for_call(self, timeout: Optional[float] = None) -> MockCall:
        """The next construction's arguments, waiting at most *timeout* seconds.

        :raises MockTimeout: the mock was not constructed in time.
        """
        if timeout is not None:
            limit = check_seconds(timeout, "the timeout of wait_for_call")
        elif self.timeout is not None:
            limit = self.timeout
        else:
            limit = scaled(DEFAULT_TIMEOUT)
        if self._reader.closed:
            raise ValueError(f"cannot wait for a call of the mocked process {self.name!r}: its reporting pipe is "
                             "closed (close_pipe() was called; the test case calls it after the test)")
        if not self._reader.poll(limit):
            raise MockTimeout(f"expected the mocked process {self.name!r} to be constructed within {limit:g} s; "
                              "it was not (is the patch target right, and does the process use fork?)")
        data = json.loads(self._reader.recv_bytes().decode("utf-8"))
        return MockCall(data["args"], data["kwargs"])

    # -- the process API, doing nothing ---------------------------------------------------
    def start(self) -> None:
        """Does nothing."""

    def join(self, timeout: Optional[float] = None) -> None:
        """Does nothing."""

    def is_alive(self) -> bool:
        """Always ``False``: the mocked process never runs."""
        return False

    def terminate(self) -> None:
        """Does nothing."""

    def kill(self) -> None:
        """Does nothing."""

    def close(self) -> None:
        """Does nothing, like the other process methods: code under test may call
        ``Process.close()`` and still construct the mock again afterwards.

        The reporting pipe is closed by :meth:`close_pipe`.
        """

    # -- the test's side ----------------------------------------------------------------
    def close_pipe(self) -> None:
        """Close the reporting pipe; :meth:`wait_for_call` cannot be used afterwards.

        The test case calls it after the test for a mock made with ``process_mock``;
        call it yourself (e.g. with ``addCleanup``) for a mock you construct directly.
        Calling it again does nothing.
        """
        self._reader.close()
        self._writer.close()

    def __repr__(self) -> str:
        return f"<ProcessMock {self.name!r}>"
