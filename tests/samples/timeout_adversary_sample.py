"""Child runner for tests/test_timeout_adversary.py: ADVERSARY=last_resort or setupclass_sigint."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.environ["ADVERSARY_ROOT"])
from zmqprocesstest import ProcessTestCase


def wait_forever():
    signal.pause()


class SwallowsEverything(ProcessTestCase):
    run_timeout = 0.5

    def test_swallows(self):
        while True:
            try:
                time.sleep(100)
            except BaseException:  # noqa: B036 - the adversary
                continue


class StartsThenBlocks(ProcessTestCase):
    @classmethod
    def setUpClass(cls):
        proc = cls.start_process(wait_forever)
        print(f"started {proc.pid}", flush=True)
        time.sleep(600)

    def test_never(self):
        pass


if __name__ == "__main__":
    import faulthandler
    faulthandler.register(signal.SIGUSR1)  # the test asks where a silent child runner is
    name = {"last_resort": "SwallowsEverything", "setupclass_sigint": "StartsThenBlocks"}[os.environ["ADVERSARY"]]
    suite = unittest.defaultTestLoader.loadTestsFromName(name, sys.modules[__name__])
    try:
        unittest.TextTestRunner(verbosity=2).run(suite)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.stdin.read()  # a pool worker that lives on: the parent closes stdin
