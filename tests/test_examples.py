"""The example application's process and system tests (docs/examples) join this suite.

Every test class that ``unittest discover`` finds under docs/examples is bound in this
module's namespace, so ``python -m unittest discover -s tests`` runs the documentation's
examples too: the docs cannot drift from the code. Plain module attributes (not
unittest's ``load_tests`` protocol) are what every runner collects the same way:
unittest, nose2, pytest (with pytest-xdist) and unittest-parallel alike.

The classes stay the example modules' own (their ``__module__`` is ``test_pongproc``
and so on), so golden files, module marks and test ids are the examples' own; only the
name under which this module holds a class is prefixed with its module
(``test_pongproc__TestPongProc``), so two example modules may use the same class name.
An example module that does not import is an error of this module, under every runner.
"""
import unittest

from .support import EXAMPLES


def _test_classes(suite):
    """The distinct test classes in *suite*, in the order discovery found them."""
    found = {}
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            for cls in _test_classes(test):
                found.setdefault(cls, None)
        else:
            found.setdefault(type(test), None)
    return list(found)


def _example_classes():
    loader = unittest.TestLoader()
    suite = loader.discover(EXAMPLES, pattern="test*.py", top_level_dir=EXAMPLES)
    if loader.errors:
        raise ImportError("cannot load the examples under docs/examples:\n" + "\n".join(loader.errors))
    classes = {}
    for cls in _test_classes(suite):
        name = f"{cls.__module__.replace('.', '_')}__{cls.__qualname__.replace('.', '_')}"
        if name in classes:
            raise ImportError(f"two example test classes would both be held as {name!r}: "
                              f"{classes[name]!r} and {cls!r}")
        classes[name] = cls
    return classes


EXAMPLE_CLASSES = _example_classes()
globals().update(EXAMPLE_CLASSES)
