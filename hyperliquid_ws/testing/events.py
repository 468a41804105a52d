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


@dataclass
class Tick:
    """Everything one ``Market.step`` produced."""

    time: int
    trades: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    candles: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, AccountEvents] = field(default_factory=dict)
    changed_marks: dict[str, str] = field(default_factory=dict)
