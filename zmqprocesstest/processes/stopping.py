"""The stop protocol: how a process stops (:class:`StopPlan`), the walk through its steps,
and how the stop went (:class:`StopResult`).

After each test every process under test is stopped by walking :data:`STOP_STEPS` in
order: the polite stop event or message (if one was set), SIGINT, SIGTERM, SIGKILL, each
bounded by its timeout. A process may use fewer steps (``stop_steps``; a server whose
documented stop is SIGTERM skips SIGINT), but SIGKILL always ends the walk. The first
step that applies is the *polite* one; needing a later one is a failure of the test.

What a stop will do is one value, a :class:`StopPlan`, validated when it is made and
attached to the process by its owner (the test case); what it did is another, a
:class:`StopResult`, made by :func:`stop` alone. The walk needs only the few operations of
:class:`Stoppable` from a process, so this module does not depend on
:mod:`zmqprocesstest.processes`.

Adding a step means adding one entry to :data:`STOP_STEPS` (and, for a new kind of
action, a small :class:`StopStep` subclass beside it).
"""
from __future__ import annotations

import dataclasses
import math
import signal
import time
import types
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

import zmq

from ._os import blocking_call, thread_state
from .._config import scaled
from ..report.timeline import record, short_frames

__unittest = True
__tracebackhide__ = True

__all__ = ["DEFAULT_PLAN", "DEFAULT_STOP_STEPS", "DEFAULT_STOP_TIMEOUTS", "STOP_STEPS", "PoliteStop", "StopPlan",
           "StopResult", "StopStep", "Stoppable", "check_stop_steps", "check_stop_timeouts", "describe_exit",
           "plan_for", "replies", "signal_name", "stop"]

_SEND_ONLY = frozenset({int(zmq.PUB), int(zmq.PUSH)})  # nothing comes back on these


class Stoppable(Protocol):
    """What the stop walk needs of a process (:class:`~zmqprocesstest.ManagedProcess` has it)."""

    name: str
    pid: int
    frozen: bool
    watched: bool

    def exitcode(self) -> Optional[int]: ...
    def wait(self, timeout: float) -> Optional[int]: ...
    def signal_quietly(self, sig: int) -> None: ...
    def wait_until_blocked(self, timeout: float = ...) -> None: ...
    def thaw(self) -> None: ...
    def describe(self) -> str: ...


def signal_name(sig: int) -> str:
    """``'SIGINT'`` for ``signal.SIGINT`` (``'signal 64'`` for an unnamed one)."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def describe_exit(code: Optional[int]) -> str:
    """``'exit code 3'``, ``'killed by SIGKILL'`` or ``'still running'``."""
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal_name(-code)}"
    return f"exit code {code}"


class StopStep:
    """One step of the stop protocol: act on the process, then wait (bounded) for its exit.

    :param name: the step's name, as used in ``stop_timeouts``, ``stop_steps`` and reports.
    :param timeout: the default bound in seconds (before scaling).
    :param sig: the signal it sends, if it is a signal step.
    """

    def __init__(self, name: str, timeout: float, sig: Optional[int] = None) -> None:
        self.name = name
        self.timeout = timeout
        self.sig = sig

    def describe(self, plan: "StopPlan") -> str:
        """The step for reports: the signal's name, or the polite stop as set."""
        return self.name if self.sig is not None or plan.polite is None else plan.polite.description

    def applies(self, plan: "StopPlan") -> bool:
        """Whether this step can be taken under *plan* (a stop event needs one set)."""
        return self.sig is not None or plan.polite is not None

    def clean_exit(self, code: int) -> bool:
        """Whether *code* is a clean exit after this step was the polite one."""
        return code == 0 or (self.sig is not None and code in (-self.sig, 128 + self.sig)) or \
            code in (-signal.SIGINT, 128 + signal.SIGINT)

    def run(self, proc: Stoppable, plan: "StopPlan", timeout: float) -> Tuple[Optional[int], Optional[str]]:
        """Take the step; return the exit code (``None``: still running after *timeout*)
        and, for the polite stop, its outcome for reports."""
        if self.sig is None:
            assert plan.polite is not None
            try:
                outcome = plan.polite.action()
            except Exception as exc:
                raise _PoliteFailed(exc) from exc
            said = "sent" if outcome is None else f"returned {outcome!r}"
            code = proc.wait(timeout)
            if code is None and plan.polite.replies is not None:
                said += f"; what came back: {plan.polite.replies()}"
            return code, said
        proc.signal_quietly(self.sig)
        return proc.wait(timeout), None


