"""Helpers for the library's own tests: run inner test cases and read their results."""
import os
import select
import signal
import sys
import traceback
import unittest

from zmqprocesstest.processes._os import child_pids

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "docs", "examples")
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)


def run_case(cls, *names):
    """Run the named tests of *cls* (all if none) into a fresh TestResult."""
    loader = unittest.TestLoader()
    if names:
        suite = unittest.TestSuite(cls(name) for name in names)
    else:
        suite = loader.loadTestsFromTestCase(cls)
    result = unittest.TestResult()
    suite.run(result)
    return result


def problems(result):
    """All failures and errors as (test id, formatted text) pairs."""
    return [(test.id(), text) for test, text in result.failures + result.errors]


def only_problem(testcase, result, kind="failure"):
    """Assert exactly one failure (or error) and return its text."""
    entries = result.failures if kind == "failure" else result.errors
    others = result.errors if kind == "failure" else result.failures
    testcase.assertEqual(len(entries), 1, f"expected one {kind}, got: {problems(result)}")
    testcase.assertEqual(others, [], f"expected no other problems, got: {problems(result)}")
    return entries[0][1]


def format_exc(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def gone(pid, timeout=5.0):
    """True once *pid* no longer exists (bounded wait on a pidfd)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        select.select([fd], [], [], timeout)
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        return state in ("Z", "X") and pid not in child_pids()  # a zombie nobody will reap is still a leak
    finally:
        os.close(fd)


def interruptible():
    """``preexec_fn`` for a child runner that a test interrupts with SIGINT.

    A runner started as a background job of a script has SIGINT ignored, and its
    children inherit that: Python then installs no KeyboardInterrupt handler and the
    SIGINT does nothing. Reset to the default, the child runner acts on SIGINT as one
    started from a terminal does, whatever started this suite.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
