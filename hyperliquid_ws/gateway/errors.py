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
    """A named consumer's position was trimmed out of its stream: entries may be lost.

    Handed to ``on_error`` (never raised) before the consumer goes on from the oldest
    entry still retained. ``start_ms``..``end_ms`` is the time range (ms, from the stream
    entry IDs) that may be missing; ``last_id`` is the consumer's recorded position and
    ``first_id`` the oldest entry the stream still holds.
    """

    def __init__(self, subscription: dict[str, Any], last_id: str, first_id: str) -> None:
        start, end = int(last_id.split("-")[0]), int(first_id.split("-")[0])
        cause = GatewayError(f"the stream no longer retains entries after {last_id}; it starts at {first_id} "
                             "(raise the gateway's retention, or read faster)")
        super().__init__(subscription, start, end, cause)
        self.last_id = last_id
        self.first_id = first_id

