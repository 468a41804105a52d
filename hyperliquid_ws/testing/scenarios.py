"""Rare events on demand: what a test (or a demo) asks the market for with
``LocalServer.trigger(event, ...)``.

Each event changes the market as the live exchange would and returns the ``Tick`` it
made, which the server then pushes to every subscriber like a market tick (state feeds
get their new state, event feeds the event). Runs on the server loop thread, which owns
the market.

Events (``EVENTS``):

- ``liquidation``: ``user``'s position in ``coin`` (one is opened first if there is
  none) is closed by the liquidator. The user gets a fill carrying ``liquidation``, a
  userEvents ``{"liquidation": {...}}`` and a ledger ``liquidation`` delta.
- ``nonUserCancel``: the exchange cancels ``user``'s oldest open order (one is placed
  first if there is none): status ``marginCanceled`` and a userEvents ``nonUserCancel``.
- ``twapSliceFill``: one slice of ``user``'s TWAP fills (one is started if none runs).
- ``emptyBook`` / ``oneSidedBook`` (``keep="asks"`` or ``"bids"``): ``coin``'s book loses
  both sides / one side until ``restoreBook``; meanwhile no trades print there, l2Book
  has ``levels: [[], []]`` (or one empty side), bbo has ``null`` sides, the asset
  context's ``midPx``, ``impactPxs`` and ``premium`` are null, and fastAssetCtxs sends
  ``midPx: null``.
- ``restoreBook``: ``coin``'s book is whole again.
- ``outcomeSettled``: outcome ``outcome`` (an int) settles: outcomeMetaUpdates sends
  ``[{"outcomeSettled": outcome}]`` (the market lists no outcomes; this is the frame alone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hyperliquid_ws.testing.accounts import Account
from hyperliquid_ws.testing.assets import ASSETS_BY_COIN, Asset, px_text, sz_text, usd_text
from hyperliquid_ws.testing.events import AccountEvents, Tick
from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.market_activity import place_order, record_order, run_twap, start_twap

LIQUIDATOR = "0x" + "0" * 39 + "1"
"""Who takes over liquidated positions (live: the liquidator vault)."""


def trigger(market: Market, event: str, options: dict[str, Any]) -> Tick:
    """Make ``event`` happen now; raise ``ValueError`` for an unknown event or option."""
    make = EVENTS.get(event)
    if make is None:
        raise ValueError(f"unknown event {event!r}; known: {', '.join(sorted(EVENTS))}")
    tick = Tick(time=market.now_ms())
    make(market, tick, dict(options))
    tick.changed_fast = market.fast_changes()
    return tick


def _coin(options: dict[str, Any], *, perp: bool = False, default: str = "BTC") -> Asset:
    coin = options.pop("coin", default)
    asset = ASSETS_BY_COIN.get(coin) if isinstance(coin, str) else None
    if asset is None or (perp and asset.is_spot):
        raise ValueError(f"coin must be a {'perp' if perp else 'coin'} of the local market, got {coin!r}")
    return asset


def _account(market: Market, options: dict[str, Any]) -> Account:
    user = options.pop("user", market.users[0])
    if not isinstance(user, str) or user.lower() not in market.accounts:
        raise ValueError(f"user must be one of the scripted users {market.users}, got {user!r}")
    return market.accounts[user.lower()]


def _no_more(options: dict[str, Any]) -> None:
    if options:
        raise ValueError(f"unknown option(s): {', '.join(sorted(options))}")


def _events(tick: Tick, account: Account) -> AccountEvents:
    return tick.accounts.setdefault(account.user, AccountEvents())


def _liquidation(market: Market, tick: Tick, options: dict[str, Any]) -> None:
    account, asset = _account(market, options), _coin(options, perp=True)
    _no_more(options)
    events = _events(tick, account)
    position = account.positions.get(asset.coin)
    if position is None or position.szi == 0:
        size = market.random_size(asset)
        account.apply_fill(asset, is_buy=True, px=market.mids[asset.coin], sz=size, time_ms=tick.time,
                           oid=market.new_oid(), tid=market.new_tid(), fill_hash=market.random_hash(),
                           crossed=True)
        position = account.positions[asset.coin]
    szi, mark = position.szi, market.mids[asset.coin]
    is_buy = szi < 0  # closing a short buys
    trade_hash = market.random_hash()
    buyer, seller = (account.user, LIQUIDATOR) if is_buy else (LIQUIDATOR, account.user)
    trade = market.record_trade(tick, asset, is_buy, mark, abs(szi), buyer, seller, trade_hash)
    fill = account.apply_fill(asset, is_buy=is_buy, px=mark, sz=abs(szi), time_ms=tick.time,
                              oid=market.new_oid(), tid=trade["tid"], fill_hash=trade_hash, crossed=True)
    fill["liquidation"] = {"liquidatedUser": account.user, "markPx": px_text(asset, mark), "method": "market"}
    events.fills.append(fill)
    state = account.clearinghouse_state(market.marks(), tick.time)
    notional = usd_text(abs(szi) * mark)
    events.liquidations.append({
        "lid": market.new_oid(), "liquidator": LIQUIDATOR, "liquidated_user": account.user,
        "liquidated_ntl_pos": notional, "liquidated_account_value": state["marginSummary"]["accountValue"]})
    delta = {"type": "liquidation", "liquidatedNtlPos": notional,
             "accountValue": state["marginSummary"]["accountValue"], "leverageType": "Cross",
             "liquidatedPositions": [{"coin": asset.coin, "szi": sz_text(asset, szi)}]}
    events.ledger.append(account.record_ledger(delta, tick.time, market.random_hash()))


def _only_user(market: Market, tick: Tick, options: dict[str, Any]) -> tuple[Account, AccountEvents]:
    """The account an event with no option but ``user`` happens to, and its events."""
    account = _account(market, options)
    _no_more(options)
    return account, _events(tick, account)


def _non_user_cancel(market: Market, tick: Tick, options: dict[str, Any]) -> None:
    account, events = _only_user(market, tick, options)
    if not account.open_orders:
        place_order(market, account, tick, events)
    order = next(iter(account.open_orders.values()))
    record_order(account, order, "marginCanceled", tick, events)
    events.non_user_cancels.append({"coin": order["coin"], "oid": order["oid"]})


def _twap_slice_fill(market: Market, tick: Tick, options: dict[str, Any]) -> None:
    account, events = _only_user(market, tick, options)
    if not account.active_twaps:
        start_twap(market, account, tick, events)
    run_twap(market, account, tick, events)


def _set_book(market: Market, asset: Asset, tick: Tick, sides: tuple[bool, bool] | None) -> None:
    if sides is None:
        market.thin_books.pop(asset.coin, None)
    else:
        market.thin_books[asset.coin] = sides
    market.rebuild_book(asset, tick.time)


def _empty_book(market: Market, tick: Tick, options: dict[str, Any]) -> None:
    asset = _coin(options)
    _no_more(options)
    _set_book(market, asset, tick, (False, False))


def _one_sided_book(market: Market, tick: Tick, options: dict[str, Any]) -> None:
    asset, keep = _coin(options), options.pop("keep", "asks")
    _no_more(options)
    if keep not in ("asks", "bids"):
        raise ValueError(f"keep must be 'asks' or 'bids', got {keep!r}")
    _set_book(market, asset, tick, (keep == "bids", keep == "asks"))


def _restore_book(market: Market, tick: Tick, options: dict[str, Any]) -> None:
    asset = _coin(options)
    _no_more(options)
    _set_book(market, asset, tick, None)


def _outcome_settled(market: Market, tick: Tick, options: dict[str, Any]) -> None:
    outcome = options.pop("outcome", 1)
    _no_more(options)
    if type(outcome) is not int or outcome < 0:
        raise ValueError(f"outcome must be a non-negative int, got {outcome!r}")
    tick.outcome_updates.append({"outcomeSettled": outcome})


EVENTS: dict[str, Callable[[Market, Tick, dict[str, Any]], None]] = {
    "liquidation": _liquidation,
    "nonUserCancel": _non_user_cancel,
    "twapSliceFill": _twap_slice_fill,
    "emptyBook": _empty_book,
    "oneSidedBook": _one_sided_book,
    "restoreBook": _restore_book,
    "outcomeSettled": _outcome_settled,
}
"""Every event ``trigger`` knows."""
