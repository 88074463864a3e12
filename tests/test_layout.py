"""The package's layering: its modules import each other without a cycle; its bounds are named.

The graph is read from the source with :mod:`ast`, so it counts every import: at module
level, inside functions and under ``if TYPE_CHECKING:``, in the forms ``from . import x``,
``from .x import y``, ``from zmqprocesstest.x import y`` and ``import zmqprocesstest.x``.
A function-local import hides a cycle from the interpreter, not from a reader.
"""
import ast
import os
import unittest

from .support import ROOT

PACKAGE = "zmqprocesstest"


def _modules():
    folder = os.path.join(ROOT, PACKAGE)
    return {name[:-3]: os.path.join(folder, name) for name in sorted(os.listdir(folder)) if name.endswith(".py")}


def _imported(node, modules):
    """The package's modules that one import node names."""
    found = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1:
                found.append(parts[1])
    elif isinstance(node, ast.ImportFrom):
        if node.level == 1 or (node.level == 0 and (node.module or "").split(".")[0] == PACKAGE):
            parts = (node.module or "").split(".")
            if node.level == 0:
                parts = parts[1:]
            if parts and parts[0]:
                found.append(parts[0])  # from .x import y, from .x.y import z
            else:
                found.extend(alias.name for alias in node.names)  # from . import x
    return [name for name in found if name in modules and name != "__init__"]


def import_graph():
    """``{module: {module it imports, ...}}`` for the package (``__init__`` left out: it
    imports everything, and nothing imports it)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        if name == "__init__":
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        graph[name] = {target for node in ast.walk(tree) for target in _imported(node, modules)} - {name}
    return graph


def find_cycle(graph):
    """One import cycle as ``[a, b, ..., a]``, or ``None``."""
    state = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


class TestImportGraph(unittest.TestCase):
    def test_the_graph_reader_sees_every_form_of_import(self):
        modules = {"a": "", "b": "", "c": "", "d": "", "e": ""}
        tree = ast.parse("from . import a\nfrom .b import x\nimport zmqprocesstest.c\n"
                         "from zmqprocesstest.d import y\ndef f():\n    from .e import z\n"
                         "import os\nfrom typing import Any\n")
        found = sorted(t for node in ast.walk(tree) for t in _imported(node, modules))
        self.assertEqual(found, ["a", "b", "c", "d", "e"])

    def test_a_cycle_is_found_and_named(self):
        self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}), ["a", "b", "c", "a"])
        self.assertIsNone(find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}))

    def test_the_package_has_no_import_cycle(self):
        graph = import_graph()
        self.assertIn("stopping", graph["processes"])  # the reader reads the package
        cycle = find_cycle(graph)
        self.assertIsNone(cycle, f"import cycle in the package: {' -> '.join(cycle or [])}")


if __name__ == "__main__":
    unittest.main()


class TestNamedBounds(unittest.TestCase):
    """Every bound of the library is a named constant in _config.py, with its reason:
    no ``scaled(<number>)`` and no numeric default of a ``timeout`` parameter elsewhere."""

    def literal_bounds(self, source):
        tree = ast.parse(source)
        found = []
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "scaled" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                found.append(f"line {node.lineno}: scaled({node.args[0].value!r})")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args[len(node.args.args) - len(node.args.defaults):] + node.args.kwonlyargs
                defaults = list(node.args.defaults) + [d for d in node.args.kw_defaults]
                for arg, default in zip(args, defaults):
                    if "timeout" in arg.arg and isinstance(default, ast.Constant) \
                            and isinstance(default.value, (int, float)) and not isinstance(default.value, bool):
                        found.append(f"line {node.lineno}: {node.name}({arg.arg}={default.value!r})")
        return found

    def test_the_scan_finds_both_forms(self):
        self.assertEqual(len(self.literal_bounds("def f(x, timeout=5.0):\n    return scaled(1.0)\n")), 2)

    def test_no_literal_bound_outside_config(self):
        for name, path in _modules().items():
            if name != "_config":
                with open(path, encoding="utf-8") as f:
                    found = self.literal_bounds(f.read())
                with self.subTest(module=name):
                    self.assertEqual(found, [], f"{name}: name these bounds in _config.py, with their reason")
