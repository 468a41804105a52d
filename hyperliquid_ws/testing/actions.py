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

# Texts of refusals no capture shows yet (UNCONFIRMED wording, the exchange's shape).
MODIFY_MISSING = "Cannot modify canceled or filled order."
TWAP_MISSING = "TWAP was never placed, already canceled, or filled."
TWAP_MINUTES = (5, 1440)  # a TWAP runs 5 minutes to 24 hours

_DEFAULT_OK: dict[str, Any] = {"status": "ok", "response": {"type": "default"}}
_DEFAULT_ACTIONS = frozenset({
    "scheduleCancel", "usdSend",
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
    if key == "modifies":
        statuses = [_modify_status(market, modify) for modify in orders]
    else:
        statuses = [_order_status(market, order) for order in orders]
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _modify_status(market: Market, modify: object) -> dict[str, Any]:
    """A modify replaces a resting order placed through actions (by ``oid``, an oid or a
    cloid): checked as a new order, refused if there is nothing to modify."""
    if not isinstance(modify, dict) or not isinstance(modify.get("order"), dict):
        raise InfoRequestError()
    order = modify["order"]
    asset = _asset(order.get("a"))
    target = modify.get("oid")
    by = {"cloid": target} if isinstance(target, str) else {"oid": target}
    if not market.resting.holds(asset, **by):
        return {"error": f"{MODIFY_MISSING} asset={asset.asset_id}"}
    status = _order_status(market, order)
    if "error" not in status:
        market.resting.cancel(asset, **by)
    return status


def _modify(market: Market, action: dict[str, Any]) -> dict[str, Any]:
    status = _modify_status(market, action)
    if "error" in status:
        raise ActionRefused(status["error"])
    return dict(_DEFAULT_OK)


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
    size = decimal_of(twap.get("s"))
    refusal = size_error(asset, size)
    minutes = twap.get("m")
    if refusal is None and (type(minutes) is not int or not TWAP_MINUTES[0] <= minutes <= TWAP_MINUTES[1]):
        refusal = f"TWAP duration must be between 5 minutes and 24 hours. asset={asset.asset_id}"
    if refusal is None and size is not None and float(size) * market.mids[asset.coin] < 10:
        refusal = f"Order must have minimum value of $10. asset={asset.asset_id}"
    if refusal is not None:
        return {"status": "ok", "response": {"type": "twapOrder", "data": {"status": {"error": refusal}}}}
    twap_id = market.new_twap_id()
    market.twaps.add(twap_id)
    return {"status": "ok", "response": {"type": "twapOrder", "data": {"status": {"running": {"twapId": twap_id}}}}}


def _twap_cancel(market: Market, action: dict[str, Any]) -> dict[str, Any]:
    _asset(action.get("a"))
    twap_id = action.get("t")
    if type(twap_id) is int and twap_id in market.twaps:
        market.twaps.discard(twap_id)
        status: Any = "success"
    else:
        status = {"error": TWAP_MISSING}
    return {"status": "ok", "response": {"type": "twapCancel", "data": {"status": status}}}


def _asset_setting(key: str) -> Callable[[Market, dict[str, Any]], dict[str, Any]]:
    """updateLeverage / updateIsolatedMargin: the asset must exist."""
    def answer(market: Market, action: dict[str, Any]) -> dict[str, Any]:
        _asset(action.get(key))
        return dict(_DEFAULT_OK)
    return answer


_HANDLERS: dict[str, Callable[[Market, dict[str, Any]], dict[str, Any]]] = {
    "order": lambda market, action: _orders(market, action, "orders", "order"),
    "batchModify": lambda market, action: _orders(market, action, "modifies", "batchModify"),
    "cancel": lambda market, action: _cancels(market, action, "a", "o"),
    "cancelByCloid": lambda market, action: _cancels(market, action, "asset", "cloid"),
    "modify": _modify,
    "twapOrder": _twap_order,
    "twapCancel": _twap_cancel,
    "updateLeverage": _asset_setting("asset"),
    "updateIsolatedMargin": _asset_setting("asset"),
}
