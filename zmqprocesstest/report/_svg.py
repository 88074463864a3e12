"""The message sequence diagram of a test's timeline, as a self-contained SVG.

A lifeline per test socket, fault link and process under test (and one for the peers of
a socket that talks to none of them in particular); a row per timeline entry, top to
bottom, with its time on the axis at the left; arrows for messages, labelled with their
short frames; marks for lifecycle events, output lines, faults and timeouts. Rows, not a
linear time scale: a test's entries come microseconds or seconds apart, and each must
stay readable. Plain SVG 1.1, no script, no external reference: well-formed XML that
any browser shows offline.
"""
from __future__ import annotations

import re
from typing import Dict, List, Sequence, Tuple

from .timeline import MESSAGE_KINDS

__all__ = ["sequence_svg"]

_LEFT, _LANE, _TOP, _ROW, _TEXT = 90, 170, 58, 22, 260
_PEERS = "peers"
#: Colour and mark of each kind of entry (anything else: a grey dot).
_STYLE = {"sent": "#1f5fbf", "received": "#1f8f4f", "output": "#777777", "fault": "#c0392b",
          "timeout": "#c0392b", "start": "#333333", "exit": "#333333", "stop": "#8e44ad", "signal": "#8e44ad",
          "subscribe": "#1f5fbf"}
_LANE_FILL = {"socket": "#e8f0fc", "link": "#fdf0e0", "process": "#e8f6ec", "peers": "#f2f2f2", "other": "#f2f2f2"}
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Row = Tuple[float, str, str, str]


def _esc(text: str, most: int = 0) -> str:
    """*text* made safe for XML text and attributes (and cut to *most* characters)."""
    text = _XML_BAD.sub("\N{REPLACEMENT CHARACTER}", text)
    if most and len(text) > most:
        text = text[:most - 1] + "\N{HORIZONTAL ELLIPSIS}"
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _layout(rows: Sequence[Row], lanes: Dict[str, Tuple[str, str]]) -> Tuple[List[str], Dict[str, str], Dict[str, str]]:
    """Lane order (sockets, links, processes, peers, others), each lane's kind, and the
    lane each socket's messages go to."""
    order = [n for kind in ("socket", "link", "process") for n, (k, _) in lanes.items() if k == kind]
    kinds = {name: lanes[name][0] for name in order}
    links = [(n, d.split(" -> ")[0]) for n, (k, d) in lanes.items() if k == "link"]
    processes = [n for n in order if kinds[n] == "process"]
    peer: Dict[str, str] = {}
    for _at, kind, source, _ in rows:
        if kind in MESSAGE_KINDS and source not in peer:
            detail = lanes.get(source, ("socket", ""))[1]
            through = [n for n, endpoint in links if endpoint and endpoint in detail]
            peer[source] = through[0] if through else processes[0] if len(processes) == 1 else _PEERS
    if _PEERS in peer.values():
        order.append(_PEERS)
        kinds[_PEERS] = "peers"
    for _, _, source, _ in rows:
        if source not in kinds:
            order.append(source)
            kinds[source] = "socket" if source in peer else "other"
    return order, kinds, peer


def sequence_svg(rows: Sequence[Row], lanes: Dict[str, Tuple[str, str]], title: str = "") -> str:
    """The diagram of *rows* (:meth:`~zmqprocesstest.timeline.Timeline.lines`) over
    *lanes* (:attr:`~zmqprocesstest.timeline.Timeline.lanes`), as SVG text."""
    order, kinds, peer = _layout(rows, lanes)
    x = {name: _LEFT + _LANE // 2 + i * _LANE for i, name in enumerate(order)}
    width = _LEFT + max(1, len(order)) * _LANE + _TEXT
    bottom = _TOP + (len(rows) + 1) * _ROW
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bottom + 10}" '
           f'viewBox="0 0 {width} {bottom + 10}" font-family="monospace" font-size="11">',
           f"<title>{_esc(title or 'message sequence')}</title>",
           "<defs>" + "".join(
               f'<marker id="arrow-{kind}" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
               f'<path d="M0,0 L8,4 L0,8 z" fill="{_STYLE[kind]}"/></marker>' for kind in ("sent", "received"))
           + "</defs>",
           f'<rect x="0" y="0" width="{width}" height="{bottom + 10}" fill="#ffffff"/>',
           f'<line x1="{_LEFT - 8}" y1="{_TOP - 6}" x2="{_LEFT - 8}" y2="{bottom}" stroke="#999999"/>',
           f'<text x="{_LEFT - 12}" y="{_TOP - 12}" text-anchor="end" fill="#555555">time (s)</text>']
    for name in order:
        kind, detail = lanes.get(name, (kinds[name], ""))
        detail = "the peers the test's sockets talk to" if name == _PEERS else detail
        out.append(f'<g><title>{_esc(f"{kind} {name}" + (f": {detail}" if detail else ""))}</title>'
                   f'<rect x="{x[name] - _LANE // 2 + 6}" y="8" width="{_LANE - 12}" height="30" rx="4" '
                   f'fill="{_LANE_FILL.get(kinds[name], "#f2f2f2")}" stroke="#888888"/>'
                   f'<text x="{x[name]}" y="20" text-anchor="middle" font-weight="bold">{_esc(name, 22)}</text>'
                   f'<text x="{x[name]}" y="32" text-anchor="middle" fill="#555555">{_esc(kinds[name])}</text></g>')
        out.append(f'<line x1="{x[name]}" y1="38" x2="{x[name]}" y2="{bottom}" stroke="#bbbbbb" '
                   'stroke-dasharray="4,3"/>')
    for i, (at, kind, source, text) in enumerate(rows):
        y = _TOP + i * _ROW + _ROW // 2
        colour = _STYLE.get(kind, "#555555")
        out.append(f'<text x="{_LEFT - 12}" y="{y + 4}" text-anchor="end" fill="#555555">+{at:.3f}</text>')
        here = x[source]
        if kind in MESSAGE_KINDS:
            there = x[peer[source]]
            start, end = (here, there) if kind == "sent" else (there, here)
            out.append(f'<line x1="{start}" y1="{y}" x2="{end - 4 if end > start else end + 4}" y2="{y}" '
                       f'stroke="{colour}" stroke-width="1.5" marker-end="url(#arrow-{kind})"/>')
            label_x = (start + end) // 2 if start != end else here + 8
            out.append(f'<text x="{label_x}" y="{y - 4}" text-anchor="{"middle" if start != end else "start"}" '
                       f'fill="{colour}">{_esc(text, 44)}</text>')
            continue
        if kind in ("fault", "timeout"):
            out.append(f'<path d="M{here},{y - 6} L{here + 6},{y} L{here},{y + 6} L{here - 6},{y} z" '
                       f'fill="{colour}"/>')
        elif kind == "output":
            out.append(f'<circle cx="{here}" cy="{y}" r="2.5" fill="{colour}"/>')
        else:
            out.append(f'<rect x="{here - 4}" y="{y - 4}" width="8" height="8" fill="{colour}"/>')
        shown = f"| {text}" if kind == "output" else f"{kind}: {text}"
        out.append(f'<text x="{here + 9}" y="{y + 4}" fill="{colour}">{_esc(shown, 60)}</text>')
    out.append("</svg>")
    return "\n".join(out)
