"""The documented path of :mod:`zmqprocesstest.report.html`, the HTML report.

The HTML report lives in the report wing. Imported, this module *is* that module under
its first name (the same module object). Run, ``python -m zmqprocesstest.report_html
REPORT_DIR`` rebuilds ``REPORT_DIR/index.html``.
"""
import sys

from .report import html as _module

if __name__ == "__main__":
    _module.main(sys.argv[1:])
else:
    sys.modules[__name__] = _module
