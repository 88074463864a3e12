"""The message sequence diagram of a test's timeline, as a self-contained SVG.

A lifeline per test socket, fault link and process under test (and one for the peer of
a socket whose endpoint no process under test or link is known to use, labelled so);
a row per timeline entry, top to bottom, with its time on the axis at the left; arrows
for messages, labelled with their frames as every report renders them; marks for
lifecycle events, output lines, faults and timeouts; a rule across every lane where
the test failed, carrying the failure's first line. The rows of the teardown are drawn
apart (:func:`split_teardown`), lighter, on the same lanes. Rows, not a
linear time scale: a test's entries come microseconds or seconds apart, and each must
stay readable. Plain SVG 1.1, no script, no external reference: well-formed XML that
any browser shows offline.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

from .timeline import MESSAGE_KINDS, UNKNOWN_PEER

__all__ = ["sequence_svg", "split_teardown"]

_LEFT, _LANE, _TOP, _ROW, _TEXT = 90, 170, 58, 22, 420
_CHAR = 6.7  # the width of a character of the 11 px monospace font, at most (px)
#: Kinds drawn as a rule across every lane, not on one lane.
_RULES = frozenset({"failed", "teardown"})
#: Colour and mark of each kind of entry (anything else: a grey dot).
_STYLE = {"sent": "#1f5fbf", "received": "#1f8f4f", "output": "#777777", "fault": "#c0392b",
          "timeout": "#c0392b", "start": "#333333", "exit": "#333333", "stop": "#8e44ad", "signal": "#8e44ad",
          "subscribe": "#1f5fbf", "failed": "#c0392b", "teardown": "#777777"}
_LANE_FILL = {"socket": "#e8f0fc", "link": "#fdf0e0", "process": "#e8f6ec", "peers": "#f2f2f2", "other": "#f2f2f2"}
_NUMBER = re.compile(r"\d+")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Row = Tuple[float, str, str, str]


def _esc(text: str, most: int = 0) -> str:
    """*text* made safe for XML text and attributes (and cut to *most* characters)."""
    text = _XML_BAD.sub("\N{REPLACEMENT CHARACTER}", text)
    if most and len(text) > most:
        text = text[:most - 1] + "\N{HORIZONTAL ELLIPSIS}"
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _layout(rows: Sequence[Row], lanes: Dict[str, Tuple[str, str]],
            peers: Dict[str, str]) -> Tuple[List[str], Dict[str, str], Dict[str, str]]:
    """Lane order (sockets, links, processes, peers not known, others), each lane's kind,
    and the lane each socket's messages go to (*peers*, else :data:`UNKNOWN_PEER`)."""
    order = [n for kind in ("socket", "link", "process") for n, (k, _) in lanes.items() if k == kind]
    kinds = {name: lanes[name][0] for name in order}
    peer: Dict[str, str] = {}
    for _at, kind, source, _ in rows:
        if kind in MESSAGE_KINDS and source not in peer:
            peer[source] = peers.get(source, UNKNOWN_PEER)
    for lane in dict.fromkeys(peer.values()):
        if lane not in kinds:
            order.append(lane)
            kinds[lane] = "peers"
    for _, kind, source, _ in rows:
        if source not in kinds and kind not in _RULES:
            order.append(source)
            kinds[source] = "socket" if source in peer else "other"
    return order, kinds, peer


def split_teardown(rows: Sequence[Row]) -> Tuple[List[Row], List[Row]]:
    """*rows* before the test's teardown began, and from there on (the ``teardown`` mark
    dropped): the page draws the second lighter, folded under one heading."""
    for i, row in enumerate(rows):
        if row[1] == "teardown":
            return list(rows[:i]), list(rows[i + 1:])
    return list(rows), []


def _extent(x: int, text: str) -> int:
    """Where a label of *text* starting at *x* ends, in the monospace font used. Each
    number counts as the widest a pid or port gets (7 digits), so a picture's size does
    not depend on which pids and ports a run got."""
    return x + int(len(_NUMBER.sub("0000000", text)) * _CHAR) + 1


