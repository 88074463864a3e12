"""The public API: what ``zmqprocesstest`` exports, and that it stays free of pytest."""
import ast
import inspect
import os
import unittest

import zmqprocesstest

from .support import ROOT

DOCUMENTED = {
    "ConnectionTimeout", "EventError", "FaultLink", "FaultLinkError", "LeakError", "ManagedProcess",
    "MarkExpressionError", "MockCall", "MockTimeout", "ExitStatusLost",
    "ProcessDied", "ProcessError", "ProcessMock", "ProcessStopError", "ProcessTestCase", "ProgramResult",
    "ProgramTimeout", "SocketTimeout",
    "SystemTestCase", "Tap", "TestSocket", "TestTimeout", "Timeout", "make_sock", "mark", "normalise_path",
    "normalise_pids", "normalise_ports", "normalise_regex", "normalise_timestamps", "override_event", "process",
    "run_program", "system", "module_scope", "codecs",
}
TIMEOUTS = ("SocketTimeout", "ConnectionTimeout", "TestTimeout", "MockTimeout", "ProgramTimeout")


def library_sources():
    """(path inside the package, parsed module) for each module of the library, its wings' too."""
    package = os.path.join(ROOT, "zmqprocesstest")
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    yield os.path.relpath(path, package), ast.parse(f.read())


class TestExports(unittest.TestCase):
    def test_all_matches_the_documented_api(self):
        self.assertEqual(set(zmqprocesstest.__all__), DOCUMENTED)
        for name in zmqprocesstest.__all__:
            self.assertTrue(hasattr(zmqprocesstest, name), name)

    def test_public_exceptions_show_their_public_path(self):
        exceptions = [name for name in zmqprocesstest.__all__
                      if inspect.isclass(getattr(zmqprocesstest, name))
                      and issubclass(getattr(zmqprocesstest, name), BaseException)]
        self.assertIn("TestTimeout", exceptions)
        for name in exceptions:
            with self.subTest(name=name):
                self.assertEqual(getattr(zmqprocesstest, name).__module__, "zmqprocesstest")
        from .samples import cases as samples
        from .support import only_problem, run_case
        text = only_problem(self, run_case(samples.Failures, "test_timeout"))
        self.assertRegex(text, r"\nzmqprocesstest\.SocketTimeout: ")

    def test_every_public_name_has_a_docstring(self):
        for name in zmqprocesstest.__all__:
            obj = getattr(zmqprocesstest, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                with self.subTest(name=name):
                    self.assertTrue((obj.__doc__ or "").strip(), f"{name} has no docstring")

    def test_test_like_names_are_not_collected(self):
        for cls in (zmqprocesstest.TestSocket, zmqprocesstest.TestTimeout):
            self.assertIs(cls.__test__, False)

    def test_the_library_never_imports_pytest(self):
        for name, tree in library_sources():
            for node in ast.walk(tree):
                modules = []
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    modules = [node.module]
                for module in modules:
                    with self.subTest(file=name):
                        self.assertFalse(module.split(".")[0] in ("pytest", "_pytest"), f"{name} imports {module}")

    def test_received_data_is_never_unpickled(self):
        """No pickle, no multiprocessing queues, no recv_pyobj, no Connection.recv()."""
        unpicklers = {"Queue", "SimpleQueue", "JoinableQueue", "recv_pyobj", "loads"}
        for name, tree in library_sources():
            found = []  # every offence of the file, in one subtest (not one subtest per AST node)
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                    if any("pickle" in n for n in names):
                        found.append(f"line {node.lineno}: imports pickle")
                if isinstance(node, ast.Attribute) and node.attr in unpicklers:
                    owner = getattr(node.value, "id", "")
                    if owner != "json":
                        found.append(f"line {node.lineno}: uses {owner}.{node.attr}")
                if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "recv"
                        and not node.args and not node.keywords):
                    found.append(f"line {node.lineno}: calls a no-argument .recv() "
                                 "(multiprocessing Connection.recv unpickles)")
            with self.subTest(file=name):
                self.assertEqual(found, [], f"{name} may unpickle received data")

    def test_typed_package(self):
        self.assertTrue(os.path.exists(os.path.join(ROOT, "zmqprocesstest", "py.typed")))


