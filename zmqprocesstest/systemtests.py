"""System tests: run the whole application from outside and compare with golden files.

:func:`run_program` runs a command line (in its own session, killed with its children on
timeout). :meth:`SystemTestCase.assertGolden` compares text with a golden file and shows
a unified diff on mismatch. With ``ZMQPROCESSTEST_UPDATE_GOLDEN=1`` mismatching or
missing golden files are rewritten instead, each write reported on stderr; a write never
goes outside the golden-file directory. Normalisers replace what varies from run to run
(ports, pids, timestamps, paths) before the comparison.

A :class:`SystemTestCase` is a :class:`~zmqprocesstest.ProcessTestCase`: it can start the
application with :meth:`~zmqprocesstest.ProcessTestCase.start_command` and talk to it as
a client through test sockets with the same yield events.
"""
from __future__ import annotations

import difflib
import os
import re
import signal
import subprocess
import sys
from typing import Callable, Dict, Iterable, NamedTuple, Optional, Sequence, Union

from .case import ProcessTestCase
from ._config import PROGRAM_GROUP_WAIT, PROGRAM_TIMEOUT, UPDATE_GOLDEN_ENV, Timeout, check_seconds, env_flag, scaled
from .processes._reaper import wait_group_gone
from .processes.managed import launch

__unittest = True
__tracebackhide__ = True

__all__ = [
    "SystemTestCase",
    "ProgramResult",
    "ProgramTimeout",
    "run_program",
    "golden_path",
    "normalise_ports",
    "normalise_pids",
    "normalise_timestamps",
    "normalise_path",
    "normalise_regex",
    "UPDATE_GOLDEN_ENV",
]


Normaliser = Callable[[str], str]


class ProgramResult(NamedTuple):
    """What a program run by :func:`run_program` did."""

    argv: Sequence[str]
    returncode: int
    stdout: str
    stderr: str


class ProgramTimeout(Timeout):
    """A program run by :func:`run_program` did not finish in time (it was killed)."""


def run_program(argv: Sequence[str], *, env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                stdin: Union[str, bytes, None] = None, timeout: Optional[float] = None) -> ProgramResult:
    """Run *argv* to completion and capture stdout and stderr as text.

    It is started like every command under test (``processes.launch``:
    a new session, default signal dispositions); after *timeout* seconds (default 10 s,
    scaled by ``ZMQPROCESSTEST_TIMEOUT_SCALE``) the whole session is killed and
    :class:`ProgramTimeout` shows what it printed so far.
    """
    limit = scaled(PROGRAM_TIMEOUT) if timeout is None else check_seconds(timeout, "the timeout of run_program")
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    with launch(argv, env=env, cwd=cwd, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            out, err = proc.communicate(data, timeout=limit)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            raise ProgramTimeout(f"{list(argv)} did not finish within {limit:g} s (killed it)\n"
                                 f"stdout so far:\n{out.decode('utf-8', 'replace')}\n"
                                 f"stderr so far:\n{err.decode('utf-8', 'replace')}") from None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # grandchildren it left behind
            except (ProcessLookupError, PermissionError):
                pass
            else:
                wait_group_gone(proc.pid, scaled(PROGRAM_GROUP_WAIT))  # reaping those that were orphans (subreaper)
    return ProgramResult(list(argv), proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


# -- normalisers ----------------------------------------------------------------------
def normalise_regex(pattern: str, replacement: str) -> Normaliser:
    """A normaliser that replaces every match of *pattern* with *replacement*."""
    regex = re.compile(pattern)
    return lambda text: regex.sub(replacement, text)


_PORTS = re.compile(r"(?<=[\w\]\.]:)\d{2,5}\b")
_PIDS = re.compile(r"(?i)(?<=\bpid)([ =:]\s*)\d+|(?<=\[)\d{2,7}(?=\])")
_TIMES = re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)?"
                    r"|\b\d\d:\d\d:\d\d(?:[.,]\d+)?")


def normalise_ports(text: str) -> str:
    """Replace port numbers after ``host:`` with ``<PORT>`` (``tcp://127.0.0.1:<PORT>``)."""
    return _PORTS.sub("<PORT>", text)


def normalise_pids(text: str) -> str:
    """Replace ``pid 1234``, ``pid=1234`` and ``[1234]`` with ``<PID>`` in their place."""
    return _PIDS.sub(lambda m: (m.group(1) or "") + "<PID>", text)


