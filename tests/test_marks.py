"""Tests of marks.py, ``python -m zmqprocesstest`` and the pytest plugin: marking and selecting tests."""
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import types
import unittest
from unittest import mock

from zmqprocesstest import ProcessTestCase, mark, process
from zmqprocesstest import _pytest_plugin
from zmqprocesstest.marks import MARKS_ATTR, MARKS_ENV, marks_of, parse_expression, selection_expression

from .samples import cases as samples
from .support import EXAMPLES, ROOT, problems, run_case
from pingpong.pongproc import PongProc


class TestExpressions(unittest.TestCase):
    def test_boolean_expressions(self):
        cases = [
            ("process", {"process"}, True),
            ("process", {"system"}, False),
            ("not (process or system)", set(), True),
            ("not (process or system)", {"system"}, False),
            ("process and not slow", {"process", "slow"}, False),
            ("process and not slow", {"process"}, True),
            ("a or b and c", {"a"}, True),
            ("(a or b) and c", {"a"}, False),
            ("not not a", {"a"}, True),
            ("", set(), True),
            ("1", set(), True),
            ("True", set(), True),
        ]
        for expr, marks, expected in cases:
            with self.subTest(expr=expr, marks=marks):
                self.assertIs(parse_expression(expr)(marks), expected)

    def test_malformed_expressions_say_what_was_expected(self):
        for expr, message in [
            ("process and", "expected a name, got the end"),
            ("(process", "expected ), got the end"),
            ("process system", "expected the end, got 'system'"),
            ("process; rm", "unexpected ';'"),
            ("and", "expected a name, got 'and'"),
        ]:
            with self.subTest(expr=expr), self.assertRaises(ValueError) as caught:
                parse_expression(expr)
            self.assertIn(message, str(caught.exception))

    def test_default_from_setup_cfg(self):
        import tempfile
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "setup.cfg"), "w") as f:
                f.write("[zmqprocesstest]\nmarks = not slow\n")
            here = os.getcwd()
            os.chdir(directory)
            try:
                with mock.patch.dict(os.environ):
                    os.environ.pop(MARKS_ENV, None)
                    self.assertEqual(selection_expression(), "not slow")
            finally:
                os.chdir(here)

    def test_precedence_env_over_setup_cfg_and_explicit_over_env(self):
        with mock.patch.dict(os.environ, {MARKS_ENV: "system"}):
            self.assertEqual(selection_expression(), "system")
            self.assertEqual(selection_expression("process"), "process")


