"""The library's own tests. The leak check is on for every test case in this suite."""
import os

os.environ.setdefault("ZMQPROCESSTEST_CHECK_LEAKS", "1")
