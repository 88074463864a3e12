"""Configuration from the environment: variable names, flags, timeout scaling.

Every environment variable zmqprocesstest reads is named here, and every on/off flag is
read by :func:`env_flag`, so ``1``/``0`` mean the same thing for all of them.
"""
from __future__ import annotations

import os

__all__ = [
    "BODY_LOG_ENV",
    "CHECK_LEAKS_ENV",
    "DEFAULT_TIMEOUT",
    "FULL_TRACEBACK_ENV",
    "REPEAT_ENV",
    "SEED_ENV",
    "SHARD_ENV",
    "SHUFFLE_ENV",
    "STRESS_ENV",
    "TIMEOUT_SCALE_ENV",
    "UNTIL_FAILURE_ENV",
    "UPDATE_GOLDEN_ENV",
    "WAIT_SLICE",
    "env_flag",
    "scaled",
]

#: Multiplies every *default* timeout (never an explicit one), e.g. ``5`` on a slow CI machine.
TIMEOUT_SCALE_ENV = "ZMQPROCESSTEST_TIMEOUT_SCALE"
#: Flag: turn on the leak check for every test case.
CHECK_LEAKS_ENV = "ZMQPROCESSTEST_CHECK_LEAKS"
#: Flag: keep zmqprocesstest's own frames in failure tracebacks.
FULL_TRACEBACK_ENV = "ZMQPROCESSTEST_FULL_TRACEBACK"
#: Flag: rewrite golden files instead of failing on a mismatch.
UPDATE_GOLDEN_ENV = "ZMQPROCESSTEST_UPDATE_GOLDEN"
#: A file to which each test that ran its body to the end appends its id: a check, for
#: any runner, that no test "passes" without running (see ``.ci/runner_matrix.py``).
BODY_LOG_ENV = "ZMQPROCESSTEST_BODY_LOG"
#: Run each test class this many times (see :mod:`zmqprocesstest.runs`).
REPEAT_ENV = "ZMQPROCESSTEST_REPEAT"
#: Flag: stop the run at the first failure and print how to reproduce it.
UNTIL_FAILURE_ENV = "ZMQPROCESSTEST_UNTIL_FAILURE"
#: Flag: perturb timing (CPU burners, delays), reproducibly from the seed.
STRESS_ENV = "ZMQPROCESSTEST_STRESS"
#: The run's seed (an integer) for stress and shuffle; chosen and printed when unset.
SEED_ENV = "ZMQPROCESSTEST_SEED"
#: Flag: run the tests in an order made from the seed (pytest plugin and the CLI).
SHUFFLE_ENV = "ZMQPROCESSTEST_SHUFFLE"
#: ``I/N``: run shard I (1-based) of N (pytest plugin and the CLI); see also
#: ``TEST_SHARD_INDEX`` (0-based) and ``TEST_TOTAL_SHARDS``, as Bazel sets them.
SHARD_ENV = "ZMQPROCESSTEST_SHARD"

#: Default send/recv timeout of a test socket and default wait, in seconds, before scaling.
DEFAULT_TIMEOUT = 1.0
#: The longest single blocking call of a wait (a process's exit, a socket's poll), in
#: seconds. CPython runs a signal handler (the runner's Ctrl-C) only between blocking
#: calls: a signal that arrives just before one is acted on when it returns.
WAIT_SLICE = 0.1

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def env_flag(name: str) -> bool:
    """Whether the flag variable *name* is on: ``1``/``true``/``yes``/``on`` (any case).

    Unset, empty, ``0``, ``false``, ``no`` and ``off`` mean off.

    :raises ValueError: for any other value, naming the variable and the accepted values.
    """
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected {name} to be 1 or 0 (or true/false, yes/no, on/off), got {raw!r}")


def scaled(seconds: float) -> float:
    """Return *seconds* multiplied by :data:`TIMEOUT_SCALE_ENV` (default 1).

    :raises ValueError: if the variable is set but is not a positive number.
    """
    raw = os.environ.get(TIMEOUT_SCALE_ENV)
    if not raw:
        return seconds
    try:
        factor = float(raw)
    except ValueError:
        factor = -1.0
    if not factor > 0:
        raise ValueError(f"{TIMEOUT_SCALE_ENV} must be a positive number, got {raw!r}")
    return seconds * factor
