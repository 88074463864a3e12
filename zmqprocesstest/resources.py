"""What a test owns, how it is released, and the leak check.

:class:`Resources` holds everything a test made through its test case: zmq contexts and
test sockets, processes under test, mocks, the private temp dir of its ipc endpoints,
and the timeline of its messages. It is also the :class:`~zmqprocesstest.sockets.Watch`
of its sockets (the processes they watch while waiting), and releases everything in a
safe order after the test: processes first (so nothing talks to a closed socket), then
sockets (``linger=0``), then contexts (bounded, never a hang; on their own thread, while
the temp dir is removed).

The leak check (:func:`leak_snapshot`, :func:`check_leaks`) compares open file
descriptors and child processes before and after a test, kills what was left running,
and fails the test that leaked, never a later one.
"""
from __future__ import annotations

import collections
import os
import shutil
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import zmq

from . import _perturb
from .processes import _guardian, _reaper
from ._compat import PerProcess
from .processes._os import child_pids, group_members, listening_endpoints, open_fds, orphan_pids, peer_closed_sockets
from ._config import CONTEXT_TERM_TIMEOUT, EXIT_DRAIN, EXIT_GRACE, scaled
from .processes._output import drainer_fds
from .processes.managed import ExitStatusLost, ManagedProcess, ProcessDied, ProcessStopError
from .sockets import TestSocket
from .processes.stopping import StopPlan
from .endpoints import private_dir
from .timeout import death_watch_fds, deaths_changed, quiet
from .report import timeline as _timeline
from .report.timeline import UNKNOWN_PEER, Timeline

__unittest = True
__tracebackhide__ = True

__all__ = ["LeakError", "Resources", "check_leaks", "leak_snapshot", "owner_name"]


_ORPHAN_ROUNDS = 10  # bounds the kill-and-look-again loop of _end_orphans


class LeakError(AssertionError):
    """A test left a socket, context, file descriptor or child process behind."""


def owner_name(owner: Any) -> str:
    """A test's id, or a class's or module scope's dotted name, for messages."""
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}"
    return owner.id() if owner is not None else "nobody"


