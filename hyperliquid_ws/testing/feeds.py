"""The ``data`` of every subscription's frames, built from the market.

Three moments: right after the ack (``initial_data``), after each market tick
(``tick_data``), and on demand for ``LocalServer.emit`` (``sample_data``). All run on
the server loop thread, which owns the market. Shapes follow the live server's
(protocol.md §7, §10b; checked against captured frames by ``tests/test_conformance.py``).
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

from hyperliquid_ws.testing.accounts import Account
from hyperliquid_ws.testing.assets import ASSETS_BY_COIN, PERP_DEXES, usd_text
from hyperliquid_ws.testing.events import AccountEvents, Tick
from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.meta import perp_meta
from hyperliquid_ws.testing.replies import compact_json
from hyperliquid_ws.testing.subscriptions import EVENT_FEEDS, SNAPSHOT_FEEDS

SNAPSHOT_ITEMS = 200
"""How many recent items a snapshot frame carries (the real number is unconfirmed)."""

_HISTORY_KEYS: dict[str, str] = {
    "userFills": "fills",
    "userFundings": "fundings",
    "userNonFundingLedgerUpdates": "nonFundingLedgerUpdates",
    "userTwapSliceFills": "twapSliceFills",
    "userTwapHistory": "history",
    "userHistoricalOrders": "orderHistory",
}
"""The list key inside the data of each snapshot feed."""


_FRESH_EVENT_FEEDS = frozenset({
    "userFills", "userEvents", "orderUpdates", "userHistoricalOrders", "notification",
    "userNonFundingLedgerUpdates"})
"""Feeds for which ``sample_data`` makes a new event rather than repeating one."""


def initial_data(sub: dict[str, Any], market: Market) -> Any | None:
    """What follows the ack: a snapshot, the current state, or nothing (event feeds)."""
    kind = sub["type"]
    if kind in SNAPSHOT_FEEDS:
        items = _history(kind, market.account(sub["user"]))[-SNAPSHOT_ITEMS:]
        return {"isSnapshot": True, "user": sub["user"], _HISTORY_KEYS[kind]: items}
    if kind == "trades":  # live replays the latest trades right after the ack (how many: unconfirmed)
        recent = list(market.trades[sub["coin"]])[-market.trades_replay:] if market.trades_replay else []
        return recent or None
    if kind in EVENT_FEEDS:
        return None
    return state_data(sub, market)


def tick_data(sub: dict[str, Any], market: Market, tick: Tick) -> list[Any]:
    """The frames' data this subscription receives for one tick (maybe none)."""
    kind = sub["type"]
    if kind == "trades":
        trades = tick.trades.get(sub["coin"])
        return [trades] if trades else []
    if kind == "candle":
        candle = tick.candles.get((sub["coin"], sub["interval"]))
        return [candle] if candle is not None else []
    if kind == "fastAssetCtxs":
        return [_deflated(tick.changed_fast)] if tick.changed_fast else []
    if kind == "outcomeMetaUpdates":
        return [tick.outcome_updates] if tick.outcome_updates else []
    if kind in SNAPSHOT_FEEDS or kind in ("orderUpdates", "userEvents", "notification"):
        events = tick.accounts.get(sub["user"])
        return _account_event_data(kind, sub["user"], events) if events is not None else []
    return [state_data(sub, market)]


