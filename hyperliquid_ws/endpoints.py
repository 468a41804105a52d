"""Where the server lives: the API roots and the socket and info URLs derived from them.

An API root may carry what a node provider needs to let the client in: user info
(``https://user:KEY@host``), a path (``https://host/KEY``) or a query
(``https://host/?apikey=KEY``); the socket and info URLs keep them. ``redact.py``
keeps them out of everything the client shows.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .redact import redact_url

MAINNET_API_URL = "https://api.hyperliquid.xyz"
TESTNET_API_URL = "https://api.hyperliquid-testnet.xyz"

_SOCKET_SCHEMES = {"https": "wss", "http": "ws"}


def check_base_url(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash on its path, or raise ``ValueError``."""
    if not isinstance(base_url, str):
        raise ValueError(f"base_url must be a string such as {MAINNET_API_URL!r}, got {base_url!r}")
    parts = urlsplit(base_url)
    parts = parts._replace(path=parts.path.rstrip("/"))
    if parts.scheme not in _SOCKET_SCHEMES or not parts.netloc:
        raise ValueError(
            f"base_url must be an http:// or https:// API root such as {MAINNET_API_URL!r} "
            f"or 'http://127.0.0.1:8765', got {redact_url(base_url)!r}"
        )
    try:
        parts.port  # noqa: B018 - raises for what is not a port
    except ValueError:
        raise ValueError(f"base_url has a port that is not a number, got {redact_url(base_url)!r} (a password "
                         "with '/', '?', '#' or '@' must be percent-encoded: %2F, %3F, %23, %40)") from None
    if "@" in base_url.partition("://")[2] and "@" not in parts.netloc:
        raise ValueError(f"base_url has a user info cut short by an unencoded '/', '?' or '#', got "
                         f"{redact_url(base_url)!r} (percent-encode them in the password: %2F, %3F, %23)")
    if parts.fragment:
        raise ValueError(f"base_url must not carry a fragment, got {redact_url(base_url)!r}")
    endpoint = parts.path.rpartition("/")[2]
    if endpoint in ("ws", "info", "exchange"):  # a URL of one endpoint, not the root the client adds them to
        root = urlunsplit(parts._replace(path=parts.path[: -len(endpoint) - 1], query=""))
        raise ValueError(f"base_url is the API root (the client adds /ws and /info to it), got "
                         f"{redact_url(base_url)!r}: use {redact_url(root)!r}")
    return urlunsplit(parts)


def socket_url(base_url: str) -> str:
    """``https://host`` gives ``wss://host/ws``; ``http://host:port`` gives ``ws://host:port/ws``."""
    parts = urlsplit(check_base_url(base_url))
    return urlunsplit((_SOCKET_SCHEMES[parts.scheme], parts.netloc, parts.path + "/ws", parts.query, ""))


def info_url(base_url: str) -> str:
    """The HTTP info endpoint, ``base_url + "/info"`` (before the query, if any)."""
    parts = urlsplit(check_base_url(base_url))
    return urlunsplit(parts._replace(path=parts.path + "/info"))
