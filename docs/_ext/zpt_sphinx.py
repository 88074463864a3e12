"""Sphinx directives for pages made from the code (see ``zpt_model``).

``.. zpt-diagram:: NAME``
   An SVG diagram drawn by ``zpt_model.DIAGRAMS[NAME]``, inlined into the HTML page
   (no image file, no JavaScript); other builders get the diagram's title as text.

The events table is not built here: it is committed (``docs/includes/events.rst``, which
the pages include) so that it reads in the sources too. A build whose copy differs from
what the code makes warns (an error with ``-W``), naming the command that writes it.
"""
from docutils import nodes
from docutils.parsers.rst import Directive, directives
from sphinx.util import logging

import zpt_model

logger = logging.getLogger(__name__)


def check_events_table(app):
    """Warn if the committed events table is not what the code makes."""
    try:
        with open(zpt_model.EVENTS_INCLUDE, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current != zpt_model.events_include():
        logger.warning(f"{zpt_model.EVENTS_INCLUDE} differs from the library's events: "
                       "run python docs/_ext/zpt_model.py")


class Diagram(Directive):
    """One generated SVG diagram, by name."""

    required_arguments = 1
    option_spec = {"caption": directives.unchanged}

    def run(self):
        name = self.arguments[0]
        if name not in zpt_model.DIAGRAMS:
            raise self.error(f"expected a diagram name from {sorted(zpt_model.DIAGRAMS)}, got {name!r}")
        svg = zpt_model.DIAGRAMS[name]()
        result = [nodes.raw("", f'<div class="zpt-figure">{svg}</div>', format="html")]
        caption = self.options.get("caption")
        if caption:
            para = nodes.paragraph(classes=["caption"])
            para += nodes.emphasis(text=caption)
            result.append(para)
        return result


def setup(app):
    app.connect("builder-inited", check_events_table)
    app.add_directive("zpt-diagram", Diagram)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