def sample_data(sub: dict[str, Any], market: Market) -> Any | None:
    """A realistic frame's data for ``LocalServer.emit``.

    Event feeds get a brand-new event (a fresh trade or fill, recorded in the market's
    history so HTTP info agrees); history feeds without one repeat their latest item;
    state feeds send their current state.
    """
    kind = sub["type"]
    if kind in ("trades", "candle"):
        tick = market.extra_trade(sub["coin"])
        if kind == "trades":
            return tick.trades[sub["coin"]]
        return tick.candles[(sub["coin"], sub["interval"])]
    if kind in _FRESH_EVENT_FEEDS:
        events = market.extra_account_event(
            sub["user"], ledger=kind == "userNonFundingLedgerUpdates")
        if kind == "notification":
            fill = events.fills[0]
            verb = "Bought" if fill["side"] == "B" else "Sold"
            return {"notification": f"{verb} {fill['sz']} {fill['coin']} at average price "
                                    f"{fill['px']}"}
        return _account_event_data(kind, sub["user"], events)[0]
    if kind in SNAPSHOT_FEEDS:
        return {"user": sub["user"], _HISTORY_KEYS[kind]: [_fresh_history_item(kind, market, sub["user"])]}
    if kind == "outcomeMetaUpdates":
        return []
    return state_data(sub, market)


def state_data(sub: dict[str, Any], market: Market) -> Any:
    """The full current state of a state feed."""
    kind = sub["type"]
    if kind == "allMids":
        dex = sub.get("dex", "")
        mids = {"mids": market.all_mids(dex)}
        return {"dex": dex, **mids} if dex else mids
    if kind == "l2Book":
        fast = sub.get("fast") is True
        book = market.l2_book(sub["coin"], n_sig_figs=sub.get("nSigFigs"),
                              mantissa=sub.get("mantissa"), depth=5 if fast else 20)
        if fast:
            book["fast"] = True
        return book
    if kind == "bbo":
        return market.bbo(sub["coin"])
    if kind == "activeAssetCtx":
        asset = ASSETS_BY_COIN[sub["coin"]]
        return {"coin": asset.coin, "ctx": market.asset_ctx(asset)}
    if kind == "assetCtxs":
        return {"dex": sub.get("dex", ""), "ctxs": market.perp_ctxs(sub.get("dex", ""))}
    if kind == "allDexsAssetCtxs":
        return {"ctxs": [[dex, market.perp_ctxs(dex)] for dex in PERP_DEXES]}
    if kind == "spotAssetCtxs":
        return market.spot_ctxs()
    if kind == "fastAssetCtxs":
        return _deflated(market.fast_ctxs())
    return _user_state_data(sub, market)


def _user_state_data(sub: dict[str, Any], market: Market) -> Any:
    kind = sub["type"]
    user = sub["user"]
    account = market.account(user)
    dex = sub.get("dex", "")
    if kind == "clearinghouseState":
        state = account.clearinghouse_state(market.marks(), market.now_ms(), dex)
        return {"dex": dex, "user": user, "clearinghouseState": state}
    if kind == "openOrders":
        return {"dex": dex, "user": user, "orders": account.frontend_open_orders(dex)}
    if kind == "twapStates":
        return {"dex": dex, "user": user, "states": account.twap_states(dex)}
    if kind == "activeAssetData":
        return account.active_asset_data(ASSETS_BY_COIN[sub["coin"]], market.marks())
    if kind == "spotState":
        return {"user": user, "spotState": account.spot_state(market.marks())}
    if kind == "allDexsClearinghouseState":
        states = [[name, account.clearinghouse_state(market.marks(), market.now_ms(), name)]
                  for name in PERP_DEXES]
        return {"user": user, "clearinghouseStates": states}
    if kind == "webData2":
        return web_data2(market, account)
    if kind == "webData3":  # live leaves leadingVaults out when there are none
        return {"userState": {"agentAddress": None, "agentValidUntil": None,
                              "cumLedger": _cum_ledger(account), "serverTime": market.now_ms(),
                              "isVault": False, "user": user, "dexAbstractionEnabled": False,
                              "abstraction": "disabled"},
                "perpDexStates": [{"totalVaultEquity": "0.0"} for _ in PERP_DEXES]}
    raise ValueError(f"no state for subscription type {kind}")


