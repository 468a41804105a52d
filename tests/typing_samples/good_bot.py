"""A small bot written against the message types; mypy --strict must accept it."""

from __future__ import annotations

from hyperliquid_ws import subs
from hyperliquid_ws.messages import (
    CandleMessage,
    L2BookMessage,
    Message,
    SubscriptionDict,
    TradesMessage,
    UserEventsMessage,
    UserFillsMessage,
    UserNonFundingLedgerUpdatesMessage,
)
from hyperliquid_ws.shapes import LedgerDelta, WsTrade

USER = "0x" + "ab" * 20


def notional(trade: WsTrade) -> float:
    return float(trade["px"]) * float(trade["sz"])


def on_trades(message: TradesMessage) -> None:
    first = message["data"][0]
    print(notional(first))
    price: str = first["px"]
    buyer, seller = first["users"]
    late = message.get("backfill", False)
    print(first["coin"], first["side"], price, first["tid"] + 1, buyer, seller, late)


def on_book(message: L2BookMessage) -> None:
    bids, asks = message["data"]["levels"]
    best_bid = float(bids[0]["px"]) if bids else None
    orders_at_best_ask: int = asks[0]["n"] if asks else 0
    print(best_bid, orders_at_best_ask, message["data"].get("spread"))


def on_candle(message: CandleMessage) -> None:
    candle = message["data"]
    print(candle["s"], candle["i"], float(candle["c"]) - float(candle["o"]), candle["t"] // 1000)


def on_fills(message: UserFillsMessage) -> None:
    if message["data"].get("isSnapshot"):
        return
    for fill in message["data"]["fills"]:
        print(fill["oid"], fill["crossed"], fill.get("cloid"), fill.get("twapId"))


def on_user_events(message: UserEventsMessage) -> None:
    data = message["data"]
    if "fills" in data:
        print(sum(float(fill["sz"]) for fill in data["fills"]))
    elif "funding" in data:
        print(data["funding"]["usdc"], data["funding"]["nSamples"])
    elif "liquidation" in data:
        print(data["liquidation"]["liquidated_user"])
    else:
        print([cancel["oid"] for cancel in data["nonUserCancel"]])


def on_ledger(message: UserNonFundingLedgerUpdatesMessage) -> None:
    for update in message["data"]["nonFundingLedgerUpdates"]:
        delta: LedgerDelta = update["delta"]
        if delta["type"] == "deposit":
            print("deposit", delta["usdc"])
        elif delta["type"] == "withdraw":
            print("withdraw", delta["usdc"], delta["fee"], delta["nonce"])


def on_any(message: Message) -> None:
    if message["channel"] == "trades":
        on_trades(message)
    elif message["channel"] == "bbo":
        bid, ask = message["data"]["bbo"]
        print(bid["px"] if bid else "-", ask["px"] if ask else "-")
    elif message["channel"] == "fastAssetCtxs":
        print(len(message["data"]))


def wanted() -> list[SubscriptionDict]:
    return [
        subs.trades("SOL"),
        subs.candle("BTC", "1m"),
        subs.l2_book("ETH", n_sig_figs=5, mantissa=2, fast=True),
        subs.user_fills(USER, aggregate_by_time=True),
        subs.user_events(USER),
        subs.all_mids(dex="xyz"),
    ]
