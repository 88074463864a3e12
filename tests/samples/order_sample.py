"""Passing tests in four classes of different sizes, for the flaky-hunting options' smoke
tests (tests/test_runs.py runs them under the command line, pytest and nose2 and checks
the order and shard each runner ran against the arithmetic of zmqprocesstest._order)."""
from zmqprocesstest import ProcessTestCase


class Alpha(ProcessTestCase):
    def test_a(self):
        pass

    def test_b(self):
        pass

    def test_c(self):
        pass


class Beta(ProcessTestCase):
    def test_a(self):
        pass

    def test_b(self):
        pass


class Gamma(ProcessTestCase):
    def test_a(self):
        pass

    def test_b(self):
        pass

    def test_c(self):
        pass

    def test_d(self):
        pass


class Delta(ProcessTestCase):
    def test_a(self):
        pass
