"""zmqprocesstest: process and system testing of PyZMQ applications inside unittest."""
from .case import EventError, LeakError, ProcessTestCase, TestTimeout
from .marks import mark, process, system
from .mocks import MockCall, MockTimeout, ProcessMock
from .processes import ManagedProcess, ProcessDied, ProcessError, ProcessStopError
from .sockets import SocketTimeout, TestSocket, make_sock
from .systemtests import (ProgramResult, ProgramTimeout, SystemTestCase, normalise_path, normalise_pids,
                     normalise_ports, normalise_regex, normalise_timestamps, run_program)

__version__ = "0.1.0"

__all__ = [
    "EventError",
    "LeakError",
    "ManagedProcess",
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
    "TestSocket",
    "TestTimeout",
    "make_sock",
    "mark",
    "normalise_path",
    "normalise_pids",
    "normalise_ports",
    "normalise_regex",
    "normalise_timestamps",
    "process",
    "run_program",
    "system",
]
