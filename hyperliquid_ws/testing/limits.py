"""The per-server (per-IP) limits of protocol.md §5: the WebSocket message rate, and
the REST weight budget of HTTP ``/info`` (§9.1).

Used only on the server loop thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

RATE_WINDOW_SECONDS = 60.0


class _Windowed:
    def __init__(
        self, limit: int, *, window: float = RATE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self._clock = clock


class MessageRateLimit(_Windowed):
    """At most ``limit`` inbound messages in any sliding ``window`` (60 s, as live)."""

    def __init__(
        self, limit: int, *, window: float = RATE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(limit, window=window, clock=clock)
        self._arrivals: deque[float] = deque()

    def allow(self) -> bool:
        """Count one message; False when it is one too many (it is then not counted)."""
        now = self._clock()
        while self._arrivals and now - self._arrivals[0] >= self.window:
            self._arrivals.popleft()
        if len(self._arrivals) >= self.limit:
            return False
        self._arrivals.append(now)
        return True


class WeightBudget(_Windowed):
    """At most ``limit`` REST weight in any sliding ``window`` per client IP (1200 a
    minute, as live). The weights are protocol.md §9.1's (``hyperliquid_ws.weights``),
    with an answer's items counted as the docs read: 1 per whole 20 (or 60)."""

    def __init__(
        self, limit: int, *, window: float = RATE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(limit, window=window, clock=clock)
        self._spent: dict[str, deque[tuple[float, int]]] = {}
        self.refused = 0

    def _total(self, ip: str, now: float) -> int:
        spent = self._spent.setdefault(ip, deque())
        while spent and now - spent[0][0] >= self.window:
            spent.popleft()
        return sum(weight for _, weight in spent)

    def admit(self, ip: str, weight: int) -> bool:
        """Count a request of ``weight``; False (not counted) when it would go over."""
        now = self._clock()
        if self._total(ip, now) + weight > self.limit:
            self.refused += 1
            return False
        self._spent[ip].append((now, weight))
        return True

    def charge(self, ip: str, weight: int) -> None:
        """Count what an answer added."""
        if weight > 0:
            self._spent.setdefault(ip, deque()).append((self._clock(), weight))
