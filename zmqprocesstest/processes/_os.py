"""The one seam for the operating system: every Linux specific of the library is here.

``/proc`` (process states, children, groups and sessions, file descriptors, the system
call a thread is in, command lines, the endpoints a process listens on),
``pidfd_open``, exit statuses read through a pidfd (``waitid`` and
``PIDFD_GET_INFO``), ``tgkill``, the child subreaper (``prctl``), the pipe size
(``fcntl``) and sockets whose peer has closed (``POLLRDHUP``). The platform is decided
once, at import (:data:`LINUX`); where a feature is missing, the functions here answer
"nothing" or ``None`` (empty lists, no pidfd, ``False`` from
:func:`set_child_subreaper`) and their callers fall back or skip, so no other module
has to ask which platform it runs on.
:data:`HAS_SIGALRM` says whether the hard timeout can use ``SIGALRM`` at all.

It imports only the standard library and no other module of the package, so the
guardian process (``_guardian_process.py``, run with ``python -I -S``) uses it too.
"""
import ipaddress
import os
import select
import signal
import struct
import sys
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

__all__ = ["EXITED", "HAS_PIDFD", "HAS_PIDFD_EXIT_INFO", "HAS_PIDFD_STATUS", "HAS_SIGALRM", "LINUX", "Stat", "alive",
           "all_pids", "blocking_call", "child_pids", "command_line", "enlarge_pipe", "environ", "exit_status",
           "group_members", "listening_endpoints", "open_fd_numbers", "open_fds", "open_pidfd", "orphan_pids",
           "peer_closed_sockets",
           "pidfd_exit_info", "pidfd_signal", "proc_stat", "processes_where", "set_child_subreaper",
           "signal_main_thread", "thread_state", "wait_gone"]

#: The platform, decided once: the guardian, the subreaper and ``/proc`` need Linux.
LINUX = sys.platform.startswith("linux")
#: Whether ``SIGALRM`` and ``setitimer(ITIMER_REAL)`` exist (the hard timeout's first choice).
HAS_SIGALRM = hasattr(signal, "SIGALRM") and hasattr(signal, "setitimer")
#: Whether pidfds exist (Linux 5.3+ and Python 3.9+): waits on a process's exit by poll.
HAS_PIDFD = hasattr(os, "pidfd_open")
#: The states of a process (or thread) that has exited: zombie, dead.
EXITED = frozenset({"Z", "X", "x"})


class Stat(NamedTuple):
    """The fields of ``/proc/PID/stat`` the library reads."""

    state: str
    ppid: int
    pgrp: int
    session: int
    #: The command's name as the kernel keeps it (for a process with no command line).
    name: str
    #: When it started, in clock ticks since boot (a later start means a reused pid).
    start: int


def proc_stat(pid: int, tid: Optional[int] = None) -> Optional[Stat]:
    """The state, parent, process group and session of *pid* (of its thread *tid*), or
    ``None`` if it is gone or ``/proc`` is missing. The one parser of that file."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()  # after the command name, which may hold spaces
    try:
        return Stat(fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]),
                    raw[raw.find(b"(") + 1:raw.rfind(b")")].decode("utf-8", "replace"), int(fields[19]))
    except (IndexError, ValueError):
        return None


def open_fd_numbers() -> List[int]:
    """The numbers of this process's open file descriptors (``[]`` without ``/proc``)."""
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return []


def all_pids() -> List[int]:
    """The pids of every process on the machine (``[]`` without ``/proc``)."""
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []


def open_fds() -> Dict[int, str]:
    """This process's open file descriptors and what each points to."""
    fds: Dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return fds
    for name in names:
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return fds


def _task_children(pid: int, tid: object) -> Optional[List[int]]:
    """Children started (or adopted) by thread *tid* of *pid*; ``None`` if unreadable."""
    try:
        with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # no such file on this kernel, or the thread just ended
        return None


def child_pids(parent: Optional[int] = None) -> List[int]:
    """Pids of the processes whose parent is *parent* (default: this process).

    Read from ``/proc/PID/task/*/children`` where the kernel has it (cheap), else by a
    scan of every ``/proc/PID/stat``.
    """
    parent = os.getpid() if parent is None else parent
    found: List[int] = []
    try:
        tids = os.listdir(f"/proc/{parent}/task")
    except OSError:
        tids = []
    if tids and os.path.exists(f"/proc/{parent}/task/{tids[0]}/children"):
        for tid in tids:
            found.extend(_task_children(parent, tid) or ())
        return found
    return processes_where("ppid", parent)


def orphan_pids() -> List[int]:
    """Children of this process that are where orphans land: the main thread's.

    An orphan re-parents to the first live thread of its subreaper's thread group,
    the main thread (Linux ``find_new_reaper``), and the library forks from the thread
    that runs the test, so this one file usually lists all that matters, at a fraction
    of the cost of :func:`child_pids`. Falls back to it where the file is missing.
    """
    pid = os.getpid()
    found = _task_children(pid, pid)
    return child_pids() if found is None else found