class _PoliteFailed(Exception):
    """The polite stop's action raised (its exception is the argument): a problem of the
    stop, which goes on with the next step. Whatever else a step raises (a process whose
    exit status another reaper took) ends the walk."""


class _InterruptStep(StopStep):
    """SIGINT, sent to the main thread of each process of the group once the process can
    act on it (:meth:`Stoppable.wait_until_blocked`), and again only if it was
    plainly missed.

    Sent to the main thread, it is never lost on a libzmq thread. One that arrives in
    the instant after the main thread last checked for signals and before it blocks in
    ``recv`` is still lost (about 2 in 100 stops of a process that has just started):
    the process then sits in the very blocking call it had settled in when SIGINT was
    sent (the same system call, arguments and stack pointer in ``/proc/PID/syscall``).
    Only then is SIGINT sent again, every 100 ms. A process that took it and is blocked
    in its clean-up (joining a worker, terminating its context) is in another call and
    is left to finish, but for one last SIGINT at half the step's time: a SIGINT missed
    on the way from one blocking call to another looks the same from outside. Where
    that file cannot be read, or the process did not settle in one call before SIGINT
    was sent, SIGINT is sent again while the process is blocked at all.
    """

    def run(self, proc: Stoppable, plan: "StopPlan", timeout: float) -> Tuple[Optional[int], Optional[str]]:
        deadline = time.monotonic() + timeout
        proc.wait_until_blocked()
        before = _settled_call(proc)  # where a missed SIGINT leaves it
        proc.signal_quietly(signal.SIGINT)
        last_resort: Optional[float] = time.monotonic() + timeout / 2
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            code = proc.wait(min(0.1, remaining))
            if code is not None or time.monotonic() >= deadline:
                return code, None
            if thread_state(proc.pid) != "S":
                continue  # busy: let it finish
            if before is None or blocking_call(proc.pid) == before:
                proc.signal_quietly(signal.SIGINT)  # missed: still in the call it was in
            elif last_resort is not None and time.monotonic() >= last_resort:
                # Blocked elsewhere this long: a clean-up that hangs, or a SIGINT missed on
                # the way between two calls. Once, before SIGTERM would be the next word.
                last_resort = None
                proc.signal_quietly(signal.SIGINT)


def _settled_call(proc: Stoppable) -> Optional[str]:
    """The blocking call the main thread of *proc* stays in (the same on two looks, a
    moment apart), or ``None`` if it does not settle: a process blocked only briefly
    (a ``bind`` waiting on libzmq's I/O thread, say) is on its way somewhere else."""
    for _attempt in range(5):
        first = blocking_call(proc.pid)
        if first in (None, "running"):
            return None
        if proc.wait(0.0005) is not None:
            return None
        if blocking_call(proc.pid) == first:
            return first
    return None


#: The stop protocol, in escalation order. A process takes the steps named in its
#: ``stop_steps`` (default :data:`DEFAULT_STOP_STEPS`) in this order; ``"message"`` is
#: taken only if a stop event or message was set; SIGKILL always ends the list.
STOP_STEPS: Dict[str, StopStep] = {step.name: step for step in (
    StopStep("message", 2.0),  # the stop message or stop event, if one was set
    _InterruptStep("SIGINT", 2.0, signal.SIGINT),
    StopStep("SIGTERM", 2.0, signal.SIGTERM),
    StopStep("SIGKILL", 5.0, signal.SIGKILL),
)}
#: The steps a process takes unless told otherwise.
DEFAULT_STOP_STEPS: Tuple[str, ...] = tuple(STOP_STEPS)
#: Bounds in seconds (before scaling) for each stop step.
DEFAULT_STOP_TIMEOUTS: Dict[str, float] = {name: step.timeout for name, step in STOP_STEPS.items()}


def check_stop_steps(steps: Sequence[str]) -> Tuple[str, ...]:
    """Validate a choice of stop steps (in table order); SIGKILL is added at the end if missing."""
    names = list(steps) if not isinstance(steps, str) else [steps]
    order = [name for name in STOP_STEPS if name in names]
    if isinstance(steps, str) or names != order:
        raise ValueError(f"expected stop steps from {list(STOP_STEPS)}, in that order, got {steps!r}")
    if order[-1:] != ["SIGKILL"]:
        order.append("SIGKILL")
    return tuple(order)


