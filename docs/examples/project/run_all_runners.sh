#!/bin/sh
# Run this project's tests under every runner, from the project root, with the test
# extra installed (pip install -e '.[test]'). Each command runs the same 4 tests.
set -e
cd "$(dirname "$0")"

python -m unittest discover -s tests -t .
python -m zmqprocesstest -m process discover -s tests -t .
nose2 -s tests -t .
pytest tests
pytest -n 2 tests
unittest-parallel -s tests -t . -j 2
