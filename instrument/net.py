"""Network plumbing the parts share: a TCP listening socket the frame loop may poll."""

from __future__ import annotations

import socket


def tcp_listener(host: str, port: int, backlog: int) -> socket.socket:
    """A bound, listening, non-blocking TCP socket on (host, port) (IPv6 when the host has a
    colon); closed again when it cannot bind, the OSError raised to say why."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
