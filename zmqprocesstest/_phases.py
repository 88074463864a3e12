"""Bounds for the phases around the tests: class and module set-up, tear-down, cleanups.

``setUp`` and the test body are bounded in :class:`~zmqprocesstest.ProcessTestCase`
itself (``_callSetUp``, ``_callTestMethod``), and so are ``tearDown`` and each cleanup
(``_callTearDown``, ``_callCleanup``). What runs outside a test is wrapped here:

* ``setUpClass`` and ``tearDownClass`` defined on a ProcessTestCase class are wrapped by
  its metaclass, and ``doClassCleanups`` bounds each class cleanup;
* a module's ``setUpModule`` and ``tearDownModule`` are wrapped in the module's
  namespace when a ProcessTestCase class of the module is created (those defined above
  it), when a class's ``setUpClass`` runs (``tearDownModule``, wherever it is defined)
  and in :func:`~zmqprocesstest.module_scope`; the module cleanups registered so far
  are bounded at the same moments and after ``setUpModule``.

Each is bounded by the ``run_timeout`` of the class (for a module, of the first
ProcessTestCase class that reached it); past it the phase fails with
:class:`~zmqprocesstest.TestTimeout` naming the phase, and the run goes on.
"""
import functools
import sys
import unittest
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

from ._config import scaled
from ._watchdog import hard_timeout
from .marks import none_selected
from .resources import owner_name
from .scopes import BOUNDED, kill_shared, release_limit

__unittest = True

__all__ = ["BoundedPhases", "bound_class_phases", "bound_module_phases", "bound_phases", "bounded_call", "phase_name"]

_CLASS_PHASES = ("setUpClass", "tearDownClass")
_MODULE_PHASES = ("setUpModule", "tearDownModule")


def phase_name(function: Any) -> str:
    """A cleanup's name for messages: its qualified name, or its repr."""
    return getattr(function, "__qualname__", None) or repr(function)


