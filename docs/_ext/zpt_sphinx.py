"""Sphinx directives for pages made from the code (see ``zpt_model``).

``.. zpt-events::``
   The table of every event the library defines, built at docs build time.
``.. zpt-diagram:: NAME``
   An SVG diagram drawn by ``zpt_model.DIAGRAMS[NAME]``, inlined into the HTML page
   (no image file, no JavaScript); other builders get the diagram's title as text.
"""
from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList

import zpt_model


class EventsTable(Directive):
    """The events table, one row per ``@event`` method of the library."""

    has_content = False

    def run(self):
        container = nodes.container(classes=["zpt-events"])
        lines = zpt_model.events_table_rst(zpt_model.library_events())
        self.state.nested_parse(StringList(lines, source="zpt-events"), self.content_offset, container)
        return [container]


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
    app.add_directive("zpt-events", EventsTable)
    app.add_directive("zpt-diagram", Diagram)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
