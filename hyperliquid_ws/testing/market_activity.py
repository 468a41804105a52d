"""What a scripted user does in one tick: place, cancel, fill, TWAP, move money.

Called by ``Market.step`` on whichever thread steps the market (the server loop thread).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperliquid_ws.testing.accounts import Account
from hyperliquid_ws.testing.assets import (
    ASSETS_BY_COIN,
    SPOTS,
    Asset,
    dex_perps,
    px_text,
    round_to_tick,
    sz_text,
    usd_text,
)
from hyperliquid_ws.testing.events import AccountEvents, Tick

if TYPE_CHECKING:
    from hyperliquid_ws.testing.market import Market

ZERO_HASH = "0x" + "0" * 64
MAX_POSITION_NOTIONAL = 60_000.0
TWAP_SLICES = 5
TRADED = dex_perps("")
"""The scripted users trade the first dex's perps (and now and then a spot pair)."""


def simulate_account(market: Market, account: Account, tick: Tick) -> AccountEvents:
    """Let ``account`` act once at ``tick.time``; return the events it caused."""
    rng = market.rng
    events = AccountEvents()
    if rng.random() < 0.4:
        place_order(market, account, tick, events)
    if account.open_orders and rng.random() < 0.2:
        oldest = next(iter(account.open_orders.values()))
        record_order(account, oldest, "canceled", tick, events)
    if rng.random() < 0.5:
        fill_once(market, account, tick, events)
    _run_twap(market, account, tick, events)
    if rng.random() < 0.08:
        move_money(market, account, tick, events)
    return events


def record_order(
    account: Account, order: dict[str, Any], status: str, tick: Tick, events: AccountEvents,
) -> None:
    events.order_updates.append(account.record_order(order, status, tick.time))
    events.historical_orders.append(account.order_history[-1])


def _new_order(
    market: Market, asset: Asset, *, is_buy: bool, px: float, sz: float, time_ms: int,
    order_type: str = "Limit", tif: str = "Gtc",
) -> dict[str, Any]:
    """A FrontendOpenOrder (§8.4). Every third order carries a client order id, so both
    shapes of an orderUpdates element (with and without ``cloid``) occur."""
    oid = market.new_oid()
    return {
        "coin": asset.coin, "side": "B" if is_buy else "A", "limitPx": px_text(asset, px),
        "sz": sz_text(asset, sz), "oid": oid, "timestamp": time_ms,
        "origSz": sz_text(asset, sz), "triggerCondition": "N/A", "isTrigger": False,
        "triggerPx": "0.0", "children": [], "isPositionTpsl": False, "reduceOnly": False,
        "orderType": order_type, "tif": tif, "cloid": f"0x{oid:032x}" if oid % 3 == 0 else None,
    }


def _wants_buy(market: Market, account: Account, asset: Asset) -> bool:
    """Lean against the current position so positions stay bounded."""
    position = account.positions.get(asset.coin)
    notional = position.szi * market.mids[asset.coin] if position is not None else 0.0
    if abs(notional) > MAX_POSITION_NOTIONAL:
        return notional < 0
    return market.rng.random() < 0.5


def place_order(
    market: Market, account: Account, tick: Tick, events: AccountEvents,
) -> None:
    asset = market.rng.choice(TRADED)
    is_buy = _wants_buy(market, account, asset)
    away = 1 + (-1 if is_buy else 1) * market.rng.uniform(0.002, 0.02)
    px = round_to_tick(asset, market.mids[asset.coin] * away)
    order = _new_order(market, asset, is_buy=is_buy, px=px, sz=market.random_size(asset),
                       time_ms=tick.time)
    record_order(account, order, "open", tick, events)


def fill_once(market: Market, account: Account, tick: Tick, events: AccountEvents) -> None:
    """Fill a resting order (maker) or take liquidity with a market order (taker)."""
    rng = market.rng
    maker = bool(account.open_orders) and rng.random() < 0.5
    if maker:
        order = next(iter(account.open_orders.values()))
        asset = ASSETS_BY_COIN[order["coin"]]
        is_buy = order["side"] == "B"
        px, sz = float(order["limitPx"]), float(order["sz"])
    else:
        asset = rng.choice(TRADED + SPOTS) if rng.random() < 0.2 else rng.choice(TRADED)
        is_buy = _wants_buy(market, account, asset)
        px, sz = market.touch_price(asset, is_buy), market.random_size(asset)
        order = _new_order(market, asset, is_buy=is_buy, px=px, sz=sz, time_ms=tick.time,
                           order_type="Market", tif="FrontendMarket")
    counterparty = rng.choice(market.strangers)
    buyer, seller = (account.user, counterparty) if is_buy else (counterparty, account.user)
    trade_hash = market.random_hash()
    taker_buys = is_buy if not maker else not is_buy
    trade = market.record_trade(tick, asset, taker_buys, px, sz, buyer, seller, trade_hash)
    fill = account.apply_fill(asset, is_buy=is_buy, px=px, sz=sz, time_ms=tick.time,
                              oid=order["oid"], tid=trade["tid"], fill_hash=trade_hash,
                              crossed=not maker)
    events.fills.append(fill)
    filled = dict(order, sz="0.0")
    record_order(account, filled, "filled", tick, events)
    if rng.random() < 0.3:
        verb = "Bought" if is_buy else "Sold"
        events.notifications.append(
            f"{verb} {fill['sz']} {asset.coin} at average price {fill['px']}")