def check_stop_timeouts(timeouts: Mapping[str, float]) -> Dict[str, float]:
    """Validate bounds for stop steps (seconds >= 0, before scaling); return them with the
    defaults filled in. A key that names no step is an error naming the valid keys."""
    if not isinstance(timeouts, Mapping):
        raise TypeError(f"expected stop_timeouts to be a dict of step name -> seconds, got {timeouts!r}")
    unknown = [key for key in timeouts if key not in STOP_STEPS]
    if unknown:
        raise ValueError(f"expected stop_timeouts keys from {list(STOP_STEPS)}, got {unknown[0]!r} "
                         f"in {dict(timeouts)!r}")
    for key, value in timeouts.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise ValueError(f"expected stop_timeouts[{key!r}] to be a finite number of seconds >= 0, got {value!r}")
    return {**DEFAULT_STOP_TIMEOUTS, **timeouts}


def replies(sock: Any, most: int = 5) -> str:
    """What is waiting on test socket *sock* now (at most *most* messages, read without
    waiting): what came back after a stop message that did not stop the process."""
    got: List[str] = []
    while len(got) < most and not sock.closed and sock.socket_type not in _SEND_ONLY and sock.poll(0):
        got.append(short_frames(sock.recv_multipart(timeout=0)))
    return ", ".join(got) if got else "nothing"


@dataclasses.dataclass(frozen=True)
class PoliteStop:
    """The polite stop step of a process: a stop message or stop event (``set_stop_event``)."""

    #: Takes the step (sends the message, handles the event); what it returns is reported.
    action: Callable[[], Any]
    #: The step for reports: ``"stop message [...] on <socket>"``.
    description: str
    #: Reads what came back after a polite stop that did not stop the process, for reports.
    replies: Optional[Callable[[], str]] = None


@dataclasses.dataclass(frozen=True)
class StopPlan:
    """How a process stops: its steps, the bound of each, and its polite stop (if any).

    Validated when it is made (a step or a ``timeouts`` key that is not in
    :data:`STOP_STEPS` is a :exc:`ValueError` naming the valid ones); the owner of a
    process (the test case) attaches it, and ``restart`` carries it to the new process.
    Change one with :meth:`with_steps` and :meth:`with_polite`.
    """

    #: The steps, in table order, ending with SIGKILL.
    steps: Tuple[str, ...] = DEFAULT_STOP_STEPS
    #: The bound in seconds (before scaling) of every step.
    timeouts: Mapping[str, float] = dataclasses.field(default_factory=lambda: DEFAULT_STOP_TIMEOUTS)
    #: The stop message or stop event; without one the walk starts at the first signal.
    polite: Optional[PoliteStop] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", check_stop_steps(self.steps))
        object.__setattr__(self, "timeouts", types.MappingProxyType(check_stop_timeouts(self.timeouts)))
        if self.polite is not None and not isinstance(self.polite, PoliteStop):
            raise TypeError(f"expected polite to be a PoliteStop or None, got {self.polite!r}")

    def with_steps(self, steps: Sequence[str]) -> "StopPlan":
        """This plan with other steps (validated)."""
        return self._but(steps=check_stop_steps(steps))

    def with_polite(self, polite: Optional[PoliteStop]) -> "StopPlan":
        """This plan with another polite stop (it replaces the one set before)."""
        if polite is not None and not isinstance(polite, PoliteStop):
            raise TypeError(f"expected polite to be a PoliteStop or None, got {polite!r}")
        return self._but(polite=polite)

    def _but(self, **checked: Any) -> "StopPlan":
        """A copy with *checked* fields changed: what was validated is not checked again."""
        plan = object.__new__(type(self))
        plan.__dict__.update(self.__dict__, **checked)
        return plan

    def walk(self) -> List[StopStep]:
        """The steps that apply, in order: the first is the polite one."""
        return [STOP_STEPS[name] for name in self.steps if STOP_STEPS[name].applies(self)]


