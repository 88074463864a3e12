"""Hunting a flaky test: repeat, stop at the first failure, seeded stress, shuffle, shard.

The command line (``python -m zmqprocesstest --repeat N --until-failure --stress
--seed S --shuffle --shard I/N``) rearranges the suite unittest loaded
(:func:`arrange`). Other runners read the environment (:data:`SETTINGS`):

* ``ZMQPROCESSTEST_REPEAT=N``: each :class:`~zmqprocesstest.ProcessTestCase` class
  defined at the top of a module gets N-1 siblings in that module, subclasses named
  ``<Class>_repeat<r>`` (r from 2; the class itself is repeat 1), so every runner that
  collects classes from modules (nose2, pytest, ``unittest discover``) runs them as
  tests of their own, counted one by one, with the class scope set up again for each;
* ``ZMQPROCESSTEST_UNTIL_FAILURE=1``: the first failing test stops the run (the pytest
  plugin sets ``-x``) and how to reproduce it is printed;
* ``ZMQPROCESSTEST_STRESS=1`` and ``ZMQPROCESSTEST_SEED=S``: see :mod:`zmqprocesstest.runs._stress`.

A repeat is a new subclass, so each repeat is a fresh test with fresh processes and
endpoints, and ``setUpClass``/``tearDownClass`` run once per repeat of a class. The
repeat scope (``--repeat-scope``, ``ZMQPROCESSTEST_REPEAT_SCOPE``; :meth:`Settings.scope`)
orders the repeats: round by round (``session``, the default with until-failure; each
round sets the module scopes up afresh, but under pytest), module by module, class by
class or test by test. The command line and the pytest plugin order the whole run;
under runners driven by the environment (unittest, nose2) a ``load_tests`` function
added to each module orders its tests, so ``session`` runs round by round module by
module there.
"""
from __future__ import annotations

import json
import os
import random
import shlex
import sys
import time
import unittest
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _order, _stress
from .._config import (REPEAT_ENV, REPEAT_SCOPE_ENV, REPEAT_SCOPES, SEED_ENV, SHUFFLE_ENV, STRESS_ENV,
                       UNTIL_FAILURE_ENV, env_flag)

__all__ = ["Settings", "SETTINGS", "arrange", "base_id", "check_scope", "flat", "repeat_class", "reproduce_message",
           "seed"]


class Settings:
    """What the run asks for; from the environment, the command line or pytest options."""

    def __init__(self) -> None:
        raw = os.environ.get(REPEAT_ENV, "").strip()
        if raw and not (raw.isdigit() and int(raw) >= 1):
            raise ValueError(f"expected {REPEAT_ENV} to be a whole number >= 1, got {raw!r}")
        #: How many times each test class runs.
        self.repeat = int(raw or 1)
        #: What one repeat spans (:data:`~zmqprocesstest._config.REPEAT_SCOPES`); ``None``:
        #: the default (:meth:`scope`).
        self.repeat_scope: Optional[str] = check_scope(os.environ.get(REPEAT_SCOPE_ENV, "").strip() or None,
                                                       REPEAT_SCOPE_ENV)
        self.until_failure = env_flag(UNTIL_FAILURE_ENV)
        self.stress = env_flag(STRESS_ENV)
        self.shuffle = env_flag(SHUFFLE_ENV)
        self.seed: Optional[int] = seed_value(os.environ.get(SEED_ENV, ""), SEED_ENV)
        self.shard = _order.shard_from_env()
        self.durations_file: Optional[str] = None
        self.record_durations: Optional[str] = None
        self.list_only = False
        #: Who repeats and stops: ``"env"`` (the metaclass and test runs do), ``"cli"``
        #: (the command line does) or ``"pytest"`` (the plugin does).
        self.driver = "env"

    def scope(self) -> str:
        """What one repeat spans: the scope given, else ``session`` (round by round) with
        until-failure, else ``class`` (each class's repeats in a row)."""
        if self.repeat_scope:
            return self.repeat_scope
        return "session" if self.until_failure else "class"


