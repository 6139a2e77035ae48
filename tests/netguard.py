"""An in-process guard that records and blocks every non-loopback network attempt."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "", None}


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        host = address[0]
        if host in _LOCAL_NAMES:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return False


@contextmanager
def no_network() -> Iterator[list[str]]:
    """Block connections and name lookups except to loopback; yield the list of blocked attempts."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if not _is_local(address):
            attempts.append(f"connect {address!r}")
            raise OSError(f"network blocked by test: connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not _is_local(address):
            attempts.append(f"connect_ex {address!r}")
            return 111
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOCAL_NAMES:
            try:
                ipaddress.ip_address(name)
                local = ipaddress.ip_address(name).is_loopback
            except ValueError:
                local = False
            if not local:
                attempts.append(f"getaddrinfo {name!r}")
                raise socket.gaierror(f"name lookup blocked by test: {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = getaddrinfo
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex
        socket.getaddrinfo = real_getaddrinfo
