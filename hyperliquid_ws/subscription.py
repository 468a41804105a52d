"""A subscription as the user holds it (``Subscription``) and as the server holds it (``Entry``).

Several ``Subscription`` handles with the same canonical form share one ``Entry``: one
subscribe on the wire, one callback per handle. The entry is what the router finds for
a frame and what every connect replays.

Each handle has its own lane (``dispatch.Lane``), so a late joiner's first message
(``joiners.py``) can wait on it before the joiner is attached, and a slow callback
holds up only itself. With one handle and nothing held, the entry has a *fast* path
(``Entry.fast``): the router dedupes (trades, candles) and queues frames on that
handle's lane itself, with no lock. Otherwise frames go through ``Entry.deliver`` under
the entry's lock, which fans them out.

A ``FrameTap`` handle (the recorder's) has no lane and runs no code: the thread that
delivers (the connection's reader, or a backfill) appends each message, with the read's
time and the frame's bytes while the message is that frame unchanged, to the tap's
queue. It does not count as the one handle of the fast path, so recording a feed keeps
that path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .dispatch import Lane
from .errors import BackfillError, HyperliquidTimeoutError, SubscriptionError
from .feeds import STATE
from .history import SHAPES, CandleTracker, Tracker, TradesTracker
from .joiners import Retained

if TYPE_CHECKING:
    from .feeds import Feed, RouteKey

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
Submit = Callable[[Lane, Any], None]
Tapped = tuple[float, Any, Any, "bytes | None"]  # (t, tag, message or None, frame or None): see FrameTap
Fast = tuple[Lane, "Tracker | CandleTracker | None", "tuple[Subscription, ...]"]  # see Entry.fast
_CADENCE_SAMPLES = 5
_TRADES_MEMORY = 512  # trades are many and busy: a short memory (see history.Tracker)
_MEMORY = 5000  # items a tracker remembers
# Items a history feed keeps for its late joiners: the 2000 most recent, as many as the
# largest /info history answers (protocol.md §9.2), which a snapshot does not exceed.
_JOINER_MEMORY = 2000


class _Owner(Protocol):
    def unsubscribe(self, subscription: Subscription) -> None: ...

    def _link_problem(self, entry: Entry) -> str | None: ...


class Budget(Protocol):
    """Where held frames are counted (``dispatch.Dispatcher``)."""

    def may_hold(self, holding: int) -> bool: ...

    def unhold(self, count: int) -> None: ...


class Entry:
    """One server-side subscription and the callbacks of every handle sharing it.

    ``handles`` is replaced, never mutated, under ``lock``; ``fast`` and ``latest`` are
    read by the reader thread without it (see ``attach`` for why that is safe).
    ``sent_on`` is the connection generation the subscribe was last sent on; every new
    generation sends it again.
    """

    # Slots are laid out in this order: what the router touches per frame comes first, so
    # with a thousand feeds a frame finds it in one or two cache lines, not five.
    __slots__ = ("fast", "keeps_latest", "last_message", "received", "delivered", "latest",  # noqa: RUF023
                 "_backfills", "_budget", "_hold_start_ms", "_observed", "acked_at_ms", "active", "answered",
                 "canonical", "error", "feed", "handles", "held", "hold_id", "interval", "key", "lock", "resent",
                 "resubscribed_silent", "retained", "route", "sent_at", "sent_on", "settled", "tracker", "wire")

    def __init__(self, key: str, feed: Feed, canonical: dict[str, Any], wire: dict[str, Any]):
        self.key = key
        self.feed = feed
        self.canonical = canonical
        self.wire = wire
        self.route: RouteKey = feed.route_of(canonical)
        self.handles: tuple[Subscription, ...] = ()
        # One handle with a lane, nothing held, no joiner's first message in flight: the
        # router dedupes with the tracker (if any), queues on the lane and feeds the taps
        # itself, with no lock. One tuple, replaced whole, so it reads one consistent state.
        self.fast: Fast | None = None
        self._backfills: set[int] = set()  # holds whose release has not finished: no fast path meanwhile
        self.latest: Any = None  # the last frame routed here (by the router): a state joiner's
        # Only a state feed's joiner is given it (joiners.py): any other feed's frames are
        # not kept past their callbacks (with 1,000 feeds, 1,000 messages held until they
        # were cold, and walked by the garbage collector, cost ~1 us a frame of ~6).
        self.keeps_latest = feed.kind == STATE
        self.sent_on = 0
        self.sent_at = 0.0  # monotonic time its last subscribe went out
        self.resent = False  # sent again after a rate-limit error; "Already subscribed" is then success
        self.active = False  # acknowledged on the current connection
        self.settled = threading.Event()  # first acknowledgement or refusal
        self.error: SubscriptionError | None = None
        self.received = 0  # frames routed to this entry
        self.delivered = 0  # messages queued for its callbacks (after dedupe)
        self.last_message = 0.0  # monotonic time of the socket read that brought the last frame (router)
        self.interval: float | None = None  # moving average of the seconds between frames (``observe``)
        self._observed: tuple[int, float | None] = (0, None)  # (received, last_message) at the last look
        self.resubscribed_silent = False  # a silent-feed resubscribe is under way
        self.acked_at_ms: int | None = None  # wall clock of the first ack: where a gap can start
        self.lock = threading.Lock()  # orders the reader's and the backfill's deliveries
        self.held: list[Any] | None = None  # live frames held while a backfill runs
        self.hold_id = 0  # which hold ``held`` is: a backfill releases only its own
        self._budget: Budget | None = None  # counts the held frames in max_backlog
        self._hold_start_ms = 0  # where the held backfill's gap begins
        # The server answered the latest subscribe (an ack, Already subscribed, a refusal)
        # or the entry is gone: a backfill fetches only once the feed flows again.
        self.answered = threading.Event()
        self.tracker: Tracker | CandleTracker | None = None
        memory = _TRADES_MEMORY if feed.type == "trades" else _MEMORY
        if feed.type == "candle":
            self.tracker = CandleTracker()
        elif feed.type == "trades":
            self.tracker = TradesTracker(memory)
        elif feed.type in SHAPES:
            self.tracker = Tracker(SHAPES[feed.type], memory)
        self.retained = Retained(feed, _JOINER_MEMORY)  # for late joiners

    @property
    def cadence(self) -> float | None:
        """Usual seconds between frames, once there is enough history to tell."""
        return self.interval if self.received >= _CADENCE_SAMPLES else None

    def observe(self) -> None:
        """Fold the frames since the last look into ``interval`` (keepalive thread, every
        tick; the router only counts frames and stamps the last one, so this costs the
        reader nothing): the mean gap between the frames that came since, a moving
        average over looks. New frames also end a silent-feed resubscribe."""
        received, last = self.received, self.last_message
        count, since = self._observed
        if received <= count:
            return
        if since is not None and last > since:
            gap = (last - since) / (received - count)
            self.interval = gap if self.interval is None else 0.7 * self.interval + 0.3 * gap
        self._observed = (received, last)
        self.resubscribed_silent = False

    def hold(self, budget: Budget | None = None, start_ms: int = 0) -> int | None:
        """Hold live frames for a backfill of the gap from ``start_ms`` (and wait for the
        next subscribe's answer); the held frames count in ``budget``. Returns the hold's
        id, for ``release``; None if a backfill is pending already: it fetches up to when
        it runs."""
        with self.lock:
            self.answered.clear()
            if self.held is not None:
                return None
            self.held = []
            self.hold_id += 1
            self._backfills.add(self.hold_id)
            self._budget = budget
            self._hold_start_ms = start_ms
            self.fast = None
            return self.hold_id

    def held_messages(self) -> list[Any]:
        """A copy of the live frames held for a backfill (any thread)."""
        with self.lock:
            return list(self.held or ())

    def deliver(self, message: Any, submit: Submit, frame: bytes | None = None,
                t: float | None = None) -> BackfillError | None:
        """A live frame (reader thread): held during a backfill, else deduped and queued.
        ``frame``: the text frame ``message`` was parsed from, and ``t`` the time of the
        socket read that brought it (s since the epoch; None: now), for ``FrameTap``s.
        A hold that reaches its bound (``Budget.may_hold``) gives up: the held frames and
        this one are delivered now, and the returned ``BackfillError`` says so (the
        backfill goes on; its items follow, deduped, out of time order)."""
        with self.lock:
            held = self.held
            if held is None:
                self._admit(message, submit, backfill=False, frame=frame, t=t)
                return None
            budget = self._budget
            if budget is None or budget.may_hold(len(held)):
                held.append(message)
                return None
            self.held = None
            budget.unhold(len(held))
            held.append(message)
            self._admit_each([(m, False) for m in held], submit)
            # No fast path yet: the backfill thread still delivers what it recovers, under
            # the lock, with the same tracker; release_some restores it when it is done.
        cause = OverflowError(f"{len(held) - 1} live frames were held waiting for it, the most max_backlog "
                              "and lane_limit allow; they are delivered now, and what it recovers comes "
                              "after them, out of time order")
        return BackfillError(self.wire, self._hold_start_ms, int(time.time() * 1000), cause)

    def release(self, submit: Submit, backfilled: list[Any]) -> int:
        """Deliver ``backfilled`` messages and every held live frame at once, and stop
        holding; returns how many backfilled messages were delivered."""
        delivered, _, _ = self.release_some(submit, deque((m, True) for m in backfilled), self.hold_id, None)
        return delivered

    def release_some(self, submit: Submit, pending: deque[tuple[Any, bool]], hold_id: int,
                     limit: int | None) -> tuple[int, bool, bool]:
        """Deliver up to ``limit`` messages (None: all): first from ``pending`` (recovered,
        ``(message, True)``), then the oldest held live frames of hold ``hold_id``; once
        both are empty, stop holding (backfill thread). Returns (backfilled messages
        delivered, done, whether the hold was still ``hold_id``'s). Live frames that come
        meanwhile are held behind the rest, so the order is kept. If the hold gave up or a
        newer one began, only ``pending`` is delivered: recovered items are never thrown
        away, and the tracker still drops what was seen."""
        with self.lock:
            held = self.held if self.hold_id == hold_id else None
            room = len(pending) + len(held or ()) if limit is None else limit
            batch = [pending.popleft() for _ in range(min(room, len(pending)))]
            if held:
                take = min(room - len(batch), len(held))
                batch.extend((m, False) for m in held[:take])
                del held[:take]
                if self._budget is not None:
                    self._budget.unhold(take)
            delivered = self._admit_each(batch, submit)
            done = not pending and not held
            if done:
                if held is not None:
                    self.held = None
                    self._budget = None
                self._backfills.discard(hold_id)
                self._refresh()
            return delivered, done, held is not None

    def _admit_each(self, messages: list[tuple[Any, bool]], submit: Submit) -> int:
        """``_admit`` each ``(message, backfill)``, one at a time: one message that cannot
        be handled must not cost the others. Returns how many backfilled were delivered."""
        delivered = 0
        for message, backfill in messages:
            try:
                if self._admit(message, submit, backfill=backfill) and backfill:
                    delivered += 1
            except Exception:
                log.exception("%s: dropped a %s message that could not be handled", self.key,
                              "backfilled" if backfill else "held")
        return delivered

    def _admit(self, message: Any, submit: Submit, *, backfill: bool, frame: bytes | None = None,
               t: float | None = None) -> bool:
        """Dedupe ``message``, keep it for late joiners, queue it for every handle and
        feed every ``FrameTap`` (the frame while the message is still exactly the frame:
        nothing deduped out of it)."""
        parsed = message
        tracker = self.tracker
        if tracker is not None:
            deliver, data = tracker.admit(message["data"], backfill=backfill)
            if not deliver:
                return False
            if data is not message["data"]:
                message = {**message, "data": data}
            if self.retained.keeps_items:
                self.retained.note(message)
        for handle in self.handles:
            if handle.given is not None:  # a joiner's first frame may reach here once more
                again, handle.given = handle.given is message, None
                self._refresh()  # the fan-out has passed it: the fast path may apply again
                if again:
                    continue
            if handle.tap:
                put_taps((handle,), time.time() if t is None else t, message, frame if message is parsed else None)
            else:
                submit(handle.lane, message)
        self.delivered += 1
        return True

    def acknowledged(self) -> None:
        self._observed = (self.received, time.monotonic())  # the feed's next frames are counted from here
        self.active = True
        if self.acked_at_ms is None:
            self.acked_at_ms = int(time.time() * 1000)
        self.settled.set()
        self.answered.set()

    def attach(self, handle: Subscription, give: Submit | None = None) -> None:
        """Add a handle. A late joiner first gets what a fresh subscribe would bring
        (``joiners.py``), queued on its own lane with ``give`` before it is attached, so
        it comes before any later message. Any thread; the caller holds the registry lock.

        A ``FrameTap`` joiner gets that first message in its queue here, at once.

        Why the router needs no lock: it stores ``latest`` and then reads ``fast`` (once,
        one tuple: the lane, tracker and taps of one moment); this clears ``fast`` and
        then reads ``latest``. A frame the router stored too late to be read here finds
        ``fast`` cleared and waits for the lock, then reaches the joiner after its first
        message; one stored in time is that first message, and reaches the joiner once
        (``given``, which keeps ``fast`` cleared until the fan-out has passed it).
        """
        with self.lock:
            if self.handles:
                self.fast = None
                first = self.retained.first_message(self.latest)
                if first is not None and handle.tap:
                    put_taps((handle,), time.time(), first, None)
                    handle.given = first if first is self.latest else None
                elif first is not None and give is not None:
                    give(handle.lane, first)
                    handle.given = first if first is self.latest else None
            self.handles = (*self.handles, handle)
            self._refresh()

    def detach(self, handle: Subscription) -> None:
        with self.lock:
            self.handles = tuple(h for h in self.handles if h is not handle)
            self._refresh()

    def _refresh(self) -> None:
        """Recompute the router's fast path (the caller holds the lock): one handle with
        a lane, nothing held, no joiner's first message still to pass, and no items kept
        for late joiners (a tracked feed)."""
        lanes = [h for h in self.handles if not h.tap]
        if (len(lanes) != 1 or self.held is not None or self._backfills
                or any(h.given is not None for h in self.handles)
                or (self.tracker is not None and self.retained.keeps_items)):
            self.fast = None
            return
        self.fast = (lanes[0].lane, self.tracker, tuple(h for h in self.handles if h.tap))

    def fail(self, error: SubscriptionError) -> None:
        self.error = error
        self.active = False
        self.settled.set()
        self.answered.set()

    def __repr__(self) -> str:
        return f"<Entry {self.key} listeners={len(self.handles)} active={self.active}>"


class FrameTap:
    """A feed's messages appended to a queue by the thread that delivers (the recorder's).

    ``HyperliquidWS.subscribe(sub, FrameTap(queue, tag))`` appends ``(t, tag, None,
    frame)`` or ``(t, tag, message, None)`` to ``queue`` (a ``collections.deque``, whose
    appends are thread-safe) for every message the feed's callbacks get, in the same
    order, on the thread that delivers it (the connection's reader; a backfill thread
    for recovered messages), before those callbacks run. No code of the caller runs
    there: drain the queue from a thread of your own. ``t``: the time of the socket
    read that brought the frame (s since the epoch; for a backfilled or a joiner's
    first message, when it was delivered). ``frame``: the frame's bytes (UTF-8 JSON,
    exactly as received) while the message is that frame unchanged, and then the
    parsed message is not kept (None); else the message (trades deduped out of the
    frame, backfilled, a joiner's first message, held during a backfill) and None.
    Nothing is appended once the handle is closed. Such a handle has no lane and does
    not count as the one handle of a feed's fast path. Raises ``ValueError`` if
    ``queue`` is not a deque.
    """

    __slots__ = ("queue", "tag")

    def __init__(self, queue: deque[Tapped], tag: Any = None) -> None:
        if not isinstance(queue, deque):
            raise ValueError(f"a FrameTap appends to a collections.deque, got {queue!r}")
        self.queue = queue
        self.tag = tag

    def __call__(self, message: Any) -> None:
        """As a plain callback: ``message`` now, without its frame."""
        self.queue.append((time.time(), self.tag, message, None))

    def __repr__(self) -> str:
        return f"FrameTap(tag={self.tag!r})"


def put_taps(handles: tuple[Subscription, ...], t: float, message: Any, frame: bytes | None) -> None:
    """Append the message to the queue of each ``FrameTap`` handle still open (the
    router writes this loop out on its fast path)."""
    for handle in handles:
        queue = handle.tap_queue
        if queue is not None:
            queue.append((t, handle.tap_tag, None, frame) if frame is not None else (t, handle.tap_tag, message, None))


class Subscription:
    """What ``HyperliquidWS.subscribe`` returns: one callback on one feed.

    Thread-safe. ``wait()`` blocks the calling thread until the server has answered.
    """

    def __init__(self, owner: _Owner, entry: Entry, callback: Callback) -> None:
        self._owner = owner
        self._entry = entry
        self.callback = callback
        self._closed = False
        self.lane = Lane((callback,), entry.key)  # its messages, waiting for its callback; () once closed
        self.given: Any = None  # the frame it got on joining, until the fan-out has passed it
        self.tap = isinstance(callback, FrameTap)  # fed inline (put_taps), never through its lane
        # Its FrameTap's queue and tag; None once closed (like a lane's callbacks, read at the append)
        self.tap_queue: deque[Tapped] | None = callback.queue if isinstance(callback, FrameTap) else None
        self.tap_tag: Any = callback.tag if isinstance(callback, FrameTap) else None

    @property
    def closed(self) -> bool:
        return self._closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self._closed = value
        if value:
            self.lane.callbacks = ()  # messages still on its lane are not delivered
            self.tap_queue = None

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
        ``HyperliquidTimeoutError`` (a ``TimeoutError``) if no answer came in time; its
        text says when the connection was not up (``not connected to wss://...``, with
        the last reason) rather than blame a server that was never reached. ``timeout``:
        seconds (0 polls) or None (no limit); anything else raises ``ValueError``.
        """
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout >= 0):
            raise ValueError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")
        if not self._entry.settled.wait(timeout):
            problem = self._owner._link_problem(self._entry)  # offline, say so: no server was reached
            raise HyperliquidTimeoutError(
                f"no answer from the server to {self._entry.key} within {timeout} s" if problem is None
                else f"no answer to {self._entry.key} within {timeout} s: {problem}"
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
