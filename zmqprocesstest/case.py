"""ProcessTestCase: generator tests that yield events, and the resources they own.

A metaclass turns every generator test method into an ordinary method when the class is
created, so every runner collects and runs it as a plain test; the method drives the
generator through the send-back loop (:mod:`zmqprocesstest.loop`). The test case's
resource API (:meth:`~ProcessTestCase.socket`, :meth:`~ProcessTestCase.start_process`...)
records what a test makes in its :class:`~zmqprocesstest.resources.Resources`, released
after the test. Every phase is bounded: ``setUp``, the test, ``tearDown`` and each cleanup
here in the test case, the class's and module's phases by the metaclass (below).

What ``self`` can do is what this module, :mod:`zmqprocesstest.events` (the built-in
events and the connection events) and :mod:`zmqprocesstest.faults` (the fault events)
give it.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
import unittest
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, Optional, Sequence, Tuple, Type, Union

import zmq

from . import marks as _marks
from .marks import none_selected
from ._compat import add_note
from ._config import (BODY_LOG_ENV, CHECK_LEAKS_ENV, DEFAULT_RUN_TIMEOUT, DEFAULT_TIMEOUT, OUTPUT_SETTLE,
                      check_seconds, default_timeout, env_flag, run_limit, runs_requested, scaled)
from ._outcome import run_test
from .codecs import Codec
from .conversations import ConversationWriter, TapRecorder, resolve_path
from .endpoints import Endpoint, free_tcp_endpoint, reserve_tcp_endpoints
from .events import Events, send_stop_message
from .faults import FaultEvents, FaultLink, Tap, make_link
from .coroutines import ASYNC_ATTR, LoopRunner, coroutine_test, drive_async_events, is_coroutine_test
from .loop import check_event_names, dispatch, run_events, trim_traceback
from .mocks import ProcessMock
from .processes import CommandProcess, ForkedProcess, ManagedProcess, ProcessStopError, _guardian
from .processes.stopping import DEFAULT_STOP_STEPS, DEFAULT_STOP_TIMEOUTS, PoliteStop, plan_for, replies
from .resources import Resources, check_leaks, leak_snapshot, owner_name
from .scopes import (BOUNDED, MODULE_SCOPES, check_module_scope_releaser, kill_shared, release_bounded,
                     release_limit, scoped, shared_of, shared_resources)
from .report import timeline as _timeline
from .sockets import TestSocket, make_sock
from .timeout import HardTimeout, TestTimeout, ThreadWatch, bound_exit, death_interrupts, hard_timeout, quiet

__unittest = True
__tracebackhide__ = True

__all__ = ["ProcessTestCase", "TestTimeout", "module_scope"]


# -- generator tests, and Hypothesis's @given on them ------------------------------
# Generator test methods made plain tests, and Hypothesis's ``@given`` on them: each
# example through the send-back loop, with fresh resources.
#
# :func:`convert_generator_tests` is what the metaclass of
# :class:`~zmqprocesstest.ProcessTestCase` does to a new class: every generator test
# method becomes a plain method that drives the generator with ``run_events``, so no
# runner ever sees a generator; a ``@given`` test keeps its wrapper and gets a plain inner
# test (below).
#
# ``@given`` turns a test into a plain function that calls the decorated function, its
# *inner test*, once per generated example; a generator inner test would return a
# generator that nobody drives (Hypothesis fails it with ``FailedHealthCheck``). The
# metaclass of :class:`~zmqprocesstest.ProcessTestCase` asks :func:`given_generator`
# whether a test is such a wrapper and replaces its inner test with :func:`wrap_examples`,
# which drives each example with ``run_events``.
#
# Every example after the first runs as a test of its own would: the previous example's
# ``tearDown`` runs, its resources (sockets, processes, endpoints, links, timeline) are
# released, then ``setUp`` runs again. The first example uses what unittest's ``setUp``
# made, and unittest's ``tearDown`` and cleanups end the last one, so a failing example
# (the one Hypothesis replays last) is reported with its own timeline and processes.
#
# A ``@given`` coroutine test (``async def``, or an async generator test) runs each
# example on the test's event loop, and each example gets a new loop as a test does. An
# example that passes ends itself (:func:`end_example`: ``asyncTearDown``, ``tearDown``,
# its resources, its loop closed), so what it left behind (a task still pending) fails
# that example, which Hypothesis then shrinks and replays, and not the next one.
#
# Hypothesis is never imported here: a test is recognised by its ``hypothesis`` attribute,
# and only when the user's code has imported Hypothesis already.

#: The attribute of a test case counting the examples its @given test ran.
_COUNT = "_zpt_examples"
#: The attribute of a test case set while its last example has ended itself (coroutine tests).
_ENDED = "_zpt_example_ended"


def given_generator(func: Any) -> Optional[Callable[..., Generator[Any, Any, Any]]]:
    """The generator function a Hypothesis ``@given`` wrapper *func* runs per example, or ``None``."""
    if "hypothesis" not in sys.modules:
        return None  # nobody imported Hypothesis: no test can be wrapped by it
    handle = getattr(func, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is not None and (inspect.isgeneratorfunction(inner) or is_coroutine_test(inner)):
        return inner  # a generator test, or a coroutine test (async def, async generator)
    return None


def next_example(case: Any) -> None:
    """Before an example of a ``@given`` test: fresh resources, unless it is the test's first."""
    count = case.__dict__.get(_COUNT, 0)
    setattr(case, _COUNT, count + 1)
    if count and case.__dict__.get(_ENDED):
        setattr(case, _ENDED, False)  # the previous example ended itself (end_example)
        case._set_up()
    elif count:
        runner = case._zpt_aio  # a coroutine test's: each example gets a new loop, as a test does
        if runner is not None and not runner.closed:
            runner.run(case.asyncTearDown())
        case.tearDown()
        res, case._zpt = case._zpt, None
        if res is not None:
            res.close("Releasing the resources of the previous example failed:\n")
        if runner is not None:
            case._zpt_aio = None
            try:
                runner.close()
            except AssertionError as exc:
                raise AssertionError(f"The previous example's event loop was left with:{str(exc).split(':', 1)[1]}"
                                     ) from None
        case._set_up()


