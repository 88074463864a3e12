"""Endpoints: parsing, the loopback-only rule for binds, and probing for a listener.

Test sockets bind on loopback only unless told otherwise. ``new_endpoint("tcp")`` probes a
free port (:func:`free_tcp_endpoint`) and ``wait_endpoint`` waits for a listener
(:func:`wait_listening`).
"""
from __future__ import annotations

import ipaddress
import os
import select
import socket as _socket
import tempfile
import time
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Tuple, Union

if TYPE_CHECKING:
    from .sockets import Watch

__unittest = True
__tracebackhide__ = True

__all__ = ["IPC_PATH_MAX", "Endpoint", "as_endpoint", "check_loopback", "endpoint_list", "free_tcp_endpoint",
           "listening", "private_dir", "wait_listening"]

#: ``'tcp://host:port'``/``'ipc://path'``, or, like the seed article, ``(host, port)``.
Endpoint = Union[str, Tuple[str, int]]


_LOOPBACK_NAMES = {"localhost"}

#: The longest path an ``ipc://`` endpoint can have: ``sun_path`` of ``struct
#: sockaddr_un`` (108 bytes on Linux) less its terminating NUL.
IPC_PATH_MAX = 107
_NAME_ROOM = 12  # room for the names made inside a private dir ('/link', '/12345')
_SHORT_TMPDIRS = ("/tmp", "/var/tmp", "/dev/shm")


def private_dir(prefix: str = "zpt-") -> str:
    """Make a private (0700) temporary directory short enough for ipc endpoints in it.

    The usual temporary directory (``TMPDIR``) comes first. Where its path is too long
    for an ipc endpoint (tox, Bazel and nested CI workspaces make such paths), the first
    of ``/tmp``, ``/var/tmp`` and ``/dev/shm`` that works is used instead; the directory
    is private either way, and the caller registers it with the guardian as usual.
    """
    usual = tempfile.gettempdir()
    for folder in [usual] + [d for d in _SHORT_TMPDIRS if d != usual]:
        if len(os.fsencode(os.path.join(folder, prefix + "x" * 8))) + _NAME_ROOM > IPC_PATH_MAX:
            continue  # mkdtemp adds 8 characters to the prefix
        try:
            return tempfile.mkdtemp(prefix=prefix, dir=folder)
        except OSError:
            continue
    raise RuntimeError(f"expected a temporary directory short enough for ipc endpoints (at most {IPC_PATH_MAX} "
                       f"bytes with the socket's name), got TMPDIR {usual!r} ({len(os.fsencode(usual))} bytes) "
                       f"and none of {', '.join(_SHORT_TMPDIRS)} usable; set TMPDIR to a shorter directory or "
                       "use endpoint_transport = 'tcp'")


def check_loopback(endpoint: str) -> None:
    if not endpoint.startswith("tcp://"):
        return
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    if host in _LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(
        f"refusing to bind a test socket to {endpoint!r}: expected a loopback address "
        "(127.0.0.1, ::1 or localhost); pass allow_remote=True to bind elsewhere"
    )


def as_endpoint(where: Endpoint) -> str:
    """Accept ``'tcp://host:port'`` or, like the seed article, ``(host, port)``."""
    if isinstance(where, tuple):
        host, port = where
        return f"tcp://{host}:{port}"
    if not isinstance(where, str):
        raise TypeError(f"expected an endpoint string or (host, port) tuple, got {where!r}")
    return where


def endpoint_list(where: Union[Endpoint, Iterable[Endpoint], None]) -> List[str]:
    if where is None:
        return []
    if isinstance(where, (str, tuple)):
        return [as_endpoint(where)]
    return [as_endpoint(w) for w in where]


# -- endpoint probing ----------------------------------------------------------------
def free_tcp_endpoint(host: str = "127.0.0.1") -> str:
    """``tcp://host:PORT`` with a port that is free now.

    The process under test binds it later, so another program could take it in between;
    binding ``tcp://127.0.0.1:0`` and reading :attr:`TestSocket.last_endpoint` has no such
    race, and ipc endpoints cannot collide at all.
    """
    with _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    return f"tcp://{host}:{port}"


def listening(endpoint: str) -> bool:
    """Whether something accepts connections on a ``tcp://`` or ``ipc://`` *endpoint* now."""
    address: Any
    if endpoint.startswith("ipc://"):
        family, address = _socket.AF_UNIX, endpoint[len("ipc://"):]
    elif endpoint.startswith("tcp://"):
        host, _, port = endpoint[len("tcp://"):].rpartition(":")
        family, address = _socket.AF_INET6 if ":" in host else _socket.AF_INET, (host.strip("[]"), int(port))
    else:
        raise ValueError(f"expected a tcp:// or ipc:// endpoint, got {endpoint!r}")
    with _socket.socket(family, _socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


def wait_listening(endpoint: str, timeout: float, watch: Optional["Watch"] = None) -> bool:
    """Wait at most *timeout* seconds until something listens on *endpoint*.

    There is nothing to poll for a listener that is not there yet, so it retries every
    5 ms, but wakes at once (and *watch* raises) if a watched process dies.
    """
    deadline = time.monotonic() + timeout
    while not listening(endpoint):
        if watch is not None:
            watch.check()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        fds = watch.fds() if watch is not None else ()
        select.select(fds, [], [], min(remaining, 0.005))
    return True
