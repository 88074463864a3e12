"""The stop protocol: the ordered table of stop steps, and the walk through it.

After each test every process under test is stopped by walking :data:`STOP_STEPS` in
order: the polite stop event or message (if one was set), SIGINT, SIGTERM, SIGKILL, each
bounded by its timeout. A process may use fewer steps (``stop_steps``; a server whose
documented stop is SIGTERM skips SIGINT), but SIGKILL always ends the walk. The first
step that applies is the *polite* one; needing a later one is a failure of the test.

Adding a step means adding one entry to :data:`STOP_STEPS` (and, for a new kind of
action, a small :class:`StopStep` subclass beside it).
"""
from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from ._compat import blocking_call, thread_state
from ._config import scaled

if TYPE_CHECKING:
    from .processes import ManagedProcess

__unittest = True
__tracebackhide__ = True

__all__ = ["DEFAULT_STOP_STEPS", "DEFAULT_STOP_TIMEOUTS", "STOP_STEPS", "StopStep", "check_stop_steps",
           "describe_exit", "signal_name", "stop"]


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

    def describe(self, proc: "ManagedProcess") -> str:
        """The step for reports: the signal's name, or the stop event as set."""
        return self.name if self.sig is not None or proc.stop_action is None else proc.stop_action[1]

    def applies(self, proc: "ManagedProcess") -> bool:
        """Whether this step can be taken for *proc* (a stop event needs one set)."""
        return self.sig is not None or proc.stop_action is not None

    def clean_exit(self, code: int) -> bool:
        """Whether *code* is a clean exit after this step was the polite one."""
        return code == 0 or (self.sig is not None and code in (-self.sig, 128 + self.sig)) or \
            code in (-signal.SIGINT, 128 + signal.SIGINT)

    def run(self, proc: "ManagedProcess", timeout: float) -> Optional[int]:
        """Take the step; return the exit code, or ``None`` if it is still running after *timeout*."""
        if self.sig is None:
            assert proc.stop_action is not None
            outcome = proc.stop_action[0]()
            proc.stop_outcome = "sent" if outcome is None else f"returned {outcome!r}"
            code = proc.wait(timeout)
            if code is None and proc.stop_replies is not None:
                proc.stop_outcome += f"; what came back: {proc.stop_replies()}"
            return code
        proc.signal_quietly(self.sig)
        return proc.wait(timeout)


class _InterruptStep(StopStep):
    """SIGINT, sent to the main thread of each process of the group once the process can
    act on it (:meth:`ManagedProcess.wait_until_blocked`), and again only if it was
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

    def run(self, proc: "ManagedProcess", timeout: float) -> Optional[int]:
        deadline = time.monotonic() + timeout
        proc.wait_until_blocked()
        before = _settled_call(proc)  # where a missed SIGINT leaves it
        proc.signal_quietly(signal.SIGINT)
        last_resort: Optional[float] = time.monotonic() + timeout / 2
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            code = proc.wait(min(0.1, remaining))
            if code is not None or time.monotonic() >= deadline:
                return code
            if thread_state(proc.pid) != "S":
                continue  # busy: let it finish
            if before is None or blocking_call(proc.pid) == before:
                proc.signal_quietly(signal.SIGINT)  # missed: still in the call it was in
            elif last_resort is not None and time.monotonic() >= last_resort:
                # Blocked elsewhere this long: a clean-up that hangs, or a SIGINT missed on
                # the way between two calls. Once, before SIGTERM would be the next word.
                last_resort = None
                proc.signal_quietly(signal.SIGINT)


def _settled_call(proc: "ManagedProcess") -> Optional[str]:
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


def stop(proc: "ManagedProcess") -> List[str]:
    """Walk *proc*'s stop steps until it has exited; return the problems found.

    A process that exited on its own with an error, a polite stop that failed or was not
    enough, and an unclean exit after the polite step are problems; an empty list means
    it stopped politely and cleanly.
    """
    problems: List[str] = []
    if proc.frozen:
        proc.thaw()  # a frozen process cannot act on a stop message or SIGINT
    steps = [STOP_STEPS[name] for name in proc.stop_steps if STOP_STEPS[name].applies(proc)]
    polite = steps[0]
    code = proc.exitcode()
    if code is not None:
        proc.stopped_by = "itself"
        if code != 0 and proc.watched:
            problems.append(f"{proc.describe()} exited on its own with {describe_exit(code)}")
        return problems
    for step in steps:
        try:
            code = step.run(proc, scaled(proc.stop_timeouts.get(step.name, step.timeout)))
        except Exception as exc:  # the polite stop event failed
            proc.stop_outcome = f"failed: {type(exc).__name__}: {exc}"
            problems.append(f"the polite stop of {proc.name!r} failed: {exc}")
            continue
        if code is not None:
            proc.stopped_by = step.name
            break
    if code is None:
        problems.append(f"{proc.describe()} survived SIGKILL")
    elif proc.stopped_by != polite.name:
        problems.append(f"{proc.describe()} did not stop politely ({polite.describe(proc)}); it took {proc.stopped_by}")
    elif not polite.clean_exit(code):
        problems.append(f"{proc.describe()} exited with {describe_exit(code)} after {proc.stopped_by}")
    return problems