class Resources:
    """What one test (or a class or module, shared) owns: contexts, sockets, processes...

    A test's resources also watch the processes of its class's and module's shared
    resources (*parents*); while the test runs, its timeline is the running one, so
    the shared sockets and processes record into it too.
    """

    def __init__(self, owner: Any, transcript_length: int = 20, parents: Sequence["Resources"] = ()) -> None:
        #: The test case, or the class (or module scope) sharing them.
        self.owner = owner
        self.parents = list(parents)
        self.contexts: List[zmq.Context] = []
        #: Shadows of a context (the test's ``asyncio_context``): their sockets are closed
        #: before the contexts are terminated.
        self.shadows: List[zmq.Context] = []
        self.sockets: List[TestSocket] = []
        self.processes: List[ManagedProcess] = []
        self.closers: List[Callable[[], None]] = []
        #: Fault links (:class:`~zmqprocesstest.faults.FaultLink`), closed after the sockets.
        self.links: List[Any] = []
        #: Socket monitors by id of the test socket they watch (the connection events).
        self.monitors: Dict[int, Any] = {}
        self.tmpdir: Optional[str] = None
        self._dir_lock = threading.Lock()
        self._released = False
        self.endpoints = 0
        self.endpoint: Optional[str] = None
        #: Children of the runner before the first process started (for :meth:`_end_orphans`).
        self.children_before: Optional[Set[int]] = None
        #: For shared resources: the last test that used them.
        self.last_user: Optional[str] = None
        #: The timeline of what happened (messages, processes, output, faults), active
        #: from now until :meth:`release` (see :mod:`zmqprocesstest.timeline`).
        self.timeline = Timeline(transcript_length)
        self._previous_timeline = _timeline.activate(self.timeline)
        self.timeline.full_at = getattr(owner, "_zpt_page", None)  # its HTML page, if one is written
        for parent in self.parents:  # the shared sockets and processes are lanes of its pictures too
            for name, (kind, detail) in parent.timeline.lanes.items():
                self.timeline.lane(name, kind, detail, parent.timeline.endpoints.get(name))
        #: Shared processes this owner froze (thawed at its end, see :meth:`froze`).
        self.frozen_shared: List[ManagedProcess] = []
        self._fds: Tuple[int, ...] = ()
        self.poll_slice: Optional[float] = None
        for parent in self.parents:
            for sock in parent.sockets:
                sock.watch = self
        if self.parents:
            self.refresh()
        for parent in self.parents:
            for proc in parent.processes:
                if proc.thawed_after is not None:  # the test before left it frozen
                    _timeline.record("fault", proc.name, f"thaw (SIGCONT) at the end of {proc.thawed_after}, "
                                     "which froze it")
                    proc.thawed_after = None

    # -- what the test adds ------------------------------------------------------------------
    def add_socket(self, sock: TestSocket, context: Optional[zmq.Context]) -> TestSocket:
        """Own *sock* (and its *context*, if not ours yet): watching, in the timeline, closed after."""
        if context is not None and context not in self.contexts:
            self.contexts.append(context)
        sock.watch = self
        sock.owner = self.owner
        self.timeline.lane(sock.name, "socket", ", ".join(sock.endpoints), sock.endpoints)
        self.sockets.append(sock)
        return sock

    def before_start(self) -> None:
        """Before a process of this owner starts: make the runner the reaper of
        orphans, and (before its first) note the children it has, so that a daemon left
        by any process started from now on is found (even one that daemonizes at once)."""
        if _perturb.hook is not None:
            _perturb.hook("start", "")
        self._note_children()

    def _note_children(self) -> None:
        if self.children_before is None:
            _reaper.prepare_runner()
            self.children_before = set(orphan_pids())

    def add_process(self, proc: ManagedProcess, plan: Optional[StopPlan] = None) -> ManagedProcess:
        """Own *proc*: watched while the test waits, stopped after it as *plan* says
        (the owner's; ``None`` keeps the plan it has)."""
        self._note_children()  # for a process started elsewhere: as late as it can be
        if plan is not None:
            proc.stop_plan = plan
        self.processes.append(proc)
        if _perturb.started is not None:
            _perturb.started(proc)  # stress: paused now and then
        self.timeline.lane(proc.name, "process", "", proc.endpoints)
        if proc.output is not None:
            proc.output.pid = proc.pid
            proc.output.spill_dir = self.spill_dir  # all its output, past what memory keeps
        self.refresh()
        return proc

    def replace(self, old: ManagedProcess, new: ManagedProcess) -> None:
        """Put *new* (a restarted process) where *old* was, here or in a parent."""
        for res in [self] + self.parents:
            if old in res.processes:
                res.processes[res.processes.index(old)] = new
                if new.output is not None:
                    new.output.pid = new.pid
                    new.output.spill_dir = res.spill_dir
        self.refresh()

    def froze(self, proc: ManagedProcess) -> None:
        """*proc* was frozen by this owner: one shared by a parent is thawed at its end."""
        if proc not in self.processes and proc not in self.frozen_shared:
            self.frozen_shared.append(proc)

    def _thaw_shared(self) -> None:
        """Thaw the shared processes this test froze and left frozen: nothing carries over."""
        for proc in self.frozen_shared:
            if proc.frozen and proc.alive():
                proc.thaw()
                proc.thawed_after = owner_name(self.owner)
        self.frozen_shared.clear()

    def ipc_endpoint(self) -> str:
        """A new ``ipc://`` endpoint in this test's private (0700) temp dir."""
        folder = self.private_dir()
        if folder is None:
            raise RuntimeError(f"expected a new endpoint during {owner_name(self.owner)}, but its resources are "
                               "released already")
        self.endpoints += 1
        return f"ipc://{folder}/{self.endpoints}"

    def private_dir(self) -> Optional[str]:
        """This owner's private (0700) temp dir, made on first use; ``None`` once released."""
        with self._dir_lock:  # the output drainer's thread asks too (spill_dir)
            if self.tmpdir is None and not self._released:
                self.tmpdir = private_dir()  # short enough for ipc even under a long TMPDIR
                _guardian.watch_path(self.tmpdir)  # removed even if the runner dies
            return self.tmpdir

    def spill_dir(self) -> Optional[str]:
        """Where a process's output goes once memory keeps only its newest part."""
        try:
            return self.private_dir()
        except (OSError, RuntimeError):
            return None  # no directory: the output stays in memory

    # -- the watch protocol used by TestSocket.wait --------------------------------------------
    def watched(self) -> List[ManagedProcess]:
        """Its own processes and its parents' (shared) ones."""
        return self.processes + [proc for parent in self.parents for proc in parent.processes]

    def find(self, obj: Any) -> Optional[ManagedProcess]:
        """The managed record of *obj* (a process object or record) among :meth:`watched`."""
        return next((proc for proc in self.watched() if proc.obj is obj or proc is obj), None)

    def refresh(self) -> None:
        """Recompute which fds to watch (after a process was added, stopped or unwatched)."""
        fds, blind = [], False
        for proc in self.watched():
            if proc.watched:
                fd = proc.fd
                if fd is None:
                    blind = True
                else:
                    fds.append(fd)
        self._fds = tuple(fds)
        self.poll_slice = 0.02 if blind else None
        deaths_changed(self)  # a blocking call of the test's own is interrupted by these

    def fds(self) -> Tuple[int, ...]:
        return self._fds

    def check(self, blocked: bool = False) -> None:
        """Raise :class:`ProcessDied` for a watched process that has exited (once: it is
        then no longer watched). *blocked*: the test was blocked in a call of its own
        (the death watch's signal), where an exit the test asked for does not count."""
        for proc in self.watched():
            if not proc.watched or (blocked and proc.exit_allowed):
                continue
            try:
                if proc.exitcode() is None:
                    continue
                state = proc.report()
            except ExitStatusLost as lost:
                state = str(lost)
            proc.watched = False  # report a death once; later waits may go on
            self.refresh()
            shared = "" if proc in self.processes else "shared "
            if shared:
                proc.died_during = f"during {owner_name(self.owner)}"
            doing = "blocked in a call of its own (interrupted there)" if blocked else "waiting"
            died = ProcessDied(f"{shared}{proc.name!r} died while the test was {doing}: {state}")
            died.process = proc
            raise died

    def exit_grace(self) -> float:
        # A clean or failing exit may follow the last reply, which must not be lost to
        # it; a death by a signal (SIGKILL, SIGSEGV) is a crash, reported at once.
        for proc in self.watched():
            try:
                code = proc.exitcode() if proc.watched else None
            except ExitStatusLost:
                code = 0  # how it ended is unknown: what it sent is read all the same
            if code is not None and code >= 0:
                return scaled(EXIT_GRACE if peer_closed_sockets() is None else EXIT_DRAIN)
        return 0.0

    def exit_drained(self) -> Optional[bool]:
        # Every connection whose peer closed (the exited process's) has been read to its
        # end by libzmq and closed; the guardian's channel is not one of the test's.
        pending = peer_closed_sockets(frozenset(_guardian.guardian_fds()))
        return None if pending is None else not pending

    # -- after the test -----------------------------------------------------------------------
    def note_listening(self) -> None:
        """While they run: where a test socket's peer is not known yet, note the
        endpoints each process (and its group) listens on, so the reports draw the
        socket's messages to the process that bound its endpoint."""
        timeline = self.timeline
        sockets = [name for name, (kind, _) in timeline.lanes.items() if kind == "socket"]
        if UNKNOWN_PEER not in timeline.peers(sockets).values():
            return
        for proc in [p for res in [self] + self.parents for p in res.processes]:
            if proc.closed or not proc.alive():
                continue
            for pid in (group_members(proc.pgid) if proc.pgid is not None else []) or [proc.pid]:
                proc.endpoints.extend(e for e in listening_endpoints(pid) if e not in proc.endpoints)

    def stop_processes(self) -> List[str]:
        """Stop every process (last started first), then what they left running outside
        their groups; return the problems found."""
        self.note_listening()
        problems: List[str] = []
        with quiet():  # the deaths it causes interrupt nothing
            for proc in reversed(self.processes):
                problems.extend(proc.stop(close=False))
            problems.extend(self._end_orphans())  # before closing: a daemon may hold an output pipe
            for proc in self.processes:
                proc.close()
            self.refresh()
        return problems

    def release(self) -> List[str]:
        """Stop, close and remove everything; return the problems found (stop failures...)."""
        if _perturb.ended is not None:
            _perturb.ended(self.processes)  # stress: held starts go, pauses end, none begins
        self._thaw_shared()
        problems = self.stop_processes()
        for sock in self.sockets:
            if not sock.closed:
                sock.close(linger=0)
        for link in self.links:
            try:
                link.close()
            except Exception as exc:  # its thread failed: a problem of this test
                problems.append(f"{link.describe()}: {exc}")
        # The first context terminates on its thread while the closers run and the
        # directory goes (the rest, rarely any, one after the other: one that hangs
        # must not hold up the next).
        problems.extend(_close_shadows(self.shadows))
        ending = _begin_terminate(self.contexts[0]) if self.contexts else None
        for close in reversed(self.closers):
            close()
        for proc in self.processes:  # a spilled output a report named outlives the directory
            if proc.output is not None:
                problem = proc.output.move_kept()
                if problem:
                    problems.append(problem)
        with self._dir_lock:
            self._released = True
        if self.tmpdir is not None:
            _remove_private_dir(self.tmpdir)
            _guardian.forget_path(self.tmpdir)
        if ending is not None:
            problems.extend(ending(scaled(CONTEXT_TERM_TIMEOUT)))
        for ctx in self.contexts[1:]:
            problems.extend(_terminate(ctx, scaled(CONTEXT_TERM_TIMEOUT)))
        for parent in self.parents:
            for sock in parent.sockets:  # back to the class's (or module's) own
                sock.watch = parent
            parent.last_user = owner_name(self.owner)
        if _timeline.current() is self.timeline:
            _timeline.activate(self._previous_timeline)
        return problems

    def _end_orphans(self) -> List[str]:
        """Kill descendants that left their process group and outlived it (daemons)."""
        if self.children_before is None:
            return []
        known = {proc.pid for proc in self.watched()}
        found: List[Tuple[int, str]] = []
        for _round in range(_ORPHAN_ROUNDS):
            # A daemon whose parent had not exited yet is that parent's child, not ours:
            # it re-parents to us when the parent is killed, and the next round finds it.
            fresh = _reaper.new_descendants(self.children_before, known | {pid for pid, _ in found})
            if not fresh:
                break
            _reaper.kill_and_reap([pid for pid, _ in fresh])
            found.extend(fresh)
        if not found:
            return []
        shown = "; ".join(f"pid {pid}: {cmdline}" for pid, cmdline in found)
        return [f"a process under test left descendants running outside its process group (daemonized?); "
                f"killed them: {shown}"]

    def close(self, what: str = "") -> None:
        """Release everything and drop the references; raise :class:`ProcessStopError`
        (prefixed with *what*) for the problems found, with the report."""
        problems = self.release()
        report = self.report() if problems else ""
        self.forget()
        if problems:
            raise ProcessStopError(what + "\n".join(problems) + "\n" + report)

    def kill_all(self) -> None:
        """The runner is being interrupted: kill the processes at once, then release."""
        for proc in self.processes:
            proc.kill_now()
        self.processes.clear()
        self.release()

    def forget(self) -> None:
        """Drop the references between case, sockets and processes (no garbage cycles)."""
        for sock in self.sockets:
            sock.owner = sock.watch = None
            sock._items = None
        self.sockets.clear()
        self.processes.clear()
        self.closers.clear()
        self.links.clear()
        self.monitors.clear()
        self.contexts.clear()
        self.shadows.clear()
        self.parents.clear()
        self.owner = None

    def report(self, shown: Optional[ManagedProcess] = None) -> str:
        """Timeline and processes; the output of *shown* is in the message already."""
        told, state = self.report_parts(shown)
        return told + "\n" + state if state else told

    def report_parts(self, shown: Optional[ManagedProcess] = None) -> Tuple[str, str]:
        """The :meth:`report` in two: what happened (the timeline, the chart of the last
        messages), and the state of the processes and fault links."""
        parts = [self.timeline.header(), self.timeline.format()]
        chart = self.timeline.chart()
        if chart:
            parts.extend(["Sequence of the last messages:", chart])
        told, parts = "\n".join(parts), []
        shared = [p for r in self.parents for p in r.processes]
        for title, procs in (("Processes under test:", self.processes),
                             ("Processes shared by the class or module:", shared)):
            if procs:
                parts.append(title)
                parts.extend("  " + (p.describe() + " (output above)" if p is shown else p.report()) for p in procs)
        parts.extend(link.report() for link in self.links)
        return told, "\n".join(parts)

    def process_names(self) -> Set[str]:
        """The names of the processes this owner and its parents started (each lane of a
        report is one process: a new one gets a name none of them has)."""
        return {proc.name for res in [self] + self.parents for proc in res.processes}

    def check_shared(self) -> None:
        """Before a test: fail at once if a shared process has died (naming when)."""
        for parent in self.parents:
            for proc in parent.processes:
                if proc.died_during is None and proc.watched and not proc.alive():
                    proc.watched = False
                    proc.died_during = f"between tests (after {parent.last_user or 'setUpClass or setUpModule'})"
                if proc.died_during is not None:
                    died = ProcessDied(f"shared {proc.describe()} of {owner_name(parent.owner)} died "
                                       f"{proc.died_during}; every later test that shares it fails at once\n"
                                       f"  {proc.report()}")
                    died.process = proc
                    raise died


