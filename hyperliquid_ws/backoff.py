"""How long to wait before the next reconnect attempt: a small, pure value object."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap and jitter.

    Attempt ``n`` (0-based) waits ``min(maximum, initial * multiplier**n)``, of which
    the fraction ``jitter`` is random: ``jitter=0.5`` waits between half and all of it,
    so many clients dropped at once do not come back in step. The attempt counter goes
    back to 0 only after a connection has stayed up for ``reset_after`` seconds, so a
    server that accepts and drops at once does not cause a reconnect storm.
    """

    initial: float = 0.25
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    reset_after: float = 10.0
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"Backoff needs 0 < initial <= maximum, got {self.initial}, {self.maximum}")
        if self.multiplier < 1:
            raise ValueError(f"Backoff multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff jitter must be between 0 and 1, got {self.jitter}")
        if self.reset_after < 0:
            raise ValueError(f"Backoff reset_after must be >= 0, got {self.reset_after}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (0 is the first retry)."""
        ceiling = min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))
        return ceiling * (1 - self.jitter * self.random())
