"""Server-side view of subscriptions: validation, normalisation, channel, identity.

Pure functions over plain dicts; safe on any thread.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hyperliquid_ws.testing.assets import PERP_DEXES, find_asset
from hyperliquid_ws.testing.candles import INTERVALS

_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
_NO_DEFAULT = object()


@dataclass(frozen=True)
class SubscriptionField:
    """One field of a subscription type, in the order the server echoes it."""

    name: str
    kind: str
    required: bool = True
    default: Any = _NO_DEFAULT


_USER = SubscriptionField("user", "user")
_COIN = SubscriptionField("coin", "coin")
_DEX = SubscriptionField("dex", "dex", required=False)
_ECHOED_DEX = SubscriptionField("dex", "dex", required=False, default="")
"""The live server echoes ``"dex": ""`` on the per-user dex feeds (protocol.md §3.1)."""

SUBSCRIPTION_FIELDS: dict[str, tuple[SubscriptionField, ...]] = {
    "allMids": (_DEX,),
    "notification": (_USER,),
    "webData2": (_USER,),
    "webData3": (_USER,),
    "twapStates": (_USER, _ECHOED_DEX),
    "clearinghouseState": (_USER, _ECHOED_DEX),
    "openOrders": (_USER, _ECHOED_DEX),
    "candle": (SubscriptionField("interval", "interval"), _COIN),
    "l2Book": (
        _COIN,
        SubscriptionField("nSigFigs", "nSigFigs", required=False, default=None),
        SubscriptionField("mantissa", "mantissa", required=False, default=None),
        SubscriptionField("fast", "bool", required=False, default=False),
    ),
    "trades": (_COIN,),
    "orderUpdates": (_USER,),
    "userEvents": (_USER,),
    "userFills": (_USER, SubscriptionField("aggregateByTime", "bool", False, default=False)),
    "userFundings": (_USER,),
    "userNonFundingLedgerUpdates": (_USER,),
    "activeAssetCtx": (_COIN,),
    "activeAssetData": (_USER, SubscriptionField("coin", "perpCoin")),
    "userTwapSliceFills": (_USER,),
    "userTwapHistory": (_USER,),
    "userHistoricalOrders": (_USER,),
    "bbo": (_COIN,),
    "spotState": (
        _USER,
        SubscriptionField("ignorePortfolioMargin", "bool", required=False, default=False),
    ),
    "allDexsClearinghouseState": (_USER,),
    "allDexsAssetCtxs": (),
    "assetCtxs": (_DEX,),
    "spotAssetCtxs": (),
    "fastAssetCtxs": (),
    "outcomeMetaUpdates": (),
}
"""Every subscription type the server knows, with its fields in echo order. A field with
a default is echoed with it when the request leaves it out, as the live server does."""

DROPPED_FIELDS: dict[str, frozenset[str]] = {"spotState": frozenset({"isPortfolioMargin"})}
"""Fields a type accepts but leaves out of its echo: the docs name spotState's flag
``isPortfolioMargin``, the live server echoes ``ignorePortfolioMargin`` instead (§7.21)."""

SNAPSHOT_FEEDS = frozenset({
    "userFills", "userFundings", "userNonFundingLedgerUpdates", "userTwapSliceFills",
    "userTwapHistory", "userHistoricalOrders"})
"""Feeds whose first frame carries ``"isSnapshot": true`` and recent history."""

EVENT_FEEDS = frozenset({
    "trades", "candle", "orderUpdates", "userEvents", "notification", "outcomeMetaUpdates"})
"""Feeds that send nothing after the ack until something happens."""


def _is_valid(kind: str, value: Any) -> bool:
    if kind == "user":
        return isinstance(value, str) and _ADDRESS.match(value) is not None
    if kind == "coin":
        return find_asset(value) is not None
    if kind == "perpCoin":
        asset = find_asset(value)
        return asset is not None and not asset.is_spot
    if kind == "interval":
        return value in INTERVALS
    if kind == "dex":
        return isinstance(value, str) and value in PERP_DEXES
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "nSigFigs":
        return value is None or (type(value) is int and 2 <= value <= 5)
    if kind == "mantissa":
        return value is None or (type(value) is int and value in (1, 2, 5))
    raise AssertionError(f"unknown field kind {kind}")


def normalise_subscription(raw: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Return the subscription as the server echoes it, and whether it is valid.

    Known fields come in server order, defaults are filled in, addresses are
    lowercased and unknown fields dropped. An unknown ``type`` is echoed as given.
    """
    kind = raw.get("type")
    fields = SUBSCRIPTION_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        return dict(raw), False
    normalised: dict[str, Any] = {"type": kind}
    valid = True
    for name in DROPPED_FIELDS.get(str(kind), ()):
        valid = valid and (name not in raw or _is_valid("bool", raw[name]))
    for field in fields:
        if field.name in raw:
            value = raw[field.name]
            if field.kind == "user" and isinstance(value, str):
                value = value.lower()
            normalised[field.name] = value
            valid = valid and _is_valid(field.kind, value)
        elif field.default is not _NO_DEFAULT:
            normalised[field.name] = field.default
        elif field.required:
            valid = False
    if kind == "l2Book" and normalised["mantissa"] is not None and normalised["nSigFigs"] != 5:
        valid = False
    return normalised, valid


def subscription_key(normalised: dict[str, Any]) -> str:
    """Identity of a normalised subscription: key order and the default dex do not matter."""
    significant = {k: v for k, v in normalised.items() if not (k == "dex" and v == "")}
    return json.dumps(significant, sort_keys=True, separators=(",", ":"))


def channel_of(normalised: dict[str, Any]) -> str:
    """The ``channel`` that frames of this subscription arrive on."""
    kind = str(normalised["type"])
    if kind == "userEvents":
        return "user"
    if kind == "activeAssetCtx":
        asset = find_asset(normalised.get("coin"))
        if asset is not None and asset.is_spot:
            return "activeSpotAssetCtx"
    return kind


def user_of(normalised: dict[str, Any]) -> str | None:
    """The tracked user of a user-specific subscription (counts towards the user limit)."""
    user = normalised.get("user")
    return user if isinstance(user, str) else None
