"""The builders and typed callbacks handed to the client, as the README shows them."""

from __future__ import annotations

from hyperliquid_ws import HyperliquidWS, subs
from hyperliquid_ws.messages import TradesMessage


def on_trades(message: TradesMessage) -> None:
    print(message["data"][0]["px"])


def main() -> None:
    with HyperliquidWS() as ws:
        ws.subscribe(subs.trades("SOL"), on_trades).wait(timeout=10)
        for message in ws.stream(subs.bbo("ETH"), timeout=30):
            print(message["data"])
            break
