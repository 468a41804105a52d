"""A faithful local Hyperliquid exchange server for offline tests and demos.

Needs the ``testing`` extra (aiohttp)::

    from hyperliquid_ws.testing import LocalServer

    with LocalServer(tick_interval=None) as server:
        ...  # connect a client to server.base_url / server.ws_url
        server.advance()  # move the scripted market one tick

Run ``python -m hyperliquid_ws.testing --port 8765`` for a live demo server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyperliquid_ws.testing.market import Market
    from hyperliquid_ws.testing.server import LocalServer

__all__ = ["LocalServer", "Market"]


def __getattr__(name: str) -> Any:
    """Import on first use: the server needs aiohttp (the testing extra); the pytest
    plugin, which pytest loads in every environment this package is installed in, must not."""
    if name == "LocalServer":
        from hyperliquid_ws.testing.server import LocalServer

        return LocalServer
    if name == "Market":
        from hyperliquid_ws.testing.market import Market

        return Market
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
