"""The package's layering: its modules import each other without a cycle.

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