def bounded_call(owner: Any, describe: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call *function* bounded by *owner*'s ``run_timeout`` (unless it bounds itself)."""
    if getattr(function, BOUNDED, False):
        return function(*args, **kwargs)
    with hard_timeout(scaled(owner.run_timeout), describe):
        return function(*args, **kwargs)


def _wrap_class_phase(name: str, func: Callable[..., Any]) -> classmethod:
    @functools.wraps(func)
    def phase(cls: Any) -> Any:
        if name == "setUpClass":
            bound_module_phases(cls)
            cls._zpt_deselected = none_selected([cls])
        if cls.__dict__.get("_zpt_deselected"):
            return None  # every test deselected by mark: nothing to set up (no shared process)
        try:
            with hard_timeout(scaled(cls.run_timeout), f"{owner_name(cls)} ({name})"):
                return func(cls)
        except Exception:
            raise
        except BaseException:
            if name == "setUpClass":
                kill_shared(cls)  # interrupted (Ctrl-C): no class cleanup will run
            raise

    setattr(phase, BOUNDED, True)
    return classmethod(phase)


def bound_class_phases(cls: type) -> None:
    """Wrap the ``setUpClass`` and ``tearDownClass`` defined on *cls* itself."""
    for name in _CLASS_PHASES:
        raw = cls.__dict__.get(name)
        if isinstance(raw, classmethod) and not getattr(raw.__func__, BOUNDED, False):
            setattr(cls, name, _wrap_class_phase(name, raw.__func__))


def _set_up_class(cls: Any) -> None:
    super(BoundedPhases, cls).setUpClass()


if TYPE_CHECKING:  # for the type checker the mixin is the TestCase it is always mixed into
    _Mixin = unittest.TestCase
else:
    _Mixin = object


class BoundedPhases(_Mixin):
    """The bounded phases of :class:`~zmqprocesstest.ProcessTestCase` (a base before
    :class:`unittest.TestCase`): ``tearDown``, each cleanup, each class cleanup, and a
    ``setUpClass`` that bounds the module's phases even when a class defines none."""

    run_timeout: float
    setUpClass = _wrap_class_phase("setUpClass", _set_up_class)

    def _callTearDown(self) -> None:
        if type(self).tearDown is unittest.TestCase.tearDown:
            return  # nothing to bound
        with hard_timeout(scaled(self.run_timeout), f"{self.id()} (tearDown)"):
            super()._callTearDown()  # type: ignore[misc]

    def _callCleanup(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        res = getattr(self, "_zpt", None)
        if res is not None and getattr(function, "__func__", 0) is getattr(type(self), "_release_resources", None):
            limit = release_limit(self, res)  # run_timeout + the processes' stop steps
        else:
            limit = scaled(self.run_timeout)
        with hard_timeout(limit, f"{self.id()} (cleanup {phase_name(function)})"):
            function(*args, **kwargs)

    @classmethod
    def doClassCleanups(cls) -> None:
        """unittest's, with each class cleanup bounded by ``run_timeout``."""
        cls.tearDown_exceptions = []  # type: ignore[attr-defined]
        while cls._class_cleanups:  # type: ignore[attr-defined]
            function, args, kwargs = cls._class_cleanups.pop()  # type: ignore[attr-defined]
            try:
                bounded_call(cls, f"{owner_name(cls)} (class cleanup {phase_name(function)})", function, *args,
                             **kwargs)
            except Exception:
                cls.tearDown_exceptions.append(sys.exc_info())  # type: ignore[attr-defined]


def _wrap_module_phase(module: str, name: str, func: Callable[[], Any], cls: Any) -> Callable[[], Any]:
    @functools.wraps(func)
    def phase() -> Any:
        if _module_deselected(module, name):
            return None  # every test of the module deselected by mark
        with hard_timeout(scaled(cls.run_timeout), f"{module} ({name})"):
            result = func()
        _bound_module_cleanups(module, cls)  # those it registered
        return result

    setattr(phase, BOUNDED, True)
    return phase


_DESELECTED_MODULES: Dict[str, bool] = {}


def _module_deselected(module: str, phase: str) -> bool:
    """Whether every test of *module* is deselected: decided at its ``setUpModule``
    (from its test case classes, a plain unittest one included), kept for its
    ``tearDownModule``."""
    if phase == "setUpModule" or module not in _DESELECTED_MODULES:
        namespace = vars(sys.modules[module]) if module in sys.modules else {}
        classes = [c for c in namespace.values()
                   if isinstance(c, type) and issubclass(c, unittest.TestCase) and c.__module__ == module]
        _DESELECTED_MODULES[module] = bool(classes) and none_selected(classes)
    return _DESELECTED_MODULES[module]


def _bounded_cleanup(module: str, function: Callable[..., Any], cls: type) -> Callable[..., Any]:
    @functools.wraps(function)
    def cleanup(*args: Any, **kwargs: Any) -> Any:
        return bounded_call(cls, f"{module} (module cleanup {phase_name(function)})", function, *args, **kwargs)

    setattr(cleanup, BOUNDED, True)
    return cleanup


def _bound_module_cleanups(module: str, cls: type) -> None:
    cleanups: List[Tuple[Any, Any, Any]] = getattr(unittest.case, "_module_cleanups", [])
    for index, (function, args, kwargs) in enumerate(cleanups):
        if not getattr(function, BOUNDED, False):
            cleanups[index] = (_bounded_cleanup(module, function, cls), args, kwargs)


def bound_module_phases(cls: type, module: str = "") -> None:
    """Wrap *module*'s (default: *cls*'s module's) ``setUpModule`` and ``tearDownModule``
    as they are now in its namespace, and bound the module cleanups registered so far."""
    module = module or cls.__module__
    namespace = getattr(sys.modules.get(module), "__dict__", None)
    if namespace is None:
        return
    for name in _MODULE_PHASES:
        func = namespace.get(name)
        if callable(func) and not getattr(func, BOUNDED, False):
            namespace[name] = _wrap_module_phase(module, name, func, cls)
    _bound_module_cleanups(module, cls)


def bound_phases(cls: type) -> None:
    """Bound the phases of a new ProcessTestCase class: its own ``setUpClass`` and
    ``tearDownClass``, and its module's ``setUpModule`` and ``tearDownModule`` as
    defined above it."""
    bound_class_phases(cls)
    bound_module_phases(cls)
