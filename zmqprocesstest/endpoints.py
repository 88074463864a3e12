"""Endpoints: parsing, the loopback-only rule for binds, and probing for a listener.

:func:`parse_endpoint` is the one place an endpoint string is taken apart; the loopback
rule, the listener probe and the fault link's addresses (:func:`socket_address`) all ask
it. Test sockets bind on loopback only unless told otherwise. ``new_endpoint("tcp")``
probes a free port (:func:`free_tcp_endpoint`) and ``wait_endpoint`` waits for a listener
(:func:`listening`).
"""
from __future__ import annotations

import ipaddress
import os
import socket as _socket
import tempfile
from typing import Any, Iterable, List, NamedTuple, Tuple, Union

__unittest = True
__tracebackhide__ = True

__all__ = ["IPC_PATH_MAX", "NETWORK_TRANSPORTS", "Endpoint", "EndpointParts", "as_endpoint", "check_loopback",
           "endpoint_list", "free_tcp_endpoint", "listening", "parse_endpoint", "private_dir", "reserve_tcp_endpoints",
           "socket_address"]

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


class EndpointParts(NamedTuple):
    """An endpoint taken apart by :func:`parse_endpoint`."""

    #: ``'tcp'``, ``'ipc'``, or another transport (``'inproc'``...), as written.
    transport: str
    #: tcp: the host, without the brackets of an IPv6 address; otherwise the address (an ipc path).
    address: str
    #: tcp: the port as written (``'5555'``, ``'*'``); otherwise ``''``.
    port: str = ""


def parse_endpoint(endpoint: str) -> EndpointParts:
    """Take ``transport://address`` apart (``tcp://host:port``: host and port too).

    :raises ValueError: for a string without ``://``.
    """
    transport, sep, rest = endpoint.partition("://")
    if not sep:
        raise ValueError(f"expected an endpoint transport://address, got {endpoint!r}")
    if transport != "tcp":
        return EndpointParts(transport, rest)
    host, colon, port = rest.rpartition(":")
    return EndpointParts(transport, host.strip("[]"), port) if colon else EndpointParts(transport, rest)


def socket_address(endpoint: str, what: str = "endpoint") -> Tuple[int, Any]:
    """``(family, address)`` for a plain socket to reach a ``tcp://host:port`` or ``ipc://path``
    *endpoint* (the host resolved as libzmq does: ``localhost`` is IPv4).

    :raises ValueError: naming *what* for another form, or a host that does not resolve.
    """
    parts = parse_endpoint(endpoint) if "://" in endpoint else EndpointParts("", "")
    if parts.transport == "ipc" and parts.address:
        return _socket.AF_UNIX, parts.address
    if parts.transport == "tcp" and parts.address and parts.port.isdigit():
        family = _socket.AF_INET6 if ":" in parts.address else _socket.AF_INET
        try:
            info = _socket.getaddrinfo(parts.address, int(parts.port), family, _socket.SOCK_STREAM)[0]
        except _socket.gaierror as exc:
            raise ValueError(f"cannot resolve the host of {what} {endpoint!r}: {exc}") from None
        return info[0], info[4]
    raise ValueError(f"expected {what} to be tcp://host:port or ipc://path, got {endpoint!r}")


#: Transports whose bind takes a network address (``ws://host:port/path``, ``udp://host:port``
#: too): the loopback rule applies to them.
NETWORK_TRANSPORTS = ("tcp", "ws", "wss", "udp")


def check_loopback(endpoint: str) -> None:
    """Refuse to bind a test socket anywhere but loopback: ``tcp://``, ``ws://``, ``wss://``
    and ``udp://`` (``*``, ``0.0.0.0``, an interface name or another address are refused);
    ``ipc://`` and ``inproc://`` reach nobody else.

    :raises ValueError: for a network bind off loopback, or a string that is not an endpoint.
    """
    if not isinstance(endpoint, str):
        raise TypeError(f"expected an endpoint string transport://address, got {endpoint!r}")
    parts = parse_endpoint(endpoint)
    if parts.transport not in NETWORK_TRANSPORTS:
        return
    host = parts.address
    if parts.transport != "tcp":
        authority = host.split("/", 1)[0]  # ws://host:port/path
        host = authority.rpartition(":")[0].strip("[]") if ":" in authority else authority
        host = host.rpartition(";")[2]  # udp://source;host:port
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


def reserve_tcp_endpoints(count: int, host: str = "127.0.0.1") -> List[str]:
    """*count* distinct ``tcp://host:PORT`` endpoints, reserved together.

    Every port is bound at once before any is released, so no two picks can return the
    same port (picked one at a time, a port released by the first pick may be handed out
    again by the next). Each is then left in ``TIME_WAIT`` (a connection accepted on it
    and closed from its side): the kernel does not hand such a port to another
    program's ``bind`` to port 0 for about a minute, while a listener that sets
    ``SO_REUSEADDR``, as libzmq does on every tcp bind, binds it at once. What is left
    is a program that asks for one of these very ports by number.
    """
    listeners: List[_socket.socket] = []
    try:
        for _ in range(count):
            listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            listeners.append(listener)
            # Inherited by the accepted connection: a listener with SO_REUSEADDR may bind
            # the port while that connection is in TIME_WAIT, anyone else may not.
            listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            listener.bind((host, 0))
            listener.listen(1)
        ports = [listener.getsockname()[1] for listener in listeners]
        for listener in listeners:
            with _socket.create_connection(listener.getsockname()):
                accepted, _address = listener.accept()
                accepted.close()  # the side that closes first keeps the port in TIME_WAIT
    finally:
        for listener in listeners:
            listener.close()
    return [f"tcp://{host}:{port}" for port in ports]


def listening(endpoint: str) -> bool:
    """Whether something accepts connections on a ``tcp://`` or ``ipc://`` *endpoint* now."""
    family, address = socket_address(endpoint)
    with _socket.socket(family, _socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True