def normalise_timestamps(text: str) -> str:
    """Replace ISO dates/times and ``HH:MM:SS[.fff]`` with ``<TIME>``."""
    return _TIMES.sub("<TIME>", text)


def normalise_path(path: str, placeholder: str = "<PATH>") -> Normaliser:
    """A normaliser that replaces *path* (e.g. a temp dir) with *placeholder*."""
    return lambda text: text.replace(path, placeholder)


def golden_path(directory: str, name: str) -> str:
    """``directory/name``, refusing any *name* that would lead outside *directory*.

    :raises ValueError: for absolute names, ``..`` or a symlink that escapes.
    """
    root = os.path.realpath(directory)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.isabs(name) or os.path.commonpath([root, path]) != root:
        raise ValueError(f"expected a golden file name inside {root}, got {name!r}")
    return path


def _updating() -> bool:
    return env_flag(UPDATE_GOLDEN_ENV)


class SystemTestCase(ProcessTestCase):
    """A test case for whole-application tests against golden output.

    Set :attr:`golden_dir` (default: ``golden/`` beside the test module). Start the
    application with :meth:`~zmqprocesstest.ProcessTestCase.start_command`, talk to it
    through test sockets with yield events like a client would, or run a program with
    :meth:`run_program` and compare its output with :meth:`assertGolden`.
    """

    #: Directory of golden files; relative paths are relative to the test module.
    golden_dir: Optional[str] = None
    #: Normalisers applied to output before every golden comparison.
    normalisers: Sequence[Normaliser] = ()

    def golden_directory(self) -> str:
        """The absolute golden-file directory of this test case."""
        return os.path.join(self._module_directory(), self.golden_dir or "golden")

    def _module_directory(self) -> str:
        return os.path.dirname(os.path.abspath(sys.modules[type(self).__module__].__file__ or "."))

    def _shown_golden_path(self, path: str) -> str:
        """*path* as a diff shows it: relative to the test module's directory (where a
        relative :attr:`golden_dir` starts) if it is inside it, else absolute."""
        relative = os.path.relpath(path, os.path.realpath(self._module_directory()))
        return path if relative == os.pardir or relative.startswith(os.pardir + os.sep) else relative

    def run_program(self, argv: Sequence[str], **kwargs: object) -> ProgramResult:
        """Same as :func:`run_program`."""
        return run_program(argv, **kwargs)  # type: ignore[arg-type]

    def assertGolden(self, text: str, name: str, normalisers: Iterable[Normaliser] = ()) -> None:
        """Assert that *text* (normalised) equals golden file *name*; diff if not."""
        for normalise in (*self.normalisers, *normalisers):
            text = normalise(text)
        path = golden_path(self.golden_directory(), name)
        exists = os.path.exists(path)
        expected = None
        if exists:
            with open(path, encoding="utf-8", newline="") as f:
                expected = f.read()
        if expected == text:
            return
        if _updating():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            print(f"zmqprocesstest: {'updated' if exists else 'created'} golden file {path}", file=sys.stderr)
            return
        if expected is None:
            self.fail(f"golden file {path} does not exist; create it by running this test with {UPDATE_GOLDEN_ENV}=1 "
                      "and review the file before committing it")
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            fromfile=self._shown_golden_path(path), tofile="actual output"))
        self.fail(f"output differs from golden file {path} "
                  f"(rerun with {UPDATE_GOLDEN_ENV}=1 to accept the new output):\n{diff}")

    def assertProgramOutput(self, argv: Sequence[str], name: str, *, returncode: Optional[int] = 0,
                            stderr: bool = False, normalisers: Iterable[Normaliser] = (),
                            **kwargs: object) -> ProgramResult:
        """Run *argv*; compare stdout with golden *name* (stderr with ``name.stderr``).

        :param returncode: the expected exit code (``None``: do not check).
        :param stderr: also compare stderr with a golden file.
        """
        result = run_program(argv, **kwargs)  # type: ignore[arg-type]
        normalisers = list(normalisers)
        problems = []
        for text, golden in [(result.stdout, name)] + ([(result.stderr, name + ".stderr")] if stderr else []):
            try:
                self.assertGolden(text, golden, normalisers)
            except AssertionError as exc:
                problems.append(str(exc))
        if returncode is not None and result.returncode != returncode:
            problems.append(f"expected exit code {returncode}, got {result.returncode}; stderr:\n{result.stderr}")
        if problems:
            self.fail("\n\n".join(problems))
        return result