def web_data2(market: Market, account: Account) -> dict[str, Any]:
    """The webData2 payload (§7.3); the HTTP info ``webData2`` answer is the same."""
    return {
        "clearinghouseState": account.clearinghouse_state(market.marks(), market.now_ms()),
        "leadingVaults": [], "totalVaultEquity": "0.0",
        "openOrders": account.frontend_open_orders(), "agentAddress": None,
        "agentValidUntil": None, "cumLedger": _cum_ledger(account), "meta": perp_meta(),
        "assetCtxs": market.perp_ctxs(), "serverTime": market.now_ms(), "isVault": False,
        "user": account.user, "twapStates": account.twap_states(),
        "spotState": account.spot_state(market.marks()), "spotAssetCtxs": market.spot_ctxs(),
    }


def _cum_ledger(account: Account) -> str:
    deposits = sum(float(e["delta"].get("usdc", 0.0)) for e in account.ledger
                   if e["delta"]["type"] == "deposit")
    return usd_text(deposits)


def _fresh_history_item(kind: str, market: Market, user: str) -> dict[str, Any]:
    """A new item for a history feed with no event of its own to make (fundings, TWAP),
    recorded in the account so HTTP info agrees."""
    account = market.account(user)
    now = market.now_ms()
    if kind == "userFundings":
        rate = "0.0000125"
        entry = {"time": now, "coin": "BTC", "usdc": "-0.01", "szi": "0.01", "fundingRate": rate, "nSamples": None}
        delta = {"type": "funding", **{k: v for k, v in entry.items() if k != "time"}}
        account.fundings.append({"time": now, "hash": market.random_hash(), "delta": delta})
        return entry
    previous = _history(kind, account)[-1:]
    if kind == "userTwapSliceFills" and previous:
        fill = dict(previous[0]["fill"], tid=market.new_tid(), oid=market.new_oid(), time=now)
        item = {"fill": fill, "twapId": previous[0]["twapId"]}
        account.twap_slice_fills.append(item)
        return item
    if kind == "userTwapHistory" and previous:
        item = dict(previous[0], time=now // 1000, twapId=market.new_twap_id(),
                    state=dict(previous[0]["state"], timestamp=now))
        account.twap_history.append(item)
        return item
    return previous[0] if previous else {}


def _history(kind: str, account: Account) -> list[Any]:
    if kind == "userFills":
        return list(account.fills)
    if kind == "userFundings":
        return [{"time": e["time"], **{k: v for k, v in e["delta"].items() if k != "type"}}
                for e in account.fundings]
    if kind == "userNonFundingLedgerUpdates":
        return list(account.ledger)
    if kind == "userTwapSliceFills":
        return list(account.twap_slice_fills)
    if kind == "userTwapHistory":
        return list(account.twap_history)
    return list(account.order_history)


def _account_event_data(kind: str, user: str, events: AccountEvents) -> list[Any]:
    if kind == "orderUpdates":
        return [events.order_updates] if events.order_updates else []
    if kind == "notification":
        return [{"notification": text} for text in events.notifications]
    if kind == "userEvents":  # one key per frame, on channel "user"
        found: list[Any] = [{"fills": events.fills}] if events.fills else []
        if events.twap_slice_fills:
            found.append({"twapSliceFills": events.twap_slice_fills})
        if events.non_user_cancels:
            found.append({"nonUserCancel": events.non_user_cancels})
        found += [{"liquidation": liquidation} for liquidation in events.liquidations]
        return found + [{"funding": funding} for funding in events.fundings]
    items: list[Any] = {
        "userFills": events.fills,
        "userFundings": events.fundings,
        "userNonFundingLedgerUpdates": events.ledger,
        "userTwapSliceFills": events.twap_slice_fills,
        "userTwapHistory": events.twap_history,
        "userHistoricalOrders": events.historical_orders,
    }[kind]
    return [{"user": user, _HISTORY_KEYS[kind]: items}] if items else []


def _deflated(value: Any) -> str:
    """base64 of raw DEFLATE (no zlib header) of compact JSON, as fastAssetCtxs sends."""
    compressor = zlib.compressobj(wbits=-15)
    raw = compressor.compress(compact_json(value).encode())
    return base64.b64encode(raw + compressor.flush()).decode()
