"""ProcessTestCase: generator tests that yield events, and the resources they own.

A test method that is a generator yields *events*, tuples ``('name', *args)``. The
send-back loop calls the handler method of that name on the test case, sends its result
back into the generator, and throws any exception from the handler into the generator
at the ``yield``, so the failure's traceback ends at the yield line and the test may
catch it. A metaclass turns every generator test method into an ordinary method when
the class is created, so every runner collects and runs it as a plain test.
"""
from __future__ import annotations

import functools
import inspect
import json
import multiprocessing
import os
import re
import select
import shutil
import signal as _signal
import socket as _socket
import tempfile
import threading
import time
import types
import unittest
from typing import Any, Callable, Dict, Generator, List, Optional, Sequence, Tuple, Union

import zmq

from . import marks as _marks
from . import processes as _processes
from .mocks import ProcessMock
from .processes import ManagedProcess, ProcessDied, ProcessError, ProcessStopError
from .sockets import (DEFAULT_TIMEOUT, Endpoint, SocketTimeout, TestSocket, Transcript, _Watch,
                      decode_json, make_sock, scaled, short_frames)

__unittest = True
__tracebackhide__ = True

__all__ = ["ProcessTestCase", "EventError", "TestTimeout", "LeakError", "CHECK_LEAKS_ENV", "FULL_TRACEBACK_ENV"]

