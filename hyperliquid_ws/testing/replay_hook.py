"""What ``LocalServer`` needs from a replay (``hyperliquid_ws.recording.Replay``).

The server depends only on this protocol, never on the recording package. Every method
runs on the server loop thread.
"""

from __future__ import annotations

from typing import Any, Protocol

from hyperliquid_ws.testing.connection import Hub
from hyperliquid_ws.testing.market import Market


class ReplaySource(Protocol):
    def initial_data(self, normalised: dict[str, Any]) -> Any | None:
        """What follows the ack of a new subscription (replaces ``feeds.initial_data``)."""

    def answer_info(self, market: Market, body: object) -> Any:
        """The answer to an info body (replaces ``info.answer_info``)."""

    async def run(self, hub: Hub) -> None:
        """The task that sends the recorded frames (replaces the market ticker)."""
