"""Answers to exchange actions (``POST /exchange`` bodies and WebSocket ``post`` actions).

Signatures are checked for shape only (no signer is recovered). Orders are checked as the
exchange checks them (``order_rules``) and answered from the current book; a resting one
can then be cancelled, once. They do not change the scripted accounts. Runs on the server
loop thread, which owns the market.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hyperliquid_ws.testing.assets import ASSETS_BY_ID, Asset, px_text, sz_text
from hyperliquid_ws.testing.info import InfoRequestError
from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.order_rules import decimal_of, missing_order_error, order_error, size_error

_DEFAULT_OK: dict[str, Any] = {"status": "ok", "response": {"type": "default"}}
_DEFAULT_ACTIONS = frozenset({
    "modify", "scheduleCancel", "updateLeverage", "updateIsolatedMargin", "usdSend",
    "spotSend", "withdraw3", "usdClassTransfer", "approveAgent", "approveBuilderFee",
    "setReferrer", "createSubAccount", "subAccountTransfer", "vaultTransfer", "noop",
})


class ActionRefused(Exception):
    """The action is well formed but the exchange refuses it: ``{"status":"err"}``."""


def answer_action(market: Market, payload: object) -> dict[str, Any]:
    """The ``/exchange`` answer to one signed action, or raise ``InfoRequestError``."""
    if not isinstance(payload, dict):
        raise InfoRequestError()
    action, nonce, signature = payload.get("action"), payload.get("nonce"), payload.get("signature")
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise InfoRequestError()
    if type(nonce) is not int or not _is_signature(signature):
        raise InfoRequestError()
    vault = payload.get("vaultAddress")
    if vault is not None and not isinstance(vault, str):
        raise InfoRequestError()
    kind = action["type"]
    if kind in _DEFAULT_ACTIONS:
        return dict(_DEFAULT_OK)
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise InfoRequestError()
    try:
        return handler(market, action)
    except ActionRefused as refusal:
        return {"status": "err", "response": str(refusal)}


def _is_signature(value: object) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("r"), str)
            and isinstance(value.get("s"), str) and type(value.get("v")) is int)


def _asset(number: object) -> Asset:
    asset = ASSETS_BY_ID.get(number) if type(number) is int else None
    if asset is None:
        raise ActionRefused(f"Asset {number} is out of range.")
    return asset


def _order_status(market: Market, order: object) -> dict[str, Any]:
    """The status of one wire order: resting, filled, or refused."""
    if not isinstance(order, dict) or not isinstance(order.get("b"), bool):
        raise InfoRequestError()
    asset = _asset(order.get("a"))
    order_type = order.get("t")
    if not isinstance(order_type, dict) or not ({"limit", "trigger"} & set(order_type)):
        raise InfoRequestError()
    wire_px, wire_sz = decimal_of(order.get("p")), decimal_of(order.get("s"))
    refusal = order_error(asset, wire_px, wire_sz)
    if refusal is not None or wire_px is None or wire_sz is None:
        return {"error": refusal}
    px, sz = float(wire_px), float(wire_sz)
    oid = market.new_oid()
    cloid = order.get("c") if isinstance(order.get("c"), str) else None
    if "trigger" in order_type:
        market.resting.add(oid, asset, cloid)
        return {"resting": {"oid": oid}}
    tif = order_type["limit"].get("tif") if isinstance(order_type["limit"], dict) else None
    if tif not in ("Gtc", "Ioc", "Alo", "FrontendMarket"):
        raise InfoRequestError()
    touch = market.touch_price(asset, order["b"])
    marketable = px >= touch if order["b"] else px <= touch
    if marketable and tif == "Alo":
        return {"error": f"Post only order would have immediately matched, bbo was "
                         f"{px_text(asset, touch)}. asset={asset.asset_id}"}
    if marketable:
        return {"filled": {"totalSz": sz_text(asset, sz), "avgPx": px_text(asset, touch),
                           "oid": oid}}
    if tif in ("Ioc", "FrontendMarket"):
        return {"error": f"Order could not immediately match against any resting orders. "
                         f"asset={asset.asset_id}"}
    resting: dict[str, Any] = {"oid": oid}
    if cloid is not None:
        resting["cloid"] = cloid
    market.resting.add(oid, asset, cloid)
    return {"resting": resting}


def _orders(market: Market, action: dict[str, Any], key: str, kind: str) -> dict[str, Any]:
    orders = action.get(key)
    if not isinstance(orders, list) or not orders:
        raise InfoRequestError()
    wire = [o.get("order") if isinstance(o, dict) and key == "modifies" else o for o in orders]
    statuses = [_order_status(market, order) for order in wire]
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _cancels(market: Market, action: dict[str, Any], asset_key: str, id_key: str) -> dict[str, Any]:
    """Cancel resting orders by oid (``o``) or cloid; one status per cancel, in order."""
    cancels = action.get("cancels")
    if not isinstance(cancels, list) or not cancels:
        raise InfoRequestError()
    statuses: list[Any] = []
    for cancel in cancels:
        if not isinstance(cancel, dict) or id_key not in cancel:
            raise InfoRequestError()
        asset = _asset(cancel.get(asset_key))
        found = market.resting.cancel(asset, **{"oid" if id_key == "o" else "cloid": cancel[id_key]})
        statuses.append("success" if found else {"error": missing_order_error(asset)})
    return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}


def _twap_order(market: Market, action: dict[str, Any]) -> dict[str, Any]:
    twap = action.get("twap")
    if not isinstance(twap, dict):
        raise InfoRequestError()
    asset = _asset(twap.get("a"))
    refusal = size_error(asset, decimal_of(twap.get("s")))
    if refusal is not None:
        raise ActionRefused(refusal)
    return {"status": "ok", "response": {"type": "twapOrder", "data": {
        "status": {"running": {"twapId": market.new_twap_id()}}}}}


_HANDLERS: dict[str, Callable[[Market, dict[str, Any]], dict[str, Any]]] = {
    "order": lambda market, action: _orders(market, action, "orders", "order"),
    "batchModify": lambda market, action: _orders(market, action, "modifies", "batchModify"),
    "cancel": lambda market, action: _cancels(market, action, "a", "o"),
    "cancelByCloid": lambda market, action: _cancels(market, action, "asset", "cloid"),
    "twapOrder": _twap_order,
    "twapCancel": lambda market, action: {
        "status": "ok", "response": {"type": "twapCancel", "data": {"status": "success"}}},
}