def check_scope(value: Optional[str], what: str) -> Optional[str]:
    """*value* if it is a repeat scope (or ``None``).

    :raises ValueError: naming *what* and the scopes, for anything else.
    """
    if value is not None and value not in REPEAT_SCOPES:
        raise ValueError(f"expected {what} to be one of {', '.join(REPEAT_SCOPES)}, got {value!r}")
    return value


def seed_value(raw: str, what: str) -> Optional[int]:
    """*raw* as a seed (``None`` if empty).

    :raises ValueError: naming *what*, if it is not a whole number >= 0.
    """
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(f"expected {what} to be a whole number >= 0, got {raw!r}")
    return int(raw)


#: The settings of this run (from the environment until a command line or plugin sets them).
SETTINGS = Settings()
#: True when a test run must pass through :func:`run_test` (stress, or until-failure).
ACTIVE = False
_first_failure: List[Tuple[str, str]] = []
_printed: List[bool] = []


def seed() -> int:
    """The run's seed: the one given, else one chosen now; printed once, and exported in
    ``ZMQPROCESSTEST_SEED`` so processes started from here (workers) use it too."""
    if SETTINGS.seed is None:
        SETTINGS.seed = random.SystemRandom().randrange(10 ** 6)
        how = "chosen"
    else:
        how = "given"
    if not _printed and (how == "chosen" or os.environ.get(SEED_ENV) != str(SETTINGS.seed)):
        _printed.append(True)
        print(f"zmqprocesstest: seed {SETTINGS.seed} ({how}; --seed {SETTINGS.seed} or {SEED_ENV}={SETTINGS.seed} "
              "repeats it)", file=sys.stderr, flush=True)
    os.environ[SEED_ENV] = str(SETTINGS.seed)
    return SETTINGS.seed


def configure(settings: Settings) -> None:
    """Make *settings* the run's: start stress if asked (from the seed)."""
    global SETTINGS, ACTIVE
    SETTINGS = settings
    ACTIVE = settings.stress or (settings.until_failure and settings.driver == "env")
    if settings.stress or settings.shuffle:
        seed()
    if settings.stress:
        _stress.activate(SETTINGS.seed or 0, burn=True)


# -- repeats ---------------------------------------------------------------------------------
_REPEAT_CLASSES: Dict[Tuple[type, int, int], type] = {}


def repeat_class(cls: type, repeat: int, total: int) -> type:
    """The subclass of *cls* that is its repeat number *repeat* of *total* (1 is *cls*);
    the same class for every test of *cls* (its class scope is shared, as in one run)."""
    if repeat == 1:
        return cls
    made = _REPEAT_CLASSES.get((cls, repeat, total))
    if made is None:
        made = _REPEAT_CLASSES[cls, repeat, total] = _make_repeat_class(cls, repeat, total)
    return made


def _make_repeat_class(cls: type, repeat: int, total: int) -> type:
    name = f"{cls.__name__}_repeat{repeat:0{len(str(total))}d}"
    return type(cls)(name, (cls,), {"__module__": cls.__module__, "__doc__": cls.__doc__,
                                    "__qualname__": cls.__qualname__ + name[len(cls.__name__):],
                                    "_zpt_repeat": (repeat, total), "_zpt_base": cls})


def repeat_of(cls: type) -> Tuple[int, int, type]:
    """(repeat, total, the class repeated) of a test class."""
    repeat, total = getattr(cls, "_zpt_repeat", (1, SETTINGS.repeat))
    return repeat, total, getattr(cls, "_zpt_base", cls)


def base_id(test: Any) -> str:
    """The id of *test* without the repeat: the same for every repeat of it."""
    _, _, base = repeat_of(type(test))
    return f"{base.__module__}.{base.__qualname__}.{getattr(test, '_testMethodName', '')}"


