"""Test order and shards: shuffle from a seed, split a suite into disjoint shards.

Both work on any list of tests given two keys per test: its module and its class (the
group whose scope is set up once), so the unittest command line and the pytest plugin
share them. Groups stay together: a shuffled suite keeps each module's tests together
and each class's tests together inside it, and a shard holds whole classes, so class and
module scopes work as in an unshuffled, unsharded run.
"""
from __future__ import annotations

import json
import os
import random
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

__all__ = ["by_repeat", "confirm_sharding", "load_durations", "parse_shard", "shard", "shard_from_env", "shuffled"]

T = TypeVar("T")
Key = Callable[[T], str]


def _groups(items: Sequence[T], key: Key) -> Dict[str, List[T]]:
    groups: Dict[str, List[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def shuffled(items: Sequence[T], seed: int, module_of: Key, class_of: Key) -> List[T]:
    """*items* in an order made from *seed*: modules, the classes in each module and the
    tests in each class are shuffled, each group staying together.

    The order depends on the seed and the set of tests only, not on the order given.
    """
    rng = random.Random(f"{seed}/shuffle")
    result: List[T] = []
    modules = _groups(items, module_of)
    for module in _shuffle(rng, modules):
        classes = _groups(modules[module], class_of)
        for cls in _shuffle(rng, classes):
            tests = {str(i): t for i, t in enumerate(sorted(classes[cls], key=lambda t: _id(t)))}
            result.extend(tests[k] for k in _shuffle(rng, tests))
    return result


def _id(item: object) -> str:
    ident = getattr(item, "nodeid", None) or getattr(item, "id", None)
    return ident() if callable(ident) else str(ident)


def _shuffle(rng: random.Random, keys: Mapping[str, object]) -> List[str]:
    order = sorted(keys)
    rng.shuffle(order)
    return order


def by_repeat(items: Sequence[T], scope: str, repeat_of: Callable[[T], int], module_of: Key,
              class_of: Key, test_of: Key) -> List[T]:
    """*items* (every repeat of every test, in any order) in the order *scope* asks for.

    ``session``: round by round (every test's repeat 1, then every test's repeat 2...);
    ``module``: each module's tests round by round before the next module; ``class``:
    the same for each class; ``test``: each test's repeats in a row. Modules, classes
    and tests keep the order of their first appearance in *items*. *class_of* and
    *test_of* name a test the same in every repeat (without the repeat).
    """
    first: Dict[Tuple[str, str], int] = {}
    for at, item in enumerate(items):
        for key in (("m", module_of(item)), ("c", class_of(item)), ("t", test_of(item))):
            first.setdefault(key, at)

    def where(item: T) -> Tuple[int, ...]:
        test = first["t", test_of(item)]
        if scope == "test":
            return (test, repeat_of(item))
        if scope == "session":
            return (repeat_of(item), test)
        group = first[("m", module_of(item)) if scope == "module" else ("c", class_of(item))]
        return (group, repeat_of(item), test)

    return sorted(items, key=where)


def rounds(items: Sequence[T], scope: str, repeat_of: Callable[[T], int], module_of: Key) -> List[List[T]]:
    """*items*, ordered by :func:`by_repeat` for *scope*, cut where a round of a module
    (``module``) or of the whole selection (``session``) ends: the runner sets the
    module and class scopes up afresh for each round. Other scopes: one piece."""
    if scope not in ("module", "session"):
        return [list(items)]
    pieces: List[List[T]] = []
    last: Optional[Tuple[str, int]] = None
    for item in items:
        key = ("", repeat_of(item)) if scope == "session" else (module_of(item), repeat_of(item))
        if key != last:
            pieces.append([])
            last = key
        pieces[-1].append(item)
    return pieces


def parse_shard(text: str, what: str = "--shard") -> Tuple[int, int]:
    """``"I/N"`` (I from 1 to N) as (0-based index, N).

    :raises ValueError: naming *what* and what was expected, for anything else.
    """
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        index = total = 0
    if not 1 <= index <= total:
        raise ValueError(f"expected {what} I/N with 1 <= I <= N (e.g. 2/4), got {text!r}")
    return index - 1, total


def shard_from_env(env: Optional[Mapping[str, str]] = None) -> Optional[Tuple[int, int]]:
    """The shard (0-based index, N) that ``ZMQPROCESSTEST_SHARD`` (``I/N``) or Bazel's
    ``TEST_SHARD_INDEX`` (0-based) and ``TEST_TOTAL_SHARDS`` ask for; ``None`` if none.
    """
    variables: Mapping[str, str] = os.environ if env is None else env
    text = variables.get("ZMQPROCESSTEST_SHARD")
    if text:
        return parse_shard(text, "ZMQPROCESSTEST_SHARD")
    index, total = variables.get("TEST_SHARD_INDEX"), variables.get("TEST_TOTAL_SHARDS")
    if index is None and total is None:
        return None
    try:
        shard_ = parse_shard(f"{int(index or '')+1}/{int(total or '')}")
    except ValueError:
        raise ValueError(f"expected TEST_SHARD_INDEX (0 to N-1) and TEST_TOTAL_SHARDS (N) to be set together, "
                         f"got {index!r} and {total!r}") from None
    return shard_


def confirm_sharding() -> None:
    """Tell Bazel that this runner shards (it touches ``TEST_SHARD_STATUS_FILE``, if set)."""
    status = os.environ.get("TEST_SHARD_STATUS_FILE")
    if status:
        with open(status, "a"):
            pass


def load_durations(path: str) -> Dict[str, float]:
    """A durations file (JSON, test id -> seconds) as a dict.

    :raises ValueError: if it is not such a JSON object.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise ValueError(f"expected a JSON object of test id -> seconds in {path}, got {str(data)[:80]!r}")
    return {str(k): float(v) for k, v in data.items()}


def shard(items: Sequence[T], index: int, total: int, class_of: Key, id_of: Key,
          durations: Optional[Dict[str, float]] = None) -> List[T]:
    """The tests of shard *index* (0-based) of *total*, in the order given.

    Whole classes go to shards, biggest first, each to the shard with the least so far
    (test count, or recorded seconds from *durations*; a test not in it counts as the
    mean of those that are). The same tests give the same shards in every process, and
    the shards together hold every test once.
    """
    groups = _groups(items, class_of)
    known = [durations[id_of(t)] for t in items if durations and id_of(t) in durations]
    mean = sum(known) / len(known) if known else 1.0

    def weight(tests: List[T]) -> float:
        if not durations:
            return float(len(tests))
        return sum(durations.get(id_of(t), mean) for t in tests)

    loads = [0.0] * total
    chosen = set()
    for name in sorted(groups, key=lambda n: (-weight(groups[n]), n)):
        target = min(range(total), key=lambda i: (loads[i], i))
        loads[target] += weight(groups[name])
        if target == index:
            chosen.add(name)
    return [t for t in items if class_of(t) in chosen]