def processes_where(field: str, value: int) -> List[int]:
    """Pids of every process whose :class:`Stat` *field* (``ppid``, ``pgrp``, ``session``)
    is *value*: a scan of all of ``/proc``."""
    found: List[int] = []
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat is not None and getattr(stat, field) == value:
            found.append(pid)
    return found


def thread_state(pid: int, tid: Optional[int] = None) -> str:
    """The one-letter state (``R``, ``S``, ``Z``...) of thread *tid* (default: main) of *pid*; ``''`` if unknown."""
    stat = proc_stat(pid, pid if tid is None else tid)
    return stat.state if stat is not None else ""


def blocking_call(pid: int) -> Optional[str]:
    """The system call the main thread of *pid* is in, with its arguments and stack and
    program pointers (``/proc/PID/syscall``): the same text twice means the very same
    call, not left in between. ``'running'`` if it is not in one; ``None`` if unknown."""
    try:
        with open(f"/proc/{pid}/task/{pid}/syscall", "rb") as f:
            return f.read().decode("ascii", "replace").strip() or None
    except OSError:
        return None


def command_line(pid: int) -> str:
    """The command line of *pid*, space-separated (``''`` if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def open_pidfd(pid: int) -> Optional[int]:
    """A file descriptor readable when *pid* exits (Linux 5.3+ ``pidfd_open``), or ``None``."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


_PIDFD_INFO_EXIT = 1 << 3
# _IOWR(0xFF, 11, struct pidfd_info) with the first version of the struct (64 bytes): the
# mask (u64) in, and out the mask, cgroupid (u64), eleven u32 ids and exit_code (s32, at 60).
_PIDFD_GET_INFO, _PIDFD_INFO_SIZE, _EXIT_CODE_AT = 0xC040FF0B, 64, 60
_WAIT_PEEK = getattr(os, "WEXITED", 4) | getattr(os, "WNOWAIT", 0x01000000) | getattr(os, "WNOHANG", 1)


def pidfd_exit_info(fd: int) -> Optional[int]:
    """The wait status of the process of pidfd *fd* once it has been reaped, by anyone
    (Linux 6.15+ ``PIDFD_GET_INFO`` with ``PIDFD_INFO_EXIT``), else ``None``: not reaped
    yet, or a kernel that does not keep it."""
    try:
        import fcntl

        buf = bytearray(_PIDFD_INFO_SIZE)
        struct.pack_into("=Q", buf, 0, _PIDFD_INFO_EXIT)
        fcntl.ioctl(fd, _PIDFD_GET_INFO, buf, True)
    except (ImportError, OSError, OverflowError):
        return None
    if not struct.unpack_from("=Q", buf, 0)[0] & _PIDFD_INFO_EXIT:
        return None
    return int(struct.unpack_from("=i", buf, _EXIT_CODE_AT)[0])


def exit_status(fd: int) -> Optional[int]:
    """How the child process of pidfd *fd* ended, read in a way no other reaper can take
    first: its exit code (negative: the signal that killed it), or ``None`` while it runs.

    While it is a zombie the status is read without reaping it (``waitid(P_PIDFD, ...,
    WNOWAIT)``), so the caller reaps it afterwards through its own process object. Once
    anyone has reaped it (a ``SIGCHLD`` handler of the test process looping on
    ``os.waitpid(-1, WNOHANG)``, say), the kernel still keeps its status with the pidfd
    (Linux 6.15+).

    :raises ChildProcessError: it was reaped by someone, and this kernel cannot say how
        it ended.
    """
    try:
        info = os.waitid(os.P_PIDFD, fd, _WAIT_PEEK)
    except ChildProcessError:
        for _attempt in range(3):  # the reaper may be between unlisting it and noting its exit
            status = pidfd_exit_info(fd)
            if status is not None:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.001)
        raise
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


#: Whether :func:`exit_status` can read a child's status (Linux 5.4+, Python 3.9+).
HAS_PIDFD_STATUS = HAS_PIDFD and hasattr(os, "P_PIDFD") and hasattr(os, "WNOWAIT")
def _kernel_release() -> Tuple[int, ...]:
    numbers = []
    for part in os.uname().release.split("-")[0].split(".")[:2]:
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


#: Whether the kernel keeps the status of a process someone else reaped (Linux 6.15+).
HAS_PIDFD_EXIT_INFO = HAS_PIDFD_STATUS and LINUX and _kernel_release() >= (6, 15)


def peer_closed_sockets(exclude: "frozenset[int]" = frozenset()) -> Optional[List[int]]:
    """This process's socket descriptors whose peer has closed (``POLLRDHUP``), not in
    *exclude*; ``None`` where that cannot be known (no ``/proc`` or no ``POLLRDHUP``).

    A connection of libzmq's stays open, with the hang-up pending, until libzmq's I/O
    thread has read everything that came before the end of it (and handed it to its
    socket) and closed it: an empty list means every connection a dead peer had with this
    process has been read to its end.
    """
    rdhup = getattr(select, "POLLRDHUP", None)
    if rdhup is None or not LINUX:
        return None
    poller = select.poll()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        fd = int(name)
        if fd in exclude:
            continue
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor, too)
        poller.register(fd, rdhup)
    return [fd for fd, events in poller.poll(0) if events & rdhup]


