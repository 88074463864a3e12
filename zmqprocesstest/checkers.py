"""Checkers: judge a whole :class:`~zmqprocesstest.history.History` against a contract.

Each checker returns a :class:`CheckResult`; ``result.assert_valid()`` (or
``self.assertTrue(result, result.explain())``) fails the test with the offending
operations, each with its index and time, so it can be found in the test's timeline.

* :func:`request_reply`: every request is answered at most once, and there is no reply
  without a request.
* :func:`delivery`: at-most-once and/or at-least-once delivery through a pipeline.
* :func:`linearizable`: a single register or counter (:class:`Register`,
  :class:`Counter`, or a :class:`Model` of your own) behaves as if each operation took
  effect at one instant between its invocation and its completion. This is the
  Wing-Gong search with Lowe's memo of visited (linearized set, state) pairs; its cost
  grows exponentially with the number of operations *in flight at once*, and only
  linearly with the history's length. Measured by ``benchmarks/checkers.py`` (2 CPUs,
  medians): 300 operations with up to 10 in flight take about 2 ms when linearizable
  and about 130 ms when not (every order must be ruled out); 16 in flight, about 4 s.
  Past *max_states* visited states the answer is "undecided" (``valid`` is ``None``),
  never a wrong one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Set, Tuple

from .history import FAIL, INFO, INVOKE, OK, History, Op

__unittest = True

__all__ = ["UNKNOWN", "CheckFailed", "CheckResult", "Counter", "Model", "Register", "delivery", "linearizable",
           "ops_in_flight", "request_reply"]

#: The result of an operation whose outcome is unknown (``info``, or no completion).
UNKNOWN = object()


class CheckFailed(AssertionError):
    """A history broke the contract a checker checks (a test failure)."""


@dataclass
class CheckResult:
    """What a checker found: ``valid`` is ``True``, ``False``, or ``None`` (undecided)."""

    checker: str
    valid: Optional[bool]
    #: One line per problem found.
    problems: List[str] = field(default_factory=list)
    #: The operations the problems are about, in history order.
    ops: List[Op] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.valid is True

    def explain(self) -> str:
        """The verdict, each problem, and the offending operations."""
        verdict = {True: "holds", False: "does not hold", None: "is undecided"}[self.valid]
        lines = [f"{self.checker}: the contract {verdict}"] + [f"  {problem}" for problem in self.problems]
        if self.ops:
            lines.append("  operations involved (index, time since the history began):")
            lines.extend("    " + op.describe() for op in sorted(set(self.ops), key=lambda op: op.index))
        return "\n".join(lines)

    def assert_valid(self) -> None:
        """Raise :class:`CheckFailed` with :meth:`explain` unless the contract holds."""
        __tracebackhide__ = True  # read by pytest: hide this frame
        if self.valid is not True:
            raise CheckFailed(self.explain())


def _check(name: str, problems: List[str], ops: List[Op]) -> CheckResult:
    return CheckResult(name, not problems, problems, ops)


# -- request/reply -------------------------------------------------------------------------
def request_reply(history: History, f: Optional[str] = None) -> CheckResult:
    """Every request is answered at most once; no reply comes without a request.

    Requests are invocations (of *f*, or of any operation), replies their ``ok``
    completions. A reply recorded with no pending request (see
    :meth:`History.record`) is a duplicate if an earlier reply had the same process and
    key, else a reply nobody asked for.
    """
    problems: List[str] = []
    ops: List[Op] = []
    answered: Dict[Tuple[Hashable, Hashable], Op] = {}
    for op in history.ops:
        if op.type != OK or (f is not None and op.f != f):
            continue
        ident = (op.process, op.key)
        if op.invoke_index is not None:
            answered[ident] = op
            continue
        earlier = answered.get(ident)
        if earlier is not None and earlier.invoke_index is not None:
            problems.append(f"request #{earlier.invoke_index} was answered twice: #{earlier.index} and #{op.index}")
            ops += [history.ops[earlier.invoke_index], earlier, op]
        else:
            problems.append(f"reply #{op.index} answers no request of {op.process!r}")
            ops.append(op)
    return _check("request/reply (each request answered at most once, no reply without a request)", problems, ops)


# -- delivery ---------------------------------------------------------------------------------
def delivery(history: History, at_most_once: bool = True, at_least_once: bool = False, send: str = "send",
             recv: str = "recv") -> CheckResult:
    """Messages through a pipeline, identified by value, against a delivery guarantee.

    Sends are invocations of *send* (the value is the message's id) completed ``ok``
    (sent), ``fail`` (not sent) or ``info``/nothing (unknown); receives are ``ok``
    operations of *recv* whose value is the id received (an invocation is optional).

    * *at_most_once*: no message is received twice, and none that was never sent.
    * *at_least_once*: every message whose send completed ``ok`` is received.
    """
    sends = [(invoke, done) for invoke, done in history.pairs() if invoke.f == send]
    attempted = {invoke.value: invoke for invoke, done in sends if done is None or done.type != FAIL}
    confirmed = {invoke.value: invoke for invoke, done in sends if done is not None and done.type == OK}
    received: Dict[Any, List[Op]] = {}
    for op in history.ops:
        if op.type == OK and op.f == recv:
            received.setdefault(op.value, []).append(op)
    problems: List[str] = []
    ops: List[Op] = []
    if at_most_once:
        for value, got in received.items():
            if len(got) > 1:
                problems.append(f"message {value!r} was received {len(got)} times: "
                                + ", ".join(f"#{op.index}" for op in got))
                ops += got
            if value not in attempted:
                problems.append(f"message {value!r} was received (#{got[0].index}) but never sent")
                ops.append(got[0])
    if at_least_once:
        for value, invoke in confirmed.items():
            if value not in received:
                problems.append(f"message {value!r} was sent (#{invoke.index}, confirmed) but never received")
                ops.append(invoke)
    wanted = " and ".join(name for name, on in (("at most once", at_most_once), ("at least once", at_least_once)) if on)
    return _check(f"delivery ({wanted or 'nothing asked'})", problems, ops)


# -- linearizability --------------------------------------------------------------------------
class Model:
    """A sequential specification: the state before any operation, and one step.

    :meth:`step` takes the state, the operation's name *f*, its argument (the
    invocation's value) and its result (the ``ok`` completion's value, or
    :data:`UNKNOWN`), and returns ``(legal, new_state)``. States must be hashable.
    """

    initial: Hashable = None

    def step(self, state: Hashable, f: str, arg: Any, result: Any) -> Tuple[bool, Hashable]:
        raise NotImplementedError


class Register(Model):
    """A single register: ``write`` (argument: the value), ``read`` (result: the value),
    ``cas`` (argument: ``(expected, new)``; legal only if the register held *expected*)."""

    def __init__(self, initial: Hashable = None) -> None:
        self.initial = initial

    def step(self, state: Hashable, f: str, arg: Any, result: Any) -> Tuple[bool, Hashable]:
        if f == "write":
            return True, arg
        if f == "read":
            return result is UNKNOWN or result == state, state
        if f == "cas":
            expected, new = arg
            return (True, new) if state == expected else (False, state)
        raise ValueError(f"expected a register operation (read, write, cas), got {f!r}")


class Counter(Model):
    """A counter: ``incr``/``add`` (argument: the amount, default 1; result ignored),
    ``read`` (result: the count)."""

    def __init__(self, initial: int = 0) -> None:
        self.initial = initial

    def step(self, state: Hashable, f: str, arg: Any, result: Any) -> Tuple[bool, Hashable]:
        if f in ("incr", "add"):
            return True, state + (1 if arg is None else arg)  # type: ignore[operator]
        if f == "read":
            return result is UNKNOWN or result == state, state
        raise ValueError(f"expected a counter operation (incr, add, read), got {f!r}")


@dataclass
class _Call:
    invoke: Op
    done: Optional[Op]
    start: int  # history index of the invocation
    end: float  # history index of the completion (inf: unknown outcome)
    result: Any


def linearizable(history: History, model: Model, max_states: int = 200_000) -> CheckResult:
    """Whether the history of one object is linearizable with respect to *model*.

    ``fail`` operations never happened and are left out; ``info`` operations and those
    with no completion may have taken effect at any time after their invocation, or not
    at all. At most *max_states* (linearized set, state) pairs are visited: past that
    the result is undecided (``valid`` is ``None``).
    """
    name = f"linearizability ({type(model).__name__})"
    calls: List[_Call] = []
    for invoke, done in history.pairs():
        if done is not None and done.type == FAIL:
            continue
        if done is not None and done.type == OK:
            calls.append(_Call(invoke, done, invoke.index, done.index, done.value))
        else:
            calls.append(_Call(invoke, done, invoke.index, float("inf"), UNKNOWN))
    required = sum(1 << i for i, call in enumerate(calls) if call.done is not None and call.done.type == OK)
    seen: Set[Tuple[int, Hashable]] = set()
    best: Tuple[int, int, Hashable] = (-1, 0, model.initial)  # (ops linearized, mask, state) deepest reached
    stack: List[Tuple[int, Hashable]] = [(0, model.initial)]
    while stack:
        mask, state = stack.pop()
        if (mask, state) in seen:
            continue
        seen.add((mask, state))
        if len(seen) > max_states:
            return CheckResult(name, None, [f"undecided: more than {max_states} states visited "
                                            "(too many operations in flight at once; raise max_states)"])
        if mask & required == required:
            return CheckResult(name, True)
        depth = bin(mask).count("1")
        if depth > best[0]:
            best = (depth, mask, state)
        # The next operation to take effect must have been invoked before every
        # remaining operation's completion: scan, in invocation order from the first
        # one not taken yet, until an invocation comes after the earliest completion.
        i = (~mask & (mask + 1)).bit_length() - 1
        horizon = float("inf")
        candidates = []
        while i < len(calls) and calls[i].start < horizon:
            if not mask >> i & 1:
                candidates.append(i)
                horizon = min(horizon, calls[i].end)
            i += 1
        # Pushed latest-completing first, so the earliest-completing is tried first.
        for i in sorted((c for c in candidates if calls[c].start < horizon), key=lambda c: -calls[c].end):
            call = calls[i]
            legal, after = model.step(state, call.invoke.f, call.invoke.value, call.result)
            if legal:
                stack.append((mask | 1 << i, after))
    _, mask, state = best
    remaining = [call for i, call in enumerate(calls) if not mask >> i & 1]
    stuck = min((call for call in remaining if call.done is not None), key=lambda call: call.end)
    window = [call for call in remaining if call.start <= stuck.end]
    problems = [f"no order of the operations explains {stuck.invoke.f} {stuck.invoke.value!r} -> {stuck.result!r} "
                f"by {stuck.invoke.process!r} (#{stuck.invoke.index}..#{stuck.end}); "
                f"the longest order found takes {bin(mask).count('1')} operations to state {state!r}, "
                f"and none of the {len(window)} operations in flight then can come next"]
    ops = [op for call in window for op in (call.invoke, call.done) if op is not None]
    return CheckResult(name, False, problems, ops)


def ops_in_flight(history: History) -> int:
    """The most operations pending at once in *history* (what the search's cost grows with)."""
    most = current = 0
    for op in history.ops:
        completes = op.type in (OK, FAIL, INFO) and op.invoke_index is not None
        current += 1 if op.type == INVOKE else (-1 if completes else 0)
        most = max(most, current)
    return most

