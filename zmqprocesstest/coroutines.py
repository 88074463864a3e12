"""Coroutine tests: ``async def`` tests and async generator tests on one event loop per test.

The metaclass of :class:`~zmqprocesstest.ProcessTestCase` replaces a coroutine function
test (and an async generator one) by a plain method that runs it here, on the test's
:class:`LoopRunner`: one fresh event loop, made before ``setUp`` and closed by the test's
last cleanup, on which ``asyncSetUp``, the test, ``asyncTearDown`` and the async
cleanups run, in the order :class:`unittest.IsolatedAsyncioTestCase` uses.

What the runner adds to a bare loop, so a coroutine test keeps every guarantee of a
generator test:

* the test's hard timeout: :class:`~zmqprocesstest.TestTimeout` raised while the loop
  waits in its selector (the test suspended at an ``await``) cancels the test's task and
  is raised at the ``await`` line; one raised in the test's own code (blocked in
  ``time.sleep``) ends its task there. A task that swallows the cancellation is closed
  after :data:`~zmqprocesstest._config.ASYNC_CANCEL_WAIT`;
* the death watch: each watched process's pidfd is a reader on the loop while a phase
  runs; a death cancels the test's task, and :class:`~zmqprocesstest.ProcessDied` is
  raised at the ``await`` line (after the exit grace for an exit with a code, at once
  for a death by a signal, as a test socket's wait does);
* what a loop leaves behind fails the test when the loop is closed: tasks still
  pending (named with the line that created them, then cancelled with a bound), an
  exception that reached the loop's exception handler (a task's exception never
  retrieved among them), and a coroutine that was never awaited.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import inspect
import math
import os
import sys
import time
import traceback
import types
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import zmq

from ._config import ASYNC_CANCEL_WAIT, ASYNC_DEATH_TURNS, COROUTINE_ORIGIN_DEPTH, EXIT_GRACE, WAIT_SLICE, scaled
from .loop import _PACKAGE_DIR, answer, trim_traceback
from .processes import ProcessDied
from .sockets import _STRICT, DRAIN_LOOK, SocketTimeout, TestSocket
from .timeout import TestTimeout, TimeoutIgnored

__unittest = True
__tracebackhide__ = True

__all__ = ["ASYNC_ATTR", "LoopRunner", "coroutine_test", "drive_async_events", "is_coroutine_test"]

_ASYNCIO_DIR = os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep
#: The attribute that marks a converted coroutine test.
ASYNC_ATTR = "__zmqprocesstest_async__"
#: Tasks that refused to end when cancelled and closed: kept from a noisy finaliser.
_UNSTOPPABLE_TASKS: List[Any] = []


def is_coroutine_test(func: Any) -> bool:
    """True for a coroutine function or an async generator function."""
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def _trim(exc: BaseException) -> BaseException:
    """Drop the library's frames and asyncio's from *exc*'s traceback: it ends at the test's line."""
    trim_traceback(exc)
    kept: List[types.TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_ASYNCIO_DIR):
            kept.append(tb)
        tb = tb.tb_next
    new_tb: Optional[types.TracebackType] = None
    for entry in reversed(kept):
        new_tb = types.TracebackType(new_tb, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return exc.with_traceback(new_tb)


@functools.lru_cache(maxsize=1024)
def _is_user(filename: str) -> bool:
    path = os.path.abspath(filename)
    return not path.startswith(_PACKAGE_DIR) and not path.startswith(_ASYNCIO_DIR)


def _creating_line(frame: Optional[types.FrameType]) -> str:
    """The innermost frame from *frame* outward outside the library and asyncio, as ``file:line in func``."""
    while frame is not None:
        code = frame.f_code
        if _is_user(code.co_filename):
            return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back
    return "(no line outside the library)"


def _suspended_frames(task: Any, agen: Any = None) -> List[types.FrameType]:
    """The frames where *task* is suspended, outermost first, down the chain of awaits.

    :meth:`asyncio.Task.get_stack` gives only the task's own coroutine; this follows
    ``cr_await`` (and an async generator test's ``ag_await``, which an ``asend`` hides)."""
    frames: List[types.FrameType] = []
    item: Any = task.get_coro()
    seen = 0
    while item is not None and seen < COROUTINE_ORIGIN_DEPTH * 4:
        seen += 1
        frame = getattr(item, "cr_frame", None) or getattr(item, "gi_frame", None) or getattr(item, "ag_frame", None)
        if frame is not None:
            frames.append(frame)
        nxt = getattr(item, "cr_await", None) or getattr(item, "gi_yieldfrom", None) or getattr(item, "ag_await", None)
        if agen is not None and getattr(item, "cr_code", None) is drive_async_events.__code__:
            nxt, agen = agen, None  # the test's body: where it yielded, or where it awaits between events
        item = nxt
    return frames


def _task_stack(task: Any, agen: Any = None) -> str:
    """Where *task*'s coroutine is suspended, innermost last (``File ..., line ..., in ...``)."""
    frames = [frame for frame in _suspended_frames(task, agen) if _is_user(frame.f_code.co_filename)]
    if not frames:
        return ""
    summary = traceback.StackSummary.extract((frame, frame.f_lineno) for frame in frames)
    return "".join(summary.format()).rstrip()


def _suspended_traceback(task: Any, agen: Any = None) -> Optional[types.TracebackType]:
    """A traceback through the test's frames where *task* is suspended (the last one: its await)."""
    tb: Optional[types.TracebackType] = None
    for frame in reversed([f for f in _suspended_frames(task, agen) if _is_user(f.f_code.co_filename)]):
        tb = types.TracebackType(tb, frame, frame.f_lasti, frame.f_lineno)
    return tb


def _trim_origin(message: str) -> str:
    """A never-awaited coroutine's warning, with the library's and asyncio's frames left out of its origin."""
    lines = message.splitlines()
    kept: List[str] = []
    skip = False
    for line in lines:
        if line.startswith("  File "):
            skip = not _is_user(line.split('"')[1]) if '"' in line else False
        elif not line.startswith("    "):
            skip = False
        if not skip:
            kept.append(line)
    return "\n".join(kept)


def _describe_task(task: Any, created: str) -> str:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or repr(coro)
    return f"task {task.get_name()!r} running {name}(), created at {created}"


class LoopRunner:
    """One coroutine test's event loop: its phases run on it, and closing it checks what was left.

    *case* is the test; its class attribute ``loop_factory`` (a callable taking no
    argument, or ``None`` for :func:`asyncio.new_event_loop`) makes the loop.
    """

    def __init__(self, case: Any) -> None:
        self.case = case
        factory = type(case).loop_factory or asyncio.new_event_loop
        loop = factory()
        if not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"expected loop_factory of {type(case).__qualname__} to return an asyncio event loop, "
                            f"got {loop!r}")
        self.loop = loop
        self.closed = False
        self.problems: List[str] = []
        self._created: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
        self._context = contextvars.copy_context()  # shared by the phases, as IsolatedAsyncioTestCase does
        self._main: Optional[asyncio.Task[Any]] = None
        self._interrupt: Optional[BaseException] = None
        self._readers: Tuple[int, ...] = ()
        self._death_check: Optional[asyncio.Handle] = None
        #: The async generator test being driven (its frames are hidden behind ``asend``).
        self.agen: Any = None
        self._closed_tasks: "weakref.WeakSet[Any]" = weakref.WeakSet()
        loop.set_task_factory(self._task_factory)
        loop.set_exception_handler(self._on_exception)
        asyncio.set_event_loop(loop)
        self._origin_depth = sys.get_coroutine_origin_tracking_depth()
        sys.set_coroutine_origin_tracking_depth(COROUTINE_ORIGIN_DEPTH)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("always", message=r"coroutine .* was never awaited", category=RuntimeWarning)
        self._showwarning = warnings.showwarning
        warnings.showwarning = self._on_warning

    # -- what the loop reports ------------------------------------------------------------------
    def _task_factory(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> "asyncio.Task[Any]":
        task = asyncio.Task(coro, loop=loop, **kwargs)
        self._created[task] = _creating_line(sys._getframe(1))
        return task

    def _on_exception(self, loop: asyncio.AbstractEventLoop, context: Dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, (TestTimeout, ProcessDied)):  # it fired in a plain callback, which the loop guards
            self.interrupt(exc)
            return
        self.problems.append(self._describe(context))

    def _describe(self, context: Dict[str, Any]) -> str:
        text = str(context.get("message") or "an exception reached the loop's exception handler")
        exc = context.get("exception")
        task = context.get("task") or context.get("future")
        if task is not None and task in self._created:
            text += f" ({_describe_task(task, self._created[task])})"
        if exc is not None:
            text += ":\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        return text

    def _late(self, loop: asyncio.AbstractEventLoop, context: Dict[str, Any]) -> None:
        """The loop's exception handler once the test has ended: what a finaliser reports then."""
        if isinstance(context.get("exception"), TestTimeout):
            return  # the test's own timeout (in a task of it that nobody awaited): the test failed with it
        warnings.warn(f"after {self.case.id()} ended, its event loop reported: {self._describe(context)}",
                      RuntimeWarning, stacklevel=2)

    def _on_warning(self, message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                    line: Any = None) -> None:
        if issubclass(category, RuntimeWarning) and "was never awaited" in str(message):
            self.problems.append(_trim_origin(str(message)))
            return
        self._showwarning(message, category, filename, lineno, file, line)

    # -- the death watch --------------------------------------------------------------------------
    def _watch(self) -> Any:
        return getattr(self.case, "_zpt", None)

    def sync_watch(self) -> None:
        """Make the watched processes' fds the loop's readers (after a process started or stopped)."""
        self._drop_readers()
        res = self._watch()
        if res is None or self._main is None:
            return
        fds = tuple(res.fds())
        for fd in fds:
            self.loop.add_reader(fd, self._on_exit_fd)
        self._readers = fds

    def _drop_readers(self) -> None:
        for fd in self._readers:
            try:
                self.loop.remove_reader(fd)
            except (OSError, ValueError):  # closed already (the process was stopped)
                pass
        self._readers = ()

    def _on_exit_fd(self) -> None:
        self._drop_readers()  # a pidfd stays readable: look again after the grace, not in a busy loop
        res = self._watch()
        grace = res.exit_grace() if res is not None else 0.0
        if grace > 0:  # an exit with a code: what it sent just before is read first, as a test socket does
            self._drain(self.loop.time() + grace)
        else:
            self._check_death()

    def _drain(self, until: float) -> None:
        """Wait (on the loop) until the exited processes' connections are read to their end, or *until*."""
        res = self._watch()
        drained = res.exit_drained() if res is not None else True
        remaining = until - self.loop.time()
        if drained or remaining <= 0:
            # One more read: the last messages are in the sockets' queues now; a timer runs
            # after the loop's next poll, so a zmq.asyncio socket's reader sees them first.
            self._death_check = self.loop.call_later(scaled(EXIT_GRACE), self._check_death)
            return
        look = min(remaining, DRAIN_LOOK if drained is False else WAIT_SLICE)
        self._death_check = self.loop.call_later(look, self._drain, until)

    def _check_death(self, turns: int = 0) -> None:
        self._death_check = None
        main = self._main
        if main is None or main.done():
            return  # the phase ended meanwhile: the death stays for the next wait to report, as in a plain test
        waiter = getattr(main, "_fut_waiter", None)  # what the task awaits (asyncio's Task, C or Python)
        if waiter is not None and waiter.done() and turns < ASYNC_DEATH_TURNS:
            # Its await has completed (a reply delivered) but the task has not resumed yet:
            # let it take what came; the death ends the await it makes next.
            self._death_check = self.loop.call_soon(self._check_death, turns + 1)
            return
        res = self._watch()
        try:
            if res is not None:
                res.check()
        except ProcessDied as died:
            self.interrupt(died)
            return
        self.sync_watch()  # a stopped process: watch the others

    def take_death(self) -> Optional[ProcessDied]:
        """The death that cancelled the running phase's task, taken back: the task goes on,
        to raise it where the test is (an async generator test's ``yield``); or ``None``."""
        exc = self._interrupt
        if not isinstance(exc, ProcessDied):
            return None
        self._interrupt = None
        main = self._main
        if main is not None and hasattr(main, "uncancel"):  # Python 3.11+: no cancellation pending
            main.uncancel()
        return exc

    def interrupt(self, exc: BaseException) -> None:
        """End the running phase with *exc*, raised at the ``await`` where its task is suspended."""
        main = self._main
        if main is None or main.done() or self._interrupt is not None:
            return
        self._interrupt = exc
        main.cancel()

    # -- running ------------------------------------------------------------------------------------
    async def _guarded(self, coro: Any) -> Any:
        try:
            return await coro
        except asyncio.CancelledError as cancelled:
            exc = self._interrupt
            if exc is None:
                raise
            raise exc.with_traceback(cancelled.__traceback__) from None

    def _start(self, coro: Any) -> "asyncio.Task[Any]":
        if sys.version_info >= (3, 11):
            return self.loop.create_task(self._guarded(coro), context=self._context)
        return self.loop.create_task(self._guarded(coro))

    def run(self, coro: Any) -> Any:
        """Run one phase (*coro*) to its end on the loop; return its result, or raise at its line."""
        if self.closed:
            coro.close()
            raise RuntimeError("the test's event loop is closed already")
        task = self._main = self._start(coro)
        self._interrupt = None
        try:
            self.sync_watch()
            try:
                return self.loop.run_until_complete(task)
            except (TestTimeout, TimeoutIgnored) as timeout:  # the latter: the backstop, 0.5 s later
                if task.done():
                    raise
                self._end(task, timeout)  # the loop was waiting: the test is suspended at an await
                raise  # not reached: _end raises
        except BaseException as exc:
            # Not a bare raise (before 3.11 it restores the untrimmed traceback); not "from": that
            # would replace the cause the exception has.
            raise _trim(exc)  # noqa: B904
        finally:
            self._main = None
            self._drop_readers()
            if self._death_check is not None:
                self._death_check.cancel()
                self._death_check = None

    def _end(self, task: "asyncio.Task[Any]", exc: BaseException) -> None:
        """Cancel *task* to raise *exc* at its await; one that will not end is closed."""
        where = _task_stack(task, self.agen)
        suspended = _suspended_traceback(task, self.agen)
        self._interrupt = exc
        if where:
            exc.args = (f"{exc.args[0] if exc.args else exc}\nThe test's coroutine was suspended at:\n{where}",
                        ) + tuple(exc.args[1:])
        task.cancel()
        self.loop.run_until_complete(asyncio.wait([task], timeout=scaled(ASYNC_CANCEL_WAIT)))
        if task.done():
            task.result()  # raises exc, with the traceback of the await
        _close_task(task)
        self._closed_tasks.add(task)
        note = (f"\nIt went on after it was cancelled (it "
                f"swallowed CancelledError?) for {scaled(ASYNC_CANCEL_WAIT):g} s: it was closed.")
        exc.args = (f"{exc.args[0] if exc.args else exc}{note}",) + tuple(exc.args[1:])
        raise exc.with_traceback(suspended)

    # -- closing ---------------------------------------------------------------------------------
    def abandon(self) -> None:
        """The run is being interrupted (Ctrl-C): close the loop and give back what was changed, unchecked."""
        if self.closed:
            return
        self.closed = True
        try:
            for task in asyncio.all_tasks(self.loop):
                _close_task(task)
            self.loop.close()
        finally:
            self._restore()

    def _restore(self) -> None:
        asyncio.set_event_loop(None)
        sys.set_coroutine_origin_tracking_depth(self._origin_depth)
        warnings.showwarning = self._showwarning
        self._warnings.__exit__(None, None, None)

    def close(self) -> None:
        """Cancel what is left, close the loop, restore the warnings; fail for what was left."""
        if self.closed:
            return
        self.closed = True
        loop = self.loop
        problems = self.problems
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done() and task not in self._closed_tasks]
            if pending:
                lines = [_describe_task(task, self._created.get(task, "(unknown)"))
                         + (", suspended at:\n" + _task_stack(task) if _task_stack(task) else "")
                         for task in pending]
                problems.insert(0, f"{len(pending)} task(s) still pending when the test ended:\n  "
                                + "\n  ".join(lines))
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.wait(pending, timeout=scaled(ASYNC_CANCEL_WAIT)))
                for task in pending:
                    if not task.done():
                        problems.append(f"{_describe_task(task, self._created.get(task, '(unknown)'))} went on "
                                        f"after it was cancelled, for {scaled(ASYNC_CANCEL_WAIT):g} s: it was closed")
                        _close_task(task)
                    elif not task.cancelled() and task.exception() is not None:
                        pass  # retrieved: told with the pending task
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            # A task's exception never retrieved, a coroutine never awaited: told now. What the
            # test made is young; an older one that a later collection finds is still told,
            # by the handler below, as a warning naming this test.
            gc.collect(1)
        finally:
            try:
                loop.set_exception_handler(self._late)
                loop.close()
            finally:
                self._restore()
        if problems:
            raise AssertionError("The test's event loop was left with:\n" + "\n".join(problems))


