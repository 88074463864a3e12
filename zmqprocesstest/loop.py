"""The send-back loop: drive a generator test, one yielded event at a time.

:func:`run_events` calls the event handler named by each yielded ``('name', *args)`` on
the test case, sends its result back into the generator, and throws any error into the
generator at the ``yield`` (with zmqprocesstest's own frames removed), so the failure's
traceback ends at the yield line and the test may catch it. Which names are events is
decided by :func:`known_events`: methods marked with :func:`event`, and public methods of
the user's own classes. A user's class may not reuse the name of a built-in event unless
it says so with :func:`override_event` (:func:`check_event_names`, run by the test case's
metaclass), and the handler is looked up on the class, so an attribute set on the test
(``self.delay = 0.5``) cannot stand in for the event either.

Coroutine tests run on :mod:`zmqprocesstest.coroutines`, which drives an async generator
test with the same handlers.

The event protocol lives here, where it is read: the :func:`event` marker, the
:exc:`EventError` of a bad yield and the :exc:`BadArgument` a handler raises for an
argument of the wrong kind. :mod:`zmqprocesstest.events` (the built-in events) and
:mod:`zmqprocesstest.faults` import them; this module imports neither.
"""
from __future__ import annotations

import inspect
import os
import time
import types
from typing import Any, Callable, FrozenSet, Generator, List, Optional, Tuple, TypeVar

from . import _perturb
from ._config import FULL_TRACEBACK_ENV, env_flag
from .timeout import TestTimeout
from .sockets import SocketTimeout

__unittest = True
__tracebackhide__ = True

