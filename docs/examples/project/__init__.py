# Only because this example project lives inside the documentation's example tree:
# a real project has no __init__.py at its root, and needs nothing in this file.
#
# The documentation's own test run discovers docs/examples, so it imports this
# project's tests as ``project.tests.test_server``, and pytest, seeing this file, does
# the same even when run from the project root. Both need the project root on sys.path
# for ``import echoapp`` to work as it does in a real project. Appended, not
# prepended, so that this project's ``tests`` package hides no other one.
import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
