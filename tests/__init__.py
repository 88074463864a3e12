"""The library's own tests. The leak check is on for every test case in this suite.

With ``ZMQPROCESSTEST_SUITE_DURATIONS=FILE`` set, a ``python -m unittest`` run of the
suite writes each test's seconds to FILE at its end (JSON, test id -> seconds, as
``--record-durations`` does): ``.ci/run`` sets it around README's command, which must
stay as written, and prints the slowest tests. The variable is removed here, so the
child runners the tests start record nothing.
"""
import os

os.environ.setdefault("ZMQPROCESSTEST_CHECK_LEAKS", "1")

_durations = os.environ.pop("ZMQPROCESSTEST_SUITE_DURATIONS", None)
if _durations:
    import atexit
    import unittest

    from zmqprocesstest import runs

    # The runner's own result notes the seconds; the inner runs of the tests use plain
    # unittest.TestResult objects and are not counted.
    unittest.TextTestRunner.resultclass = runs.DurationsResult
    atexit.register(runs.write_durations, _durations)