def _close_task(task: Any) -> None:
    task._log_destroy_pending = False  # told in the test's failure, not by a finaliser later
    try:
        task.get_coro().close()
    except RuntimeError:  # it ignored GeneratorExit too
        _UNSTOPPABLE_TASKS.append(task)


# -- the async send-back loop ---------------------------------------------------------------------
#: The built-in events that wait on one test socket, awaited on the loop before they are
#: handled: event name -> (direction, operation, index of the timeout among the arguments).
_EVENTS, _EITHER = int(zmq.EVENTS), int(zmq.POLLIN | zmq.POLLOUT)
_SOCKET_EVENTS: Dict[str, Tuple[int, str, int]] = {
    "recv": (int(zmq.POLLIN), "recv_multipart", 2), "recv_raw": (int(zmq.POLLIN), "recv_multipart", 1),
    "send": (int(zmq.POLLOUT), "send_multipart", 4), "send_raw": (int(zmq.POLLOUT), "send_multipart", 2)}


def _socket_events(cls: type) -> Dict[str, Tuple[int, str, int]]:
    """The socket events of *cls* whose handler is the built-in one (not overridden), kept on the class."""
    from .events import Events
    found = {name: spec for name, spec in _SOCKET_EVENTS.items()
             if next(klass.__dict__[name] for klass in cls.__mro__ if name in klass.__dict__) is vars(Events)[name]}
    cls._zpt_socket_events = found  # type: ignore[attr-defined]
    return found


