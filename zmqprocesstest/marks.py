"""Marks (``process``, ``system``, your own) and selection by boolean expression.

Mark a test method or class with :func:`mark` (or the ready-made :data:`process` and
:data:`system`), or a whole module with a global ``zmqprocesstest_marks = ["system"]``
defined above its test classes. Select with an expression such as
``not (process or system)``:

* ``ZMQPROCESSTEST_MARKS=EXPR`` when the tests run, under any runner: unselected tests
  of a :class:`~zmqprocesstest.ProcessTestCase` are reported as skipped, with the reason;
* ``python -m zmqprocesstest -m EXPR [unittest args]``: unselected tests are not run at all;
* ``nose2 --plugin nose2.plugins.attrib -A process`` (marks are also plain attributes,
  ``method.process = True``; or enable the attrib plugin in nose2's config);
* ``pytest -m process`` (the bundled plugin turns marks into pytest marks);
* a default in ``setup.cfg``: ``[zmqprocesstest]`` / ``marks = not slow``.
"""
from __future__ import annotations

import configparser
import functools
import os
import re
import sys
import unittest
from typing import Any, Callable, FrozenSet, Iterable, List, Optional, Set, Tuple, TypeVar

__all__ = [
    "MarkExpressionError",
    "mark",
    "none_selected",
    "process",
    "system",
    "marks_of",
    "parse_expression",
    "selection_expression",
    "MARKS_ENV",
    "MODULE_MARKS",
]

#: Environment variable holding the selection expression.
MARKS_ENV = "ZMQPROCESSTEST_MARKS"
#: Name of the module global that marks every test in a module.
MODULE_MARKS = "zmqprocesstest_marks"
#: Attribute holding the marks of a function or class.
MARKS_ATTR = "__zmqprocesstest_marks__"

__unittest = True  # a malformed expression's error ends at the test, not in the parser

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def mark(*names: str) -> Callable[[T], T]:
    """Decorator that marks a test method or test class with *names*.

    Marks add up (``@mark("slow")`` on a method of a ``@process`` class has both)::

        @mark("process", "slow")
        def test_many_pings(self): ...

    A mark is also set as an attribute ``name = True`` on each test method (for nose2's
    attrib plugin), so dunder names (``__doc__``) are refused, and so is marking a
    method whose attribute of that name is something other than a bool flag.

    :raises ValueError: for a name that is not an identifier, is ``and``/``or``/``not``,
        is a dunder name, or would overwrite an attribute of the test method.
    """
    for name in names:
        _check_name(name)

    def decorate(obj: T) -> T:
        if not isinstance(obj, type):
            for name in names:
                _check_free(obj, name)
        own = frozenset(getattr(obj, "__dict__", {}).get(MARKS_ATTR, ()))
        setattr(obj, MARKS_ATTR, own | frozenset(names))
        if not isinstance(obj, type):
            for name in names:
                setattr(obj, name, True)  # for nose2's attrib plugin
        else:
            propagate(obj)
        return obj

    return decorate


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or name in ("and", "or", "not"):
        raise ValueError(f"a mark must be an identifier other than and/or/not, got {name!r}")
    if name.startswith("__") and name.endswith("__"):
        raise ValueError(f"expected a mark name that is not a dunder name (a mark is set as an attribute of the "
                         f"test method), got {name!r}")


def _check_free(obj: object, name: str) -> None:
    """Refuse to overwrite an attribute of *obj* that is not a bool mark flag."""
    try:
        existing = getattr(obj, name)
    except AttributeError:
        return
    if not isinstance(existing, bool):
        raise ValueError(f"cannot mark {getattr(obj, '__qualname__', obj)!r} with {name!r}: expected its attribute "
                         f"{name!r} to be unset or a bool mark flag, got {existing!r}")


def process(obj: T) -> T:
    """Mark a test method or class as a *process test* (``@process``).

    A process test starts one process and mimics its peers with test sockets.
    """
    return mark("process")(obj)


def system(obj: T) -> T:
    """Mark a test method or class as a *system test* (``@system``).

    A system test runs the whole application from outside.
    """
    return mark("system")(obj)


def _module_marks(cls: type) -> FrozenSet[str]:
    module = sys.modules.get(cls.__module__)
    found = getattr(module, MODULE_MARKS, ()) if module is not None else ()
    if isinstance(found, str):
        found = (found,)
    return frozenset(found)


def class_marks(cls: type) -> FrozenSet[str]:
    """Marks of a class: its own, its bases' and its module's."""
    result: FrozenSet[str] = _module_marks(cls)
    for klass in cls.__mro__:
        result |= frozenset(klass.__dict__.get(MARKS_ATTR, ()))
    return result


def marks_of(test: Any) -> FrozenSet[str]:
    """All marks of a test case instance (its method's, its class's, its module's)."""
    method = getattr(test, getattr(test, "_testMethodName", ""), None)
    return frozenset(getattr(method, MARKS_ATTR, ())) | class_marks(type(test))


def propagate(cls: type, prefix: str = "test") -> None:
    """Copy class and module marks onto each test method, where runners look.

    Inherited methods get a thin wrapper on *cls*, so marking a subclass never marks
    its base class's tests.
    """
    marks = class_marks(cls)
    if not marks:
        return
    for name in dir(cls):
        if not name.startswith(prefix):
            continue
        func = getattr(cls, name, None)
        if not callable(func) or isinstance(func, type):
            continue
        func = getattr(func, "__func__", func)
        have = frozenset(getattr(func, MARKS_ATTR, ()))
        if marks <= have:
            continue
        for m in marks - have:
            _check_name(m)
            _check_free(func, m)
        if name not in cls.__dict__:
            func = _rewrap(func)
            setattr(cls, name, func)
        setattr(func, MARKS_ATTR, have | marks)
        for m in marks:
            setattr(func, m, True)