def end_example(case: Any) -> None:
    """After an example of a ``@given`` coroutine test that passed: end it as a test ends
    (``asyncTearDown``, ``tearDown``, its resources released, its loop closed), so what it
    left behind (a task still pending...) fails this example, not the next one. unittest's
    tear-down then has nothing left to do for the last example."""
    setattr(case, _ENDED, True)
    runner = case._zpt_aio
    if runner is not None and not runner.closed:
        runner.run(case.asyncTearDown())
    case.tearDown()
    res, case._zpt = case._zpt, None
    if res is not None:
        res.close("Releasing the resources of the example failed:\n")
    if runner is not None:
        case._zpt_aio = None
        runner.close()


def wrap_examples(func: Any) -> Any:
    """Make the ``@given`` wrapper *func* run its generator inner test through the send-back loop.

    The wrapper itself stays (Hypothesis's attributes, settings and signature with it);
    its inner test becomes a plain function. Returns *func*, marked as converted.
    """
    genfunc = given_generator(func)
    assert genfunc is not None
    agen = inspect.isasyncgenfunction(genfunc)

    if is_coroutine_test(genfunc):
        @functools.wraps(genfunc)
        def example(self: Any, *args: Any, **kwargs: Any) -> None:
            next_example(self)
            self._zpt_run_coroutine_test(genfunc(self, *args, **kwargs), agen)
            end_example(self)

        setattr(func, ASYNC_ATTR, True)  # its test gets an event loop
    else:
        @functools.wraps(genfunc)
        def example(self: Any, *args: Any, **kwargs: Any) -> None:
            next_example(self)
            self.run_events(genfunc(self, *args, **kwargs))

    func.hypothesis.inner_test = example
    func.__zmqprocesstest_generator__ = True
    return func


def _plain_test(genfunc: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., None]:
    """A plain (non-generator) test method that runs *genfunc* through the event loop."""

    @functools.wraps(genfunc)
    def test_method(self: Any, *args: Any, **kwargs: Any) -> None:
        self.run_events(genfunc(self, *args, **kwargs))

    test_method.__zmqprocesstest_generator__ = True  # type: ignore[attr-defined]
    return test_method


def convert_generator_tests(cls: type, prefix: str) -> None:
    """Replace every test attribute of *cls* (its own or inherited) that is a generator
    function by a plain method, and give a ``@given`` generator test a plain inner test."""
    for attr in dir(cls):
        if not attr.startswith(prefix):
            continue
        func = inspect.getattr_static(cls, attr)
        if inspect.isgeneratorfunction(func):
            setattr(cls, attr, _plain_test(func))
        elif is_coroutine_test(func):  # async def, with or without yield
            setattr(cls, attr, coroutine_test(func))
        elif given_generator(func) is not None:  # Hypothesis's @given on a generator test
            wrap_examples(func)

# -- bounded phases ----------------------------------------------------------------------
# Bounds for the phases around the tests: class and module set-up, tear-down, cleanups.
#
# ``setUp`` and the test body are bounded in :class:`~zmqprocesstest.ProcessTestCase`
# itself (``_callSetUp``, ``_callTestMethod``), and so are ``tearDown`` and each cleanup
# (``_callTearDown``, ``_callCleanup``). What runs outside a test is wrapped here:
#
# * ``setUpClass`` and ``tearDownClass`` defined on a ProcessTestCase class are wrapped by
#   its metaclass, and ``doClassCleanups`` bounds each class cleanup;
# * a module's ``setUpModule`` and ``tearDownModule`` are wrapped in the module's
#   namespace when a ProcessTestCase class of the module is created (those defined above
#   it), when a class's ``setUpClass`` runs (``tearDownModule``, wherever it is defined)
#   and in :func:`~zmqprocesstest.module_scope`; the module cleanups registered so far
#   are bounded at the same moments and after ``setUpModule``.
#
# Each is bounded by the ``run_timeout`` of the class (for a module, of the first
# ProcessTestCase class that reached it); past it the phase fails with
# :class:`~zmqprocesstest.TestTimeout` naming the phase, and the run goes on.

_CLASS_PHASES = ("setUpClass", "tearDownClass")
_MODULE_PHASES = ("setUpModule", "tearDownModule")


def phase_name(function: Any) -> str:
    """A cleanup's name for messages: its qualified name, or its repr."""
    return getattr(function, "__qualname__", None) or repr(function)


