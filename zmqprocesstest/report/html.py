"""A picture of every failure: one self-contained HTML page per test, and an index.

With ``ZMQPROCESSTEST_REPORT_DIR=DIR`` (``python -m zmqprocesstest --report-dir DIR``)
each failing test, or every test with ``ZMQPROCESSTEST_REPORT_ALL=1``
(``--report-all``), is written to ``DIR/tests/<test id>.html``: the message sequence
diagram of its timeline (:mod:`zmqprocesstest.report._svg`) with a rule where the test
failed and its teardown folded apart, the timeline as text (folded), the traceback up
to the exception, and the processes' state at the failure. No JavaScript, nothing
fetched: the pages are CI artifacts opened offline.

Where the status and duration come from, under any runner: the test case itself. Its
``run()`` hands the runner's result object a thin wrapper (:class:`_Watcher`) that notes
the outcome the runner is told (success, failure, error, skip...) and passes every call
on; at the end of ``run()`` the test appends one JSON line (id, status, duration, page)
to ``DIR/.results/<pid>.jsonl``, one file per runner process, so parallel runners never
write the same file. ``DIR/index.html`` is rebuilt from every such file when a runner
process exits, and by ``python -m zmqprocesstest.report_html DIR`` after a runner that
was killed. With the directory unset, a test pays one environment lookup.
"""
from __future__ import annotations

import atexit
import html
import json
import os
import re
import sys
import time
import traceback
import warnings
from typing import Any, Dict, List, Optional, Set, Tuple

from .._config import REPORT_ALL_ENV, REPORT_DIR_ENV, env_flag
from ._svg import sequence_svg, split_teardown
from .timeline import MESSAGE_KINDS, Timeline

__all__ = ["finish_dir", "page_html", "rebuild_index", "report_dir", "watch"]