def _rewrap(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def inherited(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    inherited.__dict__.pop(MARKS_ATTR, None)
    return inherited


# -- expressions ---------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(\()|(\))|([A-Za-z_][A-Za-z0-9_]*)|(\S))")


def parse_expression(expr: str) -> Callable[[Iterable[str]], bool]:
    """Compile a mark expression to a predicate over a set of marks.

    Grammar: ``or``/``and``/``not``, parentheses, and mark names; ``1``/``True`` or an
    empty expression select everything. Nothing is evaluated as Python.

    :raises ValueError: for a malformed expression, naming what was expected.
    """
    text = expr.strip()
    if text in ("", "1", "True", "true"):
        return lambda marks: True
    tokens: List[str] = []
    for paren_open, paren_close, word, other in _TOKEN.findall(text):
        if other:
            raise ValueError(f"bad mark expression {expr!r}: unexpected {other!r}; "
                             "expected a name, and, or, not, ( or )")
        tokens.append(paren_open or paren_close or word)
    pos = 0

    def peek() -> Optional[str]:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: Optional[str] = None) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"bad mark expression {expr!r}: expected {expected or 'a name'}, got {tok or 'the end'}")
        pos += 1
        return tok

    Predicate = Callable[[FrozenSet[str]], bool]

    def chain(word: str, operand: Callable[[], Predicate], any_of: bool) -> Callable[[], Predicate]:
        """A parser of ``operand (word operand)*``: or-ed (*any_of*) or and-ed together."""
        def parse() -> Predicate:
            parts = [operand()]
            while peek() == word:
                take()
                parts.append(operand())
            if len(parts) == 1:
                return parts[0]
            return (lambda m: any(p(m) for p in parts)) if any_of else (lambda m: all(p(m) for p in parts))
        return parse

    def not_expr() -> Callable[[FrozenSet[str]], bool]:
        if peek() == "not":
            take()
            inner = not_expr()
            return lambda m: not inner(m)
        if peek() == "(":
            take("(")
            inner = or_expr()
            take(")")
            return inner
        name = take()
        if name in ("and", "or", ")"):
            raise ValueError(f"bad mark expression {expr!r}: expected a name, got {name!r}")
        return lambda m: name in m

    and_expr = chain("and", not_expr, any_of=False)
    or_expr = chain("or", and_expr, any_of=True)
    predicate = or_expr()
    if pos != len(tokens):
        raise ValueError(f"bad mark expression {expr!r}: expected the end, got {tokens[pos]!r}")
    return lambda marks: predicate(frozenset(marks))


def config_expression(path: str = "setup.cfg") -> str:
    """The default expression from ``[zmqprocesstest] marks`` in *path*, or ``''``."""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    return _read_config(os.path.abspath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_config(path: str, mtime_ns: int, size: int) -> str:
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return ""
    return parser.get("zmqprocesstest", "marks", fallback="").strip()


def selection_expression(explicit: Optional[str] = None) -> str:
    """The expression in force: *explicit* (``-m``), else the env var, else setup.cfg."""
    return _selection(explicit)[0]


def _selection(explicit: Optional[str]) -> Tuple[str, str]:
    """The expression in force and where it comes from (for error messages)."""
    if explicit is not None:
        return explicit, "-m"
    env = os.environ.get(MARKS_ENV)
    if env is not None:
        return env, MARKS_ENV
    return config_expression(), "[zmqprocesstest] marks in setup.cfg"


class MarkExpressionError(ValueError):
    """The mark expression in force does not parse (reported once, at the first test)."""


#: Malformed expressions already reported by :func:`deselection_reason`.
_REPORTED: Set[str] = set()


@functools.lru_cache(maxsize=32)
def _compiled(expr: str) -> Callable[[Iterable[str]], bool]:
    return parse_expression(expr)


def deselection_reason(test: Any, expr: Optional[str] = None) -> Optional[str]:
    """Why *test* is not selected by the expression in force, or ``None`` if it is.

    :raises MarkExpressionError: for the first test that meets a malformed expression;
        later tests are not run, with a reason that points to that one error, so a
        typo gives one clear error instead of one per test.
    """
    expr, source = _selection(expr)
    if not expr.strip():
        return None
    try:
        selects = _compiled(expr)
    except ValueError as exc:
        if expr in _REPORTED:
            return f"not run: the mark expression {expr!r} ({source}) does not parse; see the first error"
        _REPORTED.add(expr)
        raise MarkExpressionError(f"{exc} (from {source}); no ProcessTestCase test runs until it is fixed") from None
    marks = marks_of(test)
    if selects(marks):
        return None
    shown = ", ".join(sorted(marks)) or "no marks"
    return f"deselected by mark expression {expr!r} (test has {shown})"


def none_selected(classes: Iterable[type]) -> bool:
    """Whether the expression in force deselects every test of *classes* (test case
    classes): then their ``setUpClass`` (or their module's ``setUpModule``) has nothing
    to prepare, and must not start shared processes. ``False`` when anything is
    selected, when nothing is deselected, or when the expression does not parse (the
    first test reports that)."""
    expr = selection_expression()
    if not expr.strip():
        return False
    try:
        selects = _compiled(expr)
    except ValueError:
        return False
    loader = unittest.TestLoader()
    for cls in classes:
        for name in loader.getTestCaseNames(cls):
            if selects(marks_of(cls(name))):
                return False
    return True
