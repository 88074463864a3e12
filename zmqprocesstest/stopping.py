"""The documented path of :mod:`zmqprocesstest.processes.stopping`, the stop protocol.

The stop protocol lives in the processes wing. This module *is* that module under its
first name (the same module object), so an import or a patch through either name sees
the same thing.
"""
import sys

from .processes import stopping as _module

sys.modules[__name__] = _module