def bounded_call(owner: Any, describe: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call *function* bounded by *owner*'s ``run_timeout`` (unless it bounds itself)."""
    if getattr(function, BOUNDED, False):
        return function(*args, **kwargs)
    with hard_timeout(run_limit(owner), describe):
        return function(*args, **kwargs)


def _wrap_class_phase(name: str, func: Callable[..., Any]) -> classmethod:
    @functools.wraps(func)
    def phase(cls: Any) -> Any:
        if name == "setUpClass":
            bound_module_phases(cls)
            cls._zpt_deselected = none_selected([cls])
        if cls.__dict__.get("_zpt_deselected"):
            return None  # every test deselected by mark: nothing to set up (no shared process)
        try:
            with hard_timeout(run_limit(cls), f"{owner_name(cls)} ({name})"):
                return func(cls)
        except Exception:
            raise
        except BaseException:
            if name == "setUpClass":
                kill_shared(cls)  # interrupted (Ctrl-C): no class cleanup will run
            raise

    setattr(phase, BOUNDED, True)
    return classmethod(phase)


def bound_class_phases(cls: type) -> None:
    """Wrap the ``setUpClass`` and ``tearDownClass`` defined on *cls* itself."""
    for name in _CLASS_PHASES:
        raw = cls.__dict__.get(name)
        if isinstance(raw, classmethod) and not getattr(raw.__func__, BOUNDED, False):
            setattr(cls, name, _wrap_class_phase(name, raw.__func__))


def _set_up_class(cls: Any) -> None:
    super(BoundedPhases, cls).setUpClass()


if TYPE_CHECKING:  # for the type checker the mixin is the TestCase it is always mixed into
    _Mixin = unittest.TestCase
else:
    _Mixin = object


class BoundedPhases(_Mixin):
    """The bounded phases of :class:`~zmqprocesstest.ProcessTestCase` (a base before
    :class:`unittest.TestCase`): ``tearDown``, each cleanup, each class cleanup, and a
    ``setUpClass`` that bounds the module's phases even when a class defines none."""

    run_timeout: float
    setUpClass = _wrap_class_phase("setUpClass", _set_up_class)

    def _callTearDown(self) -> None:
        if type(self).tearDown is unittest.TestCase.tearDown:
            return  # nothing to bound
        with hard_timeout(run_limit(self), f"{self.id()} (tearDown)"):
            super()._callTearDown()  # type: ignore[misc]

    def _callCleanup(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        res = getattr(self, "_zpt", None)
        if res is not None and getattr(function, "__func__", 0) is getattr(type(self), "_release_resources", None):
            limit = release_limit(self, res)  # run_timeout + the processes' stop steps
        else:
            limit = run_limit(self)
        with hard_timeout(limit, f"{self.id()} (cleanup {phase_name(function)})"):
            function(*args, **kwargs)

    @classmethod
    def doClassCleanups(cls) -> None:
        """unittest's, with each class cleanup bounded by ``run_timeout``."""
        cls.tearDown_exceptions = []  # type: ignore[attr-defined]
        while cls._class_cleanups:  # type: ignore[attr-defined]
            function, args, kwargs = cls._class_cleanups.pop()  # type: ignore[attr-defined]
            try:
                bounded_call(cls, f"{owner_name(cls)} (class cleanup {phase_name(function)})", function, *args,
                             **kwargs)
            except Exception:
                cls.tearDown_exceptions.append(sys.exc_info())  # type: ignore[attr-defined]


def _wrap_module_phase(module: str, name: str, func: Callable[[], Any], cls: Any) -> Callable[[], Any]:
    @functools.wraps(func)
    def phase() -> Any:
        if _module_deselected(module, name):
            return None  # every test of the module deselected by mark
        with hard_timeout(run_limit(cls), f"{module} ({name})"):
            result = func()
        _bound_module_cleanups(module, cls)  # those it registered
        return result

    setattr(phase, BOUNDED, True)
    return phase


_DESELECTED_MODULES: Dict[str, bool] = {}


def _module_deselected(module: str, phase: str) -> bool:
    """Whether every test of *module* is deselected: decided at its ``setUpModule``
    (from its test case classes, a plain unittest one included), kept for its
    ``tearDownModule``."""
    if phase == "setUpModule" or module not in _DESELECTED_MODULES:
        namespace = vars(sys.modules[module]) if module in sys.modules else {}
        classes = [c for c in namespace.values()
                   if isinstance(c, type) and issubclass(c, unittest.TestCase) and c.__module__ == module]
        _DESELECTED_MODULES[module] = bool(classes) and none_selected(classes)
    return _DESELECTED_MODULES[module]


def _bounded_cleanup(module: str, function: Callable[..., Any], cls: type) -> Callable[..., Any]:
    @functools.wraps(function)
    def cleanup(*args: Any, **kwargs: Any) -> Any:
        return bounded_call(cls, f"{module} (module cleanup {phase_name(function)})", function, *args, **kwargs)

    setattr(cleanup, BOUNDED, True)
    return cleanup


def _bound_module_cleanups(module: str, cls: type) -> None:
    cleanups: List[Tuple[Any, Any, Any]] = getattr(unittest.case, "_module_cleanups", [])
    for index, (function, args, kwargs) in enumerate(cleanups):
        if not getattr(function, BOUNDED, False):
            cleanups[index] = (_bounded_cleanup(module, function, cls), args, kwargs)


def bound_module_phases(cls: type, module: str = "") -> None:
    """Wrap *module*'s (default: *cls*'s module's) ``setUpModule`` and ``tearDownModule``
    as they are now in its namespace, and bound the module cleanups registered so far."""
    module = module or cls.__module__
    namespace = getattr(sys.modules.get(module), "__dict__", None)
    if namespace is None:
        return
    for name in _MODULE_PHASES:
        func = namespace.get(name)
        if callable(func) and not getattr(func, BOUNDED, False):
            namespace[name] = _wrap_module_phase(module, name, func, cls)
    _bound_module_cleanups(module, cls)


def bound_phases(cls: type) -> None:
    """Bound the phases of a new ProcessTestCase class: its own ``setUpClass`` and
    ``tearDownClass``, and its module's ``setUpModule`` and ``tearDownModule`` as
    defined above it."""
    bound_class_phases(cls)
    bound_module_phases(cls)

#: Phases unittest calls without awaiting: a coroutine function there would never run.
_SYNC_PHASES = {"setUp": "asyncSetUp", "tearDown": "asyncTearDown", "setUpClass": None, "tearDownClass": None}


def check_async_phases(cls: type, namespace: Dict[str, Any]) -> None:
    """Refuse, when *cls* is defined, what would lose a coroutine's guarantees without a word:
    an ``async def`` where unittest calls a plain method, and a mix with
    :class:`unittest.IsolatedAsyncioTestCase` (which would run the tests on its own loop,
    with none of the test case's timeout and death watch)."""
    if issubclass(cls, unittest.IsolatedAsyncioTestCase):
        raise TypeError(f"{cls.__qualname__} mixes IsolatedAsyncioTestCase with ProcessTestCase: drop "
                        f"IsolatedAsyncioTestCase from its bases. ProcessTestCase runs 'async def' tests, "
                        f"asyncSetUp, asyncTearDown and addAsyncCleanup itself, with its run_timeout and death watch")
    for name in ("asyncSetUp", "asyncTearDown"):
        func = namespace.get(name)
        if func is not None and not inspect.iscoroutinefunction(func):
            raise TypeError(f"{cls.__qualname__}.{name} must be a coroutine function ('async def {name}(self)'), "
                            f"got {func!r}: it is awaited on the test's event loop")
    for name, instead in _SYNC_PHASES.items():
        func = namespace.get(name)
        func = getattr(func, "__func__", func)
        if is_coroutine_test(func):
            what = (f"rename it to 'async def {instead}(self)' (run on the test's event loop after {name})"
                    if instead else f"make it a plain 'def {name}(cls)' (start the processes the class shares there)")
            raise TypeError(f"{cls.__qualname__}.{name} is a coroutine function, but unittest calls {name} "
                            f"without awaiting it: it would never run. {what[0].upper()}{what[1:]}")


class ProcessTestMeta(type):
    """Metaclass of :class:`ProcessTestCase`: wraps generator test methods.

    Every attribute whose name starts with :attr:`ProcessTestCase.testMethodPrefix`
    (``test``), defined on the class or inherited from any base or mixin, that is a
    generator function is replaced on the new class by a plain wrapper that keeps its
    ``__name__``, ``__qualname__``, ``__doc__``, ``__wrapped__`` and attributes (skip,
    expected-failure, marks). A Hypothesis ``@given`` test whose inner test is a
    generator function runs each example through the loop, with fresh resources
    (:func:`wrap_examples`). Marks of the class and module are copied onto the methods.
    An attribute named like a built-in event is refused first
    (:func:`~zmqprocesstest.loop.check_event_names`).
    """

    def __init__(cls, name: str, bases: Tuple[type, ...], namespace: Dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        check_event_names(cls)  # a user's reset() or delay = 0.5 would hide the event
        if "timeout" in namespace:  # a bad one is an error here, naming the class, not in a wait
            check_seconds(namespace["timeout"], f"timeout of {name}")
        if "run_timeout" in namespace:
            check_seconds(namespace["run_timeout"], f"run_timeout of {name}", positive=True)
        check_async_phases(cls, namespace)
        prefix = getattr(cls, "testMethodPrefix", "test")
        convert_generator_tests(cls, prefix)  # and @given ones
        _marks.propagate(cls, prefix)
        bound_phases(cls)  # setUp/tearDown of the class and its module: bounded by run_timeout
        if runs_requested():  # ZMQPROCESSTEST_REPEAT: repeats 2..N as siblings in its module
            from .runs import inject_repeats
            inject_repeats(cls)



def _watch_changed(owner: Any) -> None:
    """A process was added to *owner* (a test, or a class that shares it): a coroutine test
    running on its loop watches it from now on."""
    runner = None if isinstance(owner, type) else owner._zpt_aio
    if runner is not None and not runner.closed:
        runner.sync_watch()


class ExitAllowed:
    """What :meth:`ProcessTestCase.allow_exit` returns: the exit is allowed at once; as a
    context manager, until the end of the block (a process still running then is watched
    again)."""

    def __init__(self, owner: Any, proc: ManagedProcess) -> None:
        self._owner = owner
        self.process = proc

    def __enter__(self) -> "ExitAllowed":
        return self

    def __exit__(self, *exc: Any) -> None:
        proc = self.process
        if not proc.closed and proc.alive():
            proc.watched = True
            self._owner._resources().refresh()


def _check_guardian() -> None:
    """After a test: a guardian that died is replaced; fail if what it guards is unguarded."""
    problem = _guardian.check()
    if problem is not None:
        raise ProcessStopError(problem)

class ProcessTestCase(Events, FaultEvents, BoundedPhases, unittest.TestCase, metaclass=ProcessTestMeta):
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
    #: Longest each phase may run, in seconds (scaled like :attr:`timeout`), even blocked
    #: in C: ``setUp``, the test, ``tearDown``, each cleanup, the class's and module's
    #: set-up, tear-down and cleanups. Past it the phase fails with :class:`TestTimeout`
    #: at the blocking line (:doc:`/guarantees`); later cleanups and tests run.
    run_timeout: float = DEFAULT_RUN_TIMEOUT
    #: ``'ipc'`` (a private temp dir, no port races) or ``'tcp'`` (127.0.0.1).
    endpoint_transport: str = "ipc"
    #: Bounds in seconds for each stop step (``message``, ``SIGINT``, ``SIGTERM``, ``SIGKILL``).
    stop_timeouts: Dict[str, float] = dict(DEFAULT_STOP_TIMEOUTS)
    #: The stop steps processes take, in order (e.g. ``("SIGTERM",)`` for a server whose
    #: documented stop is SIGTERM); SIGKILL always ends them. See :meth:`set_stop_steps`.
    stop_steps: Sequence[str] = DEFAULT_STOP_STEPS
    #: How :meth:`start_process` starts processes: ``"fork"`` (so patches such as a
    #: :class:`~zmqprocesstest.ProcessMock` reach the child, and output is captured),
    #: ``"spawn"``, ``"forkserver"``, or ``None`` for multiprocessing's default.
    start_method: Optional[str] = "fork"
    #: Capture stdout/stderr of processes under test and show their tail on failure.
    capture_output: bool = True
    #: How many entries of its timeline the failure report shows (the attribute keeps its first name).
    transcript_length: int = 20
    #: Fail a test that leaves a file descriptor or a child process behind (a zmq
    #: socket or context left open shows up through its file descriptors).
    check_leaks: bool = False
    #: The SUB socket the :meth:`log` event reads (set it in ``setUp``).
    log_socket: Optional[TestSocket] = None

    _zpt: Optional[Resources] = None
    _zpt_timeout: Optional[HardTimeout] = None  # the test body's, for run_events
    _zpt_threads: Optional[ThreadWatch] = None  # the threads the test starts
    _zpt_aio: Optional[LoopRunner] = None  # a coroutine test's event loop

    #: What makes a coroutine test's event loop: a callable taking no argument (a
    #: function, a class, a ``staticmethod``), as ``asyncio.Runner`` calls it, or
    #: ``None`` for ``asyncio.new_event_loop``. ``loop_factory = uvloop.new_event_loop``
    #: runs the class's coroutine tests on uvloop. Each test gets a new loop, closed after it.
    loop_factory: Optional[Callable[[], Any]] = None

    # -- coroutine tests ------------------------------------------------------------------------
    async def asyncSetUp(self) -> None:
        """Set up a test on its event loop, after ``setUp`` (as in
        :class:`unittest.IsolatedAsyncioTestCase`). A class that defines it (or
        :meth:`asyncTearDown`) gives each of its tests an event loop, plain and generator
        tests too; otherwise only coroutine tests get one."""

    async def asyncTearDown(self) -> None:
        """Tear down a test on its event loop, before ``tearDown`` (see :meth:`asyncSetUp`)."""

    def addAsyncCleanup(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Add a coroutine function as a cleanup: ``function(*args, **kwargs)`` is awaited
        on the test's event loop, before the loop is closed (in a plain test, on a loop of
        its own). Cleanups run last added first, as ``addCleanup``'s do."""
        if not callable(function):
            raise TypeError(f"expected a coroutine function to await as a cleanup, got {function!r}")

        def cleanup() -> None:
            runner = self._zpt_aio
            own = runner is None or runner.closed
            if own:
                runner = LoopRunner(self)
            assert runner is not None
            try:
                awaitable = function(*args, **kwargs)
                if not inspect.isawaitable(awaitable):
                    raise TypeError(f"expected the async cleanup {phase_name(function)} to return an awaitable, "
                                    f"got {awaitable!r}")
                runner.run(awaitable)
            finally:
                if own:
                    runner.close()

        cleanup.__qualname__ = phase_name(function)
        self.addCleanup(cleanup)

    def _zpt_run_coroutine_test(self, coro: Any, agen: bool) -> None:
        runner = self._zpt_aio
        if runner is None:
            coro.close() if not agen else None
            raise TypeError(f"{self.id()} is a coroutine test, but its event loop was not made: run it through "
                            "unittest (the test case's run()), not by calling the method")
        if agen:
            handle = self._zpt_timeout
            result = runner.run(drive_async_events(self, coro, None if handle is None else handle.check))
        else:
            result = runner.run(coro)
        if result is not None:
            raise TypeError(f"expected the test to return None, got {result!r}; use self.assert...() to check a result")

    def _zpt_close_loop(self) -> None:
        runner = self._zpt_aio
        if runner is not None:
            runner.close()

    # -- resources ---------------------------------------------------------------------------
    @scoped
    def _resources(self) -> Resources:
        if isinstance(self, type):
            return shared_resources(self)  # called on the class: what the class shares
        res = self._zpt
        if res is None:
            res = self._zpt = Resources(self, self.transcript_length, shared_of(self))
            self._timeline = res.timeline  # kept after the test, for its HTML page
            self.addCleanup(self._release_resources)
        return res

    def _release_resources(self) -> None:
        res, self._zpt = self._zpt, None
        if res is not None:
            release_bounded(res, "")

    @property
    def context(self) -> zmq.Context:
        """This test's :class:`zmq.Context`, terminated after the test (or, in a class that
        shares resources, the class's, terminated after the class)."""
        return self._context()

    @scoped
    def _context(self) -> zmq.Context:
        res = self._resources()
        if res.contexts:
            return res.contexts[0]
        # A test that shares a class's or module's context makes its sockets there (they
        # are still the test's own, closed after it): no context to start and end per test.
        shared = next((parent.contexts[0] for parent in res.parents if parent.contexts), None)
        if shared is not None:
            return shared
        res.contexts.append(zmq.Context())
        return res.contexts[0]

    @property
    def asyncio_context(self) -> "zmq.asyncio.Context":
        """This test's :attr:`context` as a :class:`zmq.asyncio.Context`: a shadow of it
        (the same libzmq context), for your own ``zmq.asyncio`` sockets and a client
        library that needs such a context. Its sockets are the test's: one left open is
        closed after the test, which then fails saying so, as for ``context.socket()``."""
        res = self._resources()
        if not res.shadows:
            import zmq.asyncio  # imported on first use: plain tests never need it

            res.shadows.append(zmq.asyncio.Context(self._context()))
        return res.shadows[0]

    @scoped
    def socket(self, sock_type: int, bind: Union[Endpoint, Sequence[Endpoint], None] = None,
               connect: Union[Endpoint, Sequence[Endpoint], None] = None,
               subscribe: Union[bytes, str, Sequence[Union[bytes, str]], None] = None,
               timeout: Optional[float] = None, name: Optional[str] = None,
               context: Optional[zmq.Context] = None, codec: Optional[Codec] = None, **options: Any) -> TestSocket:
        """Make a :class:`TestSocket` that is closed after the test (see :func:`make_sock`).

        The socket's timeout defaults to :attr:`timeout` (scaled); a socket from another
        *context* is closed too, and that context terminated. *codec* is how the
        ``send`` and ``recv`` events encode and decode its messages, and how the reports
        show them (:mod:`zmqprocesstest.codecs`; default JSON).
        """
        res = self._resources()
        sock = make_sock(context or self._context(), sock_type, bind=bind, connect=connect, subscribe=subscribe,
                         timeout=default_timeout(self) if timeout is None else timeout, name=name, codec=codec,
                         **options)
        return res.add_socket(sock, context)

    @property
    def endpoint(self) -> str:
        """A fresh endpoint for this test (the same one on each access)."""
        res = self._resources()
        if res.endpoint is None:
            res.endpoint = self.new_endpoint()
        return res.endpoint

    @scoped
    def new_endpoint(self, transport: Optional[str] = None) -> str:
        """A new endpoint nobody else uses: ipc in a private (0700) temp dir, or tcp.

        ``tcp`` picks a free port on 127.0.0.1 now; the process binds it later, so
        another program could take it in between. ``ipc`` cannot collide.
        """
        transport = transport or self.endpoint_transport
        if transport == "ipc":
            return self._resources().ipc_endpoint()
        if transport == "tcp":
            return free_tcp_endpoint()
        raise ValueError(f"expected transport 'ipc' or 'tcp', got {transport!r}")

    @scoped
    def endpoints(self, n: int, transport: str = "tcp") -> List[str]:
        """*n* new endpoints nobody else uses, reserved together: for a program that
        binds several (a Jupyter kernel's five ports).

        ``tcp``: *n* distinct ports on 127.0.0.1. They are bound all at once before any
        is released, so no two picks can return the same port, and each is left in
        ``TIME_WAIT``, so for about a minute the kernel hands none of them to another
        program's bind to port 0, while the process under test, binding with
        ``SO_REUSEADDR`` (libzmq does on every tcp bind, as do ``asyncio`` and
        ``socketserver``), binds them at once. A program that binds without
        ``SO_REUSEADDR`` gets "Address already in use" on them: give it ``ipc``, or ports
        of :meth:`new_endpoint`. ``ipc``: *n* paths in :attr:`tmpdir`, which cannot
        collide at all.

        :raises ValueError: *n* is not a positive int, or *transport* is neither.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"expected n to be a positive number of endpoints (int), got {n!r}")
        if transport == "ipc":
            res = self._resources()
            return [res.ipc_endpoint() for _ in range(n)]
        if transport == "tcp":
            return reserve_tcp_endpoints(n)
        raise ValueError(f"expected transport 'ipc' or 'tcp', got {transport!r}")

    @property
    def tmpdir(self) -> str:
        """This test's private directory (mode 0700): made on first use, removed with
        everything in it after the test (also if the runner dies: the guardian removes
        it). The test's ``ipc://`` endpoints live there too, and a process's output past
        what memory keeps; pick names of your own (a connection file, a config)."""
        return self._tmpdir()

    @scoped
    def _tmpdir(self) -> str:
        folder = self._resources().private_dir()
        if folder is None:
            raise RuntimeError(f"expected the private directory during {owner_name(self)}, but its resources are "
                               "released already")
        return folder

    @scoped
    def start_process(self, target: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Start *target* (a :class:`multiprocessing.Process` class or subclass, or a function).

        Arguments go to the class (or function), keyword arguments named ``target``,
        ``args`` and ``name`` included: ``start_process(multiprocessing.Process,
        target=serve, args=(endpoint,), name="server")`` runs ``serve(endpoint)`` in a
        process named ``server``. The process is stopped after the test. Returns the
        :class:`multiprocessing.Process`.

        ``name=`` names the process in every report (the timeline's lanes, the HTML
        page, :class:`~zmqprocesstest.ProcessDied`), and is passed on only to a target
        that takes a ``name`` argument. Without it the process is named by its class
        (a name the class gives it, else the class's ``__name__``) or its function's
        ``__name__``; a name another process of the test has gets ``#2``, ``#3``...
        The endpoints among the arguments tell the reports which test sockets talk to it.
        """
        plan = plan_for(self.stop_steps, self.stop_timeouts)  # validated before a process starts
        res = self._resources()
        res.before_start()
        obj = res.add_process(ForkedProcess.start(
            target, args, kwargs, capture=self.capture_output, start_method=self.start_method,
            taken=res.process_names()), plan).obj
        _watch_changed(self)
        return obj

    @scoped
    def start_command(self, argv: Sequence[str], name: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                      cwd: Optional[str] = None) -> Any:
        """Start a command line (any program) as a process under test.

        It runs in its own session; stdout and stderr are captured through a pipe that
        never fills up (``PYTHONUNBUFFERED=1`` is set unless *env* says otherwise).
        Returns the :class:`subprocess.Popen`.

        *name* names it in every report; by default its program's name (for a Python
        interpreter, the module of ``-m`` or the script's name), made unique in the test
        as :meth:`start_process` does. The endpoints in *argv* tell the reports which
        test sockets talk to it.

        *env* **replaces** the environment, as :class:`subprocess.Popen`'s does: the
        command gets only what it holds (plus the guardian's marker and
        ``PYTHONUNBUFFERED``), not ``PATH`` or ``HOME``. To add to the test process's
        environment, pass ``env=dict(os.environ, NAME="value")``; ``None`` (the default)
        passes it on whole.
        """
        plan = plan_for(self.stop_steps, self.stop_timeouts)
        res = self._resources()
        res.before_start()
        obj = res.add_process(CommandProcess.start(argv, name=name, env=env, cwd=cwd, capture=self.capture_output,
                                                   taken=res.process_names()), plan).obj
        _watch_changed(self)
        return obj

    @scoped
    def fault_link(self, endpoint: str, transport: Optional[str] = None, name: Optional[str] = None) -> FaultLink:
        """A :class:`~zmqprocesstest.FaultLink` to *endpoint*, closed after the test.

        Connect clients to ``link.endpoint`` instead of *endpoint*; the fault events
        (``partition``, ``heal``, ``reset``, ``refuse``, ``delay``, ``drop``) then break
        the link between them, and the failure report shows its state, counts and the
        faults applied, in order. An ipc link listens in the test's private directory.
        *name* names it in the reports (default ``link`` and its port or file name).
        """
        res = self._resources()
        link = make_link(endpoint, res.ipc_endpoint, transport, name)
        res.links.append(link)
        return link

    @scoped
    def tap(self, endpoint: str, name: str = "client", codec: Any = None, transport: Optional[str] = None,
            record: Optional[str] = None) -> Tap:
        """A :class:`~zmqprocesstest.Tap` in front of *endpoint*: a fault link that records
        every message through it, both ways, in the test's reports; closed after the test.

        Connect your own client (a client library, a plain :mod:`zmq` socket) to
        ``link.endpoint`` instead of *endpoint*: each whole message it sends and gets
        shows in the timeline, the failure report and the HTML report page, on a lane
        named *name*, rendered by *codec* (``codec.render(frames)``) if given. Every
        fault event applies to it, as to a fault link. An ipc tap listens in the test's
        private directory.

        With *record* (a path, relative to the test module's directory as golden files
        are) every message through the tap is also written to that file, a recorded
        conversation that the ``replay`` event plays back (:doc:`/howto/conversations`).
        """
        res = self._resources()
        link = make_link(endpoint, res.ipc_endpoint, transport, name, cls=Tap, codec=codec)
        res.links.append(link)
        assert isinstance(link, Tap)
        if record is not None:
            writer = ConversationWriter(resolve_path(self, record), getattr(codec, "name", None) or "json")
            res.closers.append(writer.close)  # after the link: it writes until it is closed
            link.recorders.append(TapRecorder(writer, link))
            _timeline.record("note", link.name, f"recording to {writer.path}")
        return link

    @scoped
    def add_process(self, proc: ManagedProcess) -> ManagedProcess:
        """Own a process started by a :class:`~zmqprocesstest.ManagedProcess` subclass of your own.

        Like the processes of :meth:`start_process`, it is watched while the test
        waits, shows in the failure report and is stopped after the test, with this
        test case's :attr:`stop_steps` and :attr:`stop_timeouts`.
        """
        if not isinstance(proc, ManagedProcess):
            raise TypeError(f"expected a ManagedProcess (e.g. from a subclass's start()), got {proc!r}")
        try:
            plan = plan_for(self.stop_steps, self.stop_timeouts)
        except BaseException:
            proc.kill_now()  # ours to stop, and it cannot be stopped as asked: never left behind
            raise
        added = self._resources().add_process(proc, plan)
        _watch_changed(self)
        return added

    @scoped
    def managed(self, proc: Any) -> ManagedProcess:
        """The :class:`~zmqprocesstest.ManagedProcess` record of *proc*."""
        managed = self._resources().find(proc)
        if managed is None:
            raise ValueError(f"expected a process started by this test or shared with it (start_process/"
                             f"start_command), got {proc!r}")
        return managed

    @scoped
    def set_stop_message(self, proc: Any, sock: TestSocket, body: Any,
                         header: Union[Sequence[Any], Callable[[], Sequence[Any]]] = ()) -> None:
        """Stop *proc* after the test by sending ``header + [json(body)]`` on *sock* first
        (``header + codec.encode(body)`` for a socket with another codec).

        The JSON shorthand of :meth:`set_stop_event` with a ``send`` event; it replaces
        the stop message or event set before. *header* may be a function called at stop
        time, for an address that can change during the test (a worker that reconnects
        under a new identity): ``header=lambda: [self.worker_id, b""]``.

        A REQ *sock* that cannot send when the test ends (a request left unanswered) is
        not used: the message goes on a new REQ socket connected to the same endpoints.
        A separate control socket, or :meth:`set_stop_event`, keeps the stop apart from
        what the test does in the first place.
        """
        fixed: Sequence[Any] = () if callable(header) else list(header)
        managed = self.managed(proc)
        managed.stop_plan = managed.stop_plan.with_polite(PoliteStop(
            lambda: send_stop_message(self, sock, body, header() if callable(header) else fixed),
            f"stop message {body!r} on {sock.describe()}", lambda: replies(sock)))

    @scoped
    def set_stop_event(self, proc: Any, event: Tuple[Any, ...]) -> None:
        """Stop *proc* after the test by handling *event* first (the polite stop step).

        *event* is what a test would yield, ``('name', *args)``: a built-in event or one
        of the test case's own (say, one that sends a signed shutdown request). Its
        outcome shows in the report of a stop that needed more. It replaces the stop
        message or event set before.
        """
        managed = self.managed(proc)
        if type(event) is not tuple or not event or not isinstance(event[0], str):
            raise TypeError(f"expected an event tuple ('name', *args), got {event!r}")
        managed.stop_plan = managed.stop_plan.with_polite(PoliteStop(lambda: dispatch(self, event),
                                                                     f"stop event {event!r}"))

    @scoped
    def set_stop_steps(self, proc: Any, steps: Sequence[str]) -> None:
        """Stop *proc* with these steps (see :data:`~zmqprocesstest.stopping.STOP_STEPS`), e.g. ``["SIGTERM"]``."""
        managed = self.managed(proc)
        managed.stop_plan = managed.stop_plan.with_steps(steps)

    @scoped
    def stop_process(self, proc: Any) -> None:
        """Stop *proc* now with the stop protocol; fail if it did not stop politely."""
        managed = self.managed(proc)
        with quiet():  # a death the test asked for
            problems = managed.stop()
            self._resources().refresh()
        if problems:
            raise ProcessStopError("\n".join(problems) + "\n  " + managed.report())

    @scoped
    def allow_exit(self, proc: Any) -> "ExitAllowed":
        """Let *proc* exit from now on without failing the test: it is no longer
        :term:`watched`, so its exit ends neither a test socket's wait nor a blocking
        call of the test's own (a raw ``recv()``, a client library's call, ``time.sleep``)
        with :class:`~zmqprocesstest.ProcessDied`. ``wait_exit`` still checks its exit
        code, the report still shows it, and it is still stopped after the test.

        For a process the test stops by a message of its own, or one that is expected
        to exit by itself. As a context manager it allows the exit only within the block
        (``with self.allow_exit(server): client.shutdown()``): a process still running at
        its end is watched again (:doc:`/howto/failure_handling`).
        """
        managed = self.managed(proc)
        managed.watched = False
        self._resources().refresh()
        return ExitAllowed(self, managed)

    @scoped
    def process_mock(self, name: str = "process", timeout: Optional[float] = None) -> ProcessMock:
        """A :class:`~zmqprocesstest.ProcessMock` whose pipe is closed after the test."""
        mock = ProcessMock(name, timeout=default_timeout(self) if timeout is None else timeout)
        self._resources().closers.append(mock.close_pipe)
        return mock

    @scoped
    def output_of(self, proc: Any) -> str:
        """All captured output of *proc* so far (stdout and stderr together)."""
        managed = self.managed(proc)
        if managed.output is None:
            raise ValueError(f"output of {managed.name!r} is not captured (capture_output is False)")
        if not managed.alive():
            managed.output.settle(scaled(OUTPUT_SETTLE))  # all of it: read the pipe to its end
        return managed.output.text()

    # -- running tests -----------------------------------------------------------------------
    def run_events(self, gen: Generator[Any, Any, Any]) -> None:
        """Drive a generator test with the send-back loop (:func:`zmqprocesstest.loop.run_events`).

        The test fails with :class:`TestTimeout` if it runs longer than :attr:`run_timeout`:
        the test's one hard timeout, checked before each event too (where no signal can
        interrupt the test, outside the main thread).
        """
        handle = self._zpt_timeout
        if handle is not None:
            run_events(self, gen, handle.check)
            return
        with hard_timeout(run_limit(self), self.id()) as handle:  # called outside a test method
            run_events(self, gen, handle.check)

    # unittest's private hooks _callSetUp and _callTestMethod (Python 3.8+) are overridden
    # here, and _callTearDown and _callCleanup in BoundedPhases (_phases.py), and nowhere
    # else: they are the one place where an exception from setUp or the test body can be
    # annotated (with the timeline and the processes' output) before the result formats
    # it, where deselection and the leak check wrap exactly one test, and where each phase
    # gets its hard timeout. tests/test_case.py fails loudly if Python renames them.
    def _callSetUp(self) -> None:
        reason = _marks.deselection_reason(self)
        if reason:
            raise unittest.SkipTest(reason)
        bound_exit()  # a thread left running anywhere cannot hang the runner's exit
        self._zpt_threads = ThreadWatch(self.id())
        self.addCleanup(self._zpt_threads.check)  # the last cleanup: after the resources' release
        if self.check_leaks or env_flag(CHECK_LEAKS_ENV):
            shared_zmq = any(res.contexts for res in shared_of(self))
            self.addCleanup(check_leaks, self.id(), leak_snapshot(), shared_zmq)
        # The guardian runs before the test, so what the test starts itself is covered too
        # (its token is in os.environ, its forks register), and is checked after it.
        self.addCleanup(_check_guardian)
        _guardian.start()
        with hard_timeout(run_limit(self), f"{self.id()} (setUp)"):
            self._reported(self._set_up)

    def _set_up(self) -> None:
        if shared_of(self):
            self._resources().check_shared()  # a shared process that died fails the test at once
        method = getattr(self, self._testMethodName, None)
        cls = type(self)
        wants_loop = (getattr(method, ASYNC_ATTR, False) or cls.asyncSetUp is not ProcessTestCase.asyncSetUp
                      or cls.asyncTearDown is not ProcessTestCase.asyncTearDown)  # as IsolatedAsyncioTestCase
        if wants_loop and self._zpt_aio is None:
            # Made before setUp, closed by the last cleanup the test adds: after its async cleanups.
            self._zpt_aio = LoopRunner(self)
            self.addCleanup(self._zpt_close_loop)
        super()._callSetUp()  # type: ignore[misc]
        if self._zpt_aio is not None:
            self._zpt_aio.run(self.asyncSetUp())

    def _callTearDown(self) -> None:
        if self.__dict__.get(_ENDED):
            return  # the last example of a @given coroutine test ended itself
        self._mark_teardown("tearDown and cleanups")
        runner = self._zpt_aio
        if runner is not None and not runner.closed:
            with hard_timeout(run_limit(self), f"{self.id()} (asyncTearDown)"):
                runner.run(self.asyncTearDown())
        super()._callTearDown()

    def _callTestMethod(self, method: Callable[[], Any]) -> None:
        if inspect.isgeneratorfunction(getattr(method, "__func__", method)):
            raise TypeError(f"{self.id()} is a generator function that was not converted; "
                            "define it in the class body of a ProcessTestCase (not set after class creation)")
        if is_coroutine_test(getattr(method, "__func__", method)):
            raise TypeError(f"{self.id()} is a coroutine function that was not converted; "
                            "define it in the class body of a ProcessTestCase (not set after class creation)")
        with hard_timeout(run_limit(self), self.id()) as self._zpt_timeout:
            try:
                result = self._reported(method)
            finally:
                self._zpt_timeout = None
        if inspect.iscoroutine(result) or inspect.isasyncgen(result):
            if inspect.iscoroutine(result):
                result.close()  # not "never awaited" on top of this error
            raise TypeError(f"{self.id()} returned {result!r}, which never ran: a coroutine test must be an "
                            "'async def test_...' in the class body of a ProcessTestCase")
        if result is not None:
            raise TypeError(f"expected the test to return None, got {result!r}; use self.assert...() to check a result")
        log = os.environ.get(BODY_LOG_ENV)
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(self.id() + "\n")

    def _reported(self, call: Callable[[], Any]) -> Any:
        """Run *call* (setUp or the test); add the failure report to what it raises."""
        try:
            with death_interrupts(self):  # a death ends a blocking call of the test's own, at its line
                return call()
        except (KeyboardInterrupt, unittest.SkipTest):
            raise
        except BaseException as exc:
            trim_traceback(exc)  # it ends at the user's line, wherever the library raised it
            res = self._zpt
            if res is not None and (res.timeline.entries or res.processes or res.links):
                res.note_listening()  # who bound what, while the processes still run
                told, state = res.report_parts(shown=getattr(exc, "process", None))  # as things were at the failure
                note = told + "\n" + state if state else told
                try:  # the HTML page draws it instead, and shows the state on its own
                    exc._zpt_report = (note, state)  # type: ignore[attr-defined]
                except AttributeError:
                    pass
                if _timeline.current() is res.timeline:
                    _timeline.record("failed", "test", _timeline.failure_line(exc))
                self._mark_teardown("the processes are stopped after the failure")
                # Stop the processes now, so a stop that needs escalation is told in this
                # failure's report rather than as a second failure of the same test.
                problems = res.stop_processes()
                if problems:
                    note += "\nStopping the processes after this failure:\n  " + "\n  ".join(problems)
                add_note(exc, note)
            if sys.version_info < (3, 11):  # a bare raise there re-raises the untrimmed traceback
                raise exc
            raise

    def _mark_teardown(self, what: str) -> None:
        """Note in the test's timeline, once, where its teardown begins (reports fold what follows)."""
        res = self._zpt
        if res is not None and _timeline.current() is res.timeline \
                and not any(entry[1] == "teardown" for entry in res.timeline.entries):
            _timeline.record("teardown", "test", what)

    def run(self, result: Optional[unittest.TestResult] = None) -> Optional[unittest.TestResult]:
        try:
            return run_test(self, result, super().run)  # one outcome, a report page, the run's settings
        except KeyboardInterrupt:
            if self._zpt_threads is not None:
                self._zpt_threads.end()  # its check, a cleanup, will not run
            if self._zpt_aio is not None:
                self._zpt_aio.abandon()  # nor the one that closes the loop
            # The runner is being interrupted: cleanups will not run, so stop now.
            res, self._zpt = self._zpt, None
            if res is not None:
                res.kill_all()
            raise


def module_scope(module: str) -> Type[ProcessTestCase]:
    """The resources a test module shares, for ``setUpModule``.

    It has the resource API of a test case class (``new_endpoint``, ``socket``,
    ``start_process``, ``set_stop_message``...); what it makes is shared by every test in
    *module*, watched while each of them runs, and stopped and closed after the module's
    last test (``addModuleCleanup``)::

        def setUpModule():
            global ENDPOINT
            scope = module_scope(__name__)
            ENDPOINT = scope.new_endpoint()
            scope.start_process(PongProc, ENDPOINT)
    """
    if not isinstance(module, str) or module not in sys.modules:
        raise ValueError(f"expected the name of an imported test module (module_scope(__name__)), got {module!r}")
    check_module_scope_releaser(module)  # under pytest, only its plugin releases a module scope
    scope = MODULE_SCOPES.get(module)
    if scope is None:
        scope = ProcessTestMeta("module_scope", (ProcessTestCase,),
                                {"__module__": module, "__qualname__": f"module_scope({module!r})", "__test__": False})
        MODULE_SCOPES[module] = scope
    bound_module_phases(scope, module)  # tearDownModule, the module cleanups registered so far
    return scope
