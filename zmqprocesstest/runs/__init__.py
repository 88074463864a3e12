"""The runs wing: hunting a flaky test: repeat, until-failure, seeded stress, shuffle, shard.

* :mod:`~zmqprocesstest.runs.session`: the run's settings (environment, command line or
  pytest options), repeats, the first failure and how to reproduce it, the command
  line's suite;
* ``_order``: shuffle and shard; ``_stress``: seeded delays and CPU burners;
* ``_pytest_runs``: the same options as pytest options (the plugin calls it).

Nothing imports this wing unless a run option or one of its environment variables asks
for it (:func:`zmqprocesstest._config.runs_requested`): the command line and the pytest
plugin import it when given an option, the metaclass and each test's run when the
environment names one.

The run's settings and state (``SETTINGS``, ``ACTIVE``) are module globals of
:mod:`~zmqprocesstest.runs.session`, rebound by :func:`configure`: read them there.
"""
from .session import (OPTIONS, DurationsResult, Settings, arrange, base_id, cli_command,
                      configure, first_failure, inject_repeats, note_failure, repeat_class, repeat_of,
                      reproduce_message, run_test, seed, split_options, write_durations)

__all__ = ["OPTIONS", "DurationsResult", "Settings", "arrange", "base_id", "cli_command",
           "configure", "first_failure", "inject_repeats", "note_failure", "repeat_class", "repeat_of",
           "reproduce_message", "run_test", "seed", "split_options", "write_durations"]
