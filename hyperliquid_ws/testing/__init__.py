"""A faithful local Hyperliquid exchange server for offline tests and demos.

Needs the ``testing`` extra (aiohttp)::

    from hyperliquid_ws.testing import LocalServer

    with LocalServer(tick_interval=None) as server:
        ...  # connect a client to server.base_url / server.ws_url
        server.advance()  # move the scripted market one tick

Run ``python -m hyperliquid_ws.testing --port 8765`` for a live demo server.
"""

from __future__ import annotations

from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.server import LocalServer

__all__ = ["LocalServer", "Market"]
