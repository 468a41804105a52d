"""What happens to a frame that cannot be used: counted, logged (rate-limited), reported.

One ``FrameGuard`` per connection. The router runs everything a text frame causes
(parse, channel and route lookup, acks, errors, post replies, dedupe, backfill holds)
inside one ``try`` and hands whatever escaped to ``failed``; the connection hands it the
breaches of RFC 6455 it fails the link for. Either way the frame is dropped, counted by
reason (``stats()["connections"][i]["bad_frames"]``), and logged at WARNING and reported
to ``on_error`` as a ``BadFrameError`` the first time for each reason, then at most once
per ``LOG_EVERY`` seconds with the count in between (``BadFrameError.repeated``): a
flood of bad frames costs a counter each, not a report each, so a slow ``on_error``
cannot hold up the other feeds. Nothing is raised: the link goes on (or, for a breach,
reconnects), and the next good frame is delivered.

Data that is merely unrecognised (a channel this version does not know, a frame for no
subscription) is counted in ``unrecognised`` and logged at DEBUG, not reported.

Runs on the thread holding the socket (reader or relay); the counters are plain ints
that only that thread writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import BadFrameError

log = logging.getLogger(__name__)

LOG_EVERY = 10.0  # seconds between WARNING lines for one reason
UNPARSED: Any = object()  # ``failed``'s message before the frame was parsed


class Throttle:
    """At most one event per key every ``every`` seconds, counting the ones in between.
    Thread-safe (used only when something went wrong, so the lock costs nothing that matters)."""

    def __init__(self, every: float = LOG_EVERY) -> None:
        self._lock = threading.Lock()
        self._every = every
        self._at: dict[Any, float] = {}
        self._skipped: dict[Any, int] = {}

    def allow(self, key: Any) -> int | None:
        """None if ``key`` had its event too recently (this one is counted); else how
        many were held back since the last one allowed."""
        now = time.monotonic()
        with self._lock:
            last = self._at.get(key)
            if last is not None and now - last < self._every:
                self._skipped[key] = self._skipped.get(key, 0) + 1
                return None
            self._at[key] = now
            return self._skipped.pop(key, 0)


class FrameGuard:
    def __init__(self, name: str) -> None:
        self.name = name
        self.bad: dict[str, int] = {}  # reason -> frames dropped (or links failed)
        self.unrecognised: dict[str, int] = {}  # reason -> frames nobody asked for
        self.report: Callable[[BaseException], None] = lambda error: None  # set by the owner
        self._throttle = Throttle()

    @property
    def total(self) -> int:
        return sum(self.bad.values())

    def failed(self, payload: bytes, error: BaseException, message: Any = UNPARSED) -> None:
        """Something a text frame caused raised ``error``: drop the frame, say why."""
        reason, detail = _classify(payload, error, message)
        self.bad_frame(reason, detail, payload)

    def bad_frame(self, reason: str, detail: str, payload: bytes = b"", close_code: int | None = None) -> None:
        count = self.bad[reason] = self.bad.get(reason, 0) + 1
        since = self._throttle.allow(reason)
        if since is None:
            return  # counted; told with the next report of this reason
        error = BadFrameError(reason, detail, excerpt=bytes(payload[: BadFrameError.EXCERPT]),
                              close_code=close_code, repeated=since)
        log.warning("%s: %s [%d in all]", self.name, error, count)
        self.report(error)

    def unrecognise(self, reason: str, payload: bytes) -> None:
        self.unrecognised[reason] = self.unrecognised.get(reason, 0) + 1
        log.debug("%s: %s frame dropped: %.120r", self.name, reason, payload)


def _classify(payload: bytes, error: BaseException, message: Any) -> tuple[str, str]:
    """A stable reason and a one-line detail for ``error``; the slow path only."""
    if message is UNPARSED:
        if isinstance(error, RecursionError) or any(w in str(error).lower() for w in ("recursion", "depth limit")):
            return "too_deep", "nested deeper than the JSON parser's limit"
        try:
            bytes(payload).decode()
        except UnicodeDecodeError as exc:
            return "invalid_utf8", f"text frame that is not UTF-8 ({exc.reason} at byte {exc.start})"
        return "invalid_json", f"not JSON ({_short(error)})"
    if not isinstance(message, dict) or not isinstance(message.get("channel"), str):
        return "not_an_envelope", "JSON without a string 'channel'"
    if isinstance(error, RecursionError):
        return "too_deep", f"{message['channel']!r} frame nested too deep to handle"
    return "bad_data", f"{message['channel']!r} frame whose data could not be handled ({_short(error)})"


def _short(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 160 else text[:157] + "..."

