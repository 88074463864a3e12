"""Stateful process tests: Hypothesis's rule-based state machines driving real processes.

A :class:`ProcessStateMachine` is a :class:`hypothesis.stateful.RuleBasedStateMachine`
whose rules (and invariants) may be generator methods that yield the library's events,
the fault events included (``freeze``/``thaw``, ``restart``, ``partition``/``heal``,
``drop``, ``loss``, ``reset``...). Hypothesis generates sequences of rules, runs each
against fresh processes and, when one fails, shrinks it to a minimal sequence.

Each run of the machine gets a test case of its own (:attr:`ProcessStateMachine.case`,
made in ``__init__``): ``setup()`` starts the processes and makes the sockets and links
through it, and ``teardown()`` releases them as after a test. A failing step's error
carries the run's report (messages, steps, processes, links), and Hypothesis adds the
shrunk steps, so the report of the final run tells what happened, in order.

Run it with any runner through :attr:`ProcessStateMachine.TestCase` (a
:class:`~zmqprocesstest.ProcessTestCase`, so ``run_timeout`` bounds the whole search)::

    class PongMachine(ProcessStateMachine):
        def setup(self):
            self.proc = self.start_process(PongProc, self.endpoint)
            self.req = self.socket(zmq.REQ, connect=self.endpoint)

        @rule(n=st.integers(0, 9))
        def ping(self, n):
            yield ("send", self.req, [], ["ping", n])
            assert (yield ("recv", self.req)) == [["pong", n]]

    PongMachineTestCase = PongMachine.TestCase  # its own name: every runner finds it

This module imports Hypothesis: import it only where Hypothesis is installed
(``pip install zmqprocesstest[hypothesis]``).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Callable, Dict, Generator, Optional, Type

from hypothesis import HealthCheck
from hypothesis import settings as Settings
from hypothesis.stateful import (INITIALIZE_RULE_MARKER, INVARIANT_MARKER, RULE_MARKER, RuleBasedStateMachine,
                                 run_state_machine_as_test)

from ._compat import add_note
from .case import ProcessTestCase
from .report import timeline as _timeline

__unittest = True
__tracebackhide__ = True

__all__ = ["ProcessStateMachine"]

#: The resource API of a test case that a machine offers as its own (see :attr:`ProcessStateMachine.case`).
DELEGATED = ("socket", "start_process", "start_command", "fault_link", "tap", "new_endpoint", "managed", "add_process",
             "set_stop_message", "set_stop_event", "set_stop_steps", "stop_process", "output_of", "process_mock",
             "monitor")
#: Test case settings a machine may set as class attributes; its run's case takes them.
CASE_SETTINGS = ("timeout", "run_timeout", "endpoint_transport", "stop_timeouts", "stop_steps", "start_method",
                 "capture_output", "transcript_length")
_WRAPPED = "__zmqprocesstest_step__"


def _step(function: Callable[..., Any], kind: str) -> Callable[..., Any]:
    """A rule or invariant that drives a generator *function* with the send-back loop and
    adds the run's report to what a failing step raises."""
    if getattr(function, _WRAPPED, False):
        return function

    @functools.wraps(function)
    def step(machine: "ProcessStateMachine", *args: Any, **kwargs: Any) -> Any:
        case = machine.case
        res = case._zpt
        if res is not None:
            _timeline.record("note", "step", f"{kind} {function.__name__}({_args(args, kwargs)})")
        try:
            result = function(machine, *args, **kwargs)
            if inspect.isgenerator(result):
                machine.run_events(result)
                result = None
            return result
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            machine._report(exc)
            raise

    setattr(step, _WRAPPED, True)
    return step


def _args(args: Any, kwargs: Dict[str, Any]) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(s if len(s) < 40 else s[:40] + "..." for s in shown)


def _convert(cls: type) -> None:
    """Wrap every rule, initialize rule and invariant of *cls* (once; inherited ones too)."""
    for _name, f in inspect.getmembers(cls):
        for marker, kind in ((RULE_MARKER, "rule"), (INITIALIZE_RULE_MARKER, "initialize")):
            rule = getattr(f, marker, None)
            if rule is not None:
                rule.function = _step(rule.function, kind)
        invariant = getattr(f, INVARIANT_MARKER, None)
        if invariant is not None and not getattr(invariant.function, _WRAPPED, False):
            setattr(f, INVARIANT_MARKER, dataclasses.replace(invariant, function=_step(invariant.function,
                                                                                       "invariant")))


class _TestCaseProperty:
    """``Machine.TestCase``: a ProcessTestCase that runs the machine (one class per machine)."""

    def __get__(self, obj: Any, owner: Any) -> type:
        made = owner.__dict__.get("_zpt_test_case")
        if made is None:
            made = _test_case(owner)
            owner._zpt_test_case = made
        return made


