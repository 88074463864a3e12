"""Generator test methods made plain tests, and Hypothesis's ``@given`` on them: each
example through the send-back loop, with fresh resources.

:func:`convert_generator_tests` is what the metaclass of
:class:`~zmqprocesstest.ProcessTestCase` does to a new class: every generator test
method becomes a plain method that drives the generator with ``run_events``, so no
runner ever sees a generator; a ``@given`` test keeps its wrapper and gets a plain inner
test (below).

``@given`` turns a test into a plain function that calls the decorated function, its
*inner test*, once per generated example; a generator inner test would return a
generator that nobody drives (Hypothesis fails it with ``FailedHealthCheck``). The
metaclass of :class:`~zmqprocesstest.ProcessTestCase` asks :func:`given_generator`
whether a test is such a wrapper and replaces its inner test with :func:`wrap_examples`,
which drives each example with ``run_events``.

Every example after the first runs as a test of its own would: the previous example's
``tearDown`` runs, its resources (sockets, processes, endpoints, links, transcript) are
released, then ``setUp`` runs again. The first example uses what unittest's ``setUp``
made, and unittest's ``tearDown`` and cleanups end the last one, so a failing example
(the one Hypothesis replays last) is reported with its own transcript and processes.

Hypothesis is never imported here: a test is recognised by its ``hypothesis`` attribute,
and only when the user's code has imported Hypothesis already.
"""
from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, Callable, Generator, Optional

__unittest = True
__tracebackhide__ = True

__all__ = ["convert_generator_tests", "given_generator", "wrap_examples"]

#: The attribute of a test case counting the examples its @given test ran.
_COUNT = "_zpt_examples"


def given_generator(func: Any) -> Optional[Callable[..., Generator[Any, Any, Any]]]:
    """The generator function a Hypothesis ``@given`` wrapper *func* runs per example, or ``None``."""
    if "hypothesis" not in sys.modules:
        return None  # nobody imported Hypothesis: no test can be wrapped by it
    handle = getattr(func, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is not None and inspect.isgeneratorfunction(inner):
        return inner
    return None


def next_example(case: Any) -> None:
    """Before an example of a ``@given`` test: fresh resources, unless it is the test's first."""
    count = case.__dict__.get(_COUNT, 0)
    setattr(case, _COUNT, count + 1)
    if count:
        case.tearDown()
        res, case._zpt = case._zpt, None
        if res is not None:
            res.close("Releasing the resources of the previous example failed:\n")
        case._set_up()


def wrap_examples(func: Any) -> Any:
    """Make the ``@given`` wrapper *func* run its generator inner test through the send-back loop.

    The wrapper itself stays (Hypothesis's attributes, settings and signature with it);
    its inner test becomes a plain function. Returns *func*, marked as converted.
    """
    genfunc = given_generator(func)
    assert genfunc is not None

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
        elif given_generator(func) is not None:  # Hypothesis's @given on a generator test
            wrap_examples(func)