class TestMarking(unittest.TestCase):
    def test_class_method_and_module_marks_add_up(self):
        self.assertEqual(marks_of(samples.Marked("test_slow")), {"process", "slow"})
        self.assertEqual(marks_of(samples.Marked("test_process_only")), {"process"})

    def test_marks_are_attributes_for_nose2(self):
        self.assertTrue(samples.Marked.test_slow.slow)
        self.assertTrue(samples.Marked.test_slow.process)
        self.assertTrue(samples.Marked.test_process_only.process)

    def test_marking_a_subclass_does_not_mark_the_base(self):
        @mark("extra")
        class Sub(samples.Marked):
            pass

        self.assertIn("extra", getattr(Sub.test_slow, MARKS_ATTR))
        self.assertNotIn("extra", getattr(samples.Marked.test_slow, MARKS_ATTR))

    def test_bad_mark_names_are_refused(self):
        for name in ("not", "two words", "", 3):
            with self.subTest(name=name), self.assertRaises(ValueError):
                mark(name)

    def test_dunder_names_are_refused_before_they_clobber_anything(self):
        def test_documented():
            """The docstring."""

        for name in ("__doc__", "__name__", "__zmqprocesstest_marks__", "__x__"):
            with self.subTest(name=name), self.assertRaises(ValueError) as caught:
                mark(name)(test_documented)
            self.assertIn("expected a mark name that is not a dunder name", str(caught.exception))
            self.assertIn(f"got {name!r}", str(caught.exception))
        self.assertEqual((test_documented.__doc__, test_documented.__name__), ("The docstring.", "test_documented"))

    def test_a_mark_never_overwrites_an_attribute_of_the_test(self):
        def test_it():
            pass

        test_it.owner = "someone"
        with self.assertRaises(ValueError) as caught:
            mark("owner")(test_it)
        self.assertIn("cannot mark "
                      "'TestMarking.test_a_mark_never_overwrites_an_attribute_of_the_test.<locals>.test_it' "
                      "with 'owner': expected its attribute 'owner' to be unset or a bool mark flag, got 'someone'",
                      str(caught.exception))
        self.assertEqual(test_it.owner, "someone")
        self.assertFalse(hasattr(test_it, MARKS_ATTR))

        with self.assertRaises(ValueError):
            @mark("owner")
            class Marked(unittest.TestCase):
                def test_x(self):
                    pass

                test_x.owner = "someone"

    def test_marking_twice_and_flags_set_by_hand_are_fine(self):
        def test_it():
            pass

        test_it.slow = False  # a nose2 attribute set by hand
        mark("slow")(mark("slow", "process")(test_it))
        self.assertIs(test_it.slow, True)
        self.assertEqual(getattr(test_it, MARKS_ATTR), {"slow", "process"})

    def test_unselected_tests_are_skipped_with_the_reason(self):
        with mock.patch.dict(os.environ, {MARKS_ENV: "not slow"}):
            result = run_case(samples.Marked)
        self.assertEqual(problems(result), [])
        self.assertEqual(len(result.skipped), 1)
        test, reason = result.skipped[0]
        self.assertTrue(test.id().endswith("test_slow"))
        self.assertEqual(reason, "deselected by mark expression 'not slow' (test has process, slow)")

    def test_setup_does_not_run_for_unselected_tests(self):
        ran = []

        @process
        class Counting(ProcessTestCase):
            def setUp(self):
                ran.append(1)

            def test_it(self):
                pass

        with mock.patch.dict(os.environ, {MARKS_ENV: "system"}):
            result = run_case(Counting)
        self.assertEqual((len(result.skipped), ran), (1, []))

    def test_a_class_with_every_test_deselected_starts_no_shared_process(self):
        started = []

        @process
        class SharesAProcess(ProcessTestCase):
            @classmethod
            def setUpClass(cls):
                started.append("setUpClass")
                cls.proc = cls.start_process(PongProc, cls.new_endpoint())

            @classmethod
            def tearDownClass(cls):
                started.append("tearDownClass")

            def test_it(self):
                pass

        with mock.patch.dict(os.environ, {MARKS_ENV: "not process"}):
            result = run_case(SharesAProcess)
        self.assertEqual((problems(result), len(result.skipped), started), ([], 1, []))
        with mock.patch.dict(os.environ, {MARKS_ENV: "process"}):
            result = run_case(SharesAProcess)
        self.assertEqual((problems(result), started), ([], ["setUpClass", "tearDownClass"]))

    def test_a_module_with_every_test_deselected_runs_no_setupmodule(self):
        name = "zpt_deselected_module"
        module = types.ModuleType(name)
        sys.modules[name] = module
        self.addCleanup(sys.modules.pop, name, None)
        ran = []
        exec(textwrap.dedent("""
            from zmqprocesstest import ProcessTestCase, process
            def setUpModule():
                ran.append("setUpModule")
            def tearDownModule():
                ran.append("tearDownModule")
            @process
            class Marked(ProcessTestCase):
                def test_it(self):
                    pass
        """), dict(vars(module), ran=ran, __name__=name), vars(module))
        for expression, expected in (("not process", []), ("process", ["setUpModule", "tearDownModule"])):
            ran.clear()
            with mock.patch.dict(os.environ, {MARKS_ENV: expression}):
                result = unittest.TestResult()  # a top-level suite runs the module's fixtures
                unittest.TestSuite([unittest.defaultTestLoader.loadTestsFromTestCase(module.Marked)]).run(result)
            self.assertEqual((problems(result), ran), ([], expected), expression)

    def test_a_malformed_expression_is_one_clear_error(self):
        """One error, at the first test, naming the expression, its source and what was
        expected, with no frame of the parser; the other tests are not run."""
        with mock.patch.dict(os.environ, {MARKS_ENV: "process and (only one error"}):
            result = run_case(samples.Marked)
        self.assertEqual(len(result.errors), 1, problems(result))
        self.assertEqual(result.failures, [])
        text = result.errors[0][1]
        self.assertIn("MarkExpressionError: bad mark expression 'process and (only one error': expected ), got one "
                      "(from ZMQPROCESSTEST_MARKS); no ProcessTestCase test runs until it is fixed", text)
        self.assertNotIn("marks.py", text)
        self.assertEqual(len(result.skipped), 1)
        self.assertRegex(result.skipped[0][1], r"^not run: the mark expression .* does not parse; see the first error")


