"""Configuration from the environment: variable names, flags, timeout scaling, the bounds.

Every environment variable zmqprocesstest reads is named here, and every on/off flag is
read by :func:`env_flag`, so ``1``/``0`` mean the same thing for all of them. Every bound
of the library is named here too, and :exc:`Timeout`, the base of the exceptions raised
when one is passed: the ground floor, which every module that raises one can import.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any

__all__ = [
    "ASYNC_CANCEL_WAIT",
    "ASYNC_DEATH_TURNS",
    "BODY_LOG_ENV",
    "CHECK_LEAKS_ENV",
    "CONTEXT_TERM_TIMEOUT",
    "COROUTINE_ORIGIN_DEPTH",
    "DEATH_BUSY",
    "DEATH_LOOK",
    "DEATH_RETRY",
    "DEFAULT_RUN_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "EXIT_DRAIN",
    "EXIT_GRACE",
    "FULL_TRACEBACK_ENV",
    "GROUP_GRACE",
    "GROUP_KILL_WAIT",
    "GUARDIAN_EXIT_TIMEOUT",
    "GUARDIAN_WRITE_TIMEOUT",
    "KILL_NOW_WAIT",
    "KILL_WAIT",
    "LAST_RESORT_ENV",
    "LINK_WAIT",
    "OUTPUT_CLOSE",
    "OUTPUT_SETTLE",
    "PROGRAM_GROUP_WAIT",
    "PROGRAM_TIMEOUT",
    "PYTEST_RUN_OPTIONS",
    "RECORD_BUFFER_BYTES",
    "REPEAT_ENV",
    "REPEAT_SCOPES",
    "REPEAT_SCOPE_ENV",
    "REPORT_ALL_ENV",
    "REPORT_DIR_ENV",
    "REPORT_SETTLE",
    "RUNS_MODULE",
    "RUN_ENVS",
    "SEED_ENV",
    "SESSION_TIMEOUT",
    "SETTLE_BEFORE_SIGNAL",
    "SHARD_ENV",
    "SHUFFLE_ENV",
    "STOP_SEND_TIMEOUT",
    "STRESS_ENV",
    "STRESS_HOLD_BOUND",
    "STRESS_MAX_PAUSE",
    "STRESS_MAX_START_DELAY",
    "STRESS_PAUSE_GAP",
    "STRESS_START_GAP",
    "TAP_KEEP_BYTES",
    "THREAD_END_GRACE",
    "TIMEOUT_SCALE_ENV",
    "Timeout",
    "UNTIL_FAILURE_ENV",
    "UNTIL_INTERVAL",
    "UPDATE_GOLDEN_ENV",
    "WAIT_SLICE",
    "check_seconds",
    "default_timeout",
    "env_flag",
    "run_limit",
    "runs_requested",
    "scaled",
]


class Timeout(AssertionError):
    """Something the test waited for did not happen within its bound.

    The base of the library's timeouts: :class:`~zmqprocesstest.SocketTimeout`,
    :class:`~zmqprocesstest.ConnectionTimeout`, :class:`~zmqprocesstest.MockTimeout`,
    :class:`~zmqprocesstest.ProgramTimeout` and :class:`~zmqprocesstest.TestTimeout`,
    so ``except zmqprocesstest.Timeout`` catches any of them. An :exc:`AssertionError`,
    as each of them is: the process under test did not do in time what it should, a
    *failure* of the test, not an error.
    """


#: Multiplies every *default* timeout (never an explicit one), e.g. ``5`` on a slow CI machine.
TIMEOUT_SCALE_ENV = "ZMQPROCESSTEST_TIMEOUT_SCALE"
#: Flag: turn on the leak check for every test case.
CHECK_LEAKS_ENV = "ZMQPROCESSTEST_CHECK_LEAKS"
#: Flag: keep zmqprocesstest's own frames in failure tracebacks.
FULL_TRACEBACK_ENV = "ZMQPROCESSTEST_FULL_TRACEBACK"
#: Seconds past a test's ``run_timeout`` after which a test that still runs (it caught
#: every exception of the hard timeout, or blocked its signals) ends the whole run with
#: a dump of every thread's stack (default 10).
LAST_RESORT_ENV = "ZMQPROCESSTEST_LAST_RESORT"
#: Flag: rewrite golden files instead of failing on a mismatch.
UPDATE_GOLDEN_ENV = "ZMQPROCESSTEST_UPDATE_GOLDEN"
#: A file to which each test that ran its body to the end appends its id: a check, for
#: any runner, that no test "passes" without running (see ``.ci/runner_matrix.py``).
BODY_LOG_ENV = "ZMQPROCESSTEST_BODY_LOG"
#: A directory for the HTML report: a page per failing test, and an index (off if unset).
REPORT_DIR_ENV = "ZMQPROCESSTEST_REPORT_DIR"
#: Flag: with a report directory, write a page for every test, passing ones too.
REPORT_ALL_ENV = "ZMQPROCESSTEST_REPORT_ALL"
#: Run each test class this many times (see :mod:`zmqprocesstest.runs`).
REPEAT_ENV = "ZMQPROCESSTEST_REPEAT"
#: What one repeat spans (:data:`REPEAT_SCOPES`): the whole selection round by round
#: (``session``, the default with until-failure), each module, class or test N times in a row.
REPEAT_SCOPE_ENV = "ZMQPROCESSTEST_REPEAT_SCOPE"
#: The values of ``--repeat-scope`` (pytest-repeat's, with ``test`` for its ``function``).
REPEAT_SCOPES = ("test", "class", "module", "session")
#: Flag: stop the run at the first failure and print how to reproduce it.
UNTIL_FAILURE_ENV = "ZMQPROCESSTEST_UNTIL_FAILURE"
#: Flag: perturb timing (CPU burners, delays), reproducibly from the seed.
STRESS_ENV = "ZMQPROCESSTEST_STRESS"
#: Stress: the longest delay before a process under test runs its own code, in seconds
#: (drawn half of the time, small ones more likely): longer than a fork and an
#: interpreter's first steps, so two processes started together swap places now and then.
STRESS_MAX_START_DELAY = 0.02
#: Stress: seconds between two held processes let go one after the other (in the order
#: made from the seed), so the first is ahead of the second by about a fork.
STRESS_START_GAP = 0.003
#: Stress: the longest a start is held waiting for the test's next event after the last
#: start, in seconds: a test that waits in a way of its own (not an event or a test
#: socket) is not stalled for long, and starts slowed down by the CPU burners (tens of
#: milliseconds on a small machine) are still held together.
STRESS_HOLD_BOUND = 0.1
#: Stress: the longest pause (SIGSTOP ... SIGCONT) of a process under test's group, in
#: seconds: a scheduling hiccup, short beside any test's timeouts.
STRESS_MAX_PAUSE = 0.02
#: Stress: the longest time between two chances of a pause, in seconds (each chance
#: pauses one running process under test half of the time).
STRESS_PAUSE_GAP = 0.05
#: The run's seed (an integer) for stress and shuffle; chosen and printed when unset.
SEED_ENV = "ZMQPROCESSTEST_SEED"
#: Flag: run the tests in an order made from the seed (pytest plugin and the CLI).
SHUFFLE_ENV = "ZMQPROCESSTEST_SHUFFLE"
#: ``I/N``: run shard I (1-based) of N (pytest plugin and the CLI); see also
#: ``TEST_SHARD_INDEX`` (0-based) and ``TEST_TOTAL_SHARDS``, as Bazel sets them.
SHARD_ENV = "ZMQPROCESSTEST_SHARD"
#: The variables that ask for the runs wing (:mod:`zmqprocesstest.runs`) under any runner.
RUN_ENVS = (REPEAT_ENV, REPEAT_SCOPE_ENV, UNTIL_FAILURE_ENV, STRESS_ENV, SHUFFLE_ENV, SHARD_ENV, "TEST_SHARD_INDEX",
            "TEST_TOTAL_SHARDS")
#: The pytest plugin's options of the runs wing: option -> (attribute of the run's
#: settings, how pytest parses it, help).
PYTEST_RUN_OPTIONS = {
    "--zpt-repeat": ("repeat", int, "run each unittest-style test class N times (ZMQPROCESSTEST_REPEAT)"),
    "--zpt-repeat-scope": ("repeat_scope", str, "what one repeat spans: test, class, module or session (the "
                           "default with until-failure: round by round; ZMQPROCESSTEST_REPEAT_SCOPE)"),
    "--zpt-until-failure": ("until_failure", None, "stop at the first failure (-x) and print how to reproduce it"),
    "--zpt-stress": ("stress", None, "perturb timing from the seed (ZMQPROCESSTEST_STRESS)"),
    "--zpt-seed": ("seed", int, "seed of stress and shuffle (ZMQPROCESSTEST_SEED)"),
    "--zpt-shuffle": ("shuffle", None, "order modules, classes and tests from the seed (ZMQPROCESSTEST_SHUFFLE)"),
    "--zpt-shard": ("shard", str, "run shard I of N, I/N (ZMQPROCESSTEST_SHARD, TEST_SHARD_INDEX/TEST_TOTAL_SHARDS)"),
    "--zpt-durations-file": ("durations_file", str, "balance shards by the seconds in this JSON file"),
    "--zpt-record-durations": ("record_durations", str, "write each test's seconds to this JSON file"),
}
#: The module of the runs wing that holds the run's settings (imported when asked for).
RUNS_MODULE = "zmqprocesstest.runs.session"

#: Default send/recv timeout of a test socket and default wait, in seconds, before scaling.
DEFAULT_TIMEOUT = 1.0
#: The longest single blocking call of a wait (a process's exit, a socket's poll), in
#: seconds. CPython runs a signal handler (the runner's Ctrl-C) only between blocking
#: calls: a signal that arrives just before one is acted on when it returns.
WAIT_SLICE = 0.1

# -- the library's own bounds, in seconds (those that are scaled say so) ---------------------
#: The longest ``setUp``, test body, ``tearDown`` or cleanup (``run_timeout``): a test
#: that hangs somewhere no socket timeout reaches ends with a report.
DEFAULT_RUN_TIMEOUT = 60.0
#: Sending the stop message (scaled): a process that does not even take it is not
#: waiting for it, and the next stop step comes sooner.
STOP_SEND_TIMEOUT = 0.5
#: Reading a finished process's output pipe to its end (scaled): a grandchild that holds
#: the pipe open must not keep ``output_of`` or ``wait_exit`` from returning.
OUTPUT_SETTLE = 1.0
#: What a failure report waits for the last lines a dead process wrote (not scaled: a
#: report must come quickly, and what is still in the pipe arrives within microseconds).
REPORT_SETTLE = 0.2
#: Closing a process's output after it was stopped: the drainer reads what is left.
OUTPUT_CLOSE = 1.0
#: Members of a stopped process's group get this long (scaled) to exit by themselves
#: before they are killed and reported, then this long (scaled) to die of SIGKILL.
GROUP_GRACE, GROUP_KILL_WAIT = 0.5, 1.0
#: Waiting for processes killed with SIGKILL (kernel work only; a process that outlives
#: it is reported as still running).
KILL_WAIT = 5.0
#: The last-resort kill of a process at interpreter exit or Ctrl-C of the runner.
KILL_NOW_WAIT = 1.0
#: Terminating a test's zmq context (scaled): a socket someone forgot keeps ``term()``
#: waiting forever, so it runs on a kept thread and is reported after this long.
CONTEXT_TERM_TIMEOUT = 2.0
#: A new forked child making its own session (scaled): kernel work, unless the machine
#: is badly overloaded.
SESSION_TIMEOUT = 5.0
#: ``run_program``'s default (scaled): a whole program, start to end.
PROGRAM_TIMEOUT = 10.0
#: After ``run_program``'s program ended, the rest of its session (scaled).
PROGRAM_GROUP_WAIT = 2.0
#: A fault link's own thread answering a command, or stopping (scaled).
LINK_WAIT = 5.0
#: Bytes of one message's frames a tap keeps whole for its codec and its recorders (a
#: Jupyter message, a request with its payload); beyond them a frame is kept as its first
#: bytes and its length, and its bytes are skipped as they pass: a stream of huge
#: messages through a tap is never buffered.
TAP_KEEP_BYTES = 1 << 16
#: Bytes of frames a recording (``self.tap(..., record=)``) keeps in memory before it
#: writes them out on the tap's thread: writing each message as it passes added half
#: again to a tap's round trip (benchmarks/conversations.py). Below it, the messages are
#: written when the tap closes; this bounds the memory of a long recording.
RECORD_BUFFER_BYTES = 16 << 20
#: When a watched process exits with an exit code (not killed by a signal) during a wait,
#: the wait goes on reading the socket until everything that process sent has been read:
#: until libzmq has read each connection whose peer closed to its end and closed it (then
#: one more read). A reply sent just before a clean exit is a reply, not a death, however
#: late a loaded machine lets libzmq's I/O thread read it. This bounds that (scaled): a
#: connection no one reads (a socket whose queue is full) cannot delay a death longer.
EXIT_DRAIN = 1.0
#: Where that cannot be seen (no ``/proc``, no ``POLLRDHUP``), the socket is looked at
#: this long after such an exit instead (scaled), for a reply sent just before it.
EXIT_GRACE = 0.02
#: A coroutine test's death watch, once an exited process's connections are read to
#: their end: how many turns of the loop it leaves a task whose await has just completed
#: (its reply delivered, the task not yet resumed) before it ends the test's await.
ASYNC_DEATH_TURNS = 10
#: A watched process's death interrupts the test's thread where it blocks (a call of its
#: own): once it is blocked in the very same system call at two looks this far apart (not
#: woken by a last reply the process sent), it gets the signal.
DEATH_LOOK = 0.002
#: When the test's thread was in the library's own code at that signal (whose waits report
#: the death themselves), the death watch looks again this often.
DEATH_RETRY = 0.01
#: A test's thread never seen blocked after a death (a busy loop) is interrupted this long
#: after the death all the same (scaled).
DEATH_BUSY = 1.0
#: A guardian that reads none of the runner's commands for this long is treated as gone
#: (stopped?): the command is dropped with a warning rather than block the test.
GUARDIAN_WRITE_TIMEOUT = 5.0
#: A coroutine test's tasks, cancelled after it (left pending, or the test itself after its
#: timeout or a death): how long they get to end (scaled). A task that swallows the
#: cancellation is closed past it, and the test fails saying so.
ASYNC_CANCEL_WAIT = 1.0
#: How many frames of the line that created a coroutine are kept during a coroutine test
#: (``sys.set_coroutine_origin_tracking_depth``), for a coroutine that was never awaited.
COROUTINE_ORIGIN_DEPTH = 8
#: How long the runner waits at its exit for its guardian to clean up and exit.
GUARDIAN_EXIT_TIMEOUT = 5.0
#: How long :meth:`~zmqprocesstest.ManagedProcess.send_signal` waits for the process to
#: settle in a blocking call, where a signal is acted on at once (scaled).
SETTLE_BEFORE_SIGNAL = 0.5

#: After a test's cleanups, a non-daemon thread the test started gets this long (scaled)
#: to end by itself before it fails the test: Python waits for every such thread at
#: interpreter exit, so one left running would hang the runner there.
THREAD_END_GRACE = 1.0

#: The ``until`` event's pace: it repeats its event at most this often (seconds), watching
#: the processes' exits in between, so a condition polled through the process under test
#: (a broker asked whether a worker has registered) does not flood it.
UNTIL_INTERVAL = 0.01

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


def runs_requested() -> bool:
    """Whether this run hunts flaky tests: a variable of :data:`RUN_ENVS` is set, or the
    command line or the pytest plugin imported the runs wing for an option. Otherwise the
    runs wing is never imported: a plain run does not pay for it."""
    return RUNS_MODULE in sys.modules or any(os.environ.get(name) for name in RUN_ENVS)


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


def check_seconds(value: Any, what: str, allow_none: bool = False, positive: bool = False) -> Any:
    """Check a duration a user gave: a finite number of seconds (an int or a float, never a
    bool), at least 0 (more than 0 with *positive*), or ``None`` with *allow_none*.

    Every timeout the library takes is checked here or by the events' own argument check,
    so ``"1"``, ``-1``, ``nan`` or ``inf`` fail where they are given, naming *what*
    (``"the timeout of recv"``) rather than deep inside a wait.

    :returns: *value*, unchanged.
    :raises TypeError: *value* is not a number (a string, a bool).
    :raises ValueError: *value* is NaN, infinite, negative (or 0, with *positive*).
    """
    if value is None and allow_none:
        return None
    expected = (f"expected {what} to be a finite number of seconds {'> 0' if positive else '>= 0'}"
                f"{' or None' if allow_none else ''}, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(expected)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(expected)
    return value


def _owner(owner: Any) -> str:
    cls = owner if isinstance(owner, type) else type(owner)
    return getattr(cls, "__qualname__", cls.__name__)


def run_limit(owner: Any) -> float:
    """*owner*'s ``run_timeout`` (a test case, its class or a scope), checked and scaled."""
    return scaled(check_seconds(owner.run_timeout, f"run_timeout of {_owner(owner)}", positive=True))


def default_timeout(owner: Any) -> float:
    """*owner*'s ``timeout`` (the default of its sockets and waits), checked and scaled."""
    return scaled(check_seconds(owner.timeout, f"timeout of {_owner(owner)}"))
