"""The report wing: what happened in a test, and how it is shown.

* :mod:`~zmqprocesstest.report.timeline`: one :class:`Timeline` per test (messages,
  process lifecycle, output, faults on one clock) and the one :func:`record` channel
  everything in a test writes to; how frames are shortened for reports;
* :mod:`~zmqprocesstest.report.html`: a page per test, the index, the result watcher;
* ``_svg``: the sequence diagram of a page.

``zmqprocesstest.timeline`` and ``zmqprocesstest.report_html`` stay the documented paths
of the first two.
"""
from .timeline import Timeline, record

__all__ = ["Timeline", "record"]
