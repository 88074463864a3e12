"""Sphinx configuration for the zmqprocesstest documentation."""
import os
import sys

# Import the package from this checkout, installed or not.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The extension that builds the events table and the diagrams from the code.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

import zmqprocesstest  # noqa: E402

project = "zmqprocesstest"
author = "the zmqprocesstest authors"
copyright = "2026, the zmqprocesstest authors"
release = zmqprocesstest.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.extlinks",
    "zpt_sphinx",
]

# examples/ holds the code the pages include, includes/ the reST they include (the events
# table, generated and committed): neither is a source of pages.
exclude_patterns = ["_build", "_ext", "examples", "includes", "Thumbs.db", ".DS_Store"]

root_doc = "index"
language = "en"
default_role = "any"
# Every cross-reference must resolve. The only targets let through are the standard
# library's and pyzmq's, which these docs do not own (there is no intersphinx: the build
# runs offline), and type names that only appear in signatures.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(zmq|socket|selectors|multiprocessing|unittest|re|logging|signal|types|os|subprocess|sys|tempfile"
               r"|json|inspect|threading|time|select|io|pathlib|dataclasses|contextlib|collections|enum)(\..*)?"),
    (r"py:.*", r"(typing\.)?(Any|Callable|Dict|FrozenSet|Iterable|Iterator|List|Mapping|Optional|Pattern|Sequence"
               r"|Set|Tuple|Type|TypeVar|Union|Generator|Protocol|NamedTuple)"),
    (r"py:.*", r"(int|float|str|bytes|bool|dict|list|tuple|set|frozenset|object|type|None|callable|function)"),
    (r"py:.*", r"(BaseException|Exception|TypeError|ValueError|AssertionError|KeyboardInterrupt|SystemExit"
               r"|OSError|KeyError|RuntimeError|TimeoutError|NotImplementedError|DeprecationWarning)"),
    (r"py:.*", r"(F|T)"),  # TypeVars of decorators
    (r"py:.*", r"hypothesis(\..*)?"),  # an optional extra: not installed where the docs build
    (r"py:class", r"zmqprocesstest\.stateful\.\w+TestCase"),  # made per machine: documented as TestCase
    # Private modules are named in docstrings (where the code lives), never documented,
    # at the package's top or in a wing.
    (r"py:.*", r"zmqprocesstest(\.[a-z]\w*)?\._\w+(\..*)?"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_typehints_format = "short"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}

# No intersphinx (the build runs offline): plain links to the Python and pyzmq docs.
extlinks = {
    "pydoc": ("https://docs.python.org/3/%s", "%s"),
    "pyzmq": ("https://pyzmq.readthedocs.io/en/latest/%s", "%s"),
    "zguide": ("https://zguide.zeromq.org/docs/%s", "%s"),
}

html_theme = "alabaster"
html_title = f"zmqprocesstest {release}"
html_static_path = []
html_theme_options = {
    "description": "Process and system tests for PyZMQ applications, inside unittest",
    "fixed_sidebar": True,
}


def _check_public_api(app, env):
    """Warn (an error under -W) if a name in zmqprocesstest.__all__ is not documented."""
    from sphinx.util import logging

    documented = set(env.get_domain("py").objects)
    missing = [name for name in zmqprocesstest.__all__ if f"zmqprocesstest.{name}" not in documented]
    if missing:
        logging.getLogger(__name__).warning(
            "public names missing from the reference (reference.rst): %s", ", ".join(missing))


def _public_bases(app, name, obj, options, bases):
    """Leave private implementation classes (``zmqprocesstest.faults._proxy.Proxy``...) out of "Bases:"."""
    public = [base for base in bases
              if not (base.__module__.startswith("zmqprocesstest.")
                      and any(part.startswith("_") for part in base.__module__.split(".")[1:]))]
    bases[:] = public or [object]  # never an empty "Bases:"


def _resolve_short_name(app, env, node, contnode):
    """Resolve a short name in a docstring (``LinkStats``, ``STOP_STEPS``) to the one
    documented zmqprocesstest object it ends with; within the same class first.

    A docstring's own module is not always the one its object is documented under
    (``FaultLink`` is documented as ``zmqprocesstest.FaultLink``), so Sphinx's own
    lookup misses names of that module. Ambiguous or unknown names stay unresolved
    (an error under ``nitpicky``).
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    domain = env.get_domain("py")
    matches = [name for name in domain.objects
               if name.startswith("zmqprocesstest.") and name.endswith("." + target)]
    # An object documented under a path other than its module's (zmqprocesstest.faults.LinkStats,
    # defined in zmqprocesstest.faults.link) is also entered under the latter, as an alias.
    matches = [name for name in matches if not domain.objects[name].aliased] or matches
    scope = ".".join(filter(None, (node.get("py:module"), node.get("py:class"))))
    if len(matches) > 1 and scope:
        matches = [name for name in matches if name.startswith(scope + ".")]
    if len(matches) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], matches[0], node, contnode)


def setup(app):
    app.connect("missing-reference", _resolve_short_name)
    app.connect("env-check-consistency", _check_public_api)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("builder-inited", _draw_example)  # defined below


def _draw_example(app):
    """Run the Lazy Pirate drop-and-retry example with a report directory and keep its
    diagram for docs/howto/flaky.rst (the page shows the real output)."""
    import shutil
    import subprocess
    import tempfile

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_generated", "lazy_pirate_drop.svg")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    examples = os.path.join(ROOT, "docs", "examples")
    directory = tempfile.mkdtemp(prefix="zpt-docs-")
    try:
        env = dict(os.environ, ZMQPROCESSTEST_REPORT_DIR=directory, ZMQPROCESSTEST_REPORT_ALL="1",
                   PYTHONPATH=os.pathsep.join([ROOT, examples]))
        subprocess.run([sys.executable, "-m", "unittest",
                        "howto.test_failure_handling.TestLazyPirate.test_one_request_dropped"],
                       cwd=examples, env=env, check=True, timeout=120, capture_output=True)
        page_dir = os.path.join(directory, "tests")
        with open(os.path.join(page_dir, os.listdir(page_dir)[0]), encoding="utf-8") as f:
            page = f.read()
        svg = page[page.index("<svg"):page.index("</svg>") + len("</svg>")]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(svg + "\n")

