"""Two classes that print when their module and class scopes are set up (run by
tests/test_runs.py, not collected): the repeat scope decides how often and in which order."""
import sys

from zmqprocesstest import ProcessTestCase


def setUpModule():
    print("set up module", file=sys.stderr, flush=True)


class Alpha(ProcessTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        print(f"set up {cls.__name__}", file=sys.stderr, flush=True)

    def test_a(self):
        pass

    def test_b(self):
        pass


class Beta(Alpha):
    def test_c(self):
        pass
