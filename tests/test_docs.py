"""The documentation says what the code does: the events table, the diagrams, the README,
and every code block in README.rst and docs/ (checked here, or included from a tested file).

The build tests need Sphinx (the ``docs`` extra); without it they are skipped, saying so.
``.ci/run`` installs the extra before it runs the full suite.
"""
import configparser
import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

import zmqprocesstest
from zmqprocesstest.loop import EVENT_ATTR, known_events

from .support import ROOT

DOCS = os.path.join(ROOT, "docs")
EXAMPLES = os.path.join(DOCS, "examples")
sys.path.insert(0, os.path.join(DOCS, "_ext"))
import zpt_model  # docs/_ext: stdlib only

try:
    import sphinx  # noqa: F401
    HAVE_SPHINX = True
except ImportError:
    HAVE_SPHINX = False


def _marked_events():
    """Every @event method on the test case classes the package offers, read from the code."""
    names = set(known_events(zmqprocesstest.ProcessTestCase)) | set(known_events(zmqprocesstest.SystemTestCase))
    return {name for name in names if getattr(getattr(zmqprocesstest.SystemTestCase, name, None), EVENT_ATTR, False)}


class TestEventsTable(unittest.TestCase):
    def test_the_table_lists_every_event_the_library_defines(self):
        rows = {row.name: row for row in zpt_model.library_events()}
        missing = _marked_events() - set(rows)
        self.assertFalse(missing, f"events missing from the generated table: {sorted(missing)}")
        self.assertGreaterEqual(len(rows), 20)
        self.assertEqual(rows["recv_nothing"].yield_form, '("recv_nothing", sock[, seconds, ignore])')
        self.assertEqual(rows["send"].yield_form, '("send", sock, header, body[, extra_frames, timeout])')
        for row in rows.values():
            self.assertTrue(row.summary and row.summary != "(no docstring)", row)

    def test_the_pages_use_the_generated_table(self):
        for page in ("reference.rst", "tutorial.rst"):
            with open(os.path.join(DOCS, page), encoding="utf-8") as f:
                self.assertIn(".. include:: includes/events.rst", f.read(), page)

    def test_the_committed_table_is_what_the_code_makes(self):
        self.assertEqual(zpt_model.EVENTS_INCLUDE, os.path.join(DOCS, "includes", "events.rst"))
        with open(zpt_model.EVENTS_INCLUDE, encoding="utf-8") as f:
            committed = f.read()
        self.assertEqual(committed, zpt_model.events_include(),
                         "docs/includes/events.rst differs from the library's events: "
                         "run python docs/_ext/zpt_model.py (and commit the file)")

    def test_the_table_says_how_an_async_def_test_uses_each_event(self):
        rows = {row.name: row for row in zpt_model.library_events()}
        self.assertEqual(rows["send"].call_form, "self.send(sock, header, body[, extra_frames, timeout])")
        self.assertEqual(rows["log"].call_form, "self.log([substr, level, timeout])")
        table = zpt_model.events_include()
        for row in rows.values():
            self.assertIn(f"``{row.yield_form}``", table)
            self.assertIn(f"``{row.call_form}``", table)

    def test_the_regenerating_command_writes_and_checks_the_table(self):
        script = os.path.join(DOCS, "_ext", "zpt_model.py")
        check = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("is up to date", check.stdout)
        bad = subprocess.run([sys.executable, script, "--bogus"], capture_output=True, text=True, timeout=60)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("usage: python docs/_ext/zpt_model.py [--check]; got ['--bogus']", bad.stdout)

    def test_the_stop_timeline_follows_the_stop_steps(self):
        from zmqprocesstest.stopping import DEFAULT_STOP_TIMEOUTS, STOP_STEPS
        svg = zpt_model.stop_timeline_svg()
        ET.fromstring(svg)
        for name in STOP_STEPS:
            if STOP_STEPS[name].sig is not None:
                self.assertIn(f">{name}</text>", svg)
        for seconds in DEFAULT_STOP_TIMEOUTS.values():
            self.assertIn(f"waits up to {seconds:g} s", svg)