def _run_twap(market: Market, account: Account, tick: Tick, events: AccountEvents) -> None:
    """Start a TWAP now and then; execute one slice of each running TWAP per tick."""
    if not account.active_twaps and market.rng.random() < 0.04:
        start_twap(market, account, tick, events)
        return
    run_twap(market, account, tick, events)


def start_twap(market: Market, account: Account, tick: Tick, events: AccountEvents) -> None:
    """Start a TWAP of ``TWAP_SLICES`` slices on a perp."""
    asset = market.rng.choice(TRADED)
    is_buy = _wants_buy(market, account, asset)
    total = market.random_size(asset) * TWAP_SLICES
    twap_id = market.new_twap_id()
    state: dict[str, Any] = {
        "coin": asset.coin, "user": account.user, "side": "B" if is_buy else "A",
        "sz": sz_text(asset, total), "executedSz": "0.0", "executedNtl": "0.0",
        "minutes": TWAP_SLICES, "reduceOnly": False, "randomize": False,
        "timestamp": tick.time, "trigger": None, "stopPx": None}
    account.active_twaps[twap_id] = state
    _twap_history(account, twap_id, state, "activated", tick, events)


def run_twap(market: Market, account: Account, tick: Tick, events: AccountEvents) -> None:
    """Execute one slice of each running TWAP (a fill, and a slice fill with a zero hash)."""
    rng = market.rng
    for twap_id, state in list(account.active_twaps.items()):
        asset = ASSETS_BY_COIN[state["coin"]]
        is_buy = state["side"] == "B"
        slice_sz = max(round(float(state["sz"]) / TWAP_SLICES, asset.sz_decimals),
                       10.0 ** -asset.sz_decimals)
        px = market.touch_price(asset, is_buy)
        counterparty = rng.choice(market.strangers)
        buyer, seller = (account.user, counterparty) if is_buy else (counterparty, account.user)
        trade_hash = market.random_hash()
        trade = market.record_trade(tick, asset, is_buy, px, slice_sz, buyer, seller, trade_hash)
        fill = account.apply_fill(asset, is_buy=is_buy, px=px, sz=slice_sz, time_ms=tick.time,
                                  oid=market.new_oid(), tid=trade["tid"],
                                  fill_hash=trade_hash, crossed=True, twap_id=twap_id)
        events.fills.append(fill)
        slice_fill = {"fill": dict(fill, hash=ZERO_HASH, twapId=None), "twapId": twap_id}
        account.twap_slice_fills.append(slice_fill)
        events.twap_slice_fills.append(slice_fill)
        executed = float(state["executedSz"]) + slice_sz
        state["executedSz"] = sz_text(asset, executed)
        state["executedNtl"] = usd_text(float(state["executedNtl"]) + slice_sz * px)
        if executed >= float(state["sz"]) - 10.0 ** -asset.sz_decimals / 2:
            del account.active_twaps[twap_id]
            _twap_history(account, twap_id, state, "finished", tick, events)


def _twap_history(
    account: Account, twap_id: int, state: dict[str, Any], status: str, tick: Tick,
    events: AccountEvents,
) -> None:
    entry = {"time": tick.time // 1000, "state": dict(state), "status": {"status": status},
             "twapId": twap_id}
    account.twap_history.append(entry)
    events.twap_history.append(entry)


def move_money(market: Market, account: Account, tick: Tick, events: AccountEvents) -> None:
    """A deposit, a withdrawal or a transfer to the other user."""
    rng = market.rng
    amount = usd_text(round(rng.uniform(100, 5000), 2))
    kind = rng.choice(("deposit", "withdraw", "internalTransfer"))
    delta: dict[str, Any]
    if kind == "deposit":
        delta = {"type": "deposit", "usdc": amount}
    elif kind == "withdraw":
        delta = {"type": "withdraw", "usdc": amount, "nonce": tick.time, "fee": "1.0"}
    else:
        other = next(u for u in market.users if u != account.user)
        delta = {"type": "internalTransfer", "usdc": amount, "user": account.user,
                 "destination": other, "fee": "0.0"}
    events.ledger.append(account.record_ledger(delta, tick.time, market.random_hash()))
