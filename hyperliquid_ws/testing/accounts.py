"""One user's account in the local market: positions, orders and bounded histories.

An ``Account`` is plain state owned by its ``Market``; the server loop thread is the only
thread that mutates it (see ``hyperliquid_ws.testing.market``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from hyperliquid_ws.testing.assets import (
    ASSETS_BY_COIN,
    SPOTS,
    TOKENS,
    Asset,
    decimal_text,
    dex_perps,
    px_text,
    sz_text,
    usd_text,
)

MAX_FILLS = 10000
"""Only the 10000 most recent fills are reachable through userFillsByTime (§9.2)."""
MAX_ORDER_HISTORY = 2000
MAX_LEDGER = 2000
MAX_TWAP_HISTORY = 500
DEFAULT_LEVERAGE = 10


def order_update_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The orderUpdates element (§7.11) for a historicalOrders entry."""
    order = entry["order"]
    ws_order = {key: order[key] for key in
                ("coin", "side", "limitPx", "sz", "oid", "timestamp", "origSz")}
    if order.get("cloid"):
        ws_order["cloid"] = order["cloid"]
    if order.get("reduceOnly"):
        ws_order["reduceOnly"] = True
    return {"order": ws_order, "status": entry["status"],
            "statusTimestamp": entry["statusTimestamp"]}


@dataclass
class Position:
    szi: float = 0.0
    entry_px: float = 0.0
    funding_all_time: float = 0.0
    funding_since_open: float = 0.0
    leverage: int = DEFAULT_LEVERAGE


