"""Candle intervals and the bounded candle series of one coin.

Pure data structures: the server loop thread is the only one that mutates them.
"""

from __future__ import annotations

import datetime
import random
from collections import deque
from typing import Any

from hyperliquid_ws.testing.assets import Asset, px_text, round_to_tick, sz_text

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
_MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; weeks start on Monday

FIXED_INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}
INTERVALS: tuple[str, ...] = (*FIXED_INTERVAL_MS, "1M")
MAX_CANDLES = 5000
"""Only the most recent 5000 candles of a coin and interval exist (protocol.md §9.2)."""
WARM_CANDLES = 60
"""How many past candles a fresh market invents per coin and interval."""


def period_start(interval: str, time_ms: int) -> int:
    """Open time of the candle of ``interval`` that contains ``time_ms``."""
    if interval == "1M":
        moment = datetime.datetime.fromtimestamp(time_ms / 1000, tz=datetime.timezone.utc)
        first = datetime.datetime(moment.year, moment.month, 1, tzinfo=datetime.timezone.utc)
        return int(first.timestamp() * 1000)
    length = FIXED_INTERVAL_MS[interval]
    offset = _MONDAY_OFFSET_MS if interval == "1w" else 0
    return time_ms - (time_ms - offset) % length


def next_period_start(interval: str, start_ms: int) -> int:
    """Open time of the candle after the one opening at ``start_ms``."""
    if interval == "1M":
        moment = datetime.datetime.fromtimestamp(start_ms / 1000, tz=datetime.timezone.utc)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return int(datetime.datetime(year, month, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000)
    return start_ms + FIXED_INTERVAL_MS[interval]


def previous_period_start(interval: str, start_ms: int) -> int:
    return period_start(interval, start_ms - 1)


class CandleSeries:
    """Closed candles (bounded) plus the current one, for one coin and one interval."""

    def __init__(self, asset: Asset, interval: str) -> None:
        self.asset = asset
        self.interval = interval
        self.closed: deque[dict[str, Any]] = deque(maxlen=MAX_CANDLES - 1)
        self.current: dict[str, Any] | None = None

    def warm_up(self, rng: random.Random, now_ms: int, last_px: float) -> None:
        """Invent ``WARM_CANDLES`` closed candles that end at ``last_px`` just before now."""
        starts = [period_start(self.interval, now_ms)]
        for _ in range(WARM_CANDLES):
            starts.append(previous_period_start(self.interval, starts[-1]))
        close = last_px
        invented: list[dict[str, Any]] = []
        for start in starts[1:]:
            open_px = round_to_tick(self.asset, close * (1 + rng.gauss(0, self.asset.volatility * 8)))
            high = max(open_px, close) * (1 + abs(rng.gauss(0, self.asset.volatility * 3)))
            low = min(open_px, close) * (1 - abs(rng.gauss(0, self.asset.volatility * 3)))
            volume = abs(rng.gauss(50, 20)) + 1
            invented.append(self._candle(start, open_px, close, high, low, volume, rng.randint(5, 400)))
            close = open_px
        self.closed.extend(reversed(invented))

    def record_trade(self, time_ms: int, px: float, sz: float) -> dict[str, Any]:
        """Fold one trade into the current candle (opening a new one if due); return it."""
        current = self.current
        if current is not None and time_ms > current["T"]:
            self.closed.append(current)
            current = None
        if current is None:
            start = period_start(self.interval, time_ms)
            current = self._candle(start, px, px, px, px, 0.0, 0)
            self.current = current
        current["c"] = px_text(self.asset, px)
        if px > float(current["h"]):
            current["h"] = px_text(self.asset, px)
        if px < float(current["l"]):
            current["l"] = px_text(self.asset, px)
        current["v"] = sz_text(self.asset, float(current["v"]) + sz)
        current["n"] += 1
        return dict(current)

    def between(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Candles opening within ``[start_ms, end_ms]``, oldest first."""
        every = list(self.closed) + ([self.current] if self.current is not None else [])
        return [dict(c) for c in every if start_ms <= c["t"] <= end_ms]

    def latest(self) -> dict[str, Any] | None:
        latest = self.current if self.current is not None else (
            self.closed[-1] if self.closed else None)
        return dict(latest) if latest is not None else None

    def _candle(
        self, start: int, open_px: float, close: float, high: float, low: float,
        volume: float, trades: int,
    ) -> dict[str, Any]:
        return {
            "t": start,
            "T": next_period_start(self.interval, start) - 1,
            "s": self.asset.coin,
            "i": self.interval,
            "o": px_text(self.asset, open_px),
            "c": px_text(self.asset, close),
            "h": px_text(self.asset, high),
            "l": px_text(self.asset, low),
            "v": sz_text(self.asset, volume),
            "n": trades,
        }
