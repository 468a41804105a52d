"""What each recoverable feed asks ``/info`` for, and how the answer becomes live-shaped
messages (protocol.md §9.3): ``PLANS`` maps a feed type to a plan, ``plan(fetch,
subscription, start_ms, end_ms)``, which returns the messages to deliver, oldest first.
A recovered item has the keys and value types of a live one, optional keys left out
where a live frame leaves them out (tests/test_backfill_shapes.py checks every plan).

Pure: ``fetch`` (``backfill.Backfiller``'s, which retries) does the HTTP; runs on the
backfill threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PAGE = 500  # the smallest page the server is known to cut time-range answers at
MAX_PAGES = 40
Fetch = Callable[[dict[str, Any]], Any]
Messages = list[dict[str, Any]]


def _paged(fetch: Fetch, body: dict[str, Any], start: int, end: int, time_of: Callable[[Any], int]) -> list[Any]:
    """Every item of a time-range query from ``start`` to ``end`` (ms, inclusive), oldest
    first; boundary items repeat between pages and are left for the tracker to drop."""
    items: list[Any] = []
    for _ in range(MAX_PAGES):
        page = fetch({**body, "startTime": start, "endTime": end})
        if not isinstance(page, list):
            raise ValueError(f"expected a list from {body['type']}, got {type(page).__name__}")
        page = sorted(page, key=time_of)
        items.extend(page)
        if len(page) < PAGE or time_of(page[-1]) <= start:
            return items
        start = time_of(page[-1])
    log.warning("backfill of %s stopped after %d pages", body["type"], MAX_PAGES)
    return items


def _funding_of(update: dict[str, Any]) -> dict[str, Any]:
    """An HTTP userFunding item in the shape of the WS feeds' funding."""
    delta = update["delta"]
    return {"time": update["time"], "coin": delta["coin"], "usdc": delta["usdc"], "szi": delta["szi"],
            "fundingRate": delta["fundingRate"], "nSamples": delta.get("nSamples")}


def _fills(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> list[Any]:
    body: dict[str, Any] = {"type": "userFillsByTime", "user": sub["user"]}
    if sub.get("aggregateByTime"):
        body["aggregateByTime"] = True
    return _paged(fetch, body, start, end, lambda f: f["time"])


def _fundings(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> list[Any]:
    updates = _paged(fetch, {"type": "userFunding", "user": sub["user"]}, start, end, lambda u: u["time"])
    return [_funding_of(u) for u in updates]


class Partial(Exception):
    """A plan recovered only the end of its gap: ``messages`` are to be delivered, and
    ``start_ms``..``end_ms`` may still be missing (reported as a ``BackfillError``)."""

    def __init__(self, messages: Messages, start_ms: int, end_ms: int, why: str) -> None:
        super().__init__(why)
        self.messages = messages
        self.start_ms = start_ms
        self.end_ms = end_ms


def _trades(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    """``recentTrades`` has no time range: it holds the latest trades only (protocol.md
    §9.2). If every one it returns is later than ``start``, the gap may hold more than it
    does: the rest of the gap is reported, never silently lost."""
    recent = sorted(fetch({"type": "recentTrades", "coin": sub["coin"]}), key=lambda t: t["time"])
    trades = [t for t in recent if t["time"] >= start]
    messages = [{"channel": "trades", "data": trades}] if trades else []
    if recent and recent[0]["time"] > start:
        raise Partial(messages, start, recent[0]["time"], f"recentTrades returned only the latest {len(recent)} "
                      f"trades, the oldest at {recent[0]['time']}")
    return messages


def _candles(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    request = {"coin": sub["coin"], "interval": sub["interval"], "startTime": start, "endTime": end}
    candles = sorted(fetch({"type": "candleSnapshot", "req": request}), key=lambda c: c["t"])
    return [{"channel": "candle", "data": candle} for candle in candles]


def _user_fills(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    fills = _fills(fetch, sub, start, end)
    return [{"channel": "userFills", "data": {"user": sub["user"], "fills": fills}}] if fills else []


def _user_events(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    timed: list[tuple[int, dict[str, Any]]] = []
    by_time: dict[int, list[Any]] = {}
    for fill in _fills(fetch, sub, start, end):
        by_time.setdefault(fill["time"], []).append(fill)
    timed += [(when, {"channel": "user", "data": {"fills": fills}}) for when, fills in by_time.items()]
    timed += [(f["time"], {"channel": "user", "data": {"funding": f}}) for f in _fundings(fetch, sub, start, end)]
    return [message for _, message in sorted(timed, key=lambda pair: pair[0])]


def _user_fundings(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    fundings = _fundings(fetch, sub, start, end)
    return [{"channel": "userFundings", "data": {"user": sub["user"], "fundings": fundings}}] if fundings else []


def _ledger(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    body = {"type": "userNonFundingLedgerUpdates", "user": sub["user"]}
    updates = _paged(fetch, body, start, end, lambda u: u["time"])
    data = {"user": sub["user"], "nonFundingLedgerUpdates": updates}
    return [{"channel": "userNonFundingLedgerUpdates", "data": data}] if updates else []


def _changed_orders(fetch: Fetch, sub: dict[str, Any], start: int) -> list[Any]:
    orders = fetch({"type": "historicalOrders", "user": sub["user"]})
    return sorted((o for o in orders if o["statusTimestamp"] >= start), key=lambda o: o["statusTimestamp"])


# The order of a live orderUpdates element (protocol.md §7.11): these keys always, and
# ``cloid`` / ``reduceOnly`` only when set; historicalOrders carries the frontend order
# (§8.4) with ``"cloid": null``, ``tif``, ``orderType``, trigger fields and more.
_LIVE_ORDER_KEYS = ("coin", "side", "limitPx", "sz", "oid", "timestamp", "origSz")


def live_order_update(entry: dict[str, Any]) -> dict[str, Any]:
    """A historicalOrders entry ``{"order": FrontendOpenOrder, "status", "statusTimestamp"}``
    in the shape of a live orderUpdates element."""
    order = entry["order"]
    live = {key: order[key] for key in _LIVE_ORDER_KEYS}
    if order.get("cloid"):
        live["cloid"] = order["cloid"]
    if order.get("reduceOnly"):
        live["reduceOnly"] = True
    return {"order": live, "status": entry["status"], "statusTimestamp": entry["statusTimestamp"]}


def _order_updates(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    orders = [live_order_update(entry) for entry in _changed_orders(fetch, sub, start)]
    return [{"channel": "orderUpdates", "data": orders}] if orders else []


def _historical_orders(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    orders = _changed_orders(fetch, sub, start)
    data = {"user": sub["user"], "orderHistory": orders}
    return [{"channel": "userHistoricalOrders", "data": data}] if orders else []


def _twap_slice_fills(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    body = {"type": "userTwapSliceFillsByTime", "user": sub["user"]}
    slices = _paged(fetch, body, start, end, lambda s: s["fill"]["time"])
    data = {"user": sub["user"], "twapSliceFills": slices}
    return [{"channel": "userTwapSliceFills", "data": data}] if slices else []


PLANS: dict[str, Callable[[Fetch, dict[str, Any], int, int], Messages]] = {
    "trades": _trades,
    "candle": _candles,
    "userFills": _user_fills,
    "userEvents": _user_events,
    "userFundings": _user_fundings,
    "userNonFundingLedgerUpdates": _ledger,
    "orderUpdates": _order_updates,
    "userHistoricalOrders": _historical_orders,
    "userTwapSliceFills": _twap_slice_fills,
}
