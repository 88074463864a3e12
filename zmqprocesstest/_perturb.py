"""The stress hook: where the library's own operations may be delayed.

:mod:`zmqprocesstest.runs._stress` sets :data:`hook` (and :data:`jitter`) while ``--stress``
is on; the library's sends, receives, connects and process starts call it first, and a
fault link adds :data:`jitter` to each message it forwards. Off (``None``, the default),
a call site costs one module attribute check and nothing else.
"""
from typing import Callable, Optional

#: Called with the operation (``"send"``, ``"recv"``, ``"connect"``, ``"start"``) before it
#: runs; it may sleep. ``None`` when stress is off.
hook: Optional[Callable[[str], None]] = None
#: Returns the extra seconds a fault link holds one message. ``None`` when stress is off.
jitter: Optional[Callable[[], float]] = None