def _socket_wait(case: Any, item: Any) -> Optional[Tuple[TestSocket, int, str, Optional[float]]]:
    """For a built-in socket event (not one the test case overrides) with valid arguments:
    the socket, direction, operation and timeout to await before it is handled, else ``None``
    (the handler runs at once, and reports what is wrong)."""
    name = item[0] if type(item) is tuple and len(item) > 1 else None
    cls = type(case)
    events = cls.__dict__.get("_zpt_socket_events")
    if events is None:
        events = _socket_events(cls)
    spec = events.get(name) if type(name) is str else None
    sock = item[1] if spec is not None else None
    if spec is None or not isinstance(sock, TestSocket):
        return None
    flag, operation, index = spec
    timeout = item[index] if len(item) > index else None
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 <= timeout < math.inf):
        return None
    if sock.closed or (sock.owner is not case and sock.owner is not None and not isinstance(sock.owner, type)):
        return None
    if sock.socket_type in _STRICT:
        flag = _EITHER  # a REQ/REP socket in the wrong state: the handler says so at once
    return sock, flag, operation, timeout


async def _await_socket(runner: Optional[LoopRunner], wait: Tuple[TestSocket, int, str, Optional[float]],
                        name: str) -> Optional[BaseException]:
    """Await the socket of a socket event on the loop (EVENTS said it is not ready); the
    error to throw in at its ``yield``, if any."""
    sock, flag, operation, timeout = wait
    began = time.monotonic()
    try:
        await sock._await_ready(flag, operation, sock.timeout if timeout is None else timeout,
                                began + (sock.timeout if timeout is None else timeout))
    except asyncio.CancelledError as cancelled:
        died = runner.take_death() if runner is not None else None
        return died if died is not None else cancelled  # at the yield, as at an await
    except RuntimeError:
        return None  # another task awaits the socket: the handler waits as in a plain test
    except (KeyboardInterrupt, SystemExit, TestTimeout):
        raise
    except BaseException as exc:
        if isinstance(exc, SocketTimeout):
            exc.event, exc.event_began = name, began
        return trim_traceback(exc)
    return None


