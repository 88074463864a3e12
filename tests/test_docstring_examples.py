"""Every example in the package's docstrings runs, as written, in the setting it implies.

The examples are found by reading the source (each ``::`` literal block of a module's,
class's or function's docstring), so a new one fails here until it gets a runner below.
"""
import ast
import os
import shutil
import sys
import tempfile
import textwrap
import types
import unittest
import unittest.mock

import zmq

import zmqprocesstest
from zmqprocesstest import ProcessTestCase, mark, module_scope, process
from zmqprocesstest.faults import FaultLink
from zmqprocesstest.history import History
from zmqprocesstest.sockets import make_sock

from .support import ROOT, problems, run_case
from pingpong import manager
from pingpong.pongproc import PongProc

PACKAGE = os.path.join(ROOT, "zmqprocesstest")


def docstring_examples():
    """``{(module file, object name): code}`` of every literal block in a docstring."""
    found = {}
    for filename in sorted(os.listdir(PACKAGE)):
        if not filename.endswith(".py"):
            continue
        with open(os.path.join(PACKAGE, filename), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        nodes = [("<module>", tree)] + [(node.name, node) for node in ast.walk(tree)
                                        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
        for name, node in nodes:
            doc = ast.get_docstring(node, clean=True)
            if doc:
                for code in _literal_blocks(doc):
                    found[(filename, name)] = code
    return found


def _literal_blocks(doc):
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::") or line.lstrip().startswith(".."):
            continue
        block = []
        for following in lines[i + 1:]:
            if following.strip() and not following.startswith((" ", "\t")):
                break
            block.append(following)
        yield textwrap.dedent("\n".join(block)).strip("\n")


def in_a_test(code, namespace, setup=None):
    """Run *code* as the body of a test of a ProcessTestCase (``self`` is the test)."""
    ran = []

    class Runs(ProcessTestCase):
        def test_it(self):
            if setup:
                setup(self, namespace)
            exec(compile(code, "<docstring example>", "exec"), dict(namespace, self=self))
            ran.append(True)

    result = run_case(Runs)
    return problems(result), ran


class TestDocstringExamples(unittest.TestCase):
    def setUp(self):
        self.examples = docstring_examples()

    def test_every_example_has_a_runner_here(self):
        runners = {key for key in dir(self) if key.startswith("example_")}
        for filename, name in self.examples:
            with self.subTest(example=f"{filename} {name}"):
                self.assertIn(f"example_{filename[:-3].strip('_')}_{name.strip('<>_')}", runners,
                              "a docstring example that no test runs: add a runner to this class")

    def test_every_example_runs(self):
        for (filename, name), code in sorted(self.examples.items()):
            runner = getattr(self, f"example_{filename[:-3].strip('_')}_{name.strip('<>_')}", None)
            if runner is None:
                continue  # reported by the test above
            with self.subTest(example=f"{filename} {name}"):
                runner(code)

    # -- one runner per example -------------------------------------------------------------
    def example_case_ProcessTestCase(self, code):
        namespace = {"ProcessTestCase": ProcessTestCase, "zmq": zmq, "PongProc": PongProc}
        exec(compile(code, "<docstring example>", "exec"), namespace)
        result = run_case(namespace["TestPong"])
        self.assertEqual((result.testsRun, problems(result)), (1, []))

    def example_case_module_scope(self, code):
        name = "zpt_docstring_example_module"
        module = types.ModuleType(name)
        module.__dict__.update(module_scope=module_scope, PongProc=PongProc)
        sys.modules[name] = module
        self.addCleanup(sys.modules.pop, name, None)
        exec(compile(code, "<docstring example>", "exec"), module.__dict__)
        module.setUpModule()
        try:
            self.assertTrue(module.ENDPOINT.startswith("ipc://"))
            shared = zmqprocesstest.scopes.MODULE_SCOPES[name]
            self.assertTrue(all(proc.alive() for proc in shared._resources().processes))
        finally:
            unittest.case.doModuleCleanups()
        zmqprocesstest.scopes.MODULE_SCOPES.pop(name, None)

    def example_faults_FaultLink(self, code):
        def start_server(case, namespace):
            namespace["server_endpoint"] = case.endpoint
            case.start_process(PongProc, case.endpoint)

        self.assertEqual(in_a_test(code, {"FaultLink": FaultLink, "zmq": zmq}, start_server), ([], [True]))

    def example_loop_override_event(self, code):
        namespace = {"ProcessTestCase": ProcessTestCase, "override_event": zmqprocesstest.override_event}
        exec(compile(code, "<docstring example>", "exec"), namespace)
        seen = {}

        class Resets(namespace["CountedResets"]):
            def test_it(self):
                self.socket(zmq.REP, bind=self.endpoint)
                link = self.fault_link(self.endpoint)
                yield ("reset", link)
                seen["resets"], seen["history"] = self.resets, [what for _, what in link.history]

        self.assertEqual(problems(run_case(Resets)), [])
        self.assertEqual(seen, {"resets": 1, "history": ["reset"]})

    def example_history_History(self, code):
        history = History()
        exec(compile(code, "<docstring example>", "exec"), {"history": history})
        self.assertEqual([(op.type, op.process) for op in history.ops],
                         [("invoke", "c1"), ("ok", "c1"), ("invoke", "c2"), ("info", "c2")])

    def example_timeline_module(self, code):
        from zmqprocesstest import timeline

        exec(compile(code, "<docstring example>", "exec"), {})  # no test runs: nothing to record into
        seen = {}

        class Records(ProcessTestCase):
            def test_it(self):
                self.socket(zmq.REQ, name="req")  # a test that makes something has a timeline
                exec(compile(code, "<docstring example>", "exec"), {})
                seen["entries"] = [entry[1:] for entry in timeline.current().entries]

        self.assertEqual(problems(run_case(Records)), [])
        self.assertIn(("monitor", "req", "connected tcp://127.0.0.1:5555"), seen["entries"])

    def example_stateful_module(self, code):
        from hypothesis import settings, strategies
        from hypothesis.stateful import rule

        from zmqprocesstest.stateful import ProcessStateMachine

        namespace = {"ProcessStateMachine": ProcessStateMachine, "rule": rule, "st": strategies, "zmq": zmq,
                     "PongProc": PongProc}
        exec(compile(code, "<docstring example>", "exec"), namespace)
        case = namespace["PongMachineTestCase"]
        self.assertEqual(case.__name__, "PongMachineTestCase")
        case.settings = settings(max_examples=3, stateful_step_count=3, deadline=None, database=None)
        result = run_case(case)
        self.assertEqual((result.testsRun, problems(result)), (1, []))

    def example_marks_mark(self, code):
        namespace = {"mark": mark}
        exec(compile(code, "<docstring example>", "exec"), namespace)
        marked = process(type("Case", (ProcessTestCase,), {"test_many_pings": namespace["test_many_pings"]}))
        self.assertEqual(zmqprocesstest.marks.marks_of(marked("test_many_pings")), {"process", "slow"})

    def example_mocks_ProcessMock(self, code):
        sys.modules["app"] = manager  # the example's application module: a manager of workers
        self.addCleanup(sys.modules.pop, "app", None)
        self.assertEqual(in_a_test(code, {"unittest": unittest, "app": manager}), ([], [True]))

    def example_codecs_module(self, code):
        seen = []

        def endpoint(case, namespace):
            namespace.update(endpoint=case.endpoint, key="k")
            case.addCleanup(lambda: seen.extend(sock.codec for sock in case._resources().sockets))

        self.assertEqual(in_a_test(code, {"zmq": zmq}, endpoint), ([], [True]))
        self.assertEqual([codec.name for codec in seen], ["jupyter"])

    def example_conversations_module(self, code):
        """Not Python: the lines of a recording, which read as one."""
        from zmqprocesstest.conversations import read_conversation
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "example.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(code)
        conversation = read_conversation(path)
        self.assertEqual((conversation.meta, [m.frames for m in conversation.messages]),
                         ({"client": "REQ", "server": "REP"}, [(b"", b'["ping", 1]'), (b"", b'["pong", 1]')]))

    def example_sockets_AsyncTestSocket(self, code):
        namespace = {"zmq": zmq}
        exec(compile(code, "<docstring example>", "exec"), namespace)

        class Pings(ProcessTestCase):
            def setUp(self):
                self.start_process(PongProc, self.endpoint)

            test_ping = namespace["test_ping"]  # a coroutine test, converted when the class is made

        result = run_case(Pings)
        self.assertEqual((result.testsRun, problems(result)), (1, []))

    def example_sockets_make_sock(self, code):
        ctx = zmq.Context()
        namespace = {"make_sock": make_sock, "ctx": ctx, "zmq": zmq}
        try:
            exec(compile(code, "<docstring example>", "exec"), namespace)
            req = namespace["req"]
            self.assertEqual((req.socket_type, req.timeout), (zmq.REQ, 2))
            req.close()
        finally:
            ctx.term()


if __name__ == "__main__":
    unittest.main()
