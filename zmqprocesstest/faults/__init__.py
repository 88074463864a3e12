"""The faults wing: fault links, a proxy between clients and an endpoint that the test can break.

:class:`FaultLink` (:mod:`.link`) listens on an endpoint of its own and forwards each
connection to the real endpoint; its faults (partition, reset, refuse, delay, drop,
seeded loss, duplicates, jitter, rate limits, cuts) break that path on demand; each is
one method, marked ``@fault``, and :class:`FaultEvents` (:mod:`.events`) offers them as
events of the test case (``yield ('partition', link)``), made from those marks.
The rest of the wing is the link's engine, private to it: the proxy and its thread
(``_proxy``), its connections and listener (``_connection``), the channel the test's
thread talks to the proxy's thread through (``_channel``), the ZMTP framing it follows
to see whole messages (``_zmtp``) and the seeded chance and pace of the faults (``_seeded``).
A :class:`Tap` (:mod:`.tap`) is a fault link that reads those messages for the reports.
"""
from .events import FaultEvents
from .link import DIRECTIONS, FaultLink, FaultLinkError, FlowStats, LinkStats, make_link
from .tap import Tap, TapMessage

# The event mixin shows the path the reference documents it under (ProcessTestCase's bases).
# FaultLink, LinkStats and FlowStats keep their module: Sphinx reads their attributes' docs there.
FaultEvents.__module__ = __name__

__all__ = ["DIRECTIONS", "FaultEvents", "FaultLink", "FaultLinkError", "FlowStats", "LinkStats", "Tap", "TapMessage",
           "make_link"]
