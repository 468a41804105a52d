"""Opening a tunnel through a proxy on a socket the caller already holds.

``dial`` connects the TCP socket to the proxy itself (interruptibly, handed to ``hold``),
then asks the proxy, on that socket, for a tunnel to the server:

- ``http://`` proxies: websocket-client's own HTTP ``CONNECT`` (``websocket._http._tunnel``,
  with ``Proxy-Authorization: Basic`` from the proxy URL's user info);
- ``socks4(a)://`` and ``socks5(h)://``: python-socks' connectors (the optional ``socks``
  extra), the same code its ``Proxy.connect`` runs once it has a socket. ``socks5h``
  and ``socks4a`` let the proxy resolve the server's name.

Both run blocking on the held socket, so ``close()`` ends them by shutting it down.
Neither library takes a socket from its public API (both would open their own, out of
``close()``'s reach), hence their inner functions; the proxy tests pin them. Runs on
the connection's reader thread.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import unquote, urlsplit

from .proxy import SOCKS_HINT
from .redact import redact_url


class ProxyRefused(ConnectionError):
    """The proxy would not open a tunnel (refused, asked for authentication, no route)."""


def open_tunnel(sock: socket.socket, proxy: str, host: str, port: int) -> None:
    """Make ``sock``, connected to ``proxy``, a tunnel to ``host:port``; raise ``ProxyRefused``
    when the proxy says no, ``OSError`` when the socket fails (or was shut down)."""
    parts = urlsplit(proxy)
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if parts.scheme == "http":
        _http_connect(sock, host, port, username, password, proxy)
    else:
        _socks(sock, parts.scheme, host, port, username, password, proxy)


def _http_connect(sock: socket.socket, host: str, port: int, username: str | None, password: str | None,
                  proxy: str) -> None:
    from websocket import WebSocketProxyException, WebSocketTimeoutException
    from websocket._http import _tunnel  # websocket-client's CONNECT; see the module docstring

    auth = (username, password or "") if username else None
    authority = f"[{host}]" if ":" in host else host  # RFC 9110 §9.3.6: an IPv6 literal in brackets
    try:
        _tunnel(sock, authority, port, auth)
    except WebSocketProxyException as exc:
        if isinstance(exc.__context__, (TimeoutError, WebSocketTimeoutException)):
            raise TimeoutError(f"the proxy {redact_url(proxy)} did not answer the CONNECT to "
                               f"{authority}:{port} in time") from None
        raise ProxyRefused(f"the proxy {redact_url(proxy)} refused a tunnel to {authority}:{port}: {exc}") from None


def _socks(sock: socket.socket, scheme: str, host: str, port: int, username: str | None, password: str | None,
           proxy: str) -> None:
    try:
        from python_socks import ProxyType
        from python_socks._connectors.factory_sync import create_connector
        from python_socks._errors import IncompleteReadError
        from python_socks._protocols.errors import ReplyError
        from python_socks.sync._resolver import SyncResolver
        from python_socks.sync._stream import SyncSocketStream
    except ImportError as exc:
        raise ProxyRefused(f"SOCKS proxies need python-socks: {SOCKS_HINT} ({exc})") from None
    kind = ProxyType.SOCKS5 if scheme.startswith("socks5") else ProxyType.SOCKS4
    connector: Any = create_connector(proxy_type=kind, username=username, password=password,
                                      rdns=scheme in ("socks5h", "socks4a"), resolver=SyncResolver())
    try:
        connector.connect(stream=SyncSocketStream(sock), host=host, port=port)
    except TimeoutError:
        raise TimeoutError(f"the proxy {redact_url(proxy)} did not answer the SOCKS handshake in time") from None
    except IncompleteReadError:
        raise OSError(f"the proxy {redact_url(proxy)} closed the connection during the SOCKS handshake") from None
    except ReplyError as exc:
        raise ProxyRefused(f"the proxy {redact_url(proxy)} refused a tunnel to {host}:{port}: {exc}") from None
