"""The per-server (per-IP) message-rate limit of protocol.md §5.

Used only on the server loop thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

RATE_WINDOW_SECONDS = 60.0


class MessageRateLimit:
    """At most ``limit`` inbound messages in any sliding ``window`` (60 s, as live)."""

    def __init__(
        self, limit: int, *, window: float = RATE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self._clock = clock
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
