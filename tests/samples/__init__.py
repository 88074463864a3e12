"""Sample test cases and child-runner scripts that the tests in tests/ run: not tests.

The tests import these modules (``from .samples import cases``), run them in child
runners (``python -m unittest tests.samples.racy_sample``) or copy them into a
temporary directory under a test's name. No module here is named ``test*``, so no
runner collects one of them as a test of its own.
"""
