"""The broker race fixed (run by tests/test_runs.py and benchmarks/hunt.py, not collected):
the worker prints "ready" only once the broker's welcome came back, evidence from the
receiving side that it is registered."""
from .broker_race_sample import TestWorkerRegistration


class TestWorkerRegistrationFixed(TestWorkerRegistration):
    WAIT_WELCOME = True


del TestWorkerRegistration  # not collected again here