def inject_repeats(cls: type) -> None:
    """Under ``ZMQPROCESSTEST_REPEAT=N``: add repeats 2..N of *cls* to its module (called by
    the :class:`~zmqprocesstest.case.ProcessTestMeta` metaclass for each new class)."""
    total = SETTINGS.repeat
    if total <= 1 or SETTINGS.driver == "cli" or "_zpt_repeat" in cls.__dict__ or cls.__qualname__ != cls.__name__:
        return
    module = sys.modules.get(cls.__module__)
    if module is None or not unittest.defaultTestLoader.getTestCaseNames(cls):
        return
    if SETTINGS.driver == "env" and SETTINGS.scope() != "class":
        own = getattr(module, "load_tests", None)
        if own is None:
            module.load_tests = _load_tests  # type: ignore[attr-defined]
        elif own is not _load_tests:
            raise ValueError(f"expected no load_tests function in {cls.__module__} under {REPEAT_SCOPE_ENV}="
                             f"{SETTINGS.scope()} (zmqprocesstest orders the repeats with one of its own), got "
                             f"{own!r}; set {REPEAT_SCOPE_ENV}=class, or run python -m zmqprocesstest or pytest")
    for repeat in range(2, total + 1):
        sub = repeat_class(cls, repeat, total)
        setattr(module, sub.__name__, sub)


def _load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: Optional[str]) -> unittest.TestSuite:
    """The ``load_tests`` protocol (unittest, nose2) of a module whose classes are repeated
    from the environment: its tests in the order of the repeat scope, round by round
    within the module for ``module`` and ``session`` (a runner that loads one module at a
    time cannot interleave modules), each round setting the module scope up afresh."""
    return _ordered(flat(tests), SETTINGS.scope(), loader.suiteClass)


# -- one test's run --------------------------------------------------------------------------
class _Watch:
    """A test result that passes everything on and notes the first failure."""

    def __init__(self, result: Any) -> None:
        self._result, self.failed = result, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def addError(self, test: Any, err: Any) -> None:
        self.failed = True
        self._result.addError(test, err)

    def addFailure(self, test: Any, err: Any) -> None:
        self.failed = True
        self._result.addFailure(test, err)

    def addUnexpectedSuccess(self, test: Any) -> None:
        self.failed = True
        self._result.addUnexpectedSuccess(test)

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        self.failed = self.failed or err is not None and not issubclass(err[0], unittest.SkipTest)
        self._result.addSubTest(test, subtest, err)


def run_test(case: unittest.TestCase, result: Any, run: Callable[[Any], Any]) -> Any:
    """Run one test (``TestCase.run``) under the settings: stress from its own random
    stream; with until-failure (driven by the environment), stop the run at its failure."""
    settings = SETTINGS
    if settings.stress:
        repeat, _, _ = repeat_of(type(case))
        _stress.begin(base_id(case), repeat)
    if not (settings.until_failure and settings.driver == "env") or result is None:
        return run(result)
    if _first_failure:
        return result  # stopped already (a runner that does not check shouldStop)
    watch = _Watch(result)
    run(watch)
    if watch.failed:
        note_failure(case.id(), base_id(case), repeat_of(type(case))[0])
        print("\n" + reproduce_message(), file=sys.stderr, flush=True)
        stop = getattr(result, "stop", None)
        if stop is not None:
            stop()
    return result


def note_failure(test_id: str, base: str, repeat: int) -> None:
    """Remember the run's first failure: *test_id*, the id it has in every repeat, its repeat."""
    if not _first_failure:
        _first_failure.append((test_id, f"{base}|{repeat}"))


def first_failure() -> Optional[str]:
    """The id of the run's first failure, if any."""
    return _first_failure[0][0] if _first_failure else None


def reproduce_message(command: Optional[List[str]] = None, rerun_one: Optional[List[str]] = None) -> str:
    """How to reproduce the run's first failure: test, repeat, seed, and two command
    lines in one form, under every runner: the run again, and this test alone. Each
    starts with the current interpreter (:data:`sys.executable`) and the runner, and
    ends with the seed where there is one (*command* and *rerun_one*: the lines of a
    runner that makes its own; by default they are made from the run's command line)."""
    test_id, key = _first_failure[0]
    base, repeat = key.rsplit("|", 1)
    settings = SETTINGS
    seeded = settings.seed is not None and (settings.stress or settings.shuffle)
    seed_text = (f"seed {settings.seed}{' (stress)' if settings.stress else ''}"
                 f"{' (shuffled)' if settings.shuffle else ''}") if seeded else "no seed (neither stress nor shuffle)"
    lines = [f"zmqprocesstest: first failure: {test_id}",
             f"  test {base}, repeat {repeat} of {settings.repeat}, {seed_text}",
             "  reproduce the run: " + " ".join(command if command is not None else _run_line(settings)),
             "  or this test alone: " + " ".join(rerun_one if rerun_one is not None else _alone_line(base, settings))]
    return "\n".join(lines)


