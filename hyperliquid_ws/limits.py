"""The server's per-IP limits, as the client respects them (protocol.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from . import weights


@dataclass(frozen=True)
class Limits:
    """What the client keeps itself under, so the server never has to say no.

    Counted across every connection of one client (the server counts per IP).

    - ``max_subscriptions`` (1000) and ``max_users`` (10 distinct addresses across user
      feeds; the docs say 10, the live server has said 15): a subscribe beyond them
      raises ``LimitError`` before anything is sent.
    - ``max_connections`` (10) simultaneous connections; ``new_connections_per_minute``
      (30) connection attempts, reconnects included, are paced.
    - ``messages_per_window`` (2000) messages in any ``message_window`` (60 s): sends
      beyond it wait their turn, the resubscribe replay included. A shorter window is
      only useful against a local server configured the same way.
    - ``inflight_posts`` (100) ``info``/``action`` requests at once; more wait their turn.
    - ``info_weight_per_window`` (1200) of REST weight in any ``info_window`` (60 s) for
      the client's own HTTP ``/info`` requests (the backfill's; weights as in
      ``weights.py``, protocol.md §9.1): a request beyond it waits, so a reconnect that
      backfills hundreds of feeds is paced instead of refused with HTTP 429. The server
      counts every request from the IP: lower it when other programs there use the
      REST API too. ``info()`` over the socket is counted in it as well (whether the
      server does is UNCONFIRMED), and waits for room with ``paced=True``.
    """

    max_subscriptions: int = 1000
    max_users: int = 10
    max_connections: int = 10
    new_connections_per_minute: int = 30
    messages_per_window: int = 2000
    message_window: float = 60.0
    inflight_posts: int = 100
    info_weight_per_window: int = weights.BUDGET
    info_window: float = weights.WINDOW

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in ("message_window", "info_window"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86_400:
                    raise ValueError(f"{field.name} must be a positive number of seconds, at most a day, "
                                     f"got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field.name} must be a whole number >= 1, got {value!r}")
