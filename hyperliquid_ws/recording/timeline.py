"""The pure half of a replay: the recording in order, its schedule, and the state as of a position.

``Timeline`` loads every record once (in the receive-time order ``read`` gives; ties
keep file order, so a replay is deterministic) and tracks, as the replay passes each record, what a real
server would know at that moment: the latest state of each state feed, the trades,
candles and fills seen so far, the items of each snapshot feed. No I/O after loading
and no threads: the replay driver calls it on the server loop thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..testing.subscriptions import SNAPSHOT_FEEDS, normalise_subscription, subscription_key
from .reader import Record

SNAPSHOT_ITEMS = 200
"""Items a snapshot frame built from the recording carries (as the scripted server)."""
HISTORY_KEYS = {
    "userFills": "fills", "userFundings": "fundings", "userNonFundingLedgerUpdates": "nonFundingLedgerUpdates",
    "userTwapSliceFills": "twapSliceFills", "userTwapHistory": "history", "userHistoricalOrders": "orderHistory",
}
"""The list inside each snapshot feed's data."""
STATE_FEEDS_SKIPPED = frozenset({"trades", "candle", "orderUpdates", "userEvents", "notification",
                                 "outcomeMetaUpdates", *SNAPSHOT_FEEDS})
"""Feeds whose latest frame is not a state to repeat to a new subscriber."""


@dataclass(frozen=True)
class Step:
    """One record, ready to send: ``key`` identifies its subscription on the server,
    ``text`` is the frame as it goes out (the recorded channel and data, without the
    client's ``backfill`` mark; a recorded snapshot goes out as a plain update)."""

    time: float
    key: str
    subscription: dict[str, Any]
    channel: str
    data: Any
    text: str


def schedule(times: list[float], speed: float | None) -> list[float]:
    """When each record is due, in seconds after the replay starts: its offset from the
    first record divided by ``speed``; all 0.0 for ``speed=None`` (as fast as the
    client reads). ``times`` in seconds, in order."""
    if not times:
        return []
    if speed is None:
        return [0.0] * len(times)
    first = times[0]
    return [(t - first) / speed for t in times]


def _step(record: Record) -> Step:
    normalised, _ = normalise_subscription(record.subscription)
    data = record.data
    if isinstance(data, dict) and data.get("isSnapshot") is True:
        data = {k: v for k, v in data.items() if k != "isSnapshot"}
    message = {"channel": record.channel, "data": data}
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate, "\ud800" in the frame recorded: sent escaped, as it came
        text = json.dumps(message, separators=(",", ":"))
    return Step(record.time, subscription_key(normalised), normalised, record.channel, data, text)


def _identity(item: Any) -> str:
    return json.dumps(item, sort_keys=True, separators=(",", ":"))


class Timeline:
    """The records of a recording and the server's knowledge up to ``position``."""

    def __init__(self, records: Iterable[Record]) -> None:
        self.steps = [_step(r) for r in sorted(records, key=lambda r: r.time)]  # stable: a no-op on read()'s order
        if not self.steps:
            raise ValueError("the recording holds no messages")
        self.start_time = self.steps[0].time
        self.position = 0  # index of the next step to send
        self.latest: dict[str, Any] = {}  # state feeds: key -> last data
        self.trades: dict[str, list[dict[str, Any]]] = {}
        self.candles: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        self.fills: dict[str, dict[str, dict[str, Any]]] = {}  # user -> identity -> fill
        self.history: dict[str, dict[str, Any]] = {}  # snapshot feed key -> identity -> item
        self.mids: dict[str, str] = {}

    @property
    def clock(self) -> float:
        """The replay clock: receive time (s) of the last record sent, or of the first before any."""
        return self.steps[self.position - 1].time if self.position else self.start_time

    @property
    def done(self) -> bool:
        return self.position >= len(self.steps)

    def advance(self) -> Step:
        """Take the next step and add it to what the server knows."""
        step = self.steps[self.position]
        self.position += 1
        self._learn(step)
        return step

    def _learn(self, step: Step) -> None:
        kind, data, sub = step.subscription.get("type"), step.data, step.subscription
        if kind not in STATE_FEEDS_SKIPPED:
            self.latest[step.key] = data
        if kind == "allMids" and isinstance(data, dict) and isinstance(data.get("mids"), dict):
            self.mids.update(data["mids"])
        elif kind == "trades" and isinstance(data, list):
            for trade in data:
                self.trades.setdefault(str(trade.get("coin", sub.get("coin"))), []).append(trade)
        elif kind == "candle" and isinstance(data, dict):
            self.candles.setdefault((str(data.get("s")), str(data.get("i"))), {})[int(data["t"])] = data
        if kind in HISTORY_KEYS and isinstance(data, dict):
            items = data.get(HISTORY_KEYS[kind]) or []
            known = self.history.setdefault(step.key, {})
            for item in items:
                known.setdefault(_identity(item), item)
        fills = data.get("fills") if kind in ("userFills", "userEvents") and isinstance(data, dict) else None
        if fills and sub.get("user"):
            known_fills = self.fills.setdefault(str(sub["user"]), {})
            for fill in fills:
                known_fills.setdefault(_identity(fill), fill)

    def initial_data(self, normalised: dict[str, Any]) -> Any | None:
        """What follows the ack for a new subscriber, as of the clock: a snapshot built
        from the items seen so far, the latest state, or nothing (event feeds, or a state
        not recorded yet)."""
        kind = normalised.get("type")
        key = subscription_key(normalised)
        if kind in HISTORY_KEYS:
            items = list(self.history.get(key, {}).values())[-SNAPSHOT_ITEMS:]
            return {"isSnapshot": True, "user": normalised.get("user"), HISTORY_KEYS[str(kind)]: items}
        return self.latest.get(key)