#: Set to ``1`` to turn on the leak check for every test case.
CHECK_LEAKS_ENV = "ZMQPROCESSTEST_CHECK_LEAKS"
#: A file to which each test that ran its body to the end appends its id: a check,
#: for any runner, that no test "passes" without running (see ``.ci/runner-matrix``).
BODY_LOG_ENV = "ZMQPROCESSTEST_BODY_LOG"
#: Set to ``1`` to keep zmqprocesstest's own frames in failure tracebacks.
FULL_TRACEBACK_ENV = "ZMQPROCESSTEST_FULL_TRACEBACK"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LEVELS = {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"}


class EventError(TypeError):
    """A test yielded something that is not a valid event."""


class TestTimeout(AssertionError):
    """A generator test ran longer than its ``run_timeout``."""

    __test__ = False


class LeakError(AssertionError):
    """A test left a socket, context, file descriptor or child process behind."""


def _is_ours(frame: types.FrameType) -> bool:
    return os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR


def _trim_traceback(exc: BaseException) -> BaseException:
    """Drop zmqprocesstest's own frames from *exc*'s traceback (user frames stay)."""
    if os.environ.get(FULL_TRACEBACK_ENV):
        return exc
    kept: List[types.TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        if not _is_ours(tb.tb_frame):
            kept.append(tb)
        tb = tb.tb_next
    new_tb: Optional[types.TracebackType] = None
    for entry in reversed(kept):
        new_tb = types.TracebackType(new_tb, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return exc.with_traceback(new_tb)


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    elif len(exc.args) == 1 and isinstance(exc.args[0], str):  # Python < 3.11
        exc.args = (exc.args[0] + "\n" + note,)
    elif isinstance(getattr(exc, "_notes", None), list):  # Python < 3.11, SocketTimeout
        exc._notes.append(note)  # type: ignore[attr-defined]


def _wrap_generator_test(genfunc: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., None]:
    """A plain (non-generator) test method that runs *genfunc* through the event loop."""

    @functools.wraps(genfunc)
    def test_method(self: "ProcessTestCase", *args: Any, **kwargs: Any) -> None:
        self.run_events(genfunc(self, *args, **kwargs))

    test_method.__zmqprocesstest_generator__ = True  # type: ignore[attr-defined]
    return test_method


class ProcessTestMeta(type):
    """Metaclass of :class:`ProcessTestCase`: wraps generator test methods.

    Every attribute whose name starts with :attr:`ProcessTestCase.testMethodPrefix`
    (``test``), defined on the class or inherited from any base or mixin, that is a
    generator function is replaced on the new class by a plain wrapper that keeps its
    ``__name__``, ``__qualname__``, ``__doc__``, ``__wrapped__`` and attributes (skip,
    expected-failure, marks). Marks of the class and module are copied onto the methods.
    """

    def __init__(cls, name: str, bases: Tuple[type, ...], namespace: Dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        prefix = getattr(cls, "testMethodPrefix", "test")
        for attr in dir(cls):
            if not attr.startswith(prefix):
                continue
            value = inspect.getattr_static(cls, attr)
            if inspect.isgeneratorfunction(value):
                setattr(cls, attr, _wrap_generator_test(value))
        _marks.propagate(cls, prefix)


class _Resources(_Watch):
    """What one test owns: contexts, sockets, processes, mocks, temp dir, transcript."""

    def __init__(self, case: "ProcessTestCase") -> None:
        self.case = case
        self.contexts: List[zmq.Context] = []
        self.sockets: List[TestSocket] = []
        self.processes: List[ManagedProcess] = []
        self.closers: List[Callable[[], None]] = []
        self.tmpdir: Optional[str] = None
        self.endpoints = 0
        self.endpoint: Optional[str] = None
        self.transcript = Transcript(case.transcript_length)
        self._fds: Tuple[int, ...] = ()
        self.poll_slice: Optional[float] = None

    # -- the watch protocol used by TestSocket.wait --------------------------------------
    def refresh(self) -> None:
        fds, blind = [], False
        for proc in self.processes:
            if proc.watched:
                fd = proc.fd
                if fd is None:
                    blind = True
                else:
                    fds.append(fd)
        self._fds = tuple(fds)
        self.poll_slice = 0.02 if blind else None

    def fds(self) -> Tuple[int, ...]:
        return self._fds

    def check(self) -> None:
        for proc in self.processes:
            if proc.watched and proc.exitcode() is not None:
                proc.watched = False  # report a death once; later waits may go on
                self.refresh()
                died = ProcessDied(f"{proc.name!r} died while the test was waiting: {proc.report()}")
                died.process = proc
                raise died

    # -- teardown ------------------------------------------------------------------------
    def release(self) -> List[str]:
        problems: List[str] = []
        for proc in reversed(self.processes):
            problems.extend(proc.stop())
        for sock in self.sockets:
            if not sock.closed:
                sock.close(linger=0)
        for ctx in self.contexts:
            problems.extend(_terminate(ctx, scaled(2.0)))
        for close in reversed(self.closers):
            close()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return problems

    def forget(self) -> None:
        """Drop the references between case, sockets and processes (no garbage cycles)."""
        for sock in self.sockets:
            sock.owner = sock.watch = sock.transcript = None
            sock._poller = None
        self.sockets.clear()
        self.processes.clear()
        self.closers.clear()
        self.contexts.clear()
        self.case = None  # type: ignore[assignment]

    def report(self, shown: Optional[ManagedProcess] = None) -> str:
        """Transcript and processes; the output of *shown* is in the message already."""
        parts = [f"Messages (last {self.transcript.entries.maxlen}, oldest first):", self.transcript.format()]
        if self.processes:
            parts.append("Processes under test:")
            parts.extend("  " + (p.describe() + " (output above)" if p is shown else p.report())
                         for p in self.processes)
        return "\n".join(parts)


def _terminate(ctx: zmq.Context, timeout: float) -> List[str]:
    """Close what is left of *ctx* and terminate it, bounded by *timeout* seconds."""
    problems = []
    leftover = [s for s in list(getattr(ctx, "_sockets", ())) if not s.closed]
    if leftover:
        problems.append(f"{len(leftover)} socket(s) made with context.socket() directly were left open; closed them")
    worker = threading.Thread(target=ctx.destroy, kwargs={"linger": 0}, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        problems.append(f"the zmq context did not terminate within {timeout:g} s (a socket is still in use)")
    return problems


def _fd_set() -> Dict[int, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return fds


def child_pids(parent: Optional[int] = None) -> List[int]:
    """Pids of the processes whose parent is *parent* (default: this process)."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if int(fields[1]) == parent:
            found.append(int(entry))
    return found


class ProcessTestCase(unittest.TestCase, metaclass=ProcessTestMeta):
    """A :class:`unittest.TestCase` for testing PyZMQ processes with real messages.

    Generator test methods yield events (see :meth:`run_events`); ordinary test methods
    work as usual. Sockets made with :meth:`socket` and processes started with
    :meth:`start_process` or :meth:`start_command` are cleaned up after the test, also
    when it or ``setUp`` failed: processes are stopped first (stop message, SIGINT,
    SIGTERM, SIGKILL), then sockets are closed with ``linger=0`` and the context is
    terminated, so the next test can bind the same port at once.

    Example::

        class TestPong(ProcessTestCase):
            def setUp(self):
                self.req = self.socket(zmq.REQ, connect=self.endpoint)
                self.proc = self.start_process(PongProc, self.endpoint)

            def test_ping(self):
                yield ('send', self.req, [], ['ping', 1])
                reply = yield ('recv', self.req)
                self.assertEqual(reply, [['pong', 1]])
    """

    #: Default timeout in seconds (multiplied by ``ZMQPROCESSTEST_TIMEOUT_SCALE``) of
    #: sockets made by :meth:`socket`, and of the waits that take no explicit timeout:
    #: ``wait_exit``, ``wait_output``, ``wait_endpoint`` and :meth:`process_mock`.
    timeout: float = DEFAULT_TIMEOUT
    #: Longest a generator test may run, in seconds (scaled like :attr:`timeout`).
    run_timeout: float = 60.0
    #: ``'ipc'`` (a private temp dir, no port races) or ``'tcp'`` (127.0.0.1).
    endpoint_transport: str = "ipc"
    #: Bounds in seconds for each stop step (``message``, ``SIGINT``, ``SIGTERM``, ``SIGKILL``).
    stop_timeouts: Dict[str, float] = dict(_processes.DEFAULT_STOP_TIMEOUTS)
    #: How :meth:`start_process` starts processes: ``"fork"`` (so patches such as a
    #: :class:`~zmqprocesstest.ProcessMock` reach the child, and output is captured),
    #: or ``None`` for multiprocessing's default.
    start_method: Optional[str] = "fork"
    #: Capture stdout/stderr of processes under test and show their tail on failure.
    capture_output: bool = True
    #: How many messages the failure report's transcript shows.
    transcript_length: int = 20
    #: Fail a test that leaves a file descriptor or a child process behind (a zmq
    #: socket or context left open shows up through its file descriptors).
    check_leaks: bool = False
    #: The SUB socket the :meth:`log` event reads (set it in ``setUp``).
    log_socket: Optional[TestSocket] = None

    _zpt: Optional[_Resources] = None

    # -- resources -------------------------------------------------------------------
    def _resources(self) -> _Resources:
        res = self._zpt
        if res is None:
            res = self._zpt = _Resources(self)
            self.addCleanup(self._release_resources)
        return res

    def _release_resources(self) -> None:
        res, self._zpt = self._zpt, None
        if res is None:
            return
        problems = res.release()
        message = "\n".join(problems) + "\n" + "\n".join("  " + p.report() for p in res.processes)
        res.forget()
        if problems:
            raise ProcessStopError(message)

    @property
    def context(self) -> zmq.Context:
        """This test's own :class:`zmq.Context`, terminated after the test."""
        res = self._resources()
        if not res.contexts:
            res.contexts.append(zmq.Context())
        return res.contexts[0]

    def socket(self, sock_type: int, bind: Union[Endpoint, Sequence[Endpoint], None] = None,
               connect: Union[Endpoint, Sequence[Endpoint], None] = None,
               subscribe: Union[bytes, str, Sequence[Union[bytes, str]], None] = None,
               timeout: Optional[float] = None, name: Optional[str] = None,
               context: Optional[zmq.Context] = None, **options: Any) -> TestSocket:
        """Make a :class:`TestSocket` that is closed after the test (see :func:`make_sock`).

        The socket's timeout defaults to :attr:`timeout` (scaled); a socket from another
        *context* is closed too, and that context terminated.
        """
        res = self._resources()
        if context is not None and context not in res.contexts:
            res.contexts.append(context)
        sock = make_sock(context or self.context, sock_type, bind=bind, connect=connect, subscribe=subscribe,
                         timeout=scaled(self.timeout) if timeout is None else timeout, name=name, **options)
        sock.transcript = res.transcript
        sock.watch = res
        sock.owner = self
        res.sockets.append(sock)
        return sock

    @property
    def endpoint(self) -> str:
        """A fresh endpoint for this test (the same one on each access)."""
        res = self._resources()
        if res.endpoint is None:
            res.endpoint = self.new_endpoint()
        return res.endpoint

    def new_endpoint(self, transport: Optional[str] = None) -> str:
        """A new endpoint nobody else uses: ipc in a private (0700) temp dir, or tcp.

        ``tcp`` picks a free port on 127.0.0.1 now; the process binds it later, so
        another program could take it in between. ``ipc`` cannot collide.
        """
        transport = transport or self.endpoint_transport
        res = self._resources()
        if transport == "ipc":
            if res.tmpdir is None:
                res.tmpdir = tempfile.mkdtemp(prefix="zpt-")
            res.endpoints += 1
            return f"ipc://{res.tmpdir}/{res.endpoints}"
        if transport == "tcp":
            with _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            return f"tcp://127.0.0.1:{port}"
        raise ValueError(f"expected transport 'ipc' or 'tcp', got {transport!r}")

    def start_process(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """Start *target* (a :class:`multiprocessing.Process` subclass or a function).

        Arguments go to the class (or function). The process is stopped after the test.
        Returns the :class:`multiprocessing.Process`.
        """
        res = self._resources()
        proc = _processes.start_process(target, args, kwargs, name=None, capture=self.capture_output,
                                        stop_timeouts=self.stop_timeouts, start_method=self.start_method)
        res.processes.append(proc)
        res.refresh()
        return proc.obj

    def start_command(self, argv: Sequence[str], name: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                      cwd: Optional[str] = None) -> Any:
        """Start a command line (any program) as a process under test.

        It runs in its own session; stdout and stderr are captured through a pipe that
        never fills up (``PYTHONUNBUFFERED=1`` is set unless *env* says otherwise).
        Returns the :class:`subprocess.Popen`.
        """
        res = self._resources()
        proc = _processes.start_command(argv, name=name, env=env, cwd=cwd, capture=self.capture_output,
                                        stop_timeouts=self.stop_timeouts)
        res.processes.append(proc)
        res.refresh()
        return proc.obj

    def managed(self, proc: Any) -> ManagedProcess:
        """The :class:`~zmqprocesstest.processes.ManagedProcess` record of *proc*."""
        for managed in self._resources().processes:
            if managed.obj is proc or managed is proc:
                return managed
        raise ValueError(f"expected a process started by this test (start_process/start_command), got {proc!r}")

    def set_stop_message(self, proc: Any, sock: TestSocket, body: Any, header: Sequence[Any] = ()) -> None:
        """Stop *proc* after the test by sending ``header + [json(body)]`` on *sock* first."""
        self.managed(proc).stop_message = (
            lambda: self.send(sock, list(header), body, timeout=scaled(0.5)),
            f"{body!r} on {sock.describe()}",
        )

    def stop_process(self, proc: Any) -> None:
        """Stop *proc* now with the stop protocol; fail if it did not stop politely."""
        managed = self.managed(proc)
        problems = managed.stop()
        self._resources().refresh()
        if problems:
            raise ProcessStopError("\n".join(problems) + "\n  " + managed.report())

    def process_mock(self, name: str = "process", timeout: Optional[float] = None) -> ProcessMock:
        """A :class:`~zmqprocesstest.ProcessMock` whose pipe is closed after the test."""
        mock = ProcessMock(name, timeout=scaled(self.timeout) if timeout is None else timeout)
        self._resources().closers.append(mock.close)
        return mock

    def output_of(self, proc: Any) -> str:
        """All captured output of *proc* so far (stdout and stderr together)."""
        managed = self.managed(proc)
        if managed.output is None:
            raise ValueError(f"output of {managed.name!r} is not captured (capture_output is False)")
        return managed.output.text()

    # -- built-in events (also callable as methods) ---------------------------------------
    def send(self, sock: TestSocket, header: Sequence[Any], body: Any, extra_frames: Sequence[Any] = (),
             timeout: Optional[float] = None) -> None:
        """Event: send ``header + [json(body)] + extra_frames`` on *sock*.

        Header and extra frames are bytes (str is UTF-8 encoded)."""
        self._check_socket(sock)
        frames = _frames("header", header)
        try:
            frames.append(json.dumps(body).encode("utf-8"))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"expected a JSON-serialisable body, got {body!r} ({exc})") from None
        if extra_frames:
            frames.extend(_frames("extra_frames", extra_frames))
        sock.send_multipart(frames, timeout=_seconds("timeout", timeout))

    def recv(self, sock: TestSocket, json_index: Optional[int] = -1, timeout: Optional[float] = None,
             frames: Optional[int] = None) -> List[Any]:
        """Event: receive a multipart message with frame *json_index* JSON-decoded.

        ``json_index=None`` returns the raw bytes. *frames*, if given, is the number of
        frames the message must have.
        """
        self._check_socket(sock)
        if json_index is not None and (type(json_index) is not int):
            raise TypeError(f"expected json_index to be an int or None, got {json_index!r}")
        if frames is not None and (type(frames) is not int or frames < 0):
            raise TypeError(f"expected frames to be a number of frames or None, got {frames!r}")
        msg = sock.recv_multipart(timeout=_seconds("timeout", timeout))
        if frames is not None and len(msg) != frames:
            raise AssertionError(f"expected {frames} frame(s) on {sock.describe()}, got {len(msg)}: {short_frames(msg)}")
        if json_index is not None:
            msg[json_index] = decode_json(sock, msg, json_index)
        return msg

    def recv_nothing(self, sock: TestSocket, seconds: float = 0.1) -> None:
        """Event: assert that no message arrives on *sock* within *seconds*."""
        self._check_socket(sock)
        if sock.poll(_seconds("seconds", seconds, allow_none=False)):
            msg = sock.recv_multipart(timeout=0)
            raise AssertionError(f"expected no message on {sock.describe()} within {seconds:g} s, got {short_frames(msg)}")

    def log(self, substr: str = "", level: Optional[str] = None, timeout: Optional[float] = None) -> str:
        """Event: the next log record from a :class:`zmq.log.handlers.PUBHandler` contains *substr*.

        Reads :attr:`log_socket` (a SUB socket connected or bound to the handler's PUB
        socket). With *level* (``'INFO'``...), records of other levels are passed over.
        Returns the message text.
        """
        sock = self.log_socket
        if sock is None:
            raise ValueError("expected self.log_socket (the SUB socket the log event reads) to be set in setUp, e.g. "
                             "self.log_socket = self.socket(zmq.SUB, connect=LOG_ENDPOINT)")
        self._check_socket(sock)
        if not isinstance(substr, str) or not (level is None or isinstance(level, str)):
            raise TypeError(f"expected a str substring and a level name or None, got {substr!r}, {level!r}")
        want = level.upper() if level else None
        timeout = _seconds("timeout", timeout)
        seen: List[str] = []
        deadline = time.monotonic() + (sock.timeout if timeout is None else timeout)
        while True:
            try:
                frames = sock.recv_multipart(timeout=max(0.0, deadline - time.monotonic()))
            except SocketTimeout:
                raise AssertionError(
                    f"expected a log message{' of level ' + want if want else ''} containing {substr!r} "
                    f"on {sock.describe()}; none came. Seen: {seen or 'nothing'}") from None
            if len(frames) < 2:
                raise AssertionError(f"expected a log record [topic, message] from PUBHandler, got {short_frames(frames)}")
            topic = frames[0].decode("utf-8", "replace")
            text = frames[-1].decode("utf-8", "replace")
            rec_level = next((part for part in topic.split(".") if part in _LEVELS), topic)
            seen.append(f"{rec_level}: {text.rstrip()}")
            if want and rec_level != want:
                continue
            if substr not in text:
                raise AssertionError(f"expected the next log message{' of level ' + want if want else ''} "
                                     f"to contain {substr!r}, got {text.rstrip()!r}. Seen: {seen}")
            return text

    def signal(self, proc: Any, sig: int = _signal.SIGINT, group: bool = False) -> None:
        """Event: send signal *sig* to *proc* (with ``group=True``, to its process group)."""
        if isinstance(sig, bool) or not isinstance(sig, int):
            raise TypeError(f"expected a signal number such as signal.SIGINT, got {sig!r}")
        self.managed(proc).send_signal(sig, group=group)

    def wait_exit(self, proc: Any, timeout: Optional[float] = None, code: Optional[int] = 0) -> Optional[int]:
        """Event: wait for *proc* to exit and assert its exit *code* (``None``: any).

        The process is no longer watched for crashes. Returns the exit code.
        """
        managed = self.managed(proc)
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise TypeError(f"expected code to be an exit code (int) or None, got {code!r}")
        limit = scaled(self.timeout) if timeout is None else _seconds("timeout", timeout)
        managed.watched = False
        self._resources().refresh()
        result = managed.wait(limit)
        if result is None:
            raise ProcessError(f"expected {managed.describe()} to exit within {limit:g} s")
        if code is not None and result != code:
            raise ProcessError(f"expected {managed.name!r} to exit with code {code}, got {managed.describe()}\n  {managed.report()}")
        return result

    def wait_output(self, proc: Any, pattern: Union[str, "re.Pattern[str]"], timeout: Optional[float] = None) -> str:
        """Event: wait until *proc*'s output matches *pattern* (a regex); return the match."""
        managed = self.managed(proc)
        if managed.output is None:
            raise ValueError(f"output of {managed.name!r} is not captured (capture_output is False)")
        if not isinstance(pattern, (str, re.Pattern)):
            raise TypeError(f"expected a regular expression (str or compiled), got {pattern!r}")
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        limit = scaled(self.timeout) if timeout is None else _seconds("timeout", timeout)
        match = managed.output.wait_for(regex, limit, managed.alive)
        if match is None:
            state = "it exited" if not managed.alive() else f"not within {limit:g} s"
            raise ProcessError(f"expected output of {managed.name!r} to match {regex.pattern!r}; {state}\n  {managed.report()}")
        return match.group(0)

    def wait_endpoint(self, endpoint: str, timeout: Optional[float] = None) -> None:
        """Event: wait until something listens on a ``tcp://`` or ``ipc://`` *endpoint*.

        Fails at once if a process under test dies meanwhile.
        """
        if not isinstance(endpoint, str):
            raise TypeError(f"expected an endpoint string (tcp://... or ipc://...), got {endpoint!r}")
        limit = scaled(self.timeout) if timeout is None else _seconds("timeout", timeout)
        deadline = time.monotonic() + limit
        res = self._resources()
        while not _listening(endpoint):
            res.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessError(f"expected something to listen on {endpoint} within {limit:g} s")
            # Nothing to poll for a listener that is not there yet: retry every 5 ms,
            # but wake at once if a process under test dies.
            fds = res.fds()
            if fds:
                select.select(fds, [], [], min(remaining, 0.005))
            else:
                time.sleep(min(remaining, 0.005))

    def _check_socket(self, sock: Any) -> None:
        if not isinstance(sock, TestSocket):
            kind = type(sock).__name__
            raise TypeError(f"expected a TestSocket (made by self.socket() or make_sock()), got {kind} {sock!r}; "
                            "a plain zmq socket could block forever")
        if sock.owner is not None and sock.owner is not self:
            raise ValueError(f"{sock.describe()} belongs to another test ({sock.owner.id()}); make it with self.socket()")

    # -- the send-back loop -------------------------------------------------------------
    @classmethod
    def known_events(cls) -> List[str]:
        """Names a test can yield: the built-in events and public methods of subclasses."""
        cached = cls.__dict__.get("_zpt_events")
        if cached is None:
            names = set(_BUILTIN_EVENTS)
            prefix = cls.testMethodPrefix if hasattr(cls, "testMethodPrefix") else "test"
            for klass in cls.__mro__:
                if klass is ProcessTestCase:
                    break
                for name, value in vars(klass).items():
                    if (not name.startswith("_") and not name.startswith(prefix) and name not in _NOT_EVENTS
                            and callable(value) and not isinstance(value, (type, classmethod, staticmethod))):
                        names.add(name)
            cached = frozenset(names)
            setattr(cls, "_zpt_events", cached)
        return sorted(cached)

    def _handler_for(self, event: Any) -> Tuple[Callable[..., Any], Tuple[Any, ...]]:
        if type(event) is not tuple:
            raise EventError(f"expected a tuple ('event', *args) to be yielded, got {type(event).__name__} {event!r}")
        if not event:
            raise EventError("expected a tuple ('event', *args) to be yielded, got an empty tuple")
        name = event[0]
        if not isinstance(name, str):
            raise EventError(f"expected an event name (str) first in the yielded tuple, got {name!r}")
        events = type(self).__dict__.get("_zpt_events") or frozenset(self.known_events())
        if name not in events:
            raise EventError(f"unknown event {name!r}; known events: {', '.join(sorted(events))}. "
                             f"Add one by defining a method {name}(self, ...) on the test case")
        return getattr(self, name), event[1:]

    def run_events(self, gen: Generator[Any, Any, Any]) -> None:
        """Drive a generator test: dispatch each yielded event, send results back.

        An exception from a handler is thrown into the generator at its ``yield``
        (with zmqprocesstest's own frames removed from the traceback), so the test may
        catch it and an uncaught one points at the yield line. The test fails if it
        returns a value or runs longer than :attr:`run_timeout`.
        """
        limit = scaled(self.run_timeout)
        deadline = time.monotonic() + limit
        value: Any = None
        error: Optional[BaseException] = None
        while True:
            try:
                event = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                if stop.value is not None:
                    raise TypeError(f"expected the test to return None, got {stop.value!r}; "
                                    "use self.assert...() to check a result") from None
                return
            finally:
                error = None
            if time.monotonic() > deadline:
                try:
                    gen.close()
                except RuntimeError:  # it ignored GeneratorExit; keep it from a noisy finaliser
                    _UNSTOPPABLE.append(gen)
                raise TestTimeout(f"{self.id()} ran longer than run_timeout ({limit:g} s); "
                                  f"stopped it before event {event!r}")
            try:
                handler, args = self._handler_for(event)
                try:
                    value = handler(*args)
                except TypeError as exc:
                    _raise_if_bad_arguments(event[0], handler, args, exc)
                    raise
            except (KeyboardInterrupt, SystemExit):
                gen.close()
                raise
            except BaseException as exc:
                if isinstance(exc, SocketTimeout) and exc.event is None:
                    exc.event = event[0]
                error = _trim_traceback(exc)
                value = None

    # -- hooks into unittest --------------------------------------------------------------
    def _callSetUp(self) -> None:
        reason = _marks.deselection_reason(self)
        if reason:
            raise unittest.SkipTest(reason)
        if self.check_leaks or os.environ.get(CHECK_LEAKS_ENV) == "1":
            self.addCleanup(self._check_for_leaks, _fd_set(), set(child_pids()))
        try:
            super()._callSetUp()  # type: ignore[misc]
        except (KeyboardInterrupt, unittest.SkipTest):
            raise
        except BaseException as exc:
            self._add_report(exc)
            raise

    def _callTestMethod(self, method: Callable[[], Any]) -> None:
        if inspect.isgeneratorfunction(getattr(method, "__func__", method)):
            raise TypeError(f"{self.id()} is a generator function that was not converted; "
                            "define it in the class body of a ProcessTestCase (not set after class creation)")
        try:
            result = method()
        except (KeyboardInterrupt, unittest.SkipTest):
            raise
        except BaseException as exc:
            self._add_report(exc)
            raise
        if result is not None:
            raise TypeError(f"expected the test to return None, got {result!r}; use self.assert...() to check a result")
        log = os.environ.get(BODY_LOG_ENV)
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(self.id() + "\n")

    def _add_report(self, exc: BaseException) -> None:
        res = self._zpt
        if res is not None and (res.transcript.entries or res.processes):
            _add_note(exc, res.report(shown=getattr(exc, "process", None)))

    def run(self, result: Optional[unittest.TestResult] = None) -> Optional[unittest.TestResult]:
        try:
            return super().run(result)
        except KeyboardInterrupt:
            # The runner is being interrupted: cleanups will not run, so stop now.
            res, self._zpt = self._zpt, None
            if res is not None:
                for proc in res.processes:
                    proc.kill_now()
                res.processes.clear()
                res.release()
            raise

    def _check_for_leaks(self, fds_before: Dict[int, str], children_before: set) -> None:
        problems = []
        new_fds = {fd: target for fd, target in _fd_set().items() if fd not in fds_before}
        if new_fds:
            shown = ", ".join(f"{fd} -> {target}" for fd, target in sorted(new_fds.items()))
            problems.append(f"file descriptors left open: {shown}")
        children = [pid for pid in child_pids() if pid not in children_before]
        if children:
            problems.append(f"child processes left running: {children}")
            ours = {p.pid: p for p in multiprocessing.active_children()}
            for pid in children:
                try:
                    os.kill(pid, _signal.SIGKILL)
                    if pid in ours:
                        ours[pid].join(5)  # multiprocessing reaps its own
                    else:
                        os.waitpid(pid, 0)
                except OSError:
                    pass
        if problems:
            raise LeakError(f"{self.id()} left resources behind: " + "; ".join(problems))


#: Generators that refused to close; kept so their finaliser does not complain at exit.
_UNSTOPPABLE: List[Generator[Any, Any, Any]] = []

_BUILTIN_EVENTS = ("send", "recv", "recv_nothing", "log", "signal", "wait_exit", "wait_output", "wait_endpoint")
_NOT_EVENTS = frozenset(dir(unittest.TestCase)) | {
    "socket", "new_endpoint", "endpoint", "context", "start_process", "start_command", "managed",
    "set_stop_message", "stop_process", "output_of", "process_mock", "golden_directory", "run_events", "known_events",
}


def _frames(what: str, frames: Any) -> List[Any]:
    """Check and encode header or extra frames: bytes-like (str is UTF-8 encoded)."""
    if isinstance(frames, (str, bytes)) or not isinstance(frames, (list, tuple)):
        raise TypeError(f"expected {what} to be a list of frames (bytes), got {frames!r}")
    result = []
    for frame in frames:
        if isinstance(frame, str):
            frame = frame.encode("utf-8")
        elif not isinstance(frame, (bytes, bytearray, memoryview, zmq.Frame)):
            raise TypeError(f"expected each of {what} to be bytes or str, got {frame!r}")
        result.append(frame)
    return result


def _seconds(name: str, value: Any, allow_none: bool = True) -> Any:
    """Check a duration argument: a number of seconds >= 0 (or ``None``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise TypeError(f"expected {name} to be a number of seconds >= 0{' or None' if allow_none else ''}, got {value!r}")
    return value


def _raise_if_bad_arguments(name: str, handler: Callable[..., Any], args: Tuple[Any, ...], exc: TypeError) -> None:
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*args)
    except TypeError as bind_error:
        raise EventError(f"bad arguments for event {name!r}: {bind_error}; expected ('{name}'"
                         + "".join(f", {p}" for p in sig.parameters) + f"), got {args!r}") from None


def _listening(endpoint: str) -> bool:
    address: Any
    if endpoint.startswith("ipc://"):
        family, address = _socket.AF_UNIX, endpoint[len("ipc://"):]
    elif endpoint.startswith("tcp://"):
        host, _, port = endpoint[len("tcp://"):].rpartition(":")
        family, address = _socket.AF_INET6 if ":" in host else _socket.AF_INET, (host.strip("[]"), int(port))
    else:
        raise ValueError(f"expected a tcp:// or ipc:// endpoint, got {endpoint!r}")
    with _socket.socket(family, _socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True
