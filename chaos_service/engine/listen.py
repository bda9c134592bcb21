"""Listen and upstream addresses: parsing, resolution, binding and Go-style reporting.

Reported listen addresses follow Toxiproxy: after a bind the stored address becomes the
socket's real one (``127.0.0.1:0`` → ``127.0.0.1:43215``, ``localhost:3310`` →
``127.0.0.1:3310``); wildcard hosts bind dual-stack and read ``[::]:PORT``.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from dataclasses import dataclass

from chaos_service.errors import InvalidProxy, ListenFailed

#: Used when a proxy is created without a listen address. Toxiproxy binds every
#: interface in that case; the engine stays on loopback unless asked otherwise.
DEFAULT_LISTEN = "127.0.0.1:0"

_WILDCARDS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str  # without brackets
    port: int


def split_host_port(text: str, what: str) -> HostPort:
    """Split ``host:port`` (``[v6]:port`` for IPv6; the host may be empty).

    Raises:
        InvalidProxy: not of that form, or the port is not 0-65535.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise InvalidProxy(f"{what} {text!r} is not host:port: missing port in address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise InvalidProxy(f"{what} {text!r} is not host:port: write IPv6 hosts as [addr]:port")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise InvalidProxy(f"{what} {text!r} has an invalid port {port_text!r} (0-65535)")
    return HostPort(host, int(port_text))


def validate_upstream(text: str) -> None:
    """Raise `InvalidProxy` unless ``text`` is ``host:port`` with a host and a port."""
    address = split_host_port(text, "upstream")
    if not address.host:
        raise InvalidProxy(f"upstream {text!r} has no host")
    if address.port == 0:
        raise InvalidProxy(f"upstream {text!r} has port 0")


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve_listen(text: str) -> tuple[socket.AddressFamily, str, int]:
    """Resolve a listen address to (family, numeric host, port) without binding it.

    Raises:
        InvalidProxy: malformed, or the host name does not resolve.
    """
    address = split_host_port(text, "listen")
    if address.host in _WILDCARDS:
        return (socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET), "::", address.port
    try:
        ip = ipaddress.ip_address(address.host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        return family, str(ip), address.port
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidProxy(f"listen tcp: lookup {address.host}: no such host") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)  # prefer IPv4, as Go does
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0]), address.port


def reported_listen(family: socket.AddressFamily, host: str, port: int) -> str:
    """The listen string Toxiproxy would report for this (resolved) address."""
    if host == "::" and family == socket.AF_INET:
        host = "0.0.0.0"
    return format_address(host, port)


async def bind_listener(text: str, backlog: int = 1024) -> tuple[socket.socket, str]:
    """Bind and listen on ``text``; returns the socket and its reported address.

    Raises:
        InvalidProxy: malformed, unresolvable, or not an address of this host.
        ListenFailed: the address is in use.
    """
    family, host, port = await resolve_listen(text)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        where = f"listen tcp {format_address(host, port)}: bind:"
        if exc.errno == errno.EADDRINUSE:
            raise ListenFailed(f"{where} address already in use") from None
        reason = "cannot assign requested address" if exc.errno == errno.EADDRNOTAVAIL else exc.strerror
        raise InvalidProxy(f"{where} {reason}") from None
    bound_host, bound_port = sock.getsockname()[:2]
    return sock, reported_listen(family, bound_host, bound_port)


async def listen_differs(text: str, stored: str) -> bool:
    """Toxiproxy's rule: a new listen differs when it resolves to another address."""
    family, host, port = await resolve_listen(text)
    return reported_listen(family, host, port) != stored
