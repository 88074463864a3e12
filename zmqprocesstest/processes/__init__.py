"""The processes wing: processes under test, started, watched, stopped, and never left behind.

It holds every line of the library that is specific to Linux, so a port starts here:

* :mod:`~zmqprocesstest.processes.managed`: :class:`ManagedProcess`, the one record of a
  process under test, and :class:`CommandProcess` for command lines;
* ``_forked``: :mod:`multiprocessing` processes started by fork;
* :mod:`~zmqprocesstest.processes.stopping`: the stop protocol (stop message, SIGINT,
  SIGTERM, SIGKILL, each bounded);
* ``_output``: captured output, drained by one kept thread;
* ``_os``: the one seam for the operating system (``/proc``, pidfds, ``tgkill``, the
  subreaper);
* ``_guardian`` and ``_guardian_process``: nothing outlives the runner; ``_reaper``:
  descendants that leave their group; ``_leftovers``: processes still running when a
  worker exits.

The rest of the library imports what it needs of the private modules through the names
below; only the core (the test case and its resources) reaches into them directly.
"""
from ._forked import ForkedProcess
from ._guardian import forget_group, watch_group
from ._os import HAS_SIGALRM, blocking_call, exit_status, open_fd_numbers, open_fds
from .managed import CommandProcess, ExitStatusLost, ManagedProcess, ProcessDied, ProcessError, ProcessStopError, launch

__all__ = ["CommandProcess", "ExitStatusLost", "ForkedProcess", "HAS_SIGALRM", "ManagedProcess", "ProcessDied",
           "ProcessError", "ProcessStopError", "blocking_call", "exit_status", "forget_group", "launch",
           "open_fd_numbers", "open_fds", "watch_group"]
