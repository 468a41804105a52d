"""What one market tick produced, grouped the way the feeds consume it.

Plain data, created and read on the server loop thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AccountEvents:
    """What happened to one user during one tick, in the shapes the feeds carry."""

    fills: list[dict[str, Any]] = field(default_factory=list)
    order_updates: list[dict[str, Any]] = field(default_factory=list)
    historical_orders: list[dict[str, Any]] = field(default_factory=list)
    fundings: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    twap_slice_fills: list[dict[str, Any]] = field(default_factory=list)
    twap_history: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)
    liquidations: list[dict[str, Any]] = field(default_factory=list)
    """userEvents ``liquidation`` payloads (snake_case keys, as live)."""
    non_user_cancels: list[dict[str, Any]] = field(default_factory=list)
    """``{"coin", "oid"}`` of orders the exchange cancelled (userEvents ``nonUserCancel``)."""


@dataclass
class Tick:
    """Everything one ``Market.step`` produced."""

    time: int
    trades: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    candles: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, AccountEvents] = field(default_factory=dict)
    outcome_updates: list[dict[str, Any]] = field(default_factory=list)
    """outcomeMetaUpdates items (``{"outcomeSettled": n}``, ...), a bare list as live sends."""
    changed_fast: dict[str, dict[str, str | None]] = field(default_factory=dict)
    """Per coin, the ``fastAssetCtxs`` fields (``markPx``, ``midPx``) that changed."""