class Account:
    """State and history of one (lowercase) user address."""

    def __init__(self, user: str, *, usdc: float = 0.0) -> None:
        self.user = user
        self.usdc = usdc
        self.positions: dict[str, Position] = {}
        self.spot_balances: dict[int, float] = {0: usdc / 4} if usdc else {}
        self.open_orders: dict[int, dict[str, Any]] = {}
        self.fills: deque[dict[str, Any]] = deque(maxlen=MAX_FILLS)
        self.order_history: deque[dict[str, Any]] = deque(maxlen=MAX_ORDER_HISTORY)
        self.fundings: deque[dict[str, Any]] = deque(maxlen=MAX_LEDGER)
        self.ledger: deque[dict[str, Any]] = deque(maxlen=MAX_LEDGER)
        self.twap_slice_fills: deque[dict[str, Any]] = deque(maxlen=MAX_ORDER_HISTORY)
        self.twap_history: deque[dict[str, Any]] = deque(maxlen=MAX_TWAP_HISTORY)
        self.active_twaps: dict[int, dict[str, Any]] = {}

    # ----------------------------------------------------------------- orders
    def record_order(self, order: dict[str, Any], status: str, time_ms: int) -> dict[str, Any]:
        """Record a status change of a FrontendOpenOrder; return the orderUpdates element."""
        if status == "open":
            self.open_orders[order["oid"]] = order
        else:
            self.open_orders.pop(order["oid"], None)
        entry = {"order": dict(order), "status": status, "statusTimestamp": time_ms}
        self.order_history.append(entry)
        return order_update_of(entry)

    def find_order(self, oid: object) -> dict[str, Any] | None:
        """The newest history entry for an int oid or a ``0x`` cloid."""
        key = "cloid" if isinstance(oid, str) else "oid"
        for entry in reversed(self.order_history):
            if entry["order"].get(key) == oid:
                found: dict[str, Any] = entry
                return found
        return None

    # ------------------------------------------------------------------ fills
    def apply_fill(
        self, asset: Asset, *, is_buy: bool, px: float, sz: float, time_ms: int, oid: int,
        tid: int, fill_hash: str, crossed: bool, twap_id: int | None = None,
    ) -> dict[str, Any]:
        """Book a fill against positions or spot balances; return the WsFill (§8.1)."""
        fee = px * sz * (0.00035 if crossed else 0.0001)
        closed_pnl = 0.0
        if asset.is_spot:
            start = self.spot_balances.get(asset.base_token, 0.0)
            signed = sz if is_buy else -sz
            self.spot_balances[asset.base_token] = max(start + signed, 0.0)
            self.spot_balances[0] = self.spot_balances.get(0, 0.0) - signed * px - fee
            direction = "Buy" if is_buy else "Sell"
            start_text = sz_text(asset, start)
            fee_token = "USDC"
        else:
            position = self.positions.setdefault(asset.coin, Position())
            start = position.szi
            signed = sz if is_buy else -sz
            if start == 0 or (start > 0) == is_buy:
                direction = "Open Long" if is_buy else "Open Short"
                total = abs(start) + sz
                position.entry_px = (abs(start) * position.entry_px + sz * px) / total
                if start == 0:
                    position.funding_since_open = 0.0
            else:
                direction = "Close Short" if is_buy else "Close Long"
                closing = min(sz, abs(start))
                closed_pnl = closing * (px - position.entry_px) * (1 if start > 0 else -1)
                if sz > abs(start):
                    position.entry_px = px
            position.szi = round(start + signed, asset.sz_decimals)
            self.usdc += closed_pnl - fee
            start_text = sz_text(asset, start)
            fee_token = "USDC"
        fill: dict[str, Any] = {
            "coin": asset.coin, "px": px_text(asset, px), "sz": sz_text(asset, sz),
            "side": "B" if is_buy else "A", "time": time_ms, "startPosition": start_text,
            "dir": direction, "closedPnl": usd_text(closed_pnl), "hash": fill_hash, "oid": oid,
            "crossed": crossed, "fee": usd_text(fee), "tid": tid, "feeToken": fee_token,
            "twapId": twap_id,
        }
        self.fills.append(fill)
        return fill

    # ------------------------------------------------------- funding, ledger
    def pay_funding(
        self, asset: Asset, rate: float, mark: float, time_ms: int, entry_hash: str,
    ) -> dict[str, Any] | None:
        """Charge one funding payment on an open position; return the userFundings element."""
        position = self.positions.get(asset.coin)
        if position is None or position.szi == 0:
            return None
        usdc = -position.szi * mark * rate
        self.usdc += usdc
        position.funding_all_time -= usdc
        position.funding_since_open -= usdc
        entry = {"time": time_ms, "coin": asset.coin, "usdc": usd_text(usdc),
                 "szi": sz_text(asset, position.szi), "fundingRate": decimal_text(rate, 10),
                 "nSamples": 1}
        self.fundings.append({"time": time_ms, "hash": entry_hash,
                              "delta": {"type": "funding", **{k: v for k, v in entry.items()
                                                              if k != "time"}}})
        return entry

    def record_ledger(self, delta: dict[str, Any], time_ms: int, entry_hash: str) -> dict[str, Any]:
        """Apply a non-funding ledger delta; return the ledger element."""
        if delta["type"] == "deposit":
            self.usdc += float(delta["usdc"])
        elif delta["type"] in ("withdraw", "internalTransfer"):
            self.usdc -= float(delta["usdc"])
        entry = {"time": time_ms, "hash": entry_hash, "delta": delta}
        self.ledger.append(entry)
        return entry

    # --------------------------------------------------------------- states
    def clearinghouse_state(self, marks: dict[str, float], time_ms: int, dex: str = "") -> dict[str, Any]:
        """ClearinghouseState (§8.5) of one perp dex, valued at ``marks``. The account's
        USDC sits on the first dex; a HIP-3 dex holds only what its positions hold."""
        asset_positions: list[dict[str, Any]] = []
        total_ntl = margin_used = unrealized = 0.0
        for asset in dex_perps(dex):
            position = self.positions.get(asset.coin)
            if position is None or position.szi == 0:
                continue
            mark = marks[asset.coin]
            value = abs(position.szi) * mark
            pnl = position.szi * (mark - position.entry_px)
            margin = value / position.leverage
            total_ntl += value
            margin_used += margin
            unrealized += pnl
            entry_margin = abs(position.szi) * position.entry_px / position.leverage
            asset_positions.append({"type": "oneWay", "position": {
                "coin": asset.coin, "szi": sz_text(asset, position.szi),
                "leverage": {"type": "cross", "value": position.leverage},
                "entryPx": px_text(asset, position.entry_px),
                "positionValue": usd_text(value), "unrealizedPnl": usd_text(pnl),
                "returnOnEquity": decimal_text(pnl / entry_margin if entry_margin else 0.0, 8),
                "liquidationPx": None, "marginUsed": usd_text(margin),
                "maxLeverage": asset.max_leverage,
                "cumFunding": {"allTime": usd_text(position.funding_all_time),
                               "sinceOpen": usd_text(position.funding_since_open),
                               "sinceChange": usd_text(position.funding_since_open)},
            }})
        cash = self.usdc if dex == "" else 0.0
        account_value = cash + unrealized
        summary = {"accountValue": usd_text(account_value), "totalNtlPos": usd_text(total_ntl),
                   "totalRawUsd": usd_text(cash), "totalMarginUsed": usd_text(margin_used)}
        return {
            "marginSummary": summary, "crossMarginSummary": dict(summary),
            "crossMaintenanceMarginUsed": usd_text(margin_used / 2),
            "withdrawable": usd_text(max(account_value - margin_used, 0.0)),
            "assetPositions": asset_positions, "time": time_ms,
        }

    def frontend_open_orders(self, dex: str = "") -> list[dict[str, Any]]:
        """Open orders on one perp dex, newest first, as FrontendOpenOrder (§8.4); spot
        orders come with the first dex."""
        return [dict(order) for order in reversed(list(self.open_orders.values()))
                if ASSETS_BY_COIN[order["coin"]].dex == dex]

    def brief_open_orders(self, dex: str = "") -> list[dict[str, Any]]:
        """Open orders in the short shape of the ``openOrders`` info answer."""
        return [{key: order[key] for key in ("coin", "limitPx", "oid", "side", "sz", "timestamp")}
                for order in self.frontend_open_orders(dex)]

    def spot_state(self, mids: dict[str, float]) -> dict[str, Any]:
        """The ``spotClearinghouseState`` answer: one balance per held token."""
        balances = []
        for token in TOKENS:
            total = self.spot_balances.get(token.index)
            if total is None:
                continue
            pair = next((s for s in SPOTS if s.base_token == token.index), None)
            entry_px = mids.get(pair.coin, 1.0) if pair is not None else 1.0
            balances.append({"coin": token.name, "token": token.index,
                             "total": decimal_text(total, token.sz_decimals or 8),
                             "hold": "0.0",
                             "entryNtl": usd_text(total * entry_px if token.index else 0.0)})
        usdc = self.spot_balances.get(0, 0.0)
        return {"balances": balances, "tokenToAvailableAfterMaintenance": [[0, decimal_text(usdc, 8)]]}

    def twap_states(self, dex: str = "") -> list[list[Any]]:
        return [[twap_id, dict(state)] for twap_id, state in self.active_twaps.items()
                if ASSETS_BY_COIN[state["coin"]].dex == dex]

    def active_asset_data(self, asset: Asset, marks: dict[str, float]) -> dict[str, Any]:
        """The ``activeAssetData`` payload for one perp."""
        position = self.positions.get(asset.coin, Position())
        mark = marks[asset.coin]
        state = self.clearinghouse_state(marks, 0)
        available = float(state["withdrawable"]) * position.leverage
        max_size = available / mark if mark else 0.0
        return {
            "user": self.user, "coin": asset.coin,
            "leverage": {"type": "cross", "value": position.leverage},
            "maxTradeSzs": [sz_text(asset, max_size), sz_text(asset, max_size)],
            "availableToTrade": [usd_text(available), usd_text(available)],
            "markPx": px_text(asset, mark),
        }