_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}
pre{background:#f6f6f6;padding:.8em;white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}
h1{overflow-wrap:anywhere}.note{color:#555;max-width:60em}details{margin:.6em 0}summary{cursor:pointer;color:#555}
table{border-collapse:collapse}
td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left;overflow-wrap:anywhere}
.passed{color:#1f8f4f}.failed,.error,.unexpected-success{color:#c0392b;font-weight:bold}
.skipped,.expected-failure{color:#777}.diagram{overflow-x:auto;border:1px solid #ddd}"""

#: The worst outcome a test was told wins (a failing subtest fails the test).
_RANK = {"passed": 0, "skipped": 1, "expected-failure": 1, "unexpected-success": 2, "failed": 3, "error": 4}
_FAILED = {"failed", "error", "unexpected-success"}

# Pages of this process, by directory and name: a repeated test gets -2, -3...
_written: Dict[Tuple[str, str], int] = {}
_dirs: List[str] = []  # report directories this process wrote to: their index is rebuilt at exit


def report_dir() -> Optional[str]:
    """The report directory (absolute) from :data:`~zmqprocesstest._config.REPORT_DIR_ENV`, or ``None``."""
    value = os.environ.get(REPORT_DIR_ENV)
    return os.path.abspath(value) if value else None


def _page_name(directory: str, test_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_id)[:150] or "test"
    seen = _written.get((directory, name), 0)
    _written[(directory, name)] = seen + 1
    return f"{name}.html" if not seen else f"{name}-{seen + 1}.html"


class _Watcher:
    """The runner's result object, seen through: notes the outcome, passes every call on."""

    def __init__(self, result: Any, directory: str, page: str) -> None:
        self._result, self._directory, self._page = result, directory, page
        self._began = time.monotonic()
        self._status, self._details, self._state = "passed", "", ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def _note(self, status: str, test: Any, err: Any = None) -> None:
        if _RANK[status] >= _RANK[self._status]:
            self._status = status
        report = None
        if isinstance(err, tuple) and len(err) == 3:
            report = getattr(err[1], "_zpt_report", None)  # (the text report, the state in it)
        if err is not None and not isinstance(err, str):
            try:
                err = self._result._exc_info_to_string(err, test)
            except Exception:  # not unittest's own result class (pytest's, nose2's...)
                err = "".join(traceback.format_exception(*err)) if isinstance(err, tuple) else str(err)
        if isinstance(report, tuple) and len(report) == 2 and isinstance(err, str):
            # The page draws the timeline and shows the state on its own: the traceback
            # stops at the exception.
            note, state = report
            err = err.replace("\n" + note, "", 1) if "\n" + note in err else err
            if state and not self._state:
                self._state = state
        if err:
            self._details += err if not self._details else "\n" + err

    def addFailure(self, test: Any, err: Any) -> None:
        self._note("failed", test, err)
        self._result.addFailure(test, err)

    def addError(self, test: Any, err: Any) -> None:
        self._note("error", test, err)
        self._result.addError(test, err)

    def addSkip(self, test: Any, reason: str) -> None:
        self._note("skipped", test, f"skipped: {reason}")
        self._result.addSkip(test, reason)

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        self._note("expected-failure", test)
        self._result.addExpectedFailure(test, err)

    def addUnexpectedSuccess(self, test: Any) -> None:
        self._note("unexpected-success", test)
        self._result.addUnexpectedSuccess(test)

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        if err is not None:
            self._note("failed" if issubclass(err[0], test.failureException) else "error", subtest, err)
        self._result.addSubTest(test, subtest, err)

    def finish(self, test: Any) -> None:
        """After the test's ``run()``: write its page if it failed (or every page), and its result line."""
        duration = time.monotonic() - self._began
        page: Optional[str] = None
        if self._status in _FAILED or env_flag(REPORT_ALL_ENV):
            page = os.path.join("tests", self._page)
            timeline = getattr(test, "_timeline", None)
            text = page_html(test.id(), self._status, duration, timeline, self._details, self._state)
            try:
                _write(os.path.join(self._directory, page), text)
            except OSError as exc:
                _unwritable(self._directory, exc, f"the page of {test.id()}")
                page = None
        line = json.dumps({"id": test.id(), "status": self._status, "duration": round(duration, 6), "page": page})
        try:
            _append(self._directory, line)
        except OSError as exc:
            _unwritable(self._directory, exc, "the test's result line")


_broken: Set[str] = set()  # report directories found unwritable at the start: no report there
_told: Set[str] = set()  # report directories whose write error was told (once)


def _warn(message: str) -> None:
    """Tell *message* once, as a :class:`RuntimeWarning`; where warnings are made errors,
    on stderr: a report that cannot be written never ends the run."""
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    except Warning:
        print(message, file=sys.stderr)


def _unwritable(directory: str, exc: OSError, what: str) -> None:
    if directory not in _told:
        _told.add(directory)
        _warn(f"zmqprocesstest: cannot write {what} in the report directory {directory} ({exc}); the run goes on "
              f"without it, and this is told once ({REPORT_DIR_ENV})")


def watch(test: Any, result: Any) -> Optional[_Watcher]:
    """A watcher of *result* for *test* if a report directory is set (else ``None``);
    the page's path is told to the test now, so its failure report can point to it.

    The directory is checked at this process's first test: it is made, and this
    process's results file in it opened. One that cannot be written is told once (a
    :class:`RuntimeWarning`) and the run goes on without a report.
    """
    directory = report_dir()
    if directory is None or result is None or directory in _broken:
        return None
    if directory not in _results:
        try:
            _open_results(directory)
        except OSError as exc:
            _broken.add(directory)
            _unwritable(directory, exc, "anything")
            return None
    watcher = _Watcher(result, directory, _page_name(directory, test.id()))
    test._zpt_page = os.path.join(directory, "tests", watcher._page)
    test._timeline = None  # a test run again (repeated) starts without the last run's
    return watcher


_made: set = set()  # directories made by this process (made once, not looked up per page)


def _write(path: str, text: str) -> None:
    folder = os.path.dirname(path)
    if folder not in _made:
        os.makedirs(folder, exist_ok=True)
        _made.add(folder)
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))


_results: Dict[str, Any] = {}  # report directory -> this process's open results file
_registered: List[Any] = []


def _open_results(directory: str) -> Any:
    """This process's results file in *directory*, opened now if it is not open yet."""
    out = _results.get(directory)
    if out is None:
        os.makedirs(os.path.join(directory, ".results"), exist_ok=True)
        out = _results[directory] = open(os.path.join(directory, ".results", f"{os.getpid()}.jsonl"), "a",
                                         encoding="utf-8")
        if not _registered:
            _registered.append(atexit.register(_at_exit))
        _dirs.append(directory)
    return out


def _append(directory: str, line: str) -> None:
    out = _open_results(directory)
    out.write(line + "\n")
    out.flush()


def finish_dir(directory: str) -> Optional[str]:
    """Close this process's results file in *directory* and rebuild its index (done at
    exit for every directory written to); return the index's path, ``None`` if the
    directory is gone."""
    out = _results.pop(directory, None)
    if out is not None:
        out.close()
        _dirs.remove(directory)
    if not os.path.isdir(directory):
        return None
    return rebuild_index(directory)


def _at_exit() -> None:
    for directory in list(_dirs):
        try:
            finish_dir(directory)
        except OSError as exc:
            print(f"zmqprocesstest: could not write {directory}/index.html: {exc}", file=sys.stderr)


def page_html(test_id: str, status: str, duration: float, timeline: Optional[Timeline], details: str,
              state: str = "") -> str:
    """One test's page, self-contained: status; the message sequence with a rule where
    the test failed and its teardown folded; the timeline as text, folded; the
    traceback (*details*, which stops at the exception); and *state*, the processes and
    fault links as the failure found them."""
    rows = timeline.lines() if timeline is not None else []
    parts = [f"<h1>{html.escape(test_id)}</h1>",
             f'<p>Status: <span class="{status}">{status}</span> &middot; duration {duration:.3f} s'
             f' &middot; <a href="../index.html">all tests</a></p>']
    if timeline is not None and rows:
        lanes = timeline.lanes
        sockets = [name for name, (kind, _) in lanes.items() if kind == "socket"]
        sockets += [source for _, kind, source, _ in rows if kind in MESSAGE_KINDS and source not in sockets]
        peers = timeline.peers(sockets)
        before, after = split_teardown(rows)
        dropped = " Older entries were dropped: the timeline keeps the last ones." if timeline.full() else ""
        parts += ["<h2>Message sequence</h2>",
                  '<p class="note">One row per entry, in the order they happened; times are seconds from '
                  "the test's start. An output line's time is when the test process read it from the "
                  "process's pipe, not when the process wrote it: it can come after messages the process "
                  f"sent later.{dropped}</p>"]
        parts += _unseen_note(timeline, peers)
        parts += ['<div class="diagram">', sequence_svg(rows, lanes, test_id, peers, drawn=before), "</div>"]
        if after:
            parts += [f'<details class="teardown"><summary>Teardown: {_plural(len(after), "row")} (tearDown, '
                      "cleanups, stopping the processes)</summary>", '<div class="diagram">',
                      sequence_svg(rows, lanes, test_id, peers, drawn=after, light=True), "</div></details>"]
        parts += [f"<details><summary>The timeline as text ({_plural(len(rows), 'entry', 'entries')})"
                  "</summary>", "<pre>" + html.escape(timeline.format(rows)) + "</pre></details>"]
    else:
        parts.append("<p>No timeline: the test made no sockets, processes or fault links.</p>")
    if details:
        parts += ["<h2>Traceback</h2>", "<pre>" + html.escape(details) + "</pre>"]
    if state:
        parts += ["<h2>Processes and fault links at the failure</h2>", "<pre>" + html.escape(state) + "</pre>"]
    return _document(test_id, "\n".join(parts))


def _unseen_note(timeline: Timeline, peers: Dict[str, str]) -> List[str]:
    """Where two processes under test may talk to each other, what the picture cannot
    show and how to see it."""
    processes = [name for name, (kind, _) in timeline.lanes.items() if kind == "process"]
    if len(processes) < 2:
        return []
    return ['<p class="note">Messages between the processes under test are not drawn: the picture sees '
            "only the test's own sockets and its fault links. To see the messages between two of them, "
            "put a fault link between them (<code>link = self.fault_link(endpoint)</code>, and give the "
            "connecting process <code>link.endpoint</code>), or a tap (<code>self.tap(endpoint)</code>, the same "
            "way), which also draws each message through it.</p>"]


def _plural(count: int, one: str, many: str = "") -> str:
    """``1 test``, ``2 tests``."""
    return f"{count} {one if count == 1 else many or one + 's'}"


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def _read_results(directory: str) -> List[Dict[str, Any]]:
    found: List[Tuple[int, Dict[str, Any]]] = []
    results = os.path.join(directory, ".results")
    for name in sorted(os.listdir(results)) if os.path.isdir(results) else []:
        with open(os.path.join(results, name), encoding="utf-8") as f:
            for line in f:
                try:
                    found.append((len(found), json.loads(line)))
                except ValueError:
                    continue  # a line cut short by a runner that was killed
    return [entry for _, entry in found]


def rebuild_index(directory: str) -> str:
    """Write ``DIR/index.html`` from every runner's result lines; return its path."""
    entries = _read_results(directory)
    counts: Dict[str, int] = {}
    for entry in entries:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    rows = []
    for entry in sorted(entries, key=lambda e: (e["status"] not in _FAILED, e["id"])):
        link = (f'<a href="{html.escape(entry["page"])}">page</a>' if entry.get("page") else "")
        rows.append(f'<tr><td>{html.escape(entry["id"])}</td><td class="{html.escape(entry["status"])}">'
                    f'{html.escape(entry["status"])}</td><td>{entry["duration"]:.3f} s</td><td>{link}</td></tr>')
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no tests"
    body = (f"<h1>zmqprocesstest report</h1><p>{_plural(len(entries), 'test')}: {html.escape(summary)}. "
            "Failures first; each page shows the test's message sequence, timeline and traceback.</p>\n"
            "<table><tr><th>test</th><th>status</th><th>duration</th><th></th></tr>\n" + "\n".join(rows)
            + "</table>")
    path = os.path.join(directory, "index.html")
    _write(path, _document("zmqprocesstest report", body))
    return path



def main(argv: List[str]) -> None:
    """``python -m zmqprocesstest.report_html REPORT_DIR``: rebuild ``REPORT_DIR/index.html``."""
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        sys.exit("usage: python -m zmqprocesstest.report_html REPORT_DIR (rebuilds REPORT_DIR/index.html)")
    print(rebuild_index(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
