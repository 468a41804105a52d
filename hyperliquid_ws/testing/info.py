"""Answers to ``POST /info`` bodies (protocol.md §9), served from the live market.

The same function answers HTTP ``/info`` and WebSocket ``post`` info requests, so both
always agree with what the socket streams. Runs on the server loop thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hyperliquid_ws.testing.assets import PERP_DEXES, Asset, find_asset
from hyperliquid_ws.testing.candles import INTERVALS, MAX_CANDLES
from hyperliquid_ws.testing.feeds import web_data2
from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.meta import perp_dexs, perp_meta, spot_meta
from hyperliquid_ws.testing.replies import HTTP_422_TEXT

MAX_USER_FILLS = 2000
MAX_TIME_RANGE_ITEMS = 500
RECENT_TRADES = 100
"""How many trades ``recentTrades`` returns (the real count is unconfirmed)."""

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")


class InfoRequestError(Exception):
    """A body the real server would refuse; carries the HTTP status and body text."""

    def __init__(self, status: int = 422, text: str = HTTP_422_TEXT) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    @property
    def status_line(self) -> str:
        """The text a WebSocket ``post`` error payload carries for this refusal."""
        reason = {422: "Unprocessable Entity", 400: "Bad Request"}.get(self.status, "Error")
        return f"{self.status} {reason}: {self.text}"


def answer_info(market: Market, body: object) -> Any:
    """The JSON answer to one info request body, or raise ``InfoRequestError``."""
    if not isinstance(body, dict):
        raise InfoRequestError()
    kind = body.get("type")
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise InfoRequestError()
    return handler(market, body)


def _user(body: dict[str, Any]) -> str:
    user = body.get("user")
    if not isinstance(user, str) or _ADDRESS.match(user) is None:
        raise InfoRequestError()
    return user.lower()


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int:
        raise InfoRequestError()
    return value


def _time_range(market: Market, body: dict[str, Any]) -> tuple[int, int]:
    start = _int(body, "startTime")
    end = body.get("endTime")
    if end is None:
        return start, market.now_ms()
    if type(end) is not int:
        raise InfoRequestError()
    return start, end


def _dex(body: dict[str, Any]) -> str:
    dex = body.get("dex", "")
    if dex not in PERP_DEXES:
        raise InfoRequestError()
    return str(dex)


def _perp(body: dict[str, Any]) -> Asset:
    asset = find_asset(body.get("coin"))
    if asset is None or asset.is_spot:
        raise InfoRequestError()
    return asset


def _in_range(items: list[dict[str, Any]], start: int, end: int, cap: int) -> list[dict[str, Any]]:
    """Items timed within ``[start, end]``, oldest first, at most ``cap``."""
    return [item for item in items if start <= item["time"] <= end][:cap]


def _all_mids(market: Market, body: dict[str, Any]) -> Any:
    return market.all_mids(_dex(body))


def _l2_book(market: Market, body: dict[str, Any]) -> Any:
    asset = find_asset(body.get("coin"))
    n_sig_figs, mantissa = body.get("nSigFigs"), body.get("mantissa")
    if n_sig_figs is not None and (type(n_sig_figs) is not int or not 2 <= n_sig_figs <= 5):
        raise InfoRequestError()
    if mantissa is not None and (mantissa not in (1, 2, 5) or n_sig_figs != 5):
        raise InfoRequestError()
    if asset is None:
        return None
    return market.l2_book(asset.coin, n_sig_figs=n_sig_figs, mantissa=mantissa)


def _candle_snapshot(market: Market, body: dict[str, Any]) -> Any:
    req = body.get("req")
    if not isinstance(req, dict) or req.get("interval") not in INTERVALS:
        raise InfoRequestError()
    start, end = _time_range(market, req)
    if not isinstance(req.get("coin"), str):
        raise InfoRequestError()
    asset = find_asset(req["coin"])
    if asset is None:
        return []
    return market.candles[(asset.coin, req["interval"])].between(start, end)[-MAX_CANDLES:]


def _recent_trades(market: Market, body: dict[str, Any]) -> Any:
    asset = find_asset(body.get("coin"))
    return list(market.trades[asset.coin])[-RECENT_TRADES:] if asset is not None else []


def _user_fills(market: Market, body: dict[str, Any]) -> Any:
    fills = list(market.account(_user(body)).fills)
    return list(reversed(fills[-MAX_USER_FILLS:]))


def _user_fills_by_time(market: Market, body: dict[str, Any]) -> Any:
    user = _user(body)
    start, end = _time_range(market, body)
    fills = list(market.account(user).fills)
    if body.get("reversed") is True:
        return [f for f in reversed(fills) if start <= f["time"] <= end][:MAX_USER_FILLS]
    return _in_range(fills, start, end, MAX_USER_FILLS)


def _user_funding(market: Market, body: dict[str, Any]) -> Any:
    user = _user(body)
    start, end = _time_range(market, body)
    return _in_range(list(market.account(user).fundings), start, end, MAX_TIME_RANGE_ITEMS)


def _ledger_updates(market: Market, body: dict[str, Any]) -> Any:
    user = _user(body)
    start, end = _time_range(market, body)
    return _in_range(list(market.account(user).ledger), start, end, MAX_TIME_RANGE_ITEMS)


def _historical_orders(market: Market, body: dict[str, Any]) -> Any:
    history = list(market.account(_user(body)).order_history)
    return list(reversed(history[-MAX_USER_FILLS:]))


def _order_status(market: Market, body: dict[str, Any]) -> Any:
    user = _user(body)
    oid = body.get("oid")
    if not (type(oid) is int or (isinstance(oid, str) and _CLOID.match(oid))):
        raise InfoRequestError()
    entry = market.account(user).find_order(oid.lower() if isinstance(oid, str) else oid)
    return {"status": "unknownOid"} if entry is None else {"status": "order", "order": entry}


def _open_orders(market: Market, body: dict[str, Any]) -> Any:
    return market.account(_user(body)).brief_open_orders(_dex(body))


def _frontend_open_orders(market: Market, body: dict[str, Any]) -> Any:
    return market.account(_user(body)).frontend_open_orders(_dex(body))


def _clearinghouse_state(market: Market, body: dict[str, Any]) -> Any:
    dex = _dex(body)
    return market.account(_user(body)).clearinghouse_state(market.marks(), market.now_ms(), dex)


def _spot_clearinghouse_state(market: Market, body: dict[str, Any]) -> Any:
    return market.account(_user(body)).spot_state(market.marks())


def _active_asset_data(market: Market, body: dict[str, Any]) -> Any:
    user, asset = _user(body), _perp(body)
    return market.account(user).active_asset_data(asset, market.marks())


def _twap_slice_fills(market: Market, body: dict[str, Any]) -> Any:
    fills = list(market.account(_user(body)).twap_slice_fills)
    return list(reversed(fills[-MAX_USER_FILLS:]))


def _twap_slice_fills_by_time(market: Market, body: dict[str, Any]) -> Any:
    user = _user(body)
    start, end = _time_range(market, body)
    fills = list(market.account(user).twap_slice_fills)
    return [f for f in fills if start <= f["fill"]["time"] <= end][:MAX_USER_FILLS]


def _twap_history(market: Market, body: dict[str, Any]) -> Any:
    return list(market.account(_user(body)).twap_history)


def _funding_history(market: Market, body: dict[str, Any]) -> Any:
    asset = _perp(body)
    start, end = _time_range(market, body)
    return _in_range(list(market.funding_history[asset.coin]), start, end, MAX_TIME_RANGE_ITEMS)


def _web_data2(market: Market, body: dict[str, Any]) -> Any:
    return web_data2(market, market.account(_user(body)))


def _meta_and_ctxs(market: Market, body: dict[str, Any]) -> Any:
    dex = _dex(body)
    return [perp_meta(dex), market.perp_ctxs(dex)]


_HANDLERS: dict[str, Callable[[Market, dict[str, Any]], Any]] = {
    "allMids": _all_mids,
    "l2Book": _l2_book,
    "candleSnapshot": _candle_snapshot,
    "recentTrades": _recent_trades,
    "userFills": _user_fills,
    "userFillsByTime": _user_fills_by_time,
    "userFunding": _user_funding,
    "userNonFundingLedgerUpdates": _ledger_updates,
    "historicalOrders": _historical_orders,
    "orderStatus": _order_status,
    "openOrders": _open_orders,
    "frontendOpenOrders": _frontend_open_orders,
    "clearinghouseState": _clearinghouse_state,
    "spotClearinghouseState": _spot_clearinghouse_state,
    "activeAssetData": _active_asset_data,
    "userTwapSliceFills": _twap_slice_fills,
    "userTwapSliceFillsByTime": _twap_slice_fills_by_time,
    "twapHistory": _twap_history,
    "fundingHistory": _funding_history,
    "webData2": _web_data2,
    "meta": lambda market, body: perp_meta(_dex(body)),
    "spotMeta": lambda market, body: spot_meta(),
    "metaAndAssetCtxs": _meta_and_ctxs,
    "spotMetaAndAssetCtxs": lambda market, body: [spot_meta(), market.spot_ctxs()],
    "perpDexs": lambda market, body: perp_dexs(),
}
"""Every info request type the server answers."""