def importable(name):
    """True if module *name* can be imported here (and so by ``sys.executable -m``)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


HAVE_NOSE2 = importable("nose2")
HAVE_PYTEST = importable("pytest")


def run_runner(*argv, env=None, cwd=ROOT):
    full_env = dict(os.environ, **(env or {}))
    full_env.pop(MARKS_ENV, None)
    proc = subprocess.run([sys.executable, *argv], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


class TestRunnerSelection(unittest.TestCase):
    """Marks under real runners, on the example application's tests."""

    def ran(self, output, pattern=r"Ran (\d+) tests?"):
        match = re.search(pattern, output)
        self.assertIsNotNone(match, output)
        return int(match.group(1))

    def test_command_deselects_without_running(self):
        code, out = run_runner("-m", "zmqprocesstest", "-m", "not system", "discover", "-s", EXAMPLES, "-t", EXAMPLES,
                               "-p", "test_s*.py")
        self.assertEqual(code, 0, out)
        code_all, out_all = run_runner("-m", "unittest", "discover", "-s", EXAMPLES, "-t", EXAMPLES, "-p", "test_s*.py")
        self.assertEqual(code_all, 0, out_all)
        self.assertLess(self.ran(out), self.ran(out_all))
        self.assertNotIn("skipped", out)

    def test_command_deselects_tests_named_on_the_command_line(self):
        # Names go through loadTestsFromName and modules through loadTestsFromModule,
        # not loadTestsFromTestCase: deselected tests are not run or counted there either.
        code, out = run_runner("-m", "zmqprocesstest", "-m", "not system",
                               "test_system.TestPingPongApp.test_pong_prints_its_endpoint",  # a method
                               "test_system.TestPingPongApp",  # a class
                               "test_system",  # a module
                               "test_pongproc.TestPongProc.test_ping", cwd=EXAMPLES)
        self.assertEqual(code, 0, out)
        self.assertEqual(self.ran(out), 1, out)
        self.assertNotIn("skipped", out)

    def test_command_keeps_names_that_failed_to_load(self):
        code, out = run_runner("-m", "zmqprocesstest", "-m", "process", "no_such_module_here", cwd=EXAMPLES)
        self.assertNotEqual(code, 0, out)
        self.assertIn("no_such_module_here", out)
        self.assertEqual(self.ran(out), 1, out)

    def test_command_help_names_its_own_options_then_unittests(self):
        code, out = run_runner("-m", "zmqprocesstest", "--help")
        self.assertEqual(code, 0, out)
        for option in ("-m EXPR", "--report-dir DIR", "--repeat VALUE", "--shard VALUE", "--list"):
            self.assertIn(option, out)
        self.assertLess(out.index("-m EXPR"), out.index("usage: python -m zmqprocesstest"))

    def test_command_refuses_a_bad_expression(self):
        code, out = run_runner("-m", "zmqprocesstest", "-m", "process and", "discover", "-s", EXAMPLES)
        self.assertNotEqual(code, 0)
        self.assertIn("bad mark expression 'process and'", out)

    @unittest.skipUnless(HAVE_NOSE2, "nose2 is not installed (pip install nose2)")
    def test_nose2_attrib_plugin_sees_marks(self):
        code, out = run_runner("-m", "nose2", "--plugin", "nose2.plugins.attrib", "-s", EXAMPLES, "-t", EXAMPLES,
                               "-A", "system", "test_system")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.ran(out), 3)

    @unittest.skipUnless(HAVE_PYTEST, "pytest is not installed (pip install pytest)")
    def test_pytest_m_sees_marks(self):
        code, out = run_runner("-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "system", "--strict-markers",
                               os.path.join(EXAMPLES, "test_system.py"), os.path.join(EXAMPLES, "test_pongproc.py"))
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"3 passed, 6 deselected")

    @unittest.skipUnless(HAVE_PYTEST, "pytest is not installed (pip install pytest)")
    def test_pytest_releases_a_module_scope_after_the_class_of_its_last_test(self):
        # The module's last test is one of a class with a shared process, as a
        # pytest-xdist worker may get it: the class releases its process, then the module.
        code, out = run_runner("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shared.py::TestSharedPong",
                               "test_signals.py", cwd=EXAMPLES)
        self.assertEqual(code, 0, out)
        self.assertNotIn("error", out)
        self.assertRegex(out, r"\d+ passed in ")

    @unittest.skipUnless(HAVE_PYTEST, "pytest is not installed (pip install pytest)")
    def test_a_module_scope_without_the_pytest_plugin_is_a_clear_error(self):
        # Nothing would release it: its process would run on through later modules.
        for label, args, env in (("-p no:zmqprocesstest", ["-p", "no:zmqprocesstest"], None),
                                 ("autoload off", [], {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})):
            with self.subTest(label):
                code, out = run_runner("-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_shared.py",
                                       env=env, cwd=EXAMPLES)
                self.assertNotEqual(code, 0, out)
                self.assertIn("RuntimeError: module_scope('test_shared') needs zmqprocesstest's pytest plugin under "
                              "pytest, and it is not active", out)
                self.assertRegex(out, r"\d+ errors? in ")
                self.assertNotIn(" passed", out)
        code, out = run_runner("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "zmqprocesstest",
                               "test_shared.py", env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, cwd=EXAMPLES)
        self.assertEqual(code, 0, out)  # loaded by hand, it releases the scope: allowed

    def test_a_module_scope_under_unittest_needs_no_plugin(self):
        # A runner started by a pytest test inherits PYTEST_CURRENT_TEST; pytest is not imported there.
        code, out = run_runner("-m", "unittest", "test_shared", env={"PYTEST_CURRENT_TEST": "x.py::y (call)"},
                               cwd=EXAMPLES)
        self.assertEqual(code, 0, out)