#: The run's variables as the environment gave them, before an option or the seed's
#: choice exported any (the reproduce lines repeat these, and add the rest as they must).
_GIVEN_ENV = {name: os.environ[name] for name in (REPEAT_ENV, REPEAT_SCOPE_ENV, UNTIL_FAILURE_ENV, STRESS_ENV, SEED_ENV,
                                                    SHUFFLE_ENV, "ZMQPROCESSTEST_SHARD") if os.environ.get(name)}


def _argv() -> List[str]:
    """The run's command line, the interpreter as :data:`sys.executable` names it."""
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable] + sys.argv)
    return [sys.executable] + argv[1:]


def _runner(argv: List[str]) -> str:
    """``"pytest"``, ``"nose2"``, ``"zmqprocesstest"`` or ``"unittest"`` (any other runner
    of unittest-style tests: a test runs alone under unittest)."""
    if SETTINGS.driver == "pytest":
        return "pytest"
    if SETTINGS.driver == "cli":
        return "zmqprocesstest"
    for at, arg in enumerate(argv[1:], 1):
        if arg == "-m" and at + 1 < len(argv):
            return "nose2" if argv[at + 1].startswith("nose2") else "unittest"
        if not arg.startswith("-"):
            return "nose2" if os.path.basename(arg).startswith("nose2") else "unittest"
    return "unittest"


def _env_words(names: Sequence[str], extra: Dict[str, str]) -> List[str]:
    env = {name: value for name, value in _GIVEN_ENV.items() if name in names}
    env.update(extra)
    return [f"{name}={shlex.quote(value)}" for name, value in env.items()]


def _run_line(settings: Settings) -> List[str]:
    argv = _argv()
    runner = _runner(argv)
    extra: Dict[str, str] = {}
    seeded = settings.seed is not None and (settings.stress or settings.shuffle)
    if runner == "pytest":
        words = _without_option(argv, "--zpt-seed") + (["--zpt-seed", str(settings.seed)] if seeded else [])
    elif runner == "zmqprocesstest":
        words = _without_option(argv, "--seed") + (["--seed", str(settings.seed)] if seeded else [])
    else:  # the environment drives it
        if seeded:
            extra[SEED_ENV] = str(settings.seed)
        words = argv
    names = (REPEAT_ENV, REPEAT_SCOPE_ENV, UNTIL_FAILURE_ENV, STRESS_ENV, SEED_ENV, SHUFFLE_ENV, "ZMQPROCESSTEST_SHARD")
    return _env_words(names, extra) + [shlex.quote(word) for word in words]


def _alone_line(base: str, settings: Settings) -> List[str]:
    """This test alone, repeated and stressed as the run was. Under pytest, pytest (a
    test of a class selected with ``-k``, so its repeats, classes of their own, run
    too); under any other runner ``python -m zmqprocesstest``, which repeats a test
    named on its command line (``python -m unittest`` and nose2 would run it once)."""
    argv = _argv()
    exe = shlex.quote(sys.executable)
    seeded = settings.seed is not None and settings.stress
    if _runner(argv) == "pytest":
        words = [exe, "-m", "pytest", "--zpt-repeat", str(settings.repeat), "--zpt-until-failure"]
        words += ["--zpt-stress"] * settings.stress + (["--zpt-seed", str(settings.seed)] if seeded else [])
        path, _, rest = base.partition("::")
        if settings.repeat > 1 and "::" in rest:  # Class::test: the repeats are Class_repeat2... (-k selects all)
            cls, _, test = rest.rpartition("::")
            return words + [shlex.quote(path), "-k", shlex.quote(f"{cls.split('::')[-1]} and {test}")]
        return words + [shlex.quote(base)]
    words = [exe, "-m", "zmqprocesstest", "--repeat", str(settings.repeat), "--until-failure"]
    words += ["--stress"] * settings.stress + (["--seed", str(settings.seed)] if seeded else [])
    return _top_path(argv) + words + [shlex.quote(base)]