@unittest.skipUnless(HAVE_SPHINX, "Sphinx is not installed: pip install -e '.[docs]' (the docs extra)")
class TestBuiltDocs(unittest.TestCase):
    """Build the HTML once, as CI does (warnings are errors, nitpicky is on in conf.py)."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.out = cls._tmp.name
        cls.build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                                    "-d", os.path.join(cls.out, ".doctrees"), DOCS, cls.out],
                                   capture_output=True, text=True, timeout=600)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def page(self, name):
        with open(os.path.join(self.out, name), encoding="utf-8") as f:
            return f.read()

    def test_the_build_has_no_warnings(self):
        self.assertEqual(self.build.returncode, 0, self.build.stderr[-4000:])
        with open(os.path.join(DOCS, "conf.py"), encoding="utf-8") as f:
            self.assertRegex(f.read(), r"(?m)^nitpicky = True$")

    def test_every_event_is_in_the_built_table(self):
        html = self.page("reference.html")
        table = html[html.index('class="zpt-events'):]
        table = table[:table.index("</table>")]
        for name in _marked_events():
            self.assertIn(f"({name}&quot;" if False else f"&quot;{name}&quot;", table, name)

    def test_the_diagrams_are_svg_in_the_html(self):
        pages = {"stop-timeline": "howto/stopping.html", "sendback": "design.html", "guardian": "guarantees.html",
                 "faultlink": "howto/failure_handling.html"}
        for name, page in pages.items():
            html = self.page(page)
            match = re.search(rf'<svg [^>]*id="zpt-diagram-{name}".*?</svg>', html, re.S)
            self.assertIsNotNone(match, f"no SVG diagram {name!r} in {page}")
            ET.fromstring(match.group(0))  # well-formed

    def test_no_class_shows_empty_bases(self):
        self.assertNotRegex(self.page("reference.html"), r"Bases:\s*</p>")


class TestReadme(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "README.rst"), encoding="utf-8") as f:
            self.text = f.read()

    def test_quick_start_then_install_first_test_and_docs(self):
        commands = re.findall(r"(?m)^    \$ (.*)$", self.text)  # what .ci/run extracts
        self.assertEqual(commands, [
            "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m unittest "
            "discover -s docs/examples -t docs/examples -v",
            ".venv/bin/python -W error::ResourceWarning -m unittest discover -s tests -t ."])
        after = self.text[self.text.index(commands[1]):]
        self.assertLess(after.index("pip install zmqprocesstest"), after.index("What it is"))
        self.assertLess(after.index("class TestEcho(ProcessTestCase)"), after.index("What it is"))
        self.assertIn("Documentation\n-------------", self.text)

    def test_the_first_test_is_the_tested_file(self):
        with open(os.path.join(EXAMPLES, "test_first.py"), encoding="utf-8") as f:
            source = f.read()
        indented = "".join(("    " + line if line.strip() else line) for line in source.splitlines(True))
        self.assertIn(indented, self.text)
        self.assertLessEqual(len([line for line in source.splitlines() if line.strip()]), 20)


# -- every code block ---------------------------------------------------------------------------
#: Console commands shown in the docs, and where each is run. ``(file, needle)``: the file runs
#: it (the needle is the part of the file that does).
COMMANDS = {
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m unittest discover "
    "-s docs/examples -t docs/examples -v": (".ci/run", 'bash -c "${commands[0]}"'),
    ".venv/bin/python -W error::ResourceWarning -m unittest discover -s tests -t .": (".ci/run", "${commands[1]}"),
    "python -m unittest discover -s docs/examples -t docs/examples":
        (".ci/runner_matrix.py", '"python -m unittest discover"'),
    "python -m unittest discover -s docs/examples -t docs/examples -p test_pongproc.py -v":
        ("tests/test_docs.py", "TestCommands"),
    "python -m nose2 -s docs/examples -t docs/examples": (".ci/runner_matrix.py", '"nose2", "-s"'),
    "python -m pytest docs/examples": (".ci/runner_matrix.py", '"pytest", "-p", "no:cacheprovider", "-q", "-rs", rel'),
    "python -m xmlrunner discover -s docs/examples -t docs/examples -o reports   # JUnit XML":
        (".ci/runner_matrix.py", '"xmlrunner", "discover"'),
    "python -m pytest -n 2 docs/examples": (".ci/runner_matrix.py", '"-n", "2"'),
    "python -m nose2 --plugin nose2.plugins.mp -N 2 -s docs/examples -t docs/examples":
        (".ci/runner_matrix.py", "nose2.plugins.mp"),
    "unittest-parallel -j 2 -s docs/examples -t docs/examples": (".ci/runner_matrix.py", '"unittest-parallel"'),
    'ZMQPROCESSTEST_MARKS="not slow" python -m unittest discover -s docs/examples -t docs/examples':
        ("tests/test_docs.py", "TestCommands"),
    'python -m zmqprocesstest -m "process and not slow" discover -s docs/examples -t docs/examples':
        ("tests/test_docs.py", "TestCommands"),
    "python -m nose2 --plugin nose2.plugins.attrib -A 'process,!slow' -s docs/examples -t docs/examples":
        ("tests/test_docs.py", "TestCommands"),
    'python -m pytest --strict-markers -m "process and not slow" docs/examples':
        ("tests/test_docs.py", "TestCommands"),
    "ZMQPROCESSTEST_TIMEOUT_SCALE=5 python -m unittest discover -s docs/examples -t docs/examples":
        ("tests/test_docs.py", "TestCommands"),
    "python -m coverage run --rcfile=coverage.ini -m unittest test_pongproc":
        ("tests/test_coverage_howto.py", "coverage"),
    "python -m coverage combine --rcfile=coverage.ini": ("tests/test_coverage_howto.py", "combine"),
    "python -m coverage report --rcfile=coverage.ini": ("tests/test_coverage_howto.py", "report"),
    "cd docs/examples": ("tests/test_docs.py", "TestCommands"),
    # howto/flaky.rst: tests/test_runs.py runs each (the hunts with ZMQPROCESSTEST_HUNT=1,
    # as .ci/run does; shards, shuffles and durations on tests/samples/order_sample.py, one child runner each).
    "python -m zmqprocesstest --repeat 300 --until-failure tests.samples.racy_sample":
        ("tests/test_runs.py", '"--repeat", "300", "--until-failure"'),
    "ZMQPROCESSTEST_REPEAT=300 ZMQPROCESSTEST_UNTIL_FAILURE=1 python -m nose2 -s tests -t . tests.samples.racy_sample":
        ("tests/test_runs.py", "test_nose2_catches_it_from_the_environment"),
    "ZMQPROCESSTEST_REPEAT=300 ZMQPROCESSTEST_UNTIL_FAILURE=1 python -m pytest tests/samples/racy_sample.py":
        ("tests/test_runs.py", "test_pytest_catches_it_from_the_environment_and_its_options"),
    "python -m pytest --zpt-repeat 300 --zpt-until-failure tests/samples/racy_sample.py":
        ("tests/test_runs.py", '"--zpt-repeat", "300", "--zpt-until-failure"'),
    "python -m zmqprocesstest --repeat 300 --until-failure --stress tests.samples.broker_race_sample":
        ("tests/test_runs.py", '"--until-failure", "--stress", "--seed", "2", "tests.samples.broker_race_sample"'),
    "python -m pytest --zpt-repeat 300 --zpt-until-failure --zpt-stress tests/samples/broker_race_sample.py":
        ("tests/test_runs.py", '"--zpt-repeat", "300", "--zpt-until-failure", "--zpt-stress", "--zpt-seed", "2",'),
    "python -m zmqprocesstest --repeat 300 --until-failure --stress tests.samples.racy_sample":
        ("tests/test_runs.py", '"--until-failure", "--stress", "tests.samples.racy_sample"'),
    "ZMQPROCESSTEST_CHECK_LEAKS=1 python -m zmqprocesstest --repeat 300 --stress tests.samples.racy_fixed_sample":
        ("tests/test_runs.py", '"--repeat", "300", "--stress", "tests.samples.racy_fixed_sample"'),
    "python -m zmqprocesstest --shuffle --seed 7 discover -s tests -t .":
        ("tests/test_runs.py", '"--shuffle", "--seed"'),
    "python -m zmqprocesstest --shard 2/4 discover -s tests -t .":
        ("tests/test_runs.py", '["--shard", "3/3", "--durations-file"'),
    "TEST_SHARD_INDEX=1 TEST_TOTAL_SHARDS=4 python -m zmqprocesstest discover -s tests -t .":
        ("tests/test_runs.py", '"TEST_SHARD_INDEX": "1"'),
    "python -m pytest --zpt-shard 2/4 tests": ("tests/test_runs.py", '"--zpt-shard", "3/3"'),
    "python -m zmqprocesstest --record-durations durations.json discover -s tests -t .":
        ("tests/test_runs.py", '"--record-durations"'),
    "python -m zmqprocesstest --shard 2/4 --durations-file durations.json discover -s tests -t .":
        ("tests/test_runs.py", '"--durations-file"'),
    "python -m pytest -d --tx ssh=ci@build2//python=/opt/venv/bin/python "
    "--tx ssh=ci@build3//python=/opt/venv/bin/python tests":
        (None, "needs two more machines over ssh; .ci/runner_matrix.py runs its local stand-in, -d --tx 2*popen"),
    "python -m zmqprocesstest --report-dir reports/ discover -s docs/examples -t docs/examples":
        ("tests/test_docs.py", "test_report_dir_commands"),
    "ZMQPROCESSTEST_REPORT_DIR=reports/ python -m pytest docs/examples":
        ("tests/test_docs.py", "test_report_dir_commands"),
    "ZMQPROCESSTEST_UPDATE_GOLDEN=1 python -m unittest test_system": ("tests/test_systemtests.py", "UPDATE_GOLDEN"),
    "git diff golden/": (None, "reviewing a diff by eye: nothing to run"),
    "pip install zmqprocesstest": (None, "needs the package index; the packaging test builds the wheel instead"),
    "pip install -e '.[test,docs]'": (".ci/run", "pip install -q -e '.[test,docs]'"),
    "cd docs/examples && ZMQPROCESSTEST_FULL_TRACEBACK=1 python -m unittest howto.failing_samples":
        ("tests/test_docs.py", "TestCommands"),
    # howto/conversations.rst
    "python -m zmqprocesstest scaffold conversations/pingpong.jsonl --process pingpong.pongproc:PongProc -o "
    "test_pingpong_scaffolded.py": ("tests/test_conversations.py", "test_the_howto_shows_what_scaffold_writes"),
    "python -m zmqprocesstest record --listen tcp://127.0.0.1:5556 --connect tcp://127.0.0.1:5555 -o "
    "conversations/pingpong.jsonl":
        ("tests/test_conversations.py", "test_it_records_until_ctrl_c_and_says_what_it_wrote"),
}

#: Blocks that are neither code to run nor included: (page, first line) -> the test that checks them.
CHECKED_BLOCKS = {
    ("reference.rst", "AssertionError"): "TestCodeBlocks.test_the_exception_tree_is_the_codes",
    ("reference.rst", "[zmqprocesstest]"): "TestCodeBlocks.test_the_ini_blocks_parse",
    ("howto/runners.rst", "[zmqprocesstest]"): "TestCodeBlocks.test_the_ini_blocks_parse",
    ("reference.rst", "python -m zmqprocesstest [-m EXPR] [--report-dir DIR [--report-all]] [unittest arguments]"):
        "TestCodeBlocks.test_the_command_line_synopsis",
    ("howto/flaky.rst", "from zmqprocesstest import timeline"):
        "tests/test_docstring_examples.py (the same lines, timeline.py's docstring example)",
    ("howto/layout.rst", "echoapp-project/            the project root: run every command from here"):
        "TestCodeBlocks.test_the_layout_tree_is_the_example_project",
    ("README.rst", "pip install zmqprocesstest"): "COMMANDS",
    ("howto/scenarios.rst", "AssertionError: expected ['value', 1], got [b'', ['value', 0]]"):
        "tests/test_stateful.py test_the_planted_bug_is_found_and_shrunk_to_three_steps (the shrunk steps, "
        "the marked run), run alone by .ci/run",
    ("howto/flaky.rst",
     "zmqprocesstest: first failure: tests.samples.racy_sample.TestRacy_repeat057.test_first_message"):
        "tests/test_runs.py test_the_command_line_catches_it_and_the_seed_catches_it_again (the message's lines)",
    ("howto/conversations.rst", "AssertionError: replay of .../conversations/pingpong.jsonl (client side) differs "
     "at message 3 of 6"): "tests/test_conversations.py test_the_howto_shows_the_failure_a_changed_pongproc_gives",
    ("howto/conversations.rst", "zmqprocesstest: updated recording .../conversations/pingpong.jsonl (message 3 "
     "changed)"): "tests/test_conversations.py test_update_mode_rewrites_the_differing_messages_and_says_so",
    ("howto/conversations.rst", 'JUPYTER_CHANGES = ["header.msg_id", "header.session", "header.date", '
     '"metadata.started", "metadata.engine",'):
        "tests/test_conversations.py test_the_howto_shows_the_kernel_replay (its lines are the test's)",
    ("README.rst", "import zmq"): "TestReadme.test_the_first_test_is_the_tested_file",
    ("howto/client.rst", "Traceback (most recent call last):"):
        "tests/test_client_example.py UnderEachRunner.test_unittest (each line is in the sample's output)",
    ("README.rst", ".venv/bin/pip install -e '.[docs]' && .venv/bin/python -m sphinx -W -b html docs docs/_build/html"):
        "TestBuiltDocs (the same build, into a temporary directory)",
}


def _blocks(path):
    """(kind, argument, lines) of each literal block, code block and literalinclude in a page."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    found, i = [], 0
    while i < len(lines):
        line = lines[i]
        directive = re.match(r"^(\s*)\.\. (code-block|literalinclude|sourcecode|code|doctest)::\s*(.*)$", line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if directive or literal:
            indent = len(directive.group(1)) if directive else len(line) - len(line.lstrip())
            j, body = i + 1, []
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                body.append(lines[j])
                j += 1
            content = [b.strip("\n") for b in body if b.strip() and not b.strip().startswith(":")]
            if directive:
                found.append((directive.group(2), directive.group(3).strip(), [c.strip() for c in content]))
            else:
                found.append(("literal", "", [c.strip() for c in content]))
            i = j
        else:
            i += 1
    return found


def _run_by_a_test(path):
    """Whether *path* is a sample module in tests/samples/ that one of tests/test_*.py names."""
    tests = os.path.join(ROOT, "tests")
    if os.path.dirname(path) != os.path.join(tests, "samples") or not os.path.isfile(path):
        return False
    name = os.path.splitext(os.path.basename(path))[0]
    for test in glob.glob(os.path.join(tests, "test_*.py")):
        with open(test, encoding="utf-8") as f:
            if name in f.read():
                return True
    return False


def _pages():
    pages = [os.path.join(ROOT, "README.rst")]
    pages += sorted(p for p in glob.glob(os.path.join(DOCS, "**", "*.rst"), recursive=True)
                    if os.sep + "examples" + os.sep not in p and os.sep + "_build" + os.sep not in p)
    return pages


def _commands(lines):
    """The commands of a console block: its ``$ `` lines (or every line of a plain command block)."""
    marked = [line[2:] for line in lines if line.startswith("$ ")]
    return marked


class TestCodeBlocks(unittest.TestCase):
    def test_every_block_is_included_checked_or_run(self):
        problems = []
        for path in _pages():
            page = os.path.relpath(path, DOCS) if path.startswith(DOCS) else os.path.basename(path)
            for kind, arg, lines in _blocks(path):
                if kind == "literalinclude":
                    target = os.path.normpath(os.path.join(os.path.dirname(path), arg))
                    if not (target.startswith(EXAMPLES + os.sep) and os.path.isfile(target)
                            or _run_by_a_test(target)):
                        problems.append(f"{page}: literalinclude {arg} is not a file under docs/examples "
                                        "nor a sample a test in tests/ runs (tests/samples/)")
                    continue
                if not lines:
                    continue
                commands = _commands(lines)
                if commands:
                    for command in commands:
                        if command not in COMMANDS:
                            problems.append(f"{page}: command not run by any test: {command!r}")
                    continue
                if (page, lines[0]) in CHECKED_BLOCKS:
                    continue
                if lines[0] in COMMANDS:
                    continue
                problems.append(f"{page}: a {kind} block that no test checks, starting {lines[0]!r}")
        self.assertFalse(problems, "\n".join(problems))

    def test_each_command_is_run_where_it_says(self):
        for command, (where, needle) in COMMANDS.items():
            if where is None:
                self.assertTrue(needle, f"an exempt command needs a reason: {command!r}")
                continue
            with open(os.path.join(ROOT, where), encoding="utf-8") as f:
                self.assertIn(needle, f.read(), f"{command!r} is said to be run by {where}")

    def test_the_exception_tree_is_the_codes(self):
        with open(os.path.join(DOCS, "reference.rst"), encoding="utf-8") as f:
            text = f.read()
        tree = text[text.index("   AssertionError\n"):]
        tree = tree[:tree.index("\n\n")]
        import builtins
        from zmqprocesstest import checkers, history, loop
        spaces = {**vars(builtins), **{n: getattr(zmqprocesstest, n) for n in zmqprocesstest.__all__},
                  "BadArgument": loop.BadArgument, "CheckFailed": checkers.CheckFailed,
                  "HistoryError": history.HistoryError}
        parent = None
        named = set()
        stack = []
        for line in tree.splitlines():
            body = line[3:]
            match = re.match(r"^((?:│   |    )*)(?:[├└]── )?(\w+)", body)
            depth = len(match.group(1)) // 4 + (1 if re.search(r"[├└]── ", body) else 0)
            name = match.group(2)
            stack[depth:] = [name]
            parent = stack[depth - 1] if depth else None
            named.add(name)
            if parent:
                self.assertIn(spaces[parent], spaces[name].__bases__, f"{name} is not a {parent}")
        public_exceptions = {n for n in zmqprocesstest.__all__
                             if isinstance(getattr(zmqprocesstest, n), type)
                             and issubclass(getattr(zmqprocesstest, n), BaseException)}
        self.assertFalse(public_exceptions - named, "public exceptions missing from the tree")

    def test_the_ini_blocks_parse(self):
        from zmqprocesstest.marks import parse_expression
        for page in ("reference.rst", os.path.join("howto", "runners.rst")):
            for _kind, _arg, lines in _blocks(os.path.join(DOCS, page)):
                if lines and lines[0] == "[zmqprocesstest]":
                    parser = configparser.ConfigParser()
                    parser.read_string("\n".join(lines))
                    parse_expression(parser["zmqprocesstest"]["marks"])

    def test_the_command_line_synopsis(self):
        from zmqprocesstest import __main__ as main
        with self.assertRaises(SystemExit) as caught:
            main.main(["-m"])
        self.assertIn("python -m zmqprocesstest -m EXPR [unittest arguments]", str(caught.exception.code))

    def test_the_layout_tree_is_the_example_project(self):
        project = os.path.join(EXAMPLES, "project")
        for rel in ("pyproject.toml", "run_all_runners.sh", "echoapp/__init__.py", "echoapp/server.py",
                    "tests/__init__.py", "tests/test_server.py"):
            self.assertTrue(os.path.isfile(os.path.join(project, rel)), rel)


class TestCommands(unittest.TestCase):
    """The documented commands that no other test runs, run as written (on one module)."""

    def run_here(self, command, cwd=ROOT, env=None):
        full = dict(os.environ, **(env or {}))
        bindir = os.path.dirname(sys.executable)
        full["PATH"] = bindir + os.pathsep + full.get("PATH", "")
        done = subprocess.run(["bash", "-c", command.replace("python ", f"{sys.executable} ", 1)], cwd=cwd,
                              env=full, capture_output=True, text=True, timeout=300, start_new_session=True)
        return done

    def test_selection_commands(self):
        one = " -p test_pongproc.py"
        for command in ("python -m unittest discover -s docs/examples -t docs/examples -p test_pongproc.py -v",
                        'ZMQPROCESSTEST_MARKS="not slow" python -m unittest discover -s docs/examples '
                        '-t docs/examples' + one,
                        'python -m zmqprocesstest -m "process and not slow" discover -s docs/examples '
                        '-t docs/examples' + one,
                        "ZMQPROCESSTEST_TIMEOUT_SCALE=5 python -m unittest discover -s docs/examples "
                        "-t docs/examples" + one):
            done = self.run_here(command)
            self.assertEqual(done.returncode, 0, command + "\n" + done.stderr[-2000:])
            self.assertRegex(done.stderr, r"Ran [1-9]\d* tests?")
        for command in ("python -m nose2 --plugin nose2.plugins.attrib -A 'process,!slow' -s docs/examples "
                        "-t docs/examples test_pongproc",
                        'python -m pytest -p no:cacheprovider --strict-markers -m "process and not slow" '
                        "docs/examples/howto/test_marks.py"):
            done = self.run_here(command)
            self.assertEqual(done.returncode, 0, command + "\n" + done.stdout[-2000:] + done.stderr[-2000:])

    def test_report_dir_commands(self):
        """The report directory's commands, on one example module, into a temporary directory."""
        for command in ("python -m zmqprocesstest --report-dir reports/ discover -s docs/examples -t docs/examples",
                        "ZMQPROCESSTEST_REPORT_DIR=reports/ python -m pytest docs/examples"):
            with tempfile.TemporaryDirectory() as reports:
                one = (command.replace("reports/", reports + "/")
                       .replace("discover -s docs/examples -t docs/examples",
                                "discover -s docs/examples -t docs/examples -p test_pongproc.py")
                       .replace("pytest docs/examples", "pytest -p no:cacheprovider -q docs/examples/test_pongproc.py"))
                done = self.run_here(one)
                self.assertEqual(done.returncode, 0, one + "\n" + done.stdout[-2000:] + done.stderr[-2000:])
                with open(os.path.join(reports, "index.html"), encoding="utf-8") as f:
                    self.assertIn("test_ping", f.read())

    def test_a_module_level_generator_test_is_what_the_runners_page_says(self):
        """howto/runners.rst: nose2 reports a LoadTestsFailure for it (the rest of the
        module runs), and pytest refuses it while collecting."""
        with open(os.path.join(DOCS, "howto", "runners.rst"), encoding="utf-8") as f:
            page = " ".join(f.read().split())
        self.assertIn("reports a ``LoadTestsFailure`` error for it", page)
        self.assertIn("pytest refuses it while collecting", page)
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "test_leftover.py"), "w", encoding="utf-8") as f:
                f.write("import unittest\n\ndef test_cases():\n    yield 1\n\n"
                        "class TestKept(unittest.TestCase):\n    def test_kept(self):\n        pass\n")
            nose2 = self.run_here(f"python -m nose2 -s {folder} -t {folder}")
            self.assertIn("LoadTestsFailure", nose2.stderr)
            self.assertRegex(nose2.stderr, r"Ran 2 tests")  # the error, and the class's test
            pytest = self.run_here(f"python -m pytest -p no:cacheprovider -q {folder}")
            self.assertNotEqual(pytest.returncode, 0)
            self.assertIn("'yield' keyword is allowed in fixtures, but not in tests", pytest.stdout)

    def test_full_traceback_command_from_docs_examples(self):
        done = self.run_here("cd docs/examples && ZMQPROCESSTEST_FULL_TRACEBACK=1 python -m unittest "
                             "howto.failing_samples")
        self.assertNotEqual(done.returncode, 0)  # the samples fail on purpose
        self.assertIn("zmqprocesstest", done.stderr)
        self.assertNotIn("ModuleNotFoundError", done.stderr)


if __name__ == "__main__":
    unittest.main()