if __name__ == "__main__":
    unittest.main()


class TestLayout(unittest.TestCase):
    """One concept per module: each says which in its docstring (a wing's ``__init__``
    says what the wing holds). No line cap: a concept is never split to fit a count."""

    def test_every_module_has_a_docstring(self):
        names = []
        for name, tree in library_sources():
            names.append(name)
            with self.subTest(module=name):
                self.assertTrue((ast.get_docstring(tree) or "").strip(), f"{name} has no module docstring")
        self.assertIn(os.path.join("processes", "__init__.py"), names)  # the wings are read too


class TestOneTimeoutBase(unittest.TestCase):
    """``zmqprocesstest.Timeout``: one public base, an AssertionError, for the five timeouts."""

    def test_each_timeout_sits_under_the_base_and_stays_an_assertion_error(self):
        for name in TIMEOUTS:
            cls = getattr(zmqprocesstest, name)
            with self.subTest(timeout=name):
                self.assertEqual(cls.__mro__[1:], (zmqprocesstest.Timeout,) + AssertionError.__mro__)

    def test_except_timeout_catches_each_of_them_as_raised(self):
        import select
        import sys

        import zmq

        from zmqprocesstest.timeout._watchdog import hard_timeout

        from .support import problems, run_case

        caught = []

        def catch(call):
            try:
                call()
            except zmqprocesstest.Timeout as exc:
                caught.append(exc)

        context = zmq.Context()
        self.addCleanup(context.term)
        pull = zmqprocesstest.make_sock(context, zmq.PULL, bind="inproc://timeout-base", timeout=0.01)
        self.addCleanup(pull.close, 0)
        catch(pull.recv_multipart)

        class WaitsForAConnection(zmqprocesstest.ProcessTestCase):
            def test_it(self):
                sock = self.socket(zmq.DEALER)
                catch(lambda: self.wait_connected(sock, 0.01))

        self.assertEqual(problems(run_case(WaitsForAConnection)), [])

        def blocks():
            with hard_timeout(0.1, "blocks"):
                select.select([], [], [], 30)  # until the hard timeout interrupts it

        catch(blocks)
        mock = zmqprocesstest.ProcessMock("worker", timeout=0.01)
        self.addCleanup(mock.close_pipe)
        catch(mock.wait_for_call)
        catch(lambda: zmqprocesstest.run_program([sys.executable, "-c", "import time; time.sleep(60)"],
                                                 timeout=0.1))
        self.assertEqual([type(exc).__name__ for exc in caught], list(TIMEOUTS))
        for exc in caught:
            self.assertIsInstance(exc, AssertionError)


class TestFailuresTravel(unittest.TestCase):
    """Parallel runners (nose2's mp plugin) pickle a failure to carry it to their
    controller, and drop the result of one that does not pickle: a lost failure."""

    def test_the_failures_of_real_tests_pickle_with_their_message_and_type(self):
        import pickle

        from .samples import cases as samples
        from .support import run_case

        result = run_case(samples.Failures, "test_timeout")
        result2 = run_case(samples.Crash)
        caught = []
        for res in (result, result2):
            self.assertEqual(len(res.failures), 1, res.failures + res.errors)
        # The exception objects themselves, as a runner's result gets them.
        class Keep(unittest.TestResult):
            def addFailure(self, test, err):
                caught.append(err[1])

        for cls, name in ((samples.Failures, "test_timeout"), (samples.Crash, "test_crash_while_waiting")):
            cls(name).run(Keep())
        self.assertEqual([type(e).__name__ for e in caught], ["SocketTimeout", "ProcessDied"])
        for exc in caught:
            with self.subTest(exc=type(exc).__name__):
                copy = pickle.loads(pickle.dumps(exc))
                self.assertIs(type(copy), type(exc))
                self.assertEqual(str(copy).splitlines()[0], str(exc).splitlines()[0])