def _test_case(machine: type) -> type:
    def runTest(self: Any) -> None:  # a ProcessTestCase with the machine's settings
        run_state_machine_as_test(machine, settings=self.settings)

    runTest.is_hypothesis_test = True  # type: ignore[attr-defined]
    attrs = {name: getattr(machine, name) for name in CASE_SETTINGS if name in vars(machine)}
    attrs.update({"runTest": runTest, "__module__": machine.__module__,
                  "settings": Settings(deadline=None, suppress_health_check=list(HealthCheck)),
                  "__qualname__": machine.__name__ + "TestCase", "__doc__": machine.__doc__})
    # ``<Machine>TestCase``, the name to bind it to in its module: nose2's mp plugin finds
    # a test's class again by its module and name (a dotted name is not found).
    return type(machine.__name__ + "TestCase", (ProcessTestCase,), attrs)


class ProcessStateMachine(RuleBasedStateMachine):
    """A Hypothesis rule-based state machine whose rules yield events against real processes.

    Override :meth:`setup` to start the processes and make the sockets and links of a
    run (with the test case's resource API, offered here: :meth:`socket`,
    :meth:`start_process`, :meth:`fault_link`, :attr:`endpoint`...). Rules
    (``@rule()``), initialize rules and invariants (``@invariant()``, checked after
    each step) may be generator methods yielding events, e.g. ``yield ("restart",
    self.proc)``. Everything a run made is released after it. Class attributes named
    like the settings of :class:`~zmqprocesstest.ProcessTestCase` (``timeout``,
    ``run_timeout``, ``stop_timeouts``...) apply to every run's case and to
    :attr:`TestCase`.
    """

    #: The test case class each run uses: a subclass of your own adds events.
    case_class: Type[ProcessTestCase] = ProcessTestCase
    #: A :class:`~zmqprocesstest.ProcessTestCase` running this machine, for unittest,
    #: nose2 and pytest: ``MyMachineTestCase = MyMachine.TestCase`` (under that name, its
    #: own, so nose2's mp plugin finds it again in its workers). Its ``settings``
    #: (Hypothesis's) default to ``deadline=None``; its ``run_timeout`` bounds every run.
    TestCase = _TestCaseProperty()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _convert(cls)

    def __init__(self) -> None:
        super().__init__()
        #: This run's test case: its resources are this run's, released in :meth:`teardown`.
        self.case = _case_class(type(self))()
        self._reported: Optional[BaseException] = None
        self.case._resources()  # this run's timeline is the running one from now on
        _timeline.record("note", "run", f"{type(self).__qualname__}: setup")
        try:
            result = self.setup()
            if inspect.isgenerator(result):
                self.run_events(result)
        except BaseException as exc:
            self._report(exc)
            self.teardown()
            raise

    def setup(self) -> Optional[Generator[Any, Any, None]]:
        """Start the processes and make the sockets and links of one run (may yield events)."""

    def teardown(self) -> None:
        """Release what the run made: stop its processes, close its sockets and links."""
        case = self.case
        res, case._zpt = case._zpt, None
        if res is not None:
            res.close(f"Releasing the resources of a run of {type(self).__qualname__} failed:\n")

    @property
    def endpoint(self) -> str:
        """A fresh endpoint for this run (the same one on each access)."""
        return self.case.endpoint

    def run_events(self, gen: Generator[Any, Any, Any]) -> None:
        """Drive *gen* with the send-back loop on this run's case, bounded by ``run_timeout``
        (the case's one hard timeout: :meth:`ProcessTestCase.run_events`)."""
        self.case.run_events(gen)

    def _report(self, exc: BaseException) -> None:
        """Add this run's report to *exc* (once)."""
        if self._reported is exc:
            return
        self._reported = exc
        res = self.case._zpt
        if res is not None:
            add_note(exc, f"Run of {type(self).__qualname__} (steps marked **):\n"
                     + res.report(shown=getattr(exc, "process", None)))


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: ProcessStateMachine, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.case, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"This run's case's :meth:`~zmqprocesstest.ProcessTestCase.{name}`."
    return method


for _name in DELEGATED:
    setattr(ProcessStateMachine, _name, _delegate(_name))


@functools.lru_cache(maxsize=None)
def _case_class(machine: "Type[ProcessStateMachine]") -> type:
    attrs = {name: getattr(machine, name) for name in CASE_SETTINGS if hasattr(machine, name)}
    attrs.update({"__module__": machine.__module__, "__qualname__": machine.__qualname__, "__test__": False})
    return type(machine.__name__, (machine.case_class,), attrs)
