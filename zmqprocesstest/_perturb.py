"""The stress hooks: where the library's own operations, and the processes under test, may
be perturbed.

:mod:`zmqprocesstest.runs._stress` sets them while ``--stress`` is on; off (``None``, the
default), a call site costs one module attribute check and nothing else.

* :data:`hook`: the library's sends, receives and connects, each event a test yields,
  and each process start call it first;
* :data:`jitter`: a fault link adds it to each message it forwards;
* :data:`hold`: a forked process under test, covered by the guardian and waiting for
  the runner's word before its own code runs, is handed over with the function that
  gives that word: the stress gives it now, after a delay, or at the test's next event;
  A command under test is held the same way: it runs through ``/bin/sh``, which waits
  for that word and then execs the command's program (same pid, group and output);
* :data:`started` and :data:`ended`: a process under test that may be paused now and
  then (SIGSTOP/SIGCONT of its group), and the processes to leave alone from now on
  (their owner releases them, or one is stopped: every held start goes and every pause
  of theirs ends first); :data:`let_go`: every held start goes now (before a signal).

:data:`signals` is held while a pause stops or resumes a group, and by the ``freeze``
and ``thaw`` events, so a pause never resumes a process the test froze.
"""
import threading
from typing import Any, Callable, List, Optional, Sequence

#: Called with the operation (``"send"``, ``"recv"``, ``"connect"``, ``"event"``,
#: ``"start"``) before it runs, and the name of the test socket doing it (or ``""``); it
#: may sleep. ``None`` when stress is off.
hook: Optional[Callable[[str, str], None]] = None
#: Returns the extra seconds a fault link holds one message. ``None`` when stress is off.
jitter: Optional[Callable[[], float]] = None
#: Called with a forked process's name and the function that lets it run its own code
#: (to be called exactly once, from any thread). ``None`` when stress is off.
hold: Optional[Callable[[str, Callable[[], None]], None]] = None
#: Gives every held start its word now (before a signal to a process). ``None`` when off.
let_go: Optional[Callable[[], None]] = None
#: Called with a started process under test (a ``ManagedProcess``). ``None`` when off.
started: Optional[Callable[[Any], None]] = None
#: Called with processes under test about to be stopped (their pauses end first), at
#: the end of their owner. ``None`` when off.
ended: Optional[Callable[[Sequence[Any]], None]] = None
#: Held while a group is stopped or resumed by a pause, a freeze or a thaw.
signals = threading.Lock()
#: Write ends of the pipes of starts held now: a process forked meanwhile closes them.
held_fds: List[int] = []
