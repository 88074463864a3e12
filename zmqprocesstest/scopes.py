"""Scopes: resources shared by the tests of a class or a module.

The resource API of :class:`~zmqprocesstest.ProcessTestCase` (``socket``,
``new_endpoint``, ``start_process``...) is made of :class:`scoped` methods. Called on a
test, they act on that test's resources, released after the test. Called on the class
(in ``setUpClass``), they act on resources the class shares, released with
``addClassCleanup``. Called on a module scope (:func:`~zmqprocesstest.module_scope`, in
``setUpModule``), on resources the module shares, released with ``addModuleCleanup``
(and by the pytest plugin at the module's last test, since pytest runs no module
cleanups). Shared processes are stopped with the same stop protocol; a stop that
needed escalation is an error of the class's (or module's) teardown.

Releasing is bounded (:func:`release_limit`): a custom stop event or closer that blocks
fails the release with :class:`~zmqprocesstest.TestTimeout`, and what is left is killed.
"""
from __future__ import annotations

import functools
import os
import sys
import types
import unittest
from typing import Any, Callable, Dict, List, Optional

from ._config import scaled
from .timeout import TestTimeout, hard_timeout
from .resources import Resources, owner_name

__unittest = True
__tracebackhide__ = True

__all__ = ["BOUNDED", "MODULE_SCOPES", "PYTEST_PLUGIN_SESSIONS", "check_module_scope_releaser", "kill_shared",
           "release_bounded", "release_limit", "release_module", "release_shared", "scoped", "shared_of",
           "shared_resources"]

_SHARED = "_zpt_shared"
#: Module name -> its module scope (a class made by ``module_scope``).
MODULE_SCOPES: Dict[str, type] = {}
#: The pytest sessions (their config objects) in which zmqprocesstest's pytest plugin is
#: active: the plugin adds its session's config at ``pytest_configure`` and removes it at
#: ``pytest_unconfigure``. Under pytest, only the plugin releases a module scope.
PYTEST_PLUGIN_SESSIONS: List[Any] = []
#: Attribute set on a function that bounds itself (the phase wrappers leave it alone).
BOUNDED = "__zmqprocesstest_bounded__"


def _stop_bound(plan: Any) -> float:
    if plan is None:
        return 0.0
    return sum(scaled(plan.timeouts[step]) for step in plan.steps)


def release_limit(owner: Any, res: Resources) -> float:
    """How long releasing *res* may take: the owner's ``run_timeout`` plus, for each
    process, the sum of its stop steps' timeouts (all scaled)."""
    stops = sum(_stop_bound(getattr(proc, "stop_plan", None)) for proc in res.processes)
    return scaled(getattr(owner, "run_timeout", 60.0)) + stops


def release_bounded(res: Resources, what: str) -> None:
    """``res.close(what)``; if it is stopped by the hard timeout, kill what is left."""
    try:
        res.close(what)
    except TestTimeout:
        res.closers.clear()  # one of them may be what blocked: not again
        res.kill_all()
        res.forget()
        raise


class scoped:  # used like a decorator, as classmethod is
    """A method that binds to the test when called on one, and to the class otherwise."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.__func__ = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        return types.MethodType(self.__func__, owner if obj is None else obj)


def shared_resources(cls: type) -> Resources:
    """The resources *cls* (a test case class or a module scope) shares; made on first use."""
    res = cls.__dict__.get(_SHARED)
    if res is None:
        res = Resources(cls, getattr(cls, "transcript_length", 20))
        setattr(cls, _SHARED, res)
        if cls in MODULE_SCOPES.values():
            unittest.addModuleCleanup(release_shared, cls)
        else:
            cls.addClassCleanup(release_shared, cls)  # type: ignore[attr-defined]
    return res


def release_shared(cls: type) -> None:
    """Stop and close what *cls* shares; raise :class:`ProcessStopError` for a stop that needed more."""
    res = cls.__dict__.get(_SHARED)
    if res is None:
        return  # released already (a module scope under pytest)
    delattr(cls, _SHARED)
    with hard_timeout(release_limit(cls, res), f"{owner_name(cls)} (release of what it shares)"):
        release_bounded(res, f"shared by {owner_name(cls)}: ")


setattr(release_shared, BOUNDED, True)


def kill_shared(cls: type) -> None:
    """Kill what *cls* shares at once (its ``setUpClass`` was interrupted, Ctrl-C)."""
    res = cls.__dict__.get(_SHARED)
    if res is not None:
        delattr(cls, _SHARED)
        res.kill_all()
        res.forget()


def check_module_scope_releaser(module: str) -> None:
    """Refuse a module scope that nothing would release: under pytest (it runs no
    ``addModuleCleanup`` cleanups) without zmqprocesstest's pytest plugin, the module's
    processes would run on through every later module.

    "Under pytest" is: pytest is running a test in this process (``PYTEST_CURRENT_TEST``
    is set, which pytest does for each test's set-up, where ``setUpModule`` runs, and
    pytest is imported here: a runner started by a pytest test inherits the variable only).

    :raises RuntimeError: naming the module, why, and the ways out.
    """
    if PYTEST_PLUGIN_SESSIONS or not os.environ.get("PYTEST_CURRENT_TEST") or "_pytest" not in sys.modules:
        return
    raise RuntimeError(
        f"module_scope({module!r}) needs zmqprocesstest's pytest plugin under pytest, and it is not active "
        "(PYTEST_DISABLE_PLUGIN_AUTOLOAD=1, or -p no:zmqprocesstest): pytest runs no addModuleCleanup cleanups, so "
        "nothing would stop what the module shares after its last test, and its processes would run on through "
        "later modules. Load the plugin (-p zmqprocesstest), or share through a class (setUpClass) instead.")


def release_module(module: str) -> None:
    """Release what the module scope of *module* shares, if anything."""
    scope = MODULE_SCOPES.get(module)
    if scope is not None:
        release_shared(scope)


def shared_of(case: Any) -> List[Resources]:
    """The shared resources a test of this class sees: its class's, then its module's."""
    found = []
    cls = type(case)
    for owner in (cls, MODULE_SCOPES.get(cls.__module__)):
        res = owner.__dict__.get(_SHARED) if owner is not None else None
        if res is not None:
            found.append(res)
    return found