__all__ = ["EVENT_ATTR", "OVERRIDE_ATTR", "BadArgument", "EventError", "answer", "builtin_events",
           "check_event_names", "dispatch", "event", "known_events", "override_event", "run_events", "trim_traceback"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep  # its wings' files are under it too
#: The attribute that marks a built-in event.
EVENT_ATTR = "__zmqprocesstest_event__"
#: The attribute that marks a user's method as overriding a built-in event on purpose.
OVERRIDE_ATTR = "__zmqprocesstest_override_event__"
F = TypeVar("F", bound=Callable[..., Any])
_MISSING = object()


class EventError(TypeError):
    """A test yielded something that is not a valid event."""


class BadArgument(TypeError):
    """An event argument of the wrong kind; the loop adds the event's signature."""


def event(func: F) -> F:
    """Mark a method of the library as a built-in event (one a test may yield)."""
    setattr(func, EVENT_ATTR, True)
    return func


def override_event(func: F) -> F:
    """Mark a method of your test case as the handler of the built-in event of its name, on purpose.

    A method or attribute of your test case (or of a mixin of it) named like a built-in
    event (``reset``, ``delay``, ``log``...) is refused when the class is defined, since
    ``yield ("reset", link)`` would quietly call it instead of the event. Decorated with
    this, it is the event's handler for that class and its subclasses; the built-in one
    stays reachable as ``super().reset(link)``::

        class CountedResets(ProcessTestCase):
            resets = 0

            @override_event
            def reset(self, link):
                self.resets += 1
                return super().reset(link)
    """
    setattr(func, EVENT_ATTR, True)
    setattr(func, OVERRIDE_ATTR, True)
    return func


def _signature(name: str, handler: Callable[..., Any]) -> str:
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return f"('{name}', ...)"
    shown = [p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in params
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return f"('{name}'" + "".join(", " + p for p in shown) + ")"


# -- finding events ------------------------------------------------------------------------------
def _is_library(klass: type) -> bool:
    return klass.__module__.split(".")[0] in ("zmqprocesstest", "unittest") or klass is object


def builtin_events(cls: type) -> FrozenSet[str]:
    """The built-in events of *cls*: the names marked with :func:`event` on the library's classes in its MRO."""
    return frozenset(name for klass in cls.__mro__ if _is_library(klass)
                     for name, value in vars(klass).items() if getattr(value, EVENT_ATTR, False) is True)


def check_event_names(cls: type) -> None:
    """Refuse a user's attribute or method that has the name of a built-in event of *cls*.

    Every class of *cls*'s MRO that is not the library's (the class itself and its
    mixins) is checked, when the class is defined: a name such as ``reset`` or ``delay``
    there would be called by ``yield ("reset", link)`` instead of the event, with no
    error. A method marked with :func:`override_event` is an override on purpose, and passes.

    :raises TypeError: naming the class, the attribute and the event, and the way out.
    """
    builtin = builtin_events(cls)
    for klass in cls.__mro__:
        if _is_library(klass):
            continue
        for name in sorted(builtin.intersection(vars(klass))):
            value = vars(klass)[name]
            if getattr(value, OVERRIDE_ATTR, False) is True:
                continue
            where = f"{cls.__qualname__}: its base {klass.__qualname__}" if klass is not cls else klass.__qualname__
            if callable(value) and not isinstance(value, type):
                raise TypeError(
                    f"{where}.{name} has the name of the built-in event {name!r}: yield ('{name}', ...) would "
                    f"call it instead of the event, with no error. Rename it, or, to replace the event on "
                    f"purpose, decorate it with @override_event (from zmqprocesstest import override_event); "
                    f"the built-in one stays super().{name}(...)")
            raise TypeError(
                f"{where}.{name} = {value!r:.60} has the name of the built-in event {name!r}: yield ('{name}', "
                f"...) would call it instead of the event. Rename it (only a method decorated with "
                f"@override_event may replace an event)")


def known_events(cls: type) -> FrozenSet[str]:
    """Names a test of *cls* can yield: marked methods, and public methods of user classes.

    A user's public method is an event unless its name is a library method that is not
    one (``setUp``, ``socket``, ``assertGolden``...), or a test method.
    """
    cached = cls.__dict__.get("_zpt_events")
    if cached is not None:
        return cached
    prefix = getattr(cls, "testMethodPrefix", "test")
    library = {name for klass in cls.__mro__ if _is_library(klass) for name in vars(klass)}
    names = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if getattr(value, EVENT_ATTR, False):
                names.add(name)
            elif (not _is_library(klass) and not name.startswith("_") and not name.startswith(prefix)
                  and name not in library and callable(value)
                  and not isinstance(value, (type, classmethod, staticmethod))):
                names.add(name)
    result = frozenset(names)
    cls._zpt_events = result  # type: ignore[attr-defined]
    return result


# -- the send-back loop ------------------------------------------------------------------------
def trim_traceback(exc: BaseException) -> BaseException:
    """Drop zmqprocesstest's own frames from *exc*'s traceback (user frames stay)."""
    if env_flag(FULL_TRACEBACK_ENV):
        return exc
    kept: List[types.TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR):
            kept.append(tb)
        tb = tb.tb_next
    new_tb: Optional[types.TracebackType] = None
    for entry in reversed(kept):
        new_tb = types.TracebackType(new_tb, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return exc.with_traceback(new_tb)


def _bad_item(item: Any) -> EventError:
    if type(item) is not tuple:
        return EventError(f"expected a tuple ('event', *args) to be yielded, got {type(item).__name__} {item!r}")
    if not item:
        return EventError("expected a tuple ('event', *args) to be yielded, got an empty tuple")
    return EventError(f"expected an event name (str) first in the yielded tuple, got {item[0]!r}")


def _handler_for(case: Any, item: Any) -> Tuple[Callable[..., Any], Tuple[Any, ...]]:
    # Runs once per event: the common case is kept to a few lines.
    name = item[0] if type(item) is tuple and item else None
    if not isinstance(name, str):
        raise _bad_item(item)
    cls = case if isinstance(case, type) else type(case)  # a class: a stop event of what it or its module shares
    events = cls.__dict__.get("_zpt_events") or known_events(cls)
    if name not in events:
        raise EventError(f"unknown event {name!r}; known events: {', '.join(sorted(events))}. "
                         f"Add one by defining a method {name}(self, ...) on the test case")
    # Looked up on the class, then bound to the test (or the sharing class): an instance
    # attribute of the same name (self.delay = 0.5) does not stand in for the event.
    for klass in cls.__mro__:
        found = klass.__dict__.get(name, _MISSING)
        if found is not _MISSING:
            break
    get = getattr(type(found), "__get__", None)
    return (found if get is None else get(found, case, cls)), item[1:]


def _call(name: str, handler: Callable[..., Any], args: Tuple[Any, ...]) -> Any:
    try:
        return handler(*args)
    except BadArgument as exc:
        raise BadArgument(f"{exc}; event {name!r} takes {_signature(name, handler)}") from None
    except TypeError as exc:
        try:
            inspect.signature(handler).bind(*args)
        except TypeError as bind_error:
            raise EventError(f"bad arguments for event {name!r}: {bind_error}; expected "
                             f"{_signature(name, handler)}, got {args!r}") from None
        except ValueError:
            pass
        raise exc


def dispatch(case: Any, item: Any) -> Any:
    """Handle one event *item* (``('name', *args)``) on *case* as the loop does; return the result."""
    handler, args = _handler_for(case, item)
    return _call(item[0], handler, args)


#: Generators that refused to close; kept so their finaliser does not complain at exit.
_UNSTOPPABLE: List[Generator[Any, Any, Any]] = []


def _close(gen: Generator[Any, Any, Any]) -> None:
    # Kept until it has ended: one that ignores GeneratorExit stays, away from a noisy
    # finaliser, even if the hard timeout's signal cuts this short.
    _UNSTOPPABLE.append(gen)
    try:
        gen.close()
    except RuntimeError:  # it ignored GeneratorExit
        return
    _UNSTOPPABLE.remove(gen)


def run_events(case: Any, gen: Generator[Any, Any, Any], check: Optional[Callable[[Any], None]] = None) -> None:
    """Drive a generator test: dispatch each yielded event, send results back.

    An exception from a handler is thrown into the generator at its ``yield`` (with
    zmqprocesstest's own frames removed from the traceback), so the test may catch it
    and an uncaught one points at the yield line. The test fails if it returns a value.
    Before each event ``check(event)`` is called (the test's
    :meth:`~zmqprocesstest.timeout._watchdog.HardTimeout.check`: it raises once ``run_timeout``
    has passed, for a test that a signal cannot interrupt); the generator is then closed.
    """
    try:
        _drive(case, gen, check)
    except (KeyboardInterrupt, SystemExit, TestTimeout):
        # Not for the test to catch: the generator is closed, and the traceback stays
        # at the line that was running (a blocking handler, or the test itself).
        _close(gen)
        raise


def answer(case: Any, item: Any) -> Tuple[Any, Optional[BaseException]]:
    """Handle one yielded *item*: ``(result, None)`` to send back, or ``(None, error)`` to
    throw in at the yield (trimmed; a socket timeout names the event it ran out in).
    What the test may not catch (Ctrl-C, exit, the hard timeout) is raised here."""
    started = time.monotonic()
    if _perturb.hook is not None:
        _perturb.hook("event", "")  # stress: the processes started since the last event go now
    try:
        handler, args = _handler_for(case, item)
        return _call(item[0], handler, args), None
    except (KeyboardInterrupt, SystemExit, TestTimeout):
        raise
    except BaseException as exc:
        if isinstance(exc, SocketTimeout) and exc.event is None:
            exc.event, exc.event_began = item[0], started
        return None, trim_traceback(exc)


def _drive(case: Any, gen: Generator[Any, Any, Any], check: Optional[Callable[[Any], None]]) -> None:
    value: Any = None
    error: Optional[BaseException] = None
    while True:
        try:
            item = gen.send(value) if error is None else gen.throw(error)
        except StopIteration as stop:
            if stop.value is not None:
                raise TypeError(f"expected the test to return None, got {stop.value!r}; "
                                "use self.assert...() to check a result") from None
            return
        finally:
            error = None
        if check is not None:
            check(item)
        value, error = answer(case, item)