def pidfd_signal(fd: int, sig: int) -> None:
    """Send *sig* to the process of pidfd *fd* (it cannot reach a process that reused the pid).

    :raises OSError: the process is gone (reaped), or the signal cannot be sent.
    """
    signal.pidfd_send_signal(fd, sig)


def wait_gone(pid: int, timeout: float) -> None:
    """Wait until *pid* has exited (not reaped), at most *timeout* seconds, without sleeping."""
    fd = open_pidfd(pid)
    if fd is None:
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    """True if *pid* exists and is not a zombie."""
    stat = proc_stat(pid)
    return stat is not None and stat.state not in EXITED


def group_members(pgid: int) -> List[int]:
    """Pids of the processes in process group *pgid* (empty where ``/proc`` is missing).

    Found by walking down from the group's leader and from this process's own children
    (orphans reparent to it as a subreaper) through ``/proc/PID/task/*/children``, which
    costs microseconds; where the kernel lacks those files, by a scan of all of ``/proc``.
    """
    me = os.getpid()
    if not os.path.exists(f"/proc/{me}/task/{me}/children"):
        return processes_where("pgrp", pgid)
    members: List[int] = []
    todo, seen = [pgid] + child_pids(), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stat = proc_stat(pid)
        if stat is not None and stat.pgrp == pgid:
            members.append(pid)
            todo.extend(child_pids(pid))
    return members


def listening_endpoints(pid: int) -> List[str]:
    """The endpoints process *pid* listens on: ``ipc://PATH`` for its listening Unix
    sockets with a path, ``tcp://HOST:PORT`` for its listening TCP sockets (empty where
    ``/proc`` is missing or the process is gone). Read from ``/proc/PID/fd`` (its socket
    inodes) and its network namespace's ``/proc/PID/net/{unix,tcp,tcp6}``."""
    try:
        inodes = set()
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{name}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return []
    found: List[str] = []
    try:
        with open(f"/proc/{pid}/net/unix", encoding="utf-8", errors="replace") as f:
            next(f, None)
            for line in f:
                fields = line.split(None, 7)
                # Flags 0x10000 (__SO_ACCEPTCON): listening; a path, not an abstract name (@...)
                if len(fields) == 8 and fields[6] in inodes and int(fields[3], 16) & 0x10000 \
                        and fields[7].startswith("/"):
                    found.append("ipc://" + fields[7].rstrip("\n"))
        for table, v6 in (("tcp", False), ("tcp6", True)):
            with open(f"/proc/{pid}/net/{table}", encoding="ascii", errors="replace") as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                        host, port = fields[1].split(":")
                        found.append(f"tcp://{_proc_host(host, v6)}:{int(port, 16)}")
    except (OSError, ValueError):
        pass
    return found


def _proc_host(hexed: str, v6: bool) -> str:
    """An address of ``/proc/net/tcp[6]`` (little-endian 32-bit words) as text."""
    raw = b"".join(struct.pack("<I", int(hexed[i:i + 8], 16)) for i in range(0, len(hexed), 8))
    address = ipaddress.ip_address(raw) if not v6 else ipaddress.IPv6Address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return f"[{address}]" if address.version == 6 else str(address)


_tgkill: Any = None


def signal_main_thread(pid: int, sig: int) -> None:
    """Send *sig* to the main thread of process *pid* (Linux ``tgkill``), else to the process.

    A signal sent to a process may land on any of its threads that does not block it:
    on a libzmq thread in the instant before it masks signals, CPython only sets a flag,
    and the main thread, blocked in ``poll``, never learns of it. Sent to the main
    thread, the signal interrupts its blocking call and the handler runs at once.

    :raises ProcessLookupError: the process is gone.
    """
    global _tgkill
    if _tgkill is None:
        try:
            import ctypes

            _tgkill = ctypes.CDLL(None, use_errno=True).tgkill
        except (OSError, AttributeError):
            _tgkill = False
    if _tgkill and _tgkill(pid, pid, sig) == 0:
        return
    os.kill(pid, sig)  # no tgkill, or it failed: the process-directed signal (raises if gone)


def environ(pid: int) -> bytes:
    """The environment *pid* was started with (``b""`` if unreadable): NUL-separated."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


_PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ``prctl``);
    ``False`` where that is not available."""
    if not LINUX:
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def enlarge_pipe(fd: int, size: int) -> None:
    """Ask for a pipe buffer of *size* bytes (Linux ``F_SETPIPE_SZ``); the default size
    stays where the system's limit is lower or the call does not exist."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except (ImportError, OSError):
        pass
