"""A stand-in test runner for tests/test_guardian.py: ``python guardian_runner.py MODE``.

Modes:

``tree``
    Start what a test would: a command in a process group of its own with a child (no
    marker token: found by its group), a command that daemonizes (double fork and
    ``setsid``; found by its token), a :mod:`multiprocessing` fork child in a group of its
    own with an ``os.fork`` grandchild, and a private directory. Print one JSON line, then
    block on stdin: ``exit`` calls ``os._exit(3)``; a signal kills it (no handlers: SIGINT
    is a KeyboardInterrupt that ends the interpreter).
``restart``
    Like ``tree`` with the guardian ``SIGKILL``\\ed first: the next registration starts a
    new guardian that learns everything again, and the dead one is reaped.
``fork``
    A forked child neither holds the guardian's pipe nor uses the parent's guardian.
``subreaper``
    ``become_subreaper`` + ``new_descendants`` find a daemonized grandchild in-process;
    ``kill_and_reap`` ends it and joins a multiprocessing child.
``early_signals``
    ``SIGINT``, ``SIGTERM`` and ``SIGHUP`` sent to the guardian the moment it is started
    (its interpreter is still starting) do not end it: it exits only when the pipe closes.
``cost``
    The per-test bookkeeping cost: ``watch_group`` + ``forget_group`` + ``new_descendants``.

Every result is one JSON line on stdout. The guardian module is standalone (it runs as a
script itself), so it is loaded by path: this helper starts fast and never imports zmq.
"""
import gc
import json
import multiprocessing
import multiprocessing.util  # imported before the guardian, as processes.py does
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
BOUND = 30.0  # every wait of this helper ends by then
KEEP = []  # Popen objects of processes left running on purpose (no "still running" warning)

sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the checkout
from zmqprocesstest.processes import _guardian as guardian, _reaper as reaper

# A group leader that starts a child in its group; prints the child's pid.
GROUP = ("import subprocess, sys, time\n"
         "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
         "print(c.pid, flush=True)\n"
         "time.sleep(600)\n")
# A classic daemon: fork, setsid, fork; the daemon prints its pid and the middle one's.
DAEMON = ("import os, time\n"
          "if os.fork():\n"
          "    os._exit(0)\n"
          "os.setsid()\n"
          "middle = os.getpid()\n"
          "if os.fork():\n"
          "    os._exit(0)\n"
          "print(os.getpid(), middle, flush=True)\n"
          "time.sleep(600)  # zmqprocesstest-daemon\n")


def write_end_link():
    """What the runner's end of the guardian's pipe points to (the guardian's fds are
    that pipe and a pidfd of the guardian)."""
    links = [os.readlink(f"/proc/self/fd/{fd}") for fd in guardian.guardian_fds()]
    return next(link for link in links if link.startswith("pipe:"))


def emit(**data):
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def read_line(stream):
    """One line from a pipe, within BOUND seconds."""
    ready = select.select([stream], [], [], BOUND)[0]
    if not ready:
        raise TimeoutError("no line from a helper process")
    return stream.readline().decode()


def wait_exit(pid, timeout=BOUND):
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def fd_links(pid):
    links = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass
    return links


def forked_member(report_fd):
    """A multiprocessing child: a group of its own, an os.fork grandchild, then sleep."""
    os.setpgid(0, 0)
    grandchild = os.fork()
    if grandchild == 0:
        time.sleep(600)
        os._exit(0)
    os.write(report_fd, b"%d\n" % grandchild)
    time.sleep(600)


def start_tree():
    """Start the tree of a test; return (pids by name, private directory, write end link)."""
    reaper.become_subreaper()
    private = tempfile.mkdtemp(prefix="zmqprocesstest guard ")  # a space: the path encoding
    with open(os.path.join(private, "endpoint"), "w") as f:
        f.write("ipc")
    guardian.watch_path(private)

    leader = subprocess.Popen([sys.executable, "-c", GROUP], stdout=subprocess.PIPE,
                              start_new_session=True)  # no token: the group is its only mark
    guardian.watch_group(leader.pid)
    leader_child = int(read_line(leader.stdout))

    starter = subprocess.Popen([sys.executable, "-c", DAEMON], stdout=subprocess.PIPE,
                               env=guardian.child_env(None), start_new_session=True)
    daemon, middle = map(int, read_line(starter.stdout).split())
    starter.wait(BOUND)
    wait_exit(middle)
    reaper.new_descendants(set(), set())  # reaps the middle process, a zombie of ours now

    report_r, report_w = os.pipe()
    member = multiprocessing.get_context("fork").Process(target=forked_member, args=(report_w,))
    member.start()
    os.close(report_w)
    with os.fdopen(report_r, "rb") as report:
        member_child = int(read_line(report))
    guardian.watch_group(member.pid)

    write_end = write_end_link()
    KEEP.extend([leader, starter])
    pids = {"leader": leader.pid, "leader_child": leader_child, "daemon": daemon,
            "member": member.pid, "member_child": member_child}
    return pids, private, write_end


def block():
    """Wait for a command; a signal ends us first. ``exit`` is os._exit mid-test."""
    line = sys.stdin.readline()
    if line.strip() == "exit":
        os._exit(3)


