"""The faults wing: fault links, a proxy between clients and an endpoint that the test can break.

:class:`FaultLink` (:mod:`.link`) listens on an endpoint of its own and forwards each
connection to the real endpoint; its faults (partition, reset, refuse, delay, drop,
seeded loss, duplicates, jitter, rate limits, cuts) break that path on demand, and
:class:`FaultEvents` offers them as events of the test case (``yield ('partition', link)``).
The rest of the wing is the link's engine, private to it: the proxy and its thread
(``_proxy``), its connections and listener (``_connection``), the channel the test's
thread talks to the proxy's thread through (``_channel``), the ZMTP framing it follows
to see whole messages (``_zmtp``) and the seeded chance and pace of the faults (``_seeded``).
"""
from .link import DIRECTIONS, FaultEvents, FaultLink, FaultLinkError, FlowStats, LinkStats, make_link

# The public names show the path users import them from (reprs, pickles, the reference).
for _public in (FaultEvents, FaultLink, FlowStats, LinkStats, make_link):
    _public.__module__ = __name__
del _public

__all__ = ["DIRECTIONS", "FaultEvents", "FaultLink", "FaultLinkError", "FlowStats", "LinkStats", "make_link"]