def _remove_private_dir(path: str) -> None:
    """Remove a private directory: the files in it (ipc sockets, spilled output), then
    it (anything else there, a directory say, is left to :func:`shutil.rmtree`)."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                os.unlink(entry.path)
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


class _Terminator:
    """One daemon thread that terminates the tests' zmq contexts, so that a ``term()``
    that hangs (a socket still in use somewhere) costs the test a bounded wait, not the
    run. One thread kept for the run, not one per test: starting a thread costs more
    than a round trip. A thread stuck in a hung ``term()`` is left to it, with its own
    queue; a new one takes the next context."""

    def __init__(self) -> None:
        # A deque and plain locks (C, no Condition): the hand-over costs a test what a
        # round trip does. *ready* is released when work may be waiting.
        self.waiting: "collections.deque[Tuple[zmq.Context, Any]]" = collections.deque()
        self.ready = threading.Lock()
        self.ready.acquire()
        threading.Thread(target=self._serve, name="zmqprocesstest-term", daemon=True).start()

    def terminate(self, ctx: zmq.Context) -> Callable[[float], bool]:
        """Start destroying *ctx* (linger 0); the function returned waits at most the
        seconds it is given for the end, and says whether it came."""
        done = threading.Lock()
        done.acquire()  # released by the thread once the context is destroyed
        self.waiting.append((ctx, done))
        try:
            self.ready.release()
        except RuntimeError:
            pass  # released already: the thread takes this one with the others
        return lambda timeout: done.acquire(timeout=timeout)

    def _serve(self) -> None:
        while True:
            self.ready.acquire()
            while self.waiting:
                ctx, done = self.waiting.popleft()
                try:
                    ctx.destroy(linger=0)
                finally:
                    done.release()


_TERMINATOR: PerProcess[_Terminator] = PerProcess(_Terminator)


def _terminate(ctx: zmq.Context, timeout: float) -> List[str]:
    """Close what is left of *ctx* and terminate it, bounded by *timeout* seconds."""
    return _begin_terminate(ctx)(timeout)


def _close_shadows(shadows: List[zmq.Context]) -> List[str]:
    """Close the sockets left open on *shadows* (a shadow is never terminated itself: the
    context it shadows is)."""
    left = [s for ctx in shadows for s in list(getattr(ctx, "_sockets", ())) if not s.closed]
    for sock in left:
        sock.close(linger=0)
    shadows.clear()
    if not left:
        return []
    return [f"{len(left)} socket(s) made with asyncio_context.socket() were left open; closed them"]


def _begin_terminate(ctx: zmq.Context) -> Callable[[float], List[str]]:
    """Start closing what is left of *ctx* and terminating it; the function returned
    waits for the end, bounded by the seconds it is given, and returns the problems."""
    problems = []
    leftover = [s for s in list(getattr(ctx, "_sockets", ())) if not s.closed]
    if leftover:
        problems.append(f"{len(leftover)} socket(s) made with context.socket() directly were left open; closed them")
    ended = _TERMINATOR.get().terminate(ctx)

    def end(timeout: float) -> List[str]:
        if not ended(timeout):
            _TERMINATOR.forget()  # its thread is stuck in term(): the next context gets a new one
            problems.append(f"the zmq context did not terminate within {timeout:g} s (a socket is still in use)")
        return problems

    return end


# -- the leak check ------------------------------------------------------------------------------
def leak_snapshot() -> Tuple[Dict[int, str], Set[int]]:
    """Open file descriptors and child processes now, to compare after the test."""
    return open_fds(), set(child_pids())


def check_leaks(test_id: str, before: Tuple[Dict[int, str], Set[int]], shared_zmq: bool = False) -> None:
    """Fail with :class:`LeakError` if fds or child processes were added since *before*.

    Leftover children are killed and reaped first; they are named as the test's own (a
    process under test's orphans were found, killed and reported before, by
    :meth:`Resources._end_orphans`). :mod:`multiprocessing`'s resource tracker and
    forkserver, started on first use and kept for the run, are not counted, nor are the
    descriptors to them. With *shared_zmq* (the test's class
    or module shares a zmq context, whose connections come and go at any time and which
    frees a closed socket's descriptors on its own thread), new network sockets and
    event descriptors are not counted; pipes and files still are.
    """
    fds_before, children_before = before
    problems = []
    # The guardian's and the library's threads' descriptors may have been made during
    # the test: they stay for the run, not a leak.
    helpers, helper_fds = _reaper.multiprocessing_helpers()
    guardian = _guardian.guardian_fds() | drainer_fds() | helper_fds | death_watch_fds()
    new_fds = {fd: target for fd, target in open_fds().items()
               if fd not in fds_before and fd not in guardian
               and not (shared_zmq and target.startswith(("socket:", "anon_inode:")))}
    if new_fds:
        shown = ", ".join(f"{fd} -> {target}" for fd, target in sorted(new_fds.items()))
        problems.append(f"file descriptors left open: {shown}")
    skip = children_before | _guardian.guardian_pids() | helpers
    children = [pid for pid in child_pids() if pid not in skip]
    if children:
        shown = "; ".join(f"pid {pid}: {_reaper.describe(pid)}" for pid in children)
        problems.append(f"child processes left running, started by the test itself (not by a process under "
                        f"test): {shown}")
        left = _reaper.kill_and_reap(children)  # bounded: a child that will not die is reported
        if left:
            problems.append(f"still running after SIGKILL: {left}")
    if problems:
        raise LeakError(f"{test_id} left resources behind: " + "; ".join(problems))
