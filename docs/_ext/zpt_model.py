"""What the documentation generates from the code: the events table and the diagrams.

Standard library only, and no Sphinx: ``zpt_sphinx`` turns these into pages, and
``tests/test_docs.py`` reads the same functions (and the built pages) to check them.

The events table is committed, as ``docs/includes/events.rst`` (the pages include it), so
that it reads in the sources too; ``python docs/_ext/zpt_model.py`` writes it again from
the code (``--check``: only say whether it is up to date), and ``tests/test_docs.py``
fails while it differs from what the code makes.

* :func:`library_events` finds every event the library defines by the ``@event``
  marker (:data:`zmqprocesstest.loop.EVENT_ATTR`), on any class of any public module,
  so an event added to the library appears in the table without an edit here.
* The diagrams are SVG text. The stop-protocol timeline draws its boxes from
  :data:`zmqprocesstest.stopping.STOP_STEPS` and ``DEFAULT_STOP_TIMEOUTS``, so it
  changes when the protocol does.
"""
import importlib
import inspect
import os
import pkgutil
import re
import signal
import sys
from html import escape
from typing import Any, Dict, List, NamedTuple, Tuple


class EventRow(NamedTuple):
    """One row of the events table."""

    name: str
    yield_form: str        #: ``("send", sock, header, body[, extra_frames, timeout])``
    call_form: str         #: ``self.send(sock, header, body[, extra_frames, timeout])``
    summary: str           #: the first sentence of the docstring, reST
    owner: str             #: the class that defines it, ``module.Class``
    on_test_case: bool     #: whether ProcessTestCase has it (then the reference documents it)


def _import_public_modules() -> None:
    import zmqprocesstest
    for info in pkgutil.iter_modules(zmqprocesstest.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"zmqprocesstest.{info.name}")


def _arguments(func: Any) -> Tuple[List[str], List[str]]:
    """The event's positional parameters (not self): the required ones, then the optional ones."""
    required: List[str] = []
    optional: List[str] = []
    for param in list(inspect.signature(func).parameters.values())[1:]:  # not self
        if param.kind is param.VAR_POSITIONAL:
            optional.append(f"*{param.name}")
        elif param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            (required if param.default is param.empty and not optional else optional).append(param.name)
    return required, optional


def _form(head: List[str], optional: List[str]) -> str:
    inner = ", ".join(head)
    if optional:
        inner += ("[, " if head else "[") + ", ".join(optional) + "]"
    return inner


def _yield_form(name: str, func: Any) -> str:
    """What a generator test (or an async generator test) yields: ``("recv", sock[, timeout])``."""
    required, optional = _arguments(func)
    quoted = '"' + name + '"'
    return "(" + _form([quoted] + required, optional) + ")"


def _call_form(name: str, func: Any) -> str:
    """The same event called from an ``async def`` test: ``self.recv(sock[, timeout])``."""
    required, optional = _arguments(func)
    return f"self.{name}({_form(required, optional)})"


def _summary(func: Any) -> str:
    doc = inspect.getdoc(func) or ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    paragraph = re.sub(r"^Event:\s*", "", paragraph)
    match = re.search(r"(?<!e\.g)(?<!i\.e)\.(\s|$)", paragraph)
    sentence = paragraph[:match.start() + 1] if match else paragraph
    return sentence[:1].upper() + sentence[1:] if sentence else "(no docstring)"


def library_events() -> List[EventRow]:
    """Every method of the library marked ``@event``, in the order of its class and source.

    Looks at each class defined in a module of the package (public modules imported
    first), so an event on a mixin the test case does not use yet is listed too.
    """
    _import_public_modules()
    from zmqprocesstest import ProcessTestCase
    from zmqprocesstest.loop import EVENT_ATTR

    found: Dict[str, Tuple[Tuple[str, int], EventRow]] = {}
    for mod_name, module in sorted(sys.modules.items()):
        if not (mod_name == "zmqprocesstest" or mod_name.startswith("zmqprocesstest.")) or module is None:
            continue
        for cls in list(vars(module).values()):
            if not isinstance(cls, type) or cls.__module__ != mod_name:
                continue
            for name, func in vars(cls).items():
                if not getattr(func, EVENT_ATTR, False) or name in found:
                    continue
                line = inspect.getsourcelines(func)[1]
                row = EventRow(name, _yield_form(name, func), _call_form(name, func), _summary(func),
                               f"{mod_name}.{cls.__qualname__}", getattr(ProcessTestCase, name, None) is func)
                found[name] = ((f"{mod_name}.{cls.__qualname__}", line), row)
    return [row for _key, row in sorted(found.values(), key=lambda item: item[0])]


