"""A sliding-window limit on messages sent, shared by every connection of a client.

The server allows 2000 messages a minute per IP and answers more with an error; the
client paces instead, so a resubscribe replay of hundreds of feeds never trips it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds, plus ``margin``. Thread-safe.

    The server's window starts when it reads a message, ours when we send it; network
    and server delays can bunch messages up on arrival, so one sent just over a window
    after another may still land inside the server's window. The margin (5% of the
    window, at least 250 ms: 3 s on the live 60 s window) keeps the two apart.
    """

    def __init__(
        self, limit: int, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"a rate limit must be a positive whole number of messages, got {limit!r}")
        if not window > 0:
            raise ValueError(f"a rate window must be positive, got {window!r}")
        self.limit = limit
        self.window = window + max(0.25, 0.05 * window)
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0  # acquisitions that had to wait: the pacing at work

    def delay(self) -> float:
        """Seconds until one more message fits, without taking it."""
        with self._lock:
            return self._delay(self._clock())

    def _delay(self, now: float) -> float:
        sent = self._sent
        while sent and sent[0] <= now - self.window:
            sent.popleft()
        return 0.0 if len(sent) < self.limit else sent[0] + self.window - now

    def try_acquire(self) -> float:
        """Take a slot and return 0, or return the seconds to wait before trying again."""
        with self._lock:
            now = self._clock()
            wait = self._delay(now)
            if wait <= 0:
                self._sent.append(now)
            return wait

    def acquire(self, stop: threading.Event, timeout: float | None = None) -> bool:
        """Block until a slot is free and take it; False if ``stop`` was set or the
        timeout ran out first."""
        deadline = None if timeout is None else self._clock() + timeout
        waited = False
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                if waited:
                    self.waited += 1
                return True
            waited = True
            if deadline is not None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                wait = min(wait, remaining)
            if stop.wait(wait):
                return False

    @property
    def used(self) -> int:
        """Messages sent within the current window."""
        with self._lock:
            self._delay(self._clock())
            return len(self._sent)