def sequence_svg(rows: Sequence[Row], lanes: Dict[str, Tuple[str, str]], title: str = "",
                 peers: Optional[Dict[str, str]] = None, *, drawn: Optional[Sequence[Row]] = None,
                 light: bool = False) -> str:
    """The diagram of *rows* (:meth:`~zmqprocesstest.timeline.Timeline.lines`) over
    *lanes* (:attr:`~zmqprocesstest.timeline.Timeline.lanes`), as SVG text.

    *peers*: the lane each test socket's messages go to
    (:meth:`~zmqprocesstest.timeline.Timeline.peers`). *drawn*: the rows of *rows* to
    draw (the lanes are laid out for all of them: the part before the teardown and
    the teardown share one layout); *light*: drawn lighter (the teardown).
    """
    order, kinds, peer = _layout(rows, lanes, peers or {})
    shown = list(rows if drawn is None else drawn)
    x = {name: _LEFT + _LANE // 2 + i * _LANE for i, name in enumerate(order)}
    lanes_end = _LEFT + max(1, len(order)) * _LANE
    right = lanes_end
    for _at, kind, source, text in shown:  # room for the labels right of the last lane, no more
        if kind == "failed":
            right = max(right, _extent(_LEFT, f"test failed here: {text}"))
        elif kind not in MESSAGE_KINDS and kind not in _RULES:
            right = max(right, _extent(x[source] + 9, _cut(_label(kind, text), 60)))
    width = min(right, lanes_end + _TEXT) + 8
    bottom = _TOP + (len(shown) + 1) * _ROW
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bottom + 10}" '
           f'viewBox="0 0 {width} {bottom + 10}" font-family="monospace" font-size="11"'
           + (' opacity="0.6"' if light else "") + ">",
           f"<title>{_esc((title or 'message sequence') + (' (teardown)' if light else ''))}</title>",
           "<defs>" + "".join(
               f'<marker id="arrow-{kind}{"-t" if light else ""}" markerWidth="8" markerHeight="8" refX="7" '
               f'refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{_STYLE[kind]}"/></marker>'
               for kind in ("sent", "received")) + "</defs>",
           f'<rect x="0" y="0" width="{width}" height="{bottom + 10}" fill="#ffffff"/>',
           f'<line x1="{_LEFT - 8}" y1="{_TOP - 6}" x2="{_LEFT - 8}" y2="{bottom}" stroke="#999999"/>',
           f'<text x="{_LEFT - 12}" y="{_TOP - 12}" text-anchor="end" fill="#555555">time (s)</text>']
    for name in order:
        kind, detail = lanes.get(name, (kinds[name], ""))
        below = kinds[name]  # the lane's kind, under its name
        if kinds[name] == "peers":
            kind = below = "peer"
            detail = ("the peer of a socket whose endpoint no process under test or fault link is known to use"
                      if name == UNKNOWN_PEER else "one of these processes, which use the socket's endpoint")
        out.append(f'<g><title>{_esc(f"{kind} {name}" + (f": {detail}" if detail else ""))}</title>'
                   f'<rect x="{x[name] - _LANE // 2 + 6}" y="8" width="{_LANE - 12}" height="30" rx="4" '
                   f'fill="{_LANE_FILL.get(kinds[name], "#f2f2f2")}" stroke="#888888"/>'
                   f'<text x="{x[name]}" y="20" text-anchor="middle" font-weight="bold">{_esc(name, 22)}</text>'
                   f'<text x="{x[name]}" y="32" text-anchor="middle" fill="#555555">{_esc(below)}</text></g>')
        out.append(f'<line x1="{x[name]}" y1="38" x2="{x[name]}" y2="{bottom}" stroke="#bbbbbb" '
                   'stroke-dasharray="4,3"/>')
    for i, (at, kind, source, text) in enumerate(shown):
        y = _TOP + i * _ROW + _ROW // 2
        colour = _STYLE.get(kind, "#555555")
        out.append(f'<text x="{_LEFT - 12}" y="{y + 4}" text-anchor="end" fill="#555555">+{at:.3f}</text>')
        if kind in _RULES:  # the whole line: what does not fit is cut off at the picture's edge
            label = f"test failed here: {text}" if kind == "failed" else f"{kind}: {text}"
            out.append(f'<g><title>{_esc(label)}</title><line x1="{_LEFT - 8}" y1="{y + 6}" x2="{width - 4}" '
                       f'y2="{y + 6}" stroke="{colour}" stroke-width="2" stroke-dasharray="6,3"/>'
                       f'<text x="{_LEFT}" y="{y + 2}" fill="{colour}" font-weight="bold">{_esc(label)}</text></g>')
            continue
        here = x[source]
        if kind in MESSAGE_KINDS:
            there = x[peer[source]]
            start, end = (here, there) if kind == "sent" else (there, here)
            out.append(f'<line x1="{start}" y1="{y}" x2="{end - 4 if end > start else end + 4}" y2="{y}" '
                       f'stroke="{colour}" stroke-width="1.5" marker-end="url(#arrow-{kind}{"-t" if light else ""})"/>')
            label_x = (start + end) // 2 if start != end else here + 8
            label = (f'<text x="{label_x}" y="{y - 4}" text-anchor="{"middle" if start != end else "start"}" '
                     f'fill="{colour}">{_esc(text, 44)}</text>')
            # A label cut to fit between the lanes keeps the whole message (every frame, or
            # the codec's rendering) as its tooltip.
            out.append(f'<g><title>{_esc(text)}</title>{label}</g>' if len(text) > 44 else label)
            continue
        if kind in ("fault", "timeout"):
            out.append(f'<path d="M{here},{y - 6} L{here + 6},{y} L{here},{y + 6} L{here - 6},{y} z" '
                       f'fill="{colour}"/>')
        elif kind == "output":
            out.append(f'<circle cx="{here}" cy="{y}" r="2.5" fill="{colour}"/>')
        else:
            out.append(f'<rect x="{here - 4}" y="{y - 4}" width="8" height="8" fill="{colour}"/>')
        out.append(f'<text x="{here + 9}" y="{y + 4}" fill="{colour}">{_esc(_label(kind, text), 60)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _label(kind: str, text: str) -> str:
    return f"| {text}" if kind == "output" else f"{kind}: {text}"


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1] + "\N{HORIZONTAL ELLIPSIS}"
