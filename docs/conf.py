"""Sphinx configuration for the zmqprocesstest documentation."""
import os
import sys

# Import the package from this checkout, installed or not.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import zmqprocesstest  # noqa: E402

project = "zmqprocesstest"
author = "the zmqprocesstest authors"
copyright = "2026, the zmqprocesstest authors"
release = zmqprocesstest.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.extlinks",
]

# examples/ holds the code the pages include; it is not a source of pages.
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store"]

root_doc = "index"
language = "en"
default_role = "any"
nitpicky = False

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
    """Leave private implementation classes (``zmqprocesstest._proxy.Proxy``...) out of "Bases:"."""
    bases[:] = [base for base in bases
                if not (base.__module__.startswith("zmqprocesstest.") and base.__module__.split(".")[1].startswith("_"))]


def setup(app):
    app.connect("env-check-consistency", _check_public_api)
    app.connect("autodoc-process-bases", _public_bases)