@dataclasses.dataclass(frozen=True)
class StopResult:
    """How a stop went, made once by :func:`stop` (like pytest's ``CallInfo``)."""

    #: The step that ended the process (``"message"``, ``"SIGINT"``..., ``"itself"`` if it had
    #: exited before the stop), or ``None`` if it survived SIGKILL.
    stopped_by: Optional[str]
    #: Its exit code (negative: the signal that killed it), ``None`` if still running.
    exitcode: Optional[int]
    #: What came of the polite stop (``"sent"``, ``"returned ..."``, ``"failed: ..."``, with
    #: what came back on its socket if it did not work), ``None`` if it was not taken.
    polite_outcome: Optional[str] = None
    #: The problems found (empty: it stopped politely and cleanly).
    problems: Tuple[str, ...] = ()
    #: Each step taken, with the seconds it took, in order.
    durations: Tuple[Tuple[str, float], ...] = ()

    @property
    def ok(self) -> bool:
        """Whether it stopped politely and cleanly."""
        return not self.problems

    @property
    def duration(self) -> float:
        """Seconds the whole walk took."""
        return sum(seconds for _step, seconds in self.durations)

    def adding(self, *problems: str) -> "StopResult":
        """This result with more problems (found after the walk: its group's leftovers)."""
        return dataclasses.replace(self, problems=self.problems + problems)


#: The plan of a process nobody gave one: every step, default bounds, no polite stop.
DEFAULT_PLAN = StopPlan()

_PLANS: Dict[Any, StopPlan] = {}
_MAX_PLANS = 64  # distinct (stop_steps, stop_timeouts) values kept; a suite has a handful


def plan_for(steps: Sequence[str], timeouts: Mapping[str, float]) -> StopPlan:
    """The :class:`StopPlan` of *steps* and *timeouts* (a test case's ``stop_steps`` and
    ``stop_timeouts``), validated the first time these values come and kept: every
    process start asks for one. Values that cannot be kept (unhashable) are validated
    each time; invalid ones raise as :class:`StopPlan` does."""
    try:
        key = (steps if isinstance(steps, (str, tuple)) else tuple(steps),
               tuple((name, type(value), value) for name, value in timeouts.items()))
        plan = _PLANS.get(key)
    except (TypeError, AttributeError):  # unhashable, or not a mapping: StopPlan says what is wrong
        return StopPlan(check_stop_steps(steps), timeouts)
    if plan is None:
        plan = StopPlan(check_stop_steps(steps), timeouts)
        if len(_PLANS) < _MAX_PLANS:
            _PLANS[key] = plan
    return plan


def stop(proc: Stoppable, plan: StopPlan) -> StopResult:
    """Walk *plan*'s steps on *proc* until it has exited; return how it went.

    A process that exited on its own with an error, a polite stop that failed or was not
    enough, and an unclean exit after the polite step are problems; none means it
    stopped politely and cleanly.
    """
    if proc.frozen:
        proc.thaw()  # a frozen process cannot act on a stop message or SIGINT
    code = proc.exitcode()
    if code is not None:
        found = (f"{proc.describe()} exited on its own with {describe_exit(code)}",) if code and proc.watched else ()
        return StopResult("itself", code, problems=found)
    steps = plan.walk()
    polite = steps[0]
    problems: List[str] = []
    outcome: Optional[str] = None
    durations: List[Tuple[str, float]] = []
    stopped_by: Optional[str] = None
    for step in steps:
        record("stop", proc.name, step.describe(plan))
        began = time.monotonic()
        try:
            code, said = step.run(proc, plan, scaled(plan.timeouts[step.name]))
        except _PoliteFailed as failed:  # the polite stop event failed
            exc = failed.args[0]
            code, said = None, f"failed: {type(exc).__name__}: {exc}"
            problems.append(f"the polite stop of {proc.name!r} failed: {exc}")
        durations.append((step.name, time.monotonic() - began))
        outcome = said if said is not None else outcome
        if code is not None:
            stopped_by = step.name
            break
    if code is None:
        problems.append(f"{proc.describe()} survived SIGKILL")
    elif stopped_by != polite.name:
        problems.append(f"{proc.describe()} did not stop politely ({polite.describe(plan)}); it took {stopped_by}")
    elif not polite.clean_exit(code):
        problems.append(f"{proc.describe()} exited with {describe_exit(code)} after {stopped_by}")
    return StopResult(stopped_by, code, outcome, tuple(problems), tuple(durations))
