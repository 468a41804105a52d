"""The server's per-IP limits, as the client respects them (protocol.md §5)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What the client keeps itself under, so the server never has to say no.

    ``messages_per_window`` messages may be sent in any ``message_window`` seconds
    (the server's budget is 2000 a minute); sends beyond it wait their turn. A shorter
    window is only useful against a local server configured the same way. At most
    ``inflight_posts`` ``info``/``action`` requests are in flight; more wait their turn.
    """

    messages_per_window: int = 2000
    message_window: float = 60.0
    inflight_posts: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.messages_per_window, bool) or not isinstance(self.messages_per_window, int) \
                or self.messages_per_window < 2:
            raise ValueError(f"messages_per_window must be a whole number >= 2, got {self.messages_per_window!r}")
        if isinstance(self.inflight_posts, bool) or not isinstance(self.inflight_posts, int) \
                or self.inflight_posts < 1:
            raise ValueError(f"inflight_posts must be a whole number >= 1, got {self.inflight_posts!r}")
        if not self.message_window > 0:
            raise ValueError(f"message_window must be positive, got {self.message_window!r}")