def events_table_rst(rows: List[EventRow]) -> List[str]:
    """The reST lines of the events table (a list-table), one row per event: what a
    generator or async generator test yields, the call an ``async def`` test makes
    instead, and what the event does."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 35 30 35", "   :class: zpt-events", "",
             "   * - Yield (generator and async generator tests)", "     - Call (``async def`` tests)",
             "     - Does"]
    for row in rows:
        target = (f":meth:`{row.name} <zmqprocesstest.ProcessTestCase.{row.name}>`" if row.on_test_case
                  else f"``{row.name}`` (``{row.owner}``)")
        lines += [f"   * - ``{row.yield_form}``", "", f"       {target}", f"     - ``{row.call_form}``",
                  f"     - {row.summary}"]
    return lines


#: The committed events table, which the pages include.
EVENTS_INCLUDE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "includes", "events.rst")


def events_include() -> str:
    """The text of :data:`EVENTS_INCLUDE`, as the code makes it now."""
    header = [".. Generated from the library's @event methods by `python docs/_ext/zpt_model.py`:",
              "   do not edit. tests/test_docs.py fails while this file differs from what the code makes.", ""]
    return "\n".join(header + events_table_rst(library_events())) + "\n"


# -- diagrams -------------------------------------------------------------------------------------
_FONT = "font-family:sans-serif;font-size:12px"
_CHAR = 6.6  # about the width of a character at 12px


def _svg(name: str, width: int, height: int, title: str, body: List[str]) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" id="zpt-diagram-{name}" class="zpt-diagram" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="zpt-title-{name}" style="max-width:100%;height:auto">',
        f'<title id="zpt-title-{name}">{escape(title)}</title>',
        '<defs><marker id="zpt-arrow-' + name + '" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        *body, "</svg>"])


def _text(x: float, y: float, text: str, anchor: str = "start", weight: str = "normal", size: int = 12,
          fill: str = "#222") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" style="font-family:sans-serif;'
            f'font-size:{size}px;font-weight:{weight}" fill="{fill}">{escape(text)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, stroke: str = "#333", dash: bool = False) -> str:
    extra = ' stroke-dasharray="5,3"' if dash else ""
    return (f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="4" fill="{fill}" '
            f'stroke="{stroke}"{extra}/>')


def _arrow(name: str, x1: float, y1: float, x2: float, y2: float, dash: bool = False, color: str = "#333") -> str:
    extra = ' stroke-dasharray="5,3"' if dash else ""
    return (f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{color}" stroke-width="1.4"'
            f'{extra} marker-end="url(#zpt-arrow-{name})"/>')


def stop_timeline_svg() -> str:
    """The stop protocol as boxes as wide as their bounds, from ``stopping.STOP_STEPS``."""
    from zmqprocesstest.stopping import DEFAULT_STOP_TIMEOUTS, STOP_STEPS

    name, left, scale, top, height = "stop-timeline", 20, 60.0, 70, 54
    total = sum(DEFAULT_STOP_TIMEOUTS.values())
    width = int(left * 2 + total * scale + 170)
    body = [_text(left, 22, "Stopping a process after a test: each step waits, bounded, for the exit",
                  weight="bold")]
    x = float(left)
    for index, (step_name, step) in enumerate(STOP_STEPS.items()):
        seconds = DEFAULT_STOP_TIMEOUTS[step_name]
        w = seconds * scale
        polite = index == 0
        fill = "#d7f0d7" if polite else ("#fde2c8" if step.sig != signal.SIGKILL else "#f6c6c6")
        label = "stop message / event" if step.sig is None else step_name
        body += [_rect(x, top, w - 4, height, fill),
                 _text(x + 6, top + 18, label, weight="bold"),
                 _text(x + 6, top + 36, f"waits up to {seconds:g} s")]
        if step.sig == signal.SIGINT:
            # SIGINT is sent again only while the process sits in the call that missed it.
            for tick in range(1, int(seconds / 0.1)):
                tx = x + tick * 0.1 * scale
                if tx < x + w - 8:
                    body.append(f'<line x1="{tx:.0f}" y1="{top + height - 9}" x2="{tx:.0f}" '
                                f'y2="{top + height - 2}" stroke="#a05a00"/>')
            body.append(_text(x + 6, top + height + 16, "ticks: SIGINT resent every 100 ms", size=11,
                              fill="#a05a00"))
            body.append(_text(x + 6, top + height + 30, "while it sits in the call that missed it", size=11,
                              fill="#a05a00"))
        if index == 1:
            body.append(_text(x + 6, top - 8, "an exit in this or a later step: the test fails (ProcessStopError)",
                              size=11, fill="#a00"))
        x += w
    body.append(_text(left + 6, top - 26, "polite step: an exit here passes", size=11, fill="#060"))
    body += [_rect(x + 10, top, 150, height, "#eee", dash=True),
             _text(x + 18, top + 18, "after the exit:", weight="bold"),
             _text(x + 18, top + 36, "group members left: killed,"),
             _text(x + 18, top + 50, "the test fails", size=11)]
    axis_y = top + height + 48
    body.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + total * scale:.0f}" y2="{axis_y}" stroke="#555"/>')
    second = 0.0
    while second <= total + 1e-9:
        sx = left + second * scale
        body += [f'<line x1="{sx:.0f}" y1="{axis_y - 4}" x2="{sx:.0f}" y2="{axis_y + 4}" stroke="#555"/>',
                 _text(sx, axis_y + 18, f"{second:g} s", anchor="middle", size=11)]
        second += 1.0
    body.append(_text(left, axis_y + 40, "Bounds: stop_timeouts (the defaults, times ZMQPROCESSTEST_TIMEOUT_SCALE).",
                      size=11))
    body.append(_text(left, axis_y + 56, "Signals go to the process group; SIGINT to the main thread of each process.",
                      size=11))
    return _svg(name, width, axis_y + 70, "Stop-protocol timeline", body)


def sendback_svg() -> str:
    """The send-back loop: generator, test case, test socket, process under test."""
    name = "sendback"
    lanes = [("test generator", 90), ("test case (run_events)", 290), ("TestSocket", 490),
             ("process under test", 680)]
    width, height = 800, 470
    body = [_text(20, 22, "One event through the send-back loop", weight="bold")]
    for label, x in lanes:
        body += [_rect(x - 90, 36, 180, 28, "#e4ecf7"), _text(x, 55, label, anchor="middle", weight="bold"),
                 f'<line x1="{x}" y1="64" x2="{x}" y2="{height - 20}" stroke="#999" stroke-dasharray="4,4"/>']
    gen, case, sock, proc = (x for _label, x in lanes)
    steps = [
        (gen, case, 92, 'yield ("recv", sock)', False),
        (case, case, 122, "check the event, call the handler self.recv(sock)", None),
        (case, sock, 152, "recv with the timeout", False),
        (sock, sock, 182, "blocking recv (5 ms), then poll: socket + pidfds", None),
        (proc, sock, 212, "reply  (or: the process exits, its pidfd is readable)", False),
        (sock, case, 246, "frames (or SocketTimeout / ProcessDied)", True),
        (case, gen, 280, "gen.send(frames): the value of the yield", True),
        (case, gen, 314, "or gen.throw(exc): raised at the yield line", True),
    ]
    for x1, x2, y, label, dashed in steps:
        if dashed is None:
            body += [f'<path d="M{x1},{y - 6} h30 v14 h-28" fill="none" stroke="#333" '
                     f'marker-end="url(#zpt-arrow-{name})"/>', _text(x1 + 36, y + 4, label, size=11)]
            continue
        body.append(_arrow(name, x1, y, x2, y, dash=dashed))
        mid = (x1 + x2) / 2
        body.append(_text(mid, y - 6, label, anchor="middle", size=11))
    body += [_text(20, 356, "The generator never blocks: only handlers wait, each wait bounded "
                   "(timeout, run_timeout).", size=11),
             _text(20, 376, "A crash ends the wait at once: the pidfd of the process becomes readable "
                   "and the poll returns.", size=11),
             _text(20, 396, "The traceback of a failure ends at the yield; the test may catch it with "
                   "try/except or assertRaises.", size=11),
             _text(20, 416, "KeyboardInterrupt and SystemExit are not thrown in: the generator is closed "
                   "and they propagate.", size=11)]
    return _svg(name, width, height, "Send-back loop sequence", body)


def guardian_svg() -> str:
    """The runner, its guardian and the process groups under test, and a SIGKILLed runner."""
    name = "guardian"
    width, height = 820, 430
    body = [_text(20, 22, "Who owns what: the runner, its guardian, the process groups", weight="bold")]
    body += [_rect(280, 40, 260, 50, "#e4ecf7"),
             _text(410, 60, "test runner (python -m unittest ...)", anchor="middle", weight="bold"),
             _text(410, 78, "child subreaper: orphans reparent to it", anchor="middle", size=11)]
    body += [_rect(600, 130, 200, 70, "#fff4cc"), _text(700, 150, "guardian", anchor="middle", weight="bold"),
             _text(700, 166, "session of its own", anchor="middle", size=11),
             _text(700, 180, "ignores SIGINT, SIGTERM, SIGHUP", anchor="middle", size=11),
             _text(700, 194, "holds the pipe's read end", anchor="middle", size=11),
             _arrow(name, 540, 80, 640, 130),
             _text(612, 100, "pipe: only the runner", size=11), _text(612, 114, "holds the write end", size=11)]
    groups = [(30, "process under test A", ["its child", "its child"]),
              (300, "process under test B", ["its child"])]
    for gx, label, children in groups:
        body += [_rect(gx, 130, 240, 150, "#f3f3f3", dash=True),
                 _text(gx + 8, 146, "own session and process group", size=11, fill="#555"),
                 _rect(gx + 30, 156, 180, 34, "#d7f0d7"), _text(gx + 120, 178, label, anchor="middle"),
                 _arrow(name, 410, 90, gx + 120, 156)]
        for i, child in enumerate(children):
            cx = gx + 20 + i * 110
            body += [_rect(cx, 226, 100, 30, "#eaf7ea"), _text(cx + 50, 246, child, anchor="middle", size=11),
                     _arrow(name, gx + 120, 190, cx + 50, 226)]
    body += [_rect(560, 226, 220, 46, "#fde2c8"), _text(670, 244, "daemon (double fork, setsid)",
                                                         anchor="middle", size=11),
             _text(670, 260, "reparents to the runner: killed", anchor="middle", size=11),
             _arrow(name, 500, 240, 560, 246, dash=True)]
    body += [_text(20, 312, "Each group, session and private directory is registered with the guardian; "
                   "commands carry its token (ZMQPROCESSTEST_GUARD).", size=11),
             _rect(20, 326, 780, 84, "#f6c6c6"),
             _text(30, 346, "When the runner is SIGKILLed (or exits in any way):", weight="bold"),
             _text(30, 364, "1. the kernel closes the pipe's write end; the guardian's read returns end-of-file",
                   size=11),
             _text(30, 380, "2. the guardian kills every registered group and session, and every process "
                   "carrying its token", size=11),
             _text(30, 396, "3. it removes the private ipc directories. No code runs in the dying runner.",
                   size=11)]
    return _svg(name, width, height, "Guardian and process-group tree", body)


def faultlink_svg() -> str:
    """A fault link between a client and the endpoint it would connect to."""
    name = "faultlink"
    width, height = 800, 210
    body = [_text(20, 22, "A fault link: a proxy the test owns between a client and a server", weight="bold"),
            _rect(20, 60, 170, 50, "#d7f0d7"), _text(105, 82, "client", anchor="middle", weight="bold"),
            _text(105, 98, "connects to link.endpoint", anchor="middle", size=11),
            _rect(300, 50, 200, 70, "#fff4cc"), _text(400, 72, "FaultLink", anchor="middle", weight="bold"),
            _text(400, 90, "one thread, ZMTP framing", anchor="middle", size=11),
            _text(400, 106, "stats, history, report", anchor="middle", size=11),
            _rect(610, 60, 170, 50, "#d7f0d7"), _text(695, 82, "server", anchor="middle", weight="bold"),
            _text(695, 98, "binds the target", anchor="middle", size=11),
            _arrow(name, 190, 78, 300, 78), _text(245, 72, "to_server", anchor="middle", size=11),
            _arrow(name, 300, 98, 190, 98), _text(245, 114, "to_client", anchor="middle", size=11),
            _arrow(name, 500, 78, 610, 78), _arrow(name, 610, 98, 500, 98),
            _text(400, 150, "the test yields: partition, heal, reset, refuse, delay, drop (and the other fault "
                  "events)", anchor="middle", size=11),
            _arrow(name, 400, 138, 400, 122),
            _text(400, 176, "each fault takes effect before the event returns; the report lists them with "
                  "their times", anchor="middle", size=11)]
    return _svg(name, width, height, "Fault link", body)


#: The diagrams, by the name the ``zpt-diagram`` directive takes.
DIAGRAMS = {
    "stop-timeline": stop_timeline_svg,
    "sendback": sendback_svg,
    "guardian": guardian_svg,
    "faultlink": faultlink_svg,
}


def main(argv: List[str]) -> int:
    """Write the events table to :data:`EVENTS_INCLUDE` (``--check``: say whether it is up to date)."""
    if argv not in ([], ["--check"]):
        print(f"usage: python docs/_ext/zpt_model.py [--check]; got {argv}")
        return 2
    made = events_include()
    try:
        with open(EVENTS_INCLUDE, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current == made:
        print(f"{EVENTS_INCLUDE} is up to date")
        return 0
    if argv:
        print(f"{EVENTS_INCLUDE} differs from the code: run python docs/_ext/zpt_model.py")
        return 1
    os.makedirs(os.path.dirname(EVENTS_INCLUDE), exist_ok=True)
    with open(EVENTS_INCLUDE, "w", encoding="utf-8") as f:
        f.write(made)
    print(f"wrote {EVENTS_INCLUDE}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    sys.exit(main(sys.argv[1:]))
