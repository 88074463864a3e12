"""zmqprocesstest: process and system testing of PyZMQ applications inside unittest."""
from importlib import metadata as _metadata

from . import codecs
from ._config import Timeout
from .case import ProcessTestCase, TestTimeout, module_scope
from .events import ConnectionTimeout, EventError
from .faults import FaultLink, FaultLinkError, Tap
from .loop import override_event
from .marks import MarkExpressionError, mark, process, system
from .mocks import MockCall, MockTimeout, ProcessMock
from .processes import ExitStatusLost, ManagedProcess, ProcessDied, ProcessError, ProcessStopError
from .resources import LeakError
from .sockets import SocketTimeout, TestSocket, make_sock
from .systemtests import (ProgramResult, ProgramTimeout, SystemTestCase, normalise_path, normalise_pids,
                          normalise_ports, normalise_regex, normalise_timestamps, run_program)

# Public exceptions and classes show the path users import them from, in tracebacks
# and reports ("zmqprocesstest.TestTimeout", not "zmqprocesstest.timeout._watchdog.TestTimeout").
for _public in (ConnectionTimeout, EventError, ExitStatusLost, FaultLinkError, LeakError, MarkExpressionError,
                MockTimeout, ProcessDied, ProcessError, ProcessStopError, ProgramTimeout, SocketTimeout, TestTimeout,
                Timeout):
    _public.__module__ = __name__
del _public

try:
    __version__ = _metadata.version(__name__)  # setup.cfg is the one place the version is written
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ConnectionTimeout",
    "EventError",
    "ExitStatusLost",
    "FaultLink",
    "FaultLinkError",
    "LeakError",
    "ManagedProcess",
    "MarkExpressionError",
    "MockCall",
    "MockTimeout",
    "ProcessDied",
    "ProcessError",
    "ProcessMock",
    "ProcessStopError",
    "ProcessTestCase",
    "ProgramResult",
    "ProgramTimeout",
    "SocketTimeout",
    "SystemTestCase",
    "Tap",
    "TestSocket",
    "TestTimeout",
    "Timeout",
    "codecs",
    "make_sock",
    "module_scope",
    "mark",
    "normalise_path",
    "normalise_pids",
    "normalise_ports",
    "normalise_regex",
    "normalise_timestamps",
    "override_event",
    "process",
    "run_program",
    "system",
]