def mode_tree():
    pids, private, write_end = start_tree()
    gpid = guardian.guardian_pid()
    emit(pids=pids, dir=private, guardian=gpid, write_end=write_end,
         member_fds=fd_links(pids["member"]) + fd_links(pids["member_child"]),
         guardian_session=os.getsid(gpid) == gpid, my_stdout=os.readlink("/proc/self/fd/1"),
         guardian_stdio=[os.readlink(f"/proc/{gpid}/fd/{fd}") for fd in (0, 1, 2)])
    block()


def mode_restart():
    guardian.start()
    first = guardian.guardian_pid()
    os.kill(first, signal.SIGKILL)
    wait_exit(first)
    pids, private, write_end = start_tree()  # the first registration finds the pipe broken
    second = guardian.guardian_pid()
    try:
        os.waitpid(first, os.WNOHANG)
        first_reaped = False
    except ChildProcessError:
        first_reaped = True
    emit(pids=pids, dir=private, guardian=second, first_guardian=first, first_reaped=first_reaped,
         write_end=write_end, member_fds=[])
    block()


def mode_fork():
    guardian.start()
    parent_guardian = guardian.guardian_pid()
    parent_token = guardian.child_env({})[guardian.ENV_NAME]
    write_end = write_end_link()
    report_r, report_w = os.pipe()
    with warnings.catch_warnings(record=True) as caught:  # the fork hook runs in os.fork()
        warnings.simplefilter("always")
        child = os.fork()
    if child == 0:
        os.close(report_r)
        try:
            gc.collect()
            result = {
                "fork_warnings": [str(w.message) for w in caught],
                "holds_write_end": write_end in fd_links(os.getpid()),
                "guardian_before": guardian.guardian_pid(),
                "fds_before": sorted(guardian.guardian_fds()),
            }
            token = guardian.child_env({})[guardian.ENV_NAME]
            result["same_token"] = token == parent_token
            result["own_guardian"] = guardian.guardian_pid()
            result["stopped"] = guardian.stop()
            os.write(report_w, json.dumps(result).encode() + b"\n")
        finally:
            os._exit(0)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as report:
        result = json.loads(read_line(report))
    wait_exit(child)
    os.waitpid(child, 0)
    result["parent_guardian"] = parent_guardian
    result["parent_guardian_after"] = guardian.guardian_pid()
    result["stopped"] = result["stopped"] and guardian.stop()
    emit(**result)


def mode_subreaper():
    result = {"subreaper": reaper.become_subreaper(), "again": reaper.become_subreaper()}
    guardian.start()
    before = {pid for pid, _ in reaper.new_descendants(set(), set())}
    result["guardian_listed"] = guardian.guardian_pid() in before
    # The token: should this helper die before it kills the daemon, its guardian does.
    starter = subprocess.Popen([sys.executable, "-c", DAEMON], stdout=subprocess.PIPE, env=guardian.child_env(None))
    daemon, middle = map(int, read_line(starter.stdout).split())
    starter.stdout.close()
    starter.wait(BOUND)
    wait_exit(middle)  # the middle process of the double fork: now our zombie
    found = reaper.new_descendants(before, {starter.pid})
    result["daemon"] = daemon
    result["found"] = found
    result["middle_reaped"] = not os.path.exists(f"/proc/{middle}")
    result["known_skipped"] = reaper.new_descendants(before | {daemon}, set())
    result["left"] = reaper.kill_and_reap(found)
    result["daemon_reaped"] = not os.path.exists(f"/proc/{daemon}")
    result["after"] = reaper.new_descendants(before, set())

    member = multiprocessing.get_context("fork").Process(target=time.sleep, args=(600,))
    member.start()
    result["member_left"] = reaper.kill_and_reap([member.pid])
    result["member_exitcode"] = member.exitcode
    result["stopped"] = guardian.stop()
    emit(**result)


def mode_early_signals():
    guardian.start()
    popen = guardian._current().popen
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(popen.pid, sig)
    stopped = guardian.stop()
    emit(stopped=stopped, returncode=popen.returncode)


def mode_cost():
    reaper.become_subreaper()
    guardian.start()
    leader = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True,
                              env=guardian.child_env(None))  # killed by the guardian should this helper die
    before = {pid for pid, _ in reaper.new_descendants(set(), set())}
    known = {leader.pid}
    rounds = 2000
    best = None
    for _repeat in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            guardian.watch_group(leader.pid)
            guardian.forget_group(leader.pid)
            reaper.new_descendants(before, known)
        elapsed = (time.perf_counter() - start) / rounds
        best = elapsed if best is None else min(best, elapsed)
    leader.kill()
    leader.wait(BOUND)
    emit(per_test_seconds=best, children=len(before), stopped=guardian.stop())


if __name__ == "__main__":
    # A runner as a terminal starts it, whatever this suite inherited (nohup, a
    # background job): the signals the tests kill it with must kill it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    {"tree": mode_tree, "restart": mode_restart, "fork": mode_fork,
     "subreaper": mode_subreaper, "early_signals": mode_early_signals, "cost": mode_cost}[sys.argv[1]]()
