"""Which proxy the client's two halves go through: the WebSocket and the HTTP ``/info`` calls.

``proxy=`` takes a proxy URL (``http://user:pass@host:port``, ``https://``, ``socks4://``,
``socks4a://``, ``socks5://``, ``socks5h://``), used for both halves and every host; or
``None``, for none. By default (``FROM_ENVIRONMENT``) the environment decides, exactly as
requests reads it (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``): its own
helpers are asked, for the info URL and for the socket URL read as its http(s) twin
(``wss://`` as ``https://``). ``trust_env=False`` turns the environment off. On Linux,
requests bypasses no host unless ``NO_PROXY`` names it, loopback included.

Read once, in the constructor, so every reconnect goes the same way; a setting this
machine cannot use (SOCKS without its optional packages, TLS to the proxy for the socket)
fails there with a message saying what to do. Pure; runs on the caller's thread.
"""

from __future__ import annotations

import enum
import importlib.util
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import requests.utils

from .redact import redact_url


class _Environment(enum.Enum):
    FROM_ENVIRONMENT = "from the environment"

    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


FROM_ENVIRONMENT = _Environment.FROM_ENVIRONMENT
"""The default of ``proxy=``: whatever the environment says, as requests reads it."""

ProxyOption = str | None | Literal[_Environment.FROM_ENVIRONMENT]

PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
_SOCKET_SCHEMES = ("http", "socks4", "socks4a", "socks5", "socks5h")  # https: see check_socket_proxy
_DEFAULT_PORTS = {"http": 80, "https": 443}
SOCKS_HINT = "pip install 'hyperliquid-ws[socks]'"


@dataclass(frozen=True)
class Proxies:
    """The proxy URL of each half, or None to connect directly."""

    socket: str | None
    http: str | None


def check_proxy_url(url: str) -> str:
    """Return ``url``, with ``http://`` put in front of a bare ``host:port``, or raise ``ValueError``."""
    if isinstance(url, str):
        url = url.strip()
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        shown = redact_url(url) if isinstance(url, str) else url
        raise ValueError(f"proxy must be a URL such as 'http://host:3128' or 'socks5h://host:1080', got {shown!r}")
    if "://" not in url:  # "proxy:3128", as people write HTTP_PROXY; requests' own helper reads
        url = "http://" + url  # "proxy" as a scheme there
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(netloc="")
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise ValueError(f"proxy must be a URL with one of the schemes {', '.join(PROXY_SCHEMES)} and a host, "
                         f"got {redact_url(url)!r}")
    if port is None and parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"a {parts.scheme} proxy needs a port, got {redact_url(url)!r}")
    return url


def proxy_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or _DEFAULT_PORTS[parts.scheme]


def from_environment(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``ws(s)://`` is read as ``http(s)://``),
    or None where ``NO_PROXY`` bypasses it or none is set: requests' own rules."""
    parts = urlsplit(url)
    twin = parts._replace(scheme={"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)).geturl()
    proxies = requests.utils.get_environ_proxies(twin)
    chosen = requests.utils.select_proxy(twin, proxies)
    return check_proxy_url(chosen) if chosen else None


def resolve(ws_url: str, info_url: str, proxy: ProxyOption, trust_env: bool) -> Proxies:
    """The proxies of both halves for these arguments; ``ValueError`` for one that cannot be used."""
    if not isinstance(trust_env, bool):
        raise ValueError(f"trust_env must be True or False, got {trust_env!r}")
    if proxy is FROM_ENVIRONMENT:
        chosen = (from_environment(ws_url), from_environment(info_url)) if trust_env else (None, None)
    elif proxy is None:
        chosen = (None, None)
    else:
        explicit = check_proxy_url(proxy)
        chosen = (explicit, explicit)
    socket_proxy, http_proxy = chosen
    if socket_proxy is not None:
        check_socket_proxy(socket_proxy, ws_url)
    if http_proxy is not None and urlsplit(http_proxy).scheme.startswith("socks") and not _have("socks"):
        raise ValueError(f"the HTTP calls through the SOCKS proxy {redact_url(http_proxy)} need PySocks: {SOCKS_HINT}")
    return Proxies(socket_proxy, http_proxy)


def check_socket_proxy(proxy: str, ws_url: str) -> None:
    scheme = urlsplit(proxy).scheme
    if scheme not in _SOCKET_SCHEMES:
        # TLS to the proxy and then TLS to the server inside it would need a TLS-in-TLS
        # socket, which the frame reader (recv_into on a real socket) cannot read.
        raise ValueError(f"the WebSocket cannot go through the {scheme}:// proxy {redact_url(proxy)} "
                         f"(TLS to the proxy itself); give its plain http:// address, or a socks5:// one")
    if scheme.startswith("socks") and not _have("python_socks"):
        raise ValueError(f"the WebSocket through the SOCKS proxy {redact_url(proxy)} needs python-socks: "
                         f"{SOCKS_HINT}")


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