async def _await_event(runner: Optional[LoopRunner], name: str, awaitable: Any) -> Tuple[Any, Optional[BaseException]]:
    """Await what an ``async def`` event of the test case returned: its result or its error."""
    began = time.monotonic()
    try:
        return await awaitable, None
    except asyncio.CancelledError as cancelled:
        died = runner.take_death() if runner is not None else None
        return None, died if died is not None else cancelled
    except (KeyboardInterrupt, SystemExit, TestTimeout):
        raise
    except BaseException as exc:
        if isinstance(exc, SocketTimeout) and exc.event is None:
            exc.event, exc.event_began = name, began
        return None, trim_traceback(exc)


async def drive_async_events(case: Any, agen: Any, check: Optional[Callable[[Any], None]]) -> None:
    """Drive an async generator test: dispatch each yielded event, send results back.

    Exactly the send-back loop of :func:`~zmqprocesstest.loop.run_events`, with ``asend``
    and ``athrow``: an error of an event is thrown in at the ``yield``. Two waits do not
    block the loop: a built-in socket event (``send``, ``send_raw``, ``recv``,
    ``recv_raw``) awaits its socket before it is handled, and an ``async def`` event of
    the test case is awaited.
    """
    value: Any = None
    error: Optional[BaseException] = None
    runner = case._zpt_aio
    if runner is not None:
        runner.agen = agen
    try:
        while True:
            try:
                item = await (agen.asend(value) if error is None else agen.athrow(error))
            except StopAsyncIteration:
                return
            finally:
                error = None
            if check is not None:
                check(item)
            wait = _socket_wait(case, item)
            if wait is not None and not int(wait[0].sock.getsockopt(_EVENTS)) & wait[1]:  # it would wait: on the loop
                error = await _await_socket(runner, wait, item[0])
                if error is not None:
                    value = None
                    continue
            value, error = answer(case, item)
            if error is None and inspect.iscoroutine(value):  # an async def event of the test case
                value, error = await _await_event(runner, item[0], value)
    except BaseException:
        try:
            await agen.aclose()
        except RuntimeError:  # it ignored GeneratorExit
            pass
        raise


def coroutine_test(func: Callable[..., Any]) -> Callable[..., None]:
    """A plain test method that runs the coroutine (or async generator) test *func* on the test's loop."""
    agen = inspect.isasyncgenfunction(func)

    @functools.wraps(func)
    def test_method(self: Any, *args: Any, **kwargs: Any) -> None:
        self._zpt_run_coroutine_test(func(self, *args, **kwargs), agen)

    setattr(test_method, ASYNC_ATTR, True)
    return test_method