def _without_option(argv: List[str], name: str) -> List[str]:
    out, at = [], 0
    while at < len(argv):
        if argv[at] == name:
            at += 2
            continue
        if not argv[at].startswith(name + "="):
            out.append(argv[at])
        at += 1
    return out


def _top_path(argv: List[str]) -> List[str]:
    """``PYTHONPATH=DIR`` where the run discovered tests from a top-level directory other
    than the current one (a test's id is importable from there)."""
    found = dict(zip(argv, argv[1:] + [""]))
    top = found.get("-t") or found.get("--top-level-directory") or found.get("-s") or found.get("--start-directory")
    if not top or os.path.abspath(top) == os.getcwd():
        return []
    return [f"PYTHONPATH={shlex.quote(top)}"]


# -- the command line ------------------------------------------------------------------------
#: The command line's own options: name -> (takes a value, help).
OPTIONS = {
    "--repeat": (True, "run each test N times, each repeat a fresh test (and a fresh class scope)"),
    "--repeat-scope": (True, "what one repeat spans: test, class, module or session (round by round, the "
                             "default with --until-failure; else class)"),
    "--until-failure": (False, "stop at the first failure and print how to reproduce it"),
    "--stress": (False, "perturb timing (CPU burners, small delays), reproducibly from the seed"),
    "--seed": (True, "the seed of --stress and --shuffle (chosen and printed when not given)"),
    "--shuffle": (False, "run modules, classes and tests in an order made from the seed"),
    "--shard": (True, "run shard I of N (I/N, 1-based); also TEST_SHARD_INDEX/TEST_TOTAL_SHARDS"),
    "--durations-file": (True, "balance shards by the seconds recorded in this file"),
    "--record-durations": (True, "write each test's seconds to this file (JSON)"),
    "--list": (False, "print the ids of the tests that would run, and run none"),
}


def split_options(args: List[str]) -> Tuple[Settings, List[str]]:
    """The command line's own options out of *args*: (settings, the rest for unittest).

    Unset options come from the environment.

    :raises ValueError: for a missing or bad value, naming the option.
    """
    settings, rest, at = Settings(), [], 0
    while at < len(args):
        name, _, inline = args[at].partition("=")
        if name not in OPTIONS:
            rest.append(args[at])
            at += 1
            continue
        value = None
        if OPTIONS[name][0]:
            if not inline and at + 1 >= len(args):
                raise ValueError(f"expected a value after {name}")
            value = inline or args[at + 1]
            at += 0 if inline else 1
        at += 1
        if value is None:  # a flag
            setattr(settings, {"--list": "list_only"}.get(name, name[2:].replace("-", "_")), True)
        elif name == "--repeat":
            if not (value.isdigit() and int(value) >= 1):
                raise ValueError(f"expected --repeat N with N >= 1, got {value!r}")
            settings.repeat = int(value)
        elif name == "--repeat-scope":
            settings.repeat_scope = check_scope(value, "--repeat-scope")
        elif name == "--seed":
            settings.seed = seed_value(value, "--seed N")
        elif name == "--shard":
            settings.shard = _order.parse_shard(value)
        else:
            setattr(settings, name[2:].replace("-", "_"), value)
    settings.driver = "cli"
    return settings, rest


def cli_command(argv: List[str], settings: Settings) -> List[str]:
    """The command line *argv* (``python -m zmqprocesstest ...``) with the run's seed in it."""
    out, at = [], 0
    while at < len(argv):
        if argv[at] == "--seed":
            at += 2
            continue
        if not argv[at].startswith("--seed="):
            out.append(argv[at])
        at += 1
    if settings.seed is not None:
        out += ["--seed", str(settings.seed)]
    return [shlex.quote(arg) for arg in out]


class DurationsResult(unittest.TextTestResult):
    """A text result that notes each test's seconds (for ``--record-durations``)."""

    durations: Dict[str, float] = {}

    def startTest(self, test: Any) -> None:
        self._zpt_started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test: Any) -> None:
        super().stopTest(test)
        DurationsResult.durations[test.id()] = round(time.monotonic() - self._zpt_started, 6)


