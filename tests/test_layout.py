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
#: The sub-packages of the library, one concept each (see docs/design.rst).
WINGS = ("faults", "processes", "report", "runs", "timeout")


def _modules():
    """``{dotted name inside the package: path}``: ``case``, ``processes.managed``..., and
    ``processes`` for a wing's ``__init__``."""
    root = os.path.join(ROOT, PACKAGE)
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        for name in sorted(files):
            if name.endswith(".py"):
                parts = os.path.relpath(os.path.join(folder, name[:-3]), root).split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1] or ["__init__"]
                found[".".join(parts)] = os.path.join(folder, name)
    return found


def _resolve(name, modules):
    """The longest module of the package that the dotted *name* (inside the package) names."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imported(node, modules, where=""):
    """The package's modules that one import node names, in module *where* (a dotted
    name inside the package: relative imports are resolved from its package)."""
    here = where.split(".")[:-1] if where not in modules or not _is_package(where, modules) else where.split(".")
    names = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1:
                names.append(".".join(parts[1:]))
    elif isinstance(node, ast.ImportFrom):
        if node.level == 0:
            parts = (node.module or "").split(".")
            if parts[0] != PACKAGE:
                return []
            base = parts[1:]
        else:
            if node.level - 1 > len(here):
                return []
            base = here[:len(here) - (node.level - 1)] + [p for p in (node.module or "").split(".") if p]
        for alias in node.names:
            full = ".".join(base + [alias.name])
            names.append(full if full in modules else ".".join(base))  # a module, or a name in one
    found = [_resolve(name, modules) for name in names if name]
    return [name for name in found if name and name != "__init__"]


def _is_package(name, modules):
    return os.path.basename(modules[name]) == "__init__.py"


def import_graph():
    """``{module: {module it imports, ...}}`` for the package (its ``__init__`` left out:
    it imports everything, and nothing imports it)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        if name == "__init__":
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        graph[name] = {target for node in ast.walk(tree) for target in _imported(node, modules, name)} - {name}
    return graph


def wing_of(module):
    """The wing a module belongs to, or ``None`` for the core."""
    first = module.split(".")[0]
    return first if first in WINGS else None


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
        modules = {"a": "a.py", "b": "b.py", "c": "c.py", "d": "d.py", "e": "e.py", "w": "w/__init__.py",
                   "w.f": "w/f.py", "w.g": "w/g.py"}
        tree = ast.parse("from . import a\nfrom .b import x\nimport zmqprocesstest.c\n"
                         "from zmqprocesstest.d import y\ndef f():\n    from .e import z\n"
                         "from .w import f\nfrom .w.g import h\nimport os\nfrom typing import Any\n")
        found = sorted(t for node in ast.walk(tree) for t in _imported(node, modules, "case"))
        self.assertEqual(found, ["a", "b", "c", "d", "e", "w.f", "w.g"])
        inside = ast.parse("from .. import a\nfrom ..b import x\nfrom . import g\nfrom .g import y\n"
                           "from ..w import z\n")
        found = sorted(t for node in ast.walk(inside) for t in _imported(node, modules, "w.f"))
        self.assertEqual(found, ["a", "b", "w", "w.g", "w.g"])

    def test_a_cycle_is_found_and_named(self):
        self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}), ["a", "b", "c", "a"])
        self.assertIsNone(find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}))

    def test_the_package_has_no_import_cycle(self):
        graph = import_graph()
        self.assertIn("processes.stopping", graph["processes.managed"])  # the reader reads the wings
        self.assertIn("report.timeline", graph["sockets"])
        cycle = find_cycle(graph)
        self.assertIsNone(cycle, f"import cycle in the package: {' -> '.join(cycle or [])}")

    def test_the_wings_import_each_other_without_a_cycle(self):
        wings = {}
        for module, targets in import_graph().items():
            wing = wing_of(module)
            if wing is not None:
                wings.setdefault(wing, set()).update(w for w in map(wing_of, targets) if w not in (None, wing))
        self.assertEqual(set(wings), set(WINGS))
        cycle = find_cycle(wings)
        self.assertIsNone(cycle, f"wings that import each other: {' -> '.join(cycle or [])}")

    def test_no_wing_imports_a_private_module_of_another(self):
        found = []
        for module, targets in import_graph().items():
            for target in targets:
                wing = wing_of(target)
                if wing_of(module) not in (None, wing) and wing is not None and target.split(".")[-1].startswith("_"):
                    found.append(f"{module} imports {target}")
        self.assertEqual(found, [], "import the wing's public names (its __init__) instead")

    def test_every_wing_is_a_package_that_says_what_it_holds(self):
        # No count of modules is a rule (one concept per module is): the wings exist,
        # and each __init__ says what it holds (tests/test_exports.py checks docstrings).
        for wing in WINGS:
            with self.subTest(wing=wing):
                self.assertTrue(os.path.exists(os.path.join(ROOT, PACKAGE, wing, "__init__.py")))


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
