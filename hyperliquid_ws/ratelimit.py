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
        self.limit, self.window = _checked(limit, window, "a rate limit must be a positive whole number of messages")
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
        taken, waited = _wait_for(self.try_acquire, self._clock, stop, timeout)
        self.waited += waited
        return taken

    @property
    def used(self) -> int:
        """Messages sent within the current window."""
        with self._lock:
            self._delay(self._clock())
            return len(self._sent)


class WeightLimiter:
    """At most ``limit`` weight in any ``window`` seconds (plus ``RateLimiter``'s margin),
    for a budget counted in weights: ``/info``'s REST budget (``weights.py``). Thread-safe.

    ``acquire(weight)`` waits until the weight fits and takes it, before a request;
    ``charge(weight)`` adds what its answer cost, without waiting (later requests wait
    for it). A weight above ``limit`` waits for an empty window.
    """

    def __init__(self, limit: int, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window = _checked(limit, window, "a weight budget must be a positive whole number")
        self._clock = clock
        self._spent: deque[tuple[float, int]] = deque()  # (when, weight), oldest first
        self._total = 0
        self._lock = threading.Lock()
        self.waited = 0  # acquisitions that had to wait

    def _expire(self, now: float) -> None:
        spent = self._spent
        while spent and spent[0][0] <= now - self.window:
            self._total -= spent.popleft()[1]

    def try_acquire(self, weight: int) -> float:
        """Take ``weight`` and return 0, or return the seconds until it fits."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            need = min(weight, self.limit)
            if self._total + need <= self.limit:
                self._spent.append((now, weight))
                self._total += weight
                return 0.0
            freed = self._total
            for when, spent in self._spent:  # the moment enough of the window has expired
                freed -= spent
                if freed + need <= self.limit:
                    return max(when + self.window - now, 0.001)
            raise AssertionError("unreachable: an empty window fits any weight")

    def acquire(self, weight: int, stop: threading.Event, timeout: float | None = None) -> bool:
        """Block until ``weight`` fits and take it; False if ``stop`` was set or the
        timeout ran out first."""
        taken, waited = _wait_for(lambda: self.try_acquire(weight), self._clock, stop, timeout)
        self.waited += waited
        return taken

    def charge(self, weight: int) -> None:
        """Count ``weight`` now, without waiting (what an answer added)."""
        if weight > 0:
            with self._lock:
                self._spent.append((self._clock(), weight))
                self._total += weight

    @property
    def used(self) -> int:
        """Weight spent within the current window."""
        with self._lock:
            self._expire(self._clock())
            return self._total


def _wait_for(attempt: Callable[[], float], clock: Callable[[], float], stop: threading.Event,
              timeout: float | None) -> tuple[bool, bool]:
    """Call ``attempt`` (0: taken, else the seconds to wait) until it takes; returns
    ``(taken, waited)``, taken False if ``stop`` was set or ``timeout`` ran out first."""
    deadline = None if timeout is None else clock() + timeout
    waited = False
    while True:
        wait = attempt()
        if wait <= 0:
            return True, waited
        waited = True
        if deadline is not None:
            remaining = deadline - clock()
            if remaining <= 0:
                return False, waited
            wait = min(wait, remaining)
        if stop.wait(wait):
            return False, waited


def _checked(limit: int, window: float, what: str) -> tuple[int, float]:
    """``(limit, window with the margin)``; raises ``ValueError`` for a bad one."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"{what}, got {limit!r}")
    if not window > 0:
        raise ValueError(f"a rate window must be positive, got {window!r}")
    return limit, window + max(0.25, 0.05 * window)
