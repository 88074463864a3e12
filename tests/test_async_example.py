"""The asyncio example's client library (docs/examples/kvstore) when the service dies during a call.

The example's own tests pass (tests/test_examples.py runs them); here the service has a
planted crash, and each form of coroutine test must end at once with ProcessDied at the
line that awaited, long before the client library's own timeout and the run_timeout.
"""
import importlib.util
import os
import re
import subprocess
import sys
import time
import unittest

from .samples import kvstore_sample as samples
from .support import EXAMPLES, ROOT, only_problem, run_case

SAMPLE = samples.__file__.replace(".pyc", ".py")
KVCLIENT = os.path.join(EXAMPLES, "kvstore", "client.py")
#: Seconds from the request that kills the service to the end of the test's await: the
#: death watch takes about a millisecond; the exit drain (the dead process's last
#: messages read first) and a loaded machine take the rest.
AT_ONCE = 1.0


def line_of(marker):
    with open(SAMPLE) as f:
        return [n for n, text in enumerate(f, 1) if text.rstrip().endswith(marker)][0]


def frames(text, exc_name):
    """The ``line N, in name`` of each frame of the traceback in *text*, before the exception *exc_name*."""
    tb = text.split("Traceback (most recent call last):")[1].split(exc_name)[0]
    return re.findall(r"line \d+, in \w+", tb)


def client_lineno(text):
    """The number of the line of kvstore/client.py that holds *text*."""
    with open(KVCLIENT) as f:
        return [n for n, line in enumerate(f, 1) if text in line][0]


def client_line(text):
    """``line N, in call`` for the line of the client library's ``call`` that holds *text*."""
    return f"line {client_lineno(text)}, in call"


class DeathDuringAClientCall(unittest.TestCase):
    def check_dies(self, name, marker, tb_end):
        samples.TIMES.clear()
        started = time.monotonic()
        text = only_problem(self, run_case(samples.DiesDuringACall, name))
        self.assertLess(time.monotonic() - started, 5.0, text)
        took = samples.TIMES["ended"] - samples.TIMES["sent"]
        self.assertLess(took, AT_ONCE, text)
        self.assertLess(AT_ONCE, min(samples.CLIENT_TIMEOUT, samples.DiesDuringACall.run_timeout))
        self.assertIn("ProcessDied", text)
        self.assertIn("'kvservice' died while the test was waiting", text)
        self.assertIn("KeyError: 'shape'", text)  # the service's own traceback, from its output
        # The traceback goes from the test's await line down to where the client was
        # suspended (its own await), and holds neither the library's frames nor asyncio's.
        tb = frames(text, "ProcessDied")
        self.assertIn(f"line {line_of(marker)}, in {name}", tb, text)
        self.assertEqual(tb[-1], tb_end, text)
        traceback_text = text.split("Traceback (most recent call last):")[1].split("ProcessDied")[0]
        self.assertNotIn("zmqprocesstest/", traceback_text)
        self.assertNotIn("asyncio/", traceback_text)
        self.assertNotIn("TimeoutError", text)
        return text

    def test_an_async_def_test_ends_at_the_client_call(self):
        self.check_dies("test_in_a_client_call", "# DIES IN A CLIENT CALL", client_line("await asyncio.wait_for"))

    def test_an_async_generator_test_ends_at_an_await_between_yields(self):
        self.check_dies("test_between_yields", "# DIES BETWEEN YIELDS", client_line("await asyncio.wait_for"))

    def test_an_async_generator_test_ends_at_the_yielded_event(self):
        self.check_dies("test_in_a_yielded_event", "# DIES IN AN EVENT",
                        f"line {line_of('# DIES IN AN EVENT')}, in test_in_a_yielded_event")



class LeftBehind(unittest.TestCase):
    """What the how-to says a careless use of the example's client does to a test."""

    def test_a_client_never_closed_leaves_its_reader_task_pending(self):
        result = run_case(samples.LeftBehind, "test_client_never_closed")
        for client in samples.UNCLOSED:
            client.sock.close()
            client.context.term()
        samples.UNCLOSED.clear()
        self.assertEqual(len(result.failures), 1, result.failures + result.errors)
        text = result.failures[0][1]
        self.assertIn("1 task(s) still pending when the test ended", text)
        created = client_lineno("ensure_future(self.read_replies())")
        self.assertIn(f"running KVClient.read_replies(), created at {KVCLIENT}:{created} in call", text)

    def test_a_call_never_awaited_fails_with_its_line(self):
        text = only_problem(self, run_case(samples.LeftBehind, "test_call_never_awaited"))
        self.assertIn("coroutine 'KVClient.put' was never awaited", text)
        self.assertIn(f'line {line_of("# NOT AWAITED")}, in test_call_never_awaited', text)


class MovingOver(unittest.TestCase):
    """The how-to's "before" versions (docs/examples/howto/asyncio_before.py) are real tests that pass."""

    def test_the_isolated_asyncio_test_case_and_pytest_asyncio_versions_pass(self):
        if importlib.util.find_spec("pytest_asyncio") is None:
            self.skipTest("pytest-asyncio is not installed (the test extra installs it: pip install -e '.[test]')")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "ZMQPROCESSTEST_BODY_LOG"):
            env.pop(name, None)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                               os.path.join("howto", "asyncio_before.py")], cwd=EXAMPLES, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertRegex(proc.stdout, r"\b2 passed\b")
        self.assertNotIn("warning", proc.stdout.lower())


if __name__ == "__main__":
    unittest.main()
