"""The documented path of :mod:`zmqprocesstest.report.timeline`, a test's timeline.

The timeline lives in the report wing. This module *is* that module under its first
name (the same module object), so ``timeline.record`` through either name writes to the
same running test's timeline.
"""
import sys

from .report import timeline as _module

sys.modules[__name__] = _module
