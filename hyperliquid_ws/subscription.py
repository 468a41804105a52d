"""A subscription as the user holds it (``Subscription``) and as the server holds it (``Entry``).

Several ``Subscription`` handles with the same canonical form share one ``Entry``: one
subscribe on the wire, one callback per handle. The entry is what the router finds for
a frame and what every connect replays.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .dispatch import Lane
from .errors import HyperliquidTimeoutError, SubscriptionError
from .history import SHAPES, CandleTracker, Tracker

if TYPE_CHECKING:
    from .feeds import Feed, RouteKey

Callback = Callable[[Any], None]
Submit = Callable[[Lane, Any], None]
_CADENCE_SAMPLES = 5
_TRADES_MEMORY = 512  # trades are many and busy: a short memory (see history.Tracker)


class _Owner(Protocol):
    def unsubscribe(self, subscription: Subscription) -> None: ...


class Entry:
    """One server-side subscription and the callbacks of every handle sharing it.

    ``callbacks`` is replaced, never mutated, so the reader thread can read it without
    a lock. ``sent_on`` is the connection generation the subscribe was last sent on;
    every new generation sends it again.
    """

    def __init__(self, key: str, feed: Feed, canonical: dict[str, Any], wire: dict[str, Any]):
        self.key = key
        self.feed = feed
        self.canonical = canonical
        self.wire = wire
        self.route: RouteKey = feed.route_of(canonical)
        self.handles: tuple[Subscription, ...] = ()
        self.callbacks: tuple[Callback, ...] = ()
        self.sent_on = 0
        self.sent_at = 0.0  # monotonic time its last subscribe went out
        self.resent = False  # sent again after a rate-limit error; "Already subscribed" is then success
        self.active = False  # acknowledged on the current connection
        self.settled = threading.Event()  # first acknowledgement or refusal
        self.error: SubscriptionError | None = None
        self.received = 0  # frames routed to this entry
        self.delivered = 0  # messages queued for its callbacks (after dedupe)
        self.last_message = 0.0  # monotonic time of the last frame
        self._interval: float | None = None  # moving average of the time between frames
        self.resubscribed_silent = False  # a silent-feed resubscribe is under way
        self.acked_at_ms: int | None = None  # wall clock of the first ack: where a gap can start
        self.lock = threading.Lock()  # orders the reader's and the backfill's deliveries
        self.held: list[Any] | None = None  # live frames held while a backfill runs
        # The server answered the latest subscribe (an ack, Already subscribed, a refusal)
        # or the entry is gone: a backfill fetches only once the feed flows again.
        self.answered = threading.Event()
        self.lane = Lane(self, key)  # where its messages wait for the callbacks
        self.tracker: Tracker | CandleTracker | None = None
        if feed.type == "candle":
            self.tracker = CandleTracker()
        elif feed.type in SHAPES:
            self.tracker = Tracker(SHAPES[feed.type], _TRADES_MEMORY if feed.type == "trades" else 5000)

    def heard(self, now: float) -> None:
        """A frame for this entry arrived (reader thread): keep its cadence."""
        if self.last_message:
            interval = now - self.last_message
            self._interval = interval if self._interval is None else 0.9 * self._interval + 0.1 * interval
        self.last_message = now
        self.received += 1
        self.resubscribed_silent = False

    @property
    def cadence(self) -> float | None:
        """Usual seconds between frames, once there is enough history to tell."""
        return self._interval if self.received >= _CADENCE_SAMPLES else None

    def hold(self) -> bool:
        """Hold live frames for a backfill (and wait for the next subscribe's answer).
        False if a backfill is pending already: it fetches up to when it runs."""
        with self.lock:
            self.answered.clear()
            if self.held is not None:
                return False
            self.held = []
            return True

    def deliver(self, message: Any, submit: Submit) -> None:
        """A live frame (reader thread): held during a backfill, else deduped and queued."""
        with self.lock:
            if self.held is not None:
                self.held.append(message)
            else:
                self._admit(message, submit, backfill=False)

    def release(self, submit: Submit, backfilled: list[Any]) -> int:
        """Deliver ``backfilled`` messages, then the held live frames, and stop holding
        (backfill thread). Returns how many backfilled messages were delivered."""
        with self.lock:
            delivered = sum(self._admit(message, submit, backfill=True) for message in backfilled)
            for message in self.held or ():
                self._admit(message, submit, backfill=False)
            self.held = None
            return delivered

    def _admit(self, message: Any, submit: Submit, *, backfill: bool) -> bool:
        tracker = self.tracker
        if tracker is not None:
            deliver, data = tracker.admit(message["data"], backfill=backfill)
            if not deliver:
                return False
            if data is not message["data"]:
                message = {**message, "data": data}
        submit(self.lane, message)
        self.delivered += 1
        return True

    def acknowledged(self) -> None:
        self.active = True
        if self.acked_at_ms is None:
            self.acked_at_ms = int(time.time() * 1000)
        self.settled.set()
        self.answered.set()

    def attach(self, handle: Subscription) -> None:
        self.handles = (*self.handles, handle)
        self.callbacks = tuple(h.callback for h in self.handles)

    def detach(self, handle: Subscription) -> None:
        self.handles = tuple(h for h in self.handles if h is not handle)
        self.callbacks = tuple(h.callback for h in self.handles)

    def fail(self, error: SubscriptionError) -> None:
        self.error = error
        self.active = False
        self.settled.set()
        self.answered.set()

    def __repr__(self) -> str:
        return f"<Entry {self.key} listeners={len(self.handles)} active={self.active}>"


class Subscription:
    """What ``HyperliquidWS.subscribe`` returns: one callback on one feed.

    Thread-safe. ``wait()`` blocks the calling thread until the server has answered.
    """

    def __init__(self, owner: _Owner, entry: Entry, callback: Callback) -> None:
        self._owner = owner
        self._entry = entry
        self.callback = callback
        self.closed = False

    @property
    def subscription(self) -> dict[str, Any]:
        """The subscription as sent on the wire (a copy)."""
        return dict(self._entry.wire)

    @property
    def active(self) -> bool:
        """True while the server has acknowledged it on the live connection."""
        return not self.closed and self._entry.active

    @property
    def error(self) -> SubscriptionError | None:
        """The refusal, if the server or the client refused this subscription."""
        return self._entry.error

    def wait(self, timeout: float | None = 10.0) -> Subscription:
        """Block until the server acknowledged it; return ``self``.

        Raises ``SubscriptionError`` with the server's text if it was refused, and
        ``HyperliquidTimeoutError`` (a ``TimeoutError``) if no answer came in time.
        """
        if not self._entry.settled.wait(timeout):
            raise HyperliquidTimeoutError(
                f"no answer from the server to {self._entry.key} within {timeout} s"
            )
        if self._entry.error is not None:
            raise self._entry.error
        return self

    def unsubscribe(self) -> None:
        """Remove this callback; the last one on a feed unsubscribes on the wire. Idempotent."""
        self._owner.unsubscribe(self)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "failed" if self.error else (
            "active" if self._entry.active else "pending"
        )
        return f"<Subscription {self._entry.key} {state}>"
