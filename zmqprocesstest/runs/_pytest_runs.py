"""The pytest side of :mod:`zmqprocesstest.runs`: options, shards, order, the first failure.

Hook functions only, called by :mod:`zmqprocesstest._pytest_plugin` when an option
(:data:`~zmqprocesstest._config.PYTEST_RUN_OPTIONS`) or the environment asks for the runs
wing; nothing here imports pytest. Repeats come from the metaclass as under any runner (each repeat is a
class of its own in its module, so pytest collects it), put in the order of the repeat scope here
(:meth:`~zmqprocesstest.runs.session.Settings.scope`); until-failure is pytest's own
``-x``, plus how to reproduce the failure at the end of the terminal summary.
"""
import json
import os
import re
from typing import Any, Dict, List

from .._config import PYTEST_RUN_OPTIONS as _OPTIONS
from . import _order, session as runs

_REPEAT_IN_ID = re.compile(r"_repeat(\d+)(?=::|$)")
_durations: Dict[str, float] = {}


def configure(config: Any) -> None:
    settings = runs.Settings()
    getoption = getattr(config, "getoption", None)  # None: a stand-in config (tests)
    for name, (attr, _kind, _) in _OPTIONS.items():
        value = None if getoption is None else getoption(name, default=None)
        if value in (None, False):
            continue
        if attr == "shard":
            value = _order.parse_shard(value, "--zpt-shard")
        elif attr == "repeat" and value < 1:
            raise ValueError(f"expected --zpt-repeat N with N >= 1, got {value}")
        elif attr == "repeat_scope":
            value = runs.check_scope(value, "--zpt-repeat-scope")
        setattr(settings, attr, value)
    if settings.repeat > 1:
        os.environ[runs.REPEAT_ENV] = str(settings.repeat)  # for workers (pytest-xdist)
    settings.driver = "pytest"
    if settings.until_failure:
        config.option.maxfail = 1
    runs.configure(settings)


def report_header() -> List[str]:
    settings = runs.SETTINGS
    parts = [f"repeat {settings.repeat} ({settings.scope()} scope)"] * (settings.repeat > 1)
    parts += ["until failure"] * settings.until_failure
    parts += ["stress"] * settings.stress + ["shuffle"] * settings.shuffle
    if settings.shard:
        parts.append(f"shard {settings.shard[0] + 1}/{settings.shard[1]}")
    if settings.stress or settings.shuffle:
        parts.append(f"seed {settings.seed}")
    return [f"zmqprocesstest: {', '.join(parts)}"] if parts else []


def _group(item: Any) -> str:
    return item.nodeid.rsplit("::", 1)[0] if getattr(item, "cls", None) is not None else item.nodeid.split("::")[0]


def arrange(config: Any, items: List[Any]) -> None:
    settings = runs.SETTINGS
    if settings.shard is not None:
        _order.confirm_sharding()
        durations = _order.load_durations(settings.durations_file) if settings.durations_file else None
        ordered = sorted(items, key=lambda item: item.nodeid)
        kept = {id(i) for i in _order.shard(ordered, *settings.shard, _group, lambda i: i.nodeid, durations)}
        dropped = [item for item in items if id(item) not in kept]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if id(item) in kept]
    if settings.shuffle:
        items[:] = _order.shuffled(items, runs.seed(), lambda i: i.nodeid.split("::")[0], _group)
    if settings.repeat > 1:
        items[:] = _order.by_repeat(items, settings.scope(), _repeat_number, lambda i: i.nodeid.split("::")[0],
                                    _base_group, _base_test)


def _repeat_number(item: Any) -> int:
    return runs.repeat_of(item.cls)[0] if getattr(item, "cls", None) is not None else 1


def _base_group(item: Any) -> str:
    """The item's class (module) as every repeat of it names it."""
    return _REPEAT_IN_ID.sub("", _group(item))


def _base_test(item: Any) -> str:
    return _REPEAT_IN_ID.sub("", item.nodeid)


def logreport(report: Any) -> None:
    settings = runs.SETTINGS
    if settings.record_durations:
        _durations[report.nodeid] = round(_durations.get(report.nodeid, 0.0) + report.duration, 6)
    if settings.until_failure and report.failed and runs.first_failure() is None:
        found = _REPEAT_IN_ID.search(report.nodeid)
        runs.note_failure(report.nodeid, _REPEAT_IN_ID.sub("", report.nodeid), int(found.group(1)) if found else 1)


def sessionfinish(session: Any) -> None:
    settings = runs.SETTINGS
    if settings.record_durations and not hasattr(session.config, "workerinput"):
        with open(settings.record_durations, "w", encoding="utf-8") as f:
            json.dump(_durations, f, indent=1, sort_keys=True)


def terminal_summary(terminalreporter: Any) -> None:
    if runs.first_failure() is not None:
        for line in runs.reproduce_message().splitlines():
            terminalreporter.write_line(line)