class FakeConfig:
    """Just what the plugin uses of a pytest config."""

    def __init__(self):
        self.lines = []

    def addinivalue_line(self, name, line):
        self.lines.append((name, line))


class FakeItem:
    """Just what the plugin uses of a pytest item."""

    def __init__(self, cls, name):
        self.cls, self.obj, self.markers = cls, getattr(cls, name), []

    def get_closest_marker(self, name):
        return name if name in self.markers else None

    def add_marker(self, name):
        self.markers.append(name)


class TestPytestPlugin(unittest.TestCase):
    def configure_and_collect(self):
        config = FakeConfig()
        _pytest_plugin.pytest_configure(config)
        item = FakeItem(samples.Marked, "test_slow")
        _pytest_plugin.pytest_collection_modifyitems(config, [item])
        return config, item

    def test_each_config_registers_the_marks_it_meets(self):
        for _ in range(2):  # a second session in the same interpreter, with a new config
            config, item = self.configure_and_collect()
            self.assertEqual(config.lines, [("markers", "process: a zmqprocesstest process test"),
                                            ("markers", "system: a zmqprocesstest system test"),
                                            ("markers", "slow: a zmqprocesstest mark")])
            self.assertEqual(item.markers, ["process", "slow"])

    def test_a_mark_is_registered_once_per_config(self):
        config, _ = self.configure_and_collect()
        _pytest_plugin.pytest_collection_modifyitems(config, [FakeItem(samples.Marked, "test_slow")])
        self.assertEqual([line for _, line in config.lines].count("slow: a zmqprocesstest mark"), 1)

    @unittest.skipUnless(HAVE_PYTEST, "pytest is not installed (pip install pytest)")
    def test_two_pytest_sessions_in_one_interpreter_both_know_your_marks(self):
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "test_own_mark.py"), "w") as f:
                f.write(textwrap.dedent("""\
                    import unittest
                    from zmqprocesstest import mark

                    class TestOwn(unittest.TestCase):
                        @mark("ownmark")
                        def test_marked(self):
                            pass

                        def test_plain(self):
                            pass
                    """))
            script = textwrap.dedent("""\
                import sys, pytest
                args = ["-q", "-p", "no:cacheprovider", "--strict-markers", "-m", "ownmark", sys.argv[1]]
                codes = [int(pytest.main(args)) for _ in range(2)]
                print("exit codes", codes)
                sys.exit(max(codes))
                """)
            code, out = run_runner("-c", script, directory, cwd=directory)
        self.assertEqual(code, 0, out)
        self.assertIn("exit codes [0, 0]", out)
        self.assertEqual(out.count("1 passed, 1 deselected"), 2, out)


if __name__ == "__main__":
    unittest.main()
