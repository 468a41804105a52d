"""The gateway's exceptions, under the package's one root (``HyperliquidWSError``)."""

from __future__ import annotations

from typing import Any

from ..errors import BackfillError, HyperliquidWSError


class GatewayError(HyperliquidWSError):
    """Something about the gateway or its broker; handed to ``on_error`` or raised."""


class BrokerError(GatewayError, ConnectionError):
    """Redis could not be reached or refused a command. Also a builtin ``ConnectionError``.

    ``url`` is the Redis URL with its credentials masked; ``cause`` what redis-py raised.
    The gateway and its consumers retry on their own; this reports the outage.
    """

    def __init__(self, message: str, *, url: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.cause = cause


class RetentionGapError(BackfillError, GatewayError):
    """Entries of a feed's stream are gone before this consumer read them: a named
    consumer's recorded position was trimmed away, or the stream's entry numbers (field
    ``n``, ``keys.py``) skip: trimmed by retention while the consumer read behind, or
    never written (the gateway's buffer overflowed while Redis was unreachable, or Redis
    lost them).

    Handed to ``on_error`` (never raised) before the consumer goes on with the entry after
    the hole. ``start_ms``..``end_ms`` is the time range (ms, from the stream entry IDs)
    that may be missing; ``last_id`` is the last entry the consumer had (or its recorded
    position) and ``first_id`` the entry it goes on from; ``missing`` is how many entries
    are gone, where the numbers tell (else None).
    """

    def __init__(self, subscription: dict[str, Any], last_id: str, first_id: str, *,
                 missing: int | None = None) -> None:
        start, end = int(last_id.split("-")[0]), int(first_id.split("-")[0])
        count = "entries" if missing is None else f"{missing} entr{'y' if missing == 1 else 'ies'}"
        cause = GatewayError(f"the stream does not hold the {count} after {last_id}; it goes on at {first_id} "
                             "(trimmed by retention before this consumer read them: raise the retention or read "
                             "faster; or never written, see the gateway's errors)")
        super().__init__(subscription, start, end, cause)
        self.last_id = last_id
        self.first_id = first_id
        self.missing = missing
