"""Opening one WebSocket: an interruptible TCP connect, TLS, and the handshake.

The TCP connect is done here, non-blocking in slices of ``CONNECT_SLICE`` seconds, so
that ``close()`` can interrupt it at once (``Closing``); TLS is the ``ssl`` module's and
the handshake websocket-client's. Every socket made is handed to ``hold`` as soon as it
exists, so its owner can shut it down from another thread while the handshake waits.
Runs on the connection's reader thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import websocket

CONNECT_SLICE = 0.1  # seconds; how often an in-progress TCP connect looks at the closing flag
_IN_PROGRESS = {errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK}


class Closing(Exception):
    """close() was called while connecting."""


def dial(url: str, *, timeout: float, closing: threading.Event,
         hold: Callable[[socket.socket], None]) -> websocket.WebSocket:
    """Connect to ``url`` (ws:// or wss://) within ``timeout`` seconds and return the
    handshaken WebSocket. Raises ``Closing`` once ``closing`` is set, ``OSError`` or
    ``websocket.WebSocketException`` when the server cannot be reached or refuses."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    deadline = time.monotonic() + timeout
    raw = _connect_tcp(host, port, deadline, closing, hold)
    raw.settimeout(max(0.01, deadline - time.monotonic()))
    sock: socket.socket = raw
    if secure:
        sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        hold(sock)  # wrapping detached the plain socket
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.connect(  # type: ignore[no-untyped-call]
        url, socket=sock, timeout=max(0.01, deadline - time.monotonic()), suppress_origin=True
    )
    sock.settimeout(None)
    if closing.is_set():
        raise Closing
    return ws


def _connect_tcp(host: str, port: int, deadline: float, closing: threading.Event,
                 hold: Callable[[socket.socket], None]) -> socket.socket:
    """Try each address of ``host`` in turn until one accepts; the last error else."""
    last_error: Exception | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        raw = socket.socket(family, kind, proto)
        hold(raw)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.setblocking(False)
        error = raw.connect_ex(address)
        while error in _IN_PROGRESS:
            if closing.is_set():
                raise Closing
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                error = -1
                break
            _, writable, _ = select.select([], [raw], [], min(CONNECT_SLICE, remaining))
            if writable:
                error = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                break
        if error == 0:
            raw.setblocking(True)
            return raw
        last_error = OSError(error, "timed out" if error == -1 else os.strerror(error))
        with contextlib.suppress(OSError):
            raw.close()
    raise last_error or OSError(f"cannot resolve {host}")
