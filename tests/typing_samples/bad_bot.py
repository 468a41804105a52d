"""Mistakes the message types must catch. Each line whose comment starts with ``E:`` must
get a mypy error containing the rest of the comment; no other line may get one."""

from __future__ import annotations

from hyperliquid_ws import subs
from hyperliquid_ws.messages import L2BookMessage, TradesMessage, UserEventsMessage


def on_trades(message: TradesMessage) -> None:
    price: float = message["data"][0]["px"]  # E: expression has type "str", variable has type "float"
    print(price, message["data"][0]["price"])  # E: TypedDict "WsTrade" has no key "price"
    print(message["data"]["coin"])  # E: No overload variant of "__getitem__" of "list" matches


def on_book(message: L2BookMessage) -> None:
    print(message["data"]["levels"][0][0]["size"])  # E: TypedDict "WsLevel" has no key "size"


def on_user_events(message: UserEventsMessage) -> None:
    print(message["data"]["fills"])  # E: TypedDict "UserFundingEvent" has no key "fills"


subs.candle("BTC", "2m")  # E: Argument 2 to "candle" has incompatible type
subs.l2_book("ETH", n_sig_figs=6)  # E: Argument "n_sig_figs" to "l2_book" has incompatible type
subs.user_fills(user="0x" + "ab" * 20, aggregate=True)  # E: Unexpected keyword argument "aggregate"
