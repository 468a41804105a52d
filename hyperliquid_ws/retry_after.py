"""The server's ``Retry-After`` on a refused handshake (RFC 9110 §10.2.3).

A handshake answered ``429 Too Many Requests`` or ``503 Service Unavailable`` with
``Retry-After: 30`` (seconds) or ``Retry-After: <HTTP-date>`` means: do not come back
sooner. The reconnect then waits at least that long, capped by ``max_retry_after`` so a
wrong header cannot park the client for a day, and never less than the backoff says.
Pure; called on the connection's reader thread.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import websocket

REFUSALS = (429, 503)
DEFAULT_MAX_RETRY_AFTER = 120.0  # seconds


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``now`` (epoch seconds) for a ``Retry-After`` value; None if absent
    or unreadable. A date in the past means 0."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # delay-seconds is 1*DIGIT; "²" and "٣" are digits to str
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_after_of(error: BaseException) -> float | None:
    """What a failed connect asked for: the ``Retry-After`` of a refused (429/503) handshake."""
    if not isinstance(error, websocket.WebSocketBadStatusException):
        return None
    if getattr(error, "status_code", None) not in REFUSALS:
        return None
    headers: Any = getattr(error, "resp_headers", None) or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    return parse_retry_after(value)


def reconnect_delay(backoff_delay: float, asked: float | None, cap: float) -> float:
    """The wait before the next attempt: the backoff's, or the server's (capped), whichever is longer."""
    return backoff_delay if asked is None else max(backoff_delay, min(asked, cap))
