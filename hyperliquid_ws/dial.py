"""Opening one WebSocket: an interruptible TCP connect, a proxy tunnel, TLS, the handshake.

The TCP connect is done here, non-blocking in slices of ``CONNECT_SLICE`` seconds, so
that ``close()`` can interrupt it at once (``Closing``). Every socket made is handed to
``hold`` as soon as it exists, so its owner can shut it down from another thread while
a later step blocks on it; the frame reader then reads the very socket that results.

Through a proxy (``Route.proxy``), the TCP connect goes to the proxy, and the tunnel is
asked for on that held socket (``tunnel.py``: websocket-client's HTTP ``CONNECT``,
python-socks' SOCKS). This was chosen over handing the proxy settings to
websocket-client's ``connect`` or python-socks' ``Proxy.connect``: both open a socket of
their own and give it back only once the tunnel (and TLS) is up, so ``close()`` could
not reach a connect stuck at a silent proxy; here it shuts the held socket down, and the
tunnel's blocking read ends at once.

TLS is the ``ssl`` module's, with ``Route.ssl_context`` (``tls.py``; by default the
system's CAs, verification on) wrapped around the tunnel (held before its
handshake, so ``close()`` can end a stalled one too); the WebSocket handshake is
websocket-client's, with ``Authorization: Basic`` from the URL's user info as requests
would send it. Runs on the connection's reader thread.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import websocket

from .proxy import proxy_port
from .tunnel import open_tunnel

CONNECT_SLICE = 0.1  # seconds; how often an in-progress TCP connect looks at the closing flag
_IN_PROGRESS = {errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK}


class Closing(Exception):
    """close() was called while connecting."""


@dataclass(frozen=True)
class Route:
    """How to reach the server: through which proxy (None: directly), with which TLS context."""

    proxy: str | None = None
    ssl_context: ssl.SSLContext | None = None


def dial(url: str, *, timeout: float, closing: threading.Event,
         hold: Callable[[socket.socket], None], route: Route | None = None) -> websocket.WebSocket:
    """Connect to ``url`` (ws:// or wss://) within ``timeout`` seconds and return the
    handshaken WebSocket. Raises ``Closing`` once ``closing`` is set, ``OSError`` or
    ``websocket.WebSocketException`` when the server (or the proxy) cannot be reached or
    refuses."""
    route = route or Route()
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    deadline = time.monotonic() + timeout
    if route.proxy is None:
        raw = _connect_tcp(host, port, deadline, closing, hold)
        raw.settimeout(max(0.01, deadline - time.monotonic()))
    else:
        proxy_host = urlsplit(route.proxy).hostname or ""
        try:
            raw = _connect_tcp(proxy_host, proxy_port(route.proxy), deadline, closing, hold)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot reach the proxy {proxy_host}: {exc.strerror or exc}") from None
        raw.settimeout(max(0.01, deadline - time.monotonic()))
        open_tunnel(raw, route.proxy, host, port)
    if closing.is_set():
        raise Closing
    sock: socket.socket = raw
    if secure:
        context = route.ssl_context or ssl.create_default_context()
        # Wrapping detaches the plain socket (close() could no longer shut it down), so
        # the TLS socket is held first and only then handshakes, on the same deadline.
        sock = context.wrap_socket(raw, server_hostname=host, do_handshake_on_connect=False)
        hold(sock)
        if closing.is_set():  # close() came between the wrap and the hold: it shut down nothing
            raise Closing
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.do_handshake()
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.connect(  # type: ignore[no-untyped-call]
        url, socket=sock, timeout=max(0.01, deadline - time.monotonic()), suppress_origin=True,
        header=_auth_header(parts.username, parts.password),
    )
    sock.settimeout(None)
    if closing.is_set():
        raise Closing
    return ws


def _auth_header(username: str | None, password: str | None) -> list[str]:
    """``Authorization: Basic`` for a URL's user info, as requests sends it for HTTP."""
    if username is None:
        return []
    token = base64.b64encode(f"{unquote(username)}:{unquote(password or '')}".encode()).decode()
    return [f"Authorization: Basic {token}"]


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
