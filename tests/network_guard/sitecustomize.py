"""Loaded by every Python process started with this folder on PYTHONPATH: refuses any connection to a host that
is not this machine (loopback, or a Unix socket) and appends it to the file $ALIGNFLOW_NETWORK_LOG, so a test can
show a whole pipeline run asked the network for nothing."""

import errno
import ipaddress
import os
import socket
import sys

_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _outside(sock, address) -> str | None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    host = str(address[0])
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None if host == "localhost" else host
    return None if ip.is_loopback or ip.is_unspecified else host


def _refuse(sock, address) -> None:
    host = _outside(sock, address)
    if host is not None:
        with open(os.environ["ALIGNFLOW_NETWORK_LOG"], "a") as log:
            log.write(f"{os.getpid()} {' '.join(sys.argv)[:200]} -> {host}:{address[1]}\n")
        raise OSError(errno.ENETUNREACH, f"outbound connection to {host} refused by the test's network guard")


def connect(self, address):
    _refuse(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _refuse(self, address)
    return _connect_ex(self, address)


if os.environ.get("ALIGNFLOW_NETWORK_LOG"):
    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