def write_durations(path: str) -> None:
    """Write the durations noted so far to *path* (JSON, test id -> seconds)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(DurationsResult.durations, f, indent=1, sort_keys=True)


# -- the command line's suite ----------------------------------------------------------------
def flat(test: Any) -> List[Any]:
    """The tests of *test* (a suite, nested or not, or one test), in order."""
    if isinstance(test, unittest.TestSuite):
        return [t for inner in test for t in flat(inner)]
    return [test]


def _module_of(test: Any) -> str:
    return type(test).__module__


def _class_of(test: Any) -> str:
    return f"{type(test).__module__}.{type(test).__qualname__}"


def _test_id(test: Any) -> str:
    return test.id()


def arrange(suite: unittest.TestSuite, settings: Settings) -> unittest.TestSuite:
    """The command line's suite: sharded, shuffled and repeated as *settings* say.

    Shards are made from the suite in id order (the same in every shard's process),
    then the shard is shuffled, then each test runs *repeat* times, in the order the
    repeat scope asks for (:meth:`Settings.scope`). With the ``module`` and ``session``
    scopes each round is a suite of its own (:class:`_Round`) that tears the class and
    module scopes down at its end, so the next round sets them up afresh.
    """
    tests = flat(suite)
    if settings.shard is not None:
        index, total = settings.shard
        _order.confirm_sharding()
        durations = _order.load_durations(settings.durations_file) if settings.durations_file else None
        ordered = sorted(tests, key=_test_id)
        kept = {id(t) for t in _order.shard(ordered, index, total, _class_of, _test_id, durations)}
        tests = [t for t in tests if id(t) in kept]
    if settings.shuffle:
        tests = _order.shuffled(tests, seed(), _module_of, _class_of)
    if settings.repeat > 1:
        return _ordered(_repeated(tests, settings.repeat), settings.scope(), unittest.TestSuite)
    return unittest.TestSuite(tests)


def _ordered(tests: List[Any], scope: str, suite: Callable[..., unittest.TestSuite]) -> unittest.TestSuite:
    """*tests* (every repeat) in the order of *scope*; rounds of their own for ``module`` and ``session``."""
    tests = _order.by_repeat(tests, scope, _repeat_number, _module_of, _base_class_of, base_id)
    pieces = _order.rounds(tests, scope, _repeat_number, _module_of)
    if len(pieces) > 1:
        return suite([_Round(piece) for piece in pieces])
    return suite(tests)


class _Round(unittest.TestSuite):
    """One round of a module or of the whole selection: its class and module scopes are
    torn down at its end (as a whole run's are), so the next round sets them up again."""

    def run(self, result: Any, debug: bool = False) -> Any:
        super().run(result, debug)
        if not getattr(result, "_testRunEntered", False):
            return result  # run on its own: the top level tore down already
        self._tearDownPreviousClass(None, result)  # type: ignore[attr-defined]
        self._handleModuleTearDown(result)  # type: ignore[attr-defined]
        result._previousTestClass = None
        return result


def _repeat_number(test: Any) -> int:
    return repeat_of(type(test))[0] if _repeatable(test) else 1


def _base_class_of(test: Any) -> str:
    base = repeat_of(type(test))[2]
    return f"{base.__module__}.{base.__qualname__}"


def _repeatable(test: Any) -> bool:
    cls = type(test)
    return (isinstance(test, unittest.TestCase) and not isinstance(test, unittest.FunctionTestCase)
            and cls.__name__ != "_FailedTest" and cls.__module__ not in ("doctest", "unittest.loader"))


def _repeated(tests: List[Any], total: int) -> List[Any]:
    """Every test *total* times, repeat r in its own subclass (one per class and repeat).

    Tests that are not methods of a test case class (a load error's stand-in, a
    doctest) run once.
    """
    result: List[Any] = []
    for test in tests:
        result.append(test)
        if _repeatable(test):
            result += [repeat_class(type(test), repeat, total)(test._testMethodName) for repeat in range(2, total + 1)]
    return result


if SETTINGS.stress or SETTINGS.until_failure:
    configure(SETTINGS)
