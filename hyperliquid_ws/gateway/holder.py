"""One feed the gateway holds upstream: from the upstream callback to the appender.

``HeldFeed`` is created when demand for a feed reaches the leading gateway. Before it
subscribes upstream it reads the stream's tail, so a gateway that takes over (or starts
again) neither repeats nor skips what the stream already holds:

- the last ``TAIL`` entries seed a ``history.Tracker`` (trades, fills, fundings, ledger,
  order updates...), which drops every item already in the stream, just as the client's
  own tracker does after a reconnect. It checks the backfill and the first ``SETTLE``
  live messages; after that (and on a fresh stream) the upstream client's own tracker is
  the only one needed. For candles, a candle equal to the last
  one appended is dropped; for other state feeds the first message after a takeover
  is dropped if it equals the tail entry;
- while the gap from the tail's time to now is backfilled over the upstream client's
  ``info()`` (the client's ``plans.PLANS``), live frames are held, then appended
  after the backfilled messages (marked ``"backfill": true``). At most ``HOLD_LIMIT``
  of them: a feed whose backfill has not come by then (a takeover of many feeds,
  backfilled one after another, behind a slow ``/info``) gives it up, as the client's
  own hold does. Its gap goes into the stream as a ``keys.GAP_MARK`` entry (every
  consumer reports it as a ``BackfillError``, and so does the gateway's ``on_error``),
  its held frames follow, and whatever the backfill brings later is dropped.

``deliver`` runs on the upstream client's callback threads; ``backfill`` on the
gateway's ``<name>-backfill`` thread (``Backfills``), so a slow ``/info`` never holds up
the control thread and its lease renewals. The lock orders the two.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import BackfillError
from ..feeds import Feed
from ..history import SHAPES, CandleTracker, Tracker
from ..plans import PLANS, Partial
from ..subscription import Subscription
from .appender import Appender
from .keys import GAP_MARK, MESSAGE_FIELD, entry_number, id_tuple

log = logging.getLogger(__name__)

TAIL = 200  # entries read back to seed the dedupe memory
SETTLE = 1000  # live messages after a takeover that are still checked against the tail
HOLD_LIMIT = 10_000  # live messages of one feed held for its backfill, beyond which it gives the backfill up


class HeldFeed:
    def __init__(self, feed_key: str, feed: Feed, canonical: dict[str, Any], appender: Appender,
                 report: Callable[[BaseException], None] | None = None) -> None:
        self.feed_key = feed_key
        self._report = report
        self.feed = feed
        self.canonical = canonical
        self._appender = appender
        self.handle: Subscription | None = None
        self.published_state: str | None = None  # the status last written to Redis
        self.refusal: str | None = None  # the status of a subscription the upstream client refused
        self.tail_id = "0-0"  # the stream's last entry ID when this gateway began holding it
        self.began_ms = 0  # when it began (ms, Redis' clock)
        self.unwanted_since: float | None = None  # monotonic: when demand went away
        self._lock = threading.Lock()
        self._held: list[Any] | None = None
        self._gave_up = False  # the hold reached HOLD_LIMIT: the gap is marked, the backfill not wanted
        self._tracker: Tracker | CandleTracker | None = None
        if feed.type == "candle":
            self._tracker = CandleTracker()
        elif feed.type in SHAPES:
            self._tracker = Tracker(SHAPES[feed.type], 5000)
        self._tail_data: Any = None
        self._compare_first = False
        self._live_after_seed = 0
        self.gap_start_ms: int | None = None
        self.received = 0
        self.appended = 0
        self.duplicates = 0

    def seed(self, tail: list[tuple[str, dict[str, str]]]) -> None:
        """``tail``: the stream's last entries, newest first (``XREVRANGE``)."""
        if not tail:
            self._tracker = None  # a fresh stream: the upstream client's own tracker suffices
            return
        for _, fields in reversed(tail):
            message = json.loads(fields[MESSAGE_FIELD])
            if self._tracker is not None and isinstance(message, dict) and "data" in message:
                self._tracker.admit(message["data"], backfill=False)
            self._tail_data = message.get("data") if isinstance(message, dict) else None
        self._compare_first = True
        last_time = self._tracker.last_time if self._tracker is not None else None
        self.gap_start_ms = last_time if last_time is not None else id_tuple(tail[0][0])[0]
        self._appender.seed(self.feed_key, tail[0][0], entry_number(tail[0][1]) or 0)
        if self.feed.type in PLANS:
            self._held = []

    def skip_backfill(self) -> None:
        """Nothing to recover (before ``subscribe``: no live frame is held): the feed was
        let go on purpose, the stream has not moved since, and no reader can need the time
        in between (``Gateway._hold``)."""
        self._held = None
        self.gap_start_ms = None

    def deliver(self, message: Any) -> None:
        """Upstream callback (the gateway client's threads)."""
        with self._lock:
            self.received += 1
            if self._held is None:
                self._admit(message)
                return
            self._held.append(message)
            if len(self._held) < HOLD_LIMIT:
                return
            start_ms, end_ms = self.gap_start_ms or 0, int(time.time() * 1000)
            problem = BackfillError(dict(self.canonical), start_ms, end_ms, RuntimeError(
                f"{HOLD_LIMIT} live messages came while this feed waited for its backfill: given up"))
            self._gave_up = True
            self._appender.put(self.feed_key, {GAP_MARK: {"start_ms": start_ms, "end_ms": end_ms,
                                                          "error": str(problem.cause)}})
            held, self._held = self._held, None
            for kept in held:
                self._admit(kept)
        log.warning("%s", problem)
        if self._report is not None:
            self._report(problem)

    def backfill(self, info: Callable[[dict[str, Any]], Any]) -> BaseException | None:
        """Recover the gap since the stream's tail and release the held frames; returns
        what went wrong (the held frames flow anyway), or None. A gap it could not recover
        goes into the stream too, as a ``keys.GAP_MARK`` entry ahead of the held frames, so
        every consumer reports it where it is."""
        if self._held is None:
            return None
        problem: BaseException | None = None
        messages: list[Any] = []
        end_ms = int(time.time() * 1000)
        start_ms = self.gap_start_ms
        if start_ms is not None:
            try:
                messages = PLANS[self.feed.type](info, self.canonical, start_ms, end_ms)
            except Partial as exc:  # the end of the gap recovered (recentTrades): the rest is marked
                messages, problem, start_ms, end_ms = exc.messages, exc, exc.start_ms, exc.end_ms
            except Exception as exc:
                problem = exc
        with self._lock:
            if self._gave_up:  # the hold gave up meanwhile: the gap is marked, live frames came after it
                log.info("%s: backfill came after its hold gave up; dropped (%d messages)", self.feed_key,
                         len(messages))
                return None
            if problem is not None:
                mark = {"start_ms": start_ms, "end_ms": end_ms, "error": str(problem) or repr(problem)}
                self._appender.put(self.feed_key, {GAP_MARK: mark})
            for message in messages:
                self._admit({**message, "backfill": True}, backfill=True)
            held, self._held = self._held or [], None
            for message in held:
                self._admit(message)
        return problem

    def _admit(self, message: Any, *, backfill: bool = False) -> None:
        if self._tracker is not None and not backfill:
            self._live_after_seed += 1
            if self._live_after_seed > SETTLE:  # past the takeover: the upstream client dedupes alone
                self._tracker = None
        try:
            data = message["data"]
        except (KeyError, TypeError):
            self._append(message)
            return
        if self._compare_first and not backfill:
            self._compare_first = False
            if self._tracker is None and data == self._tail_data:
                self.duplicates += 1
                return
        tracker = self._tracker
        if isinstance(tracker, CandleTracker) and not backfill and tracker.last == data:
            self.duplicates += 1
            return
        if tracker is not None:
            deliver, kept = tracker.admit(data, backfill=backfill)
            if not deliver:
                self.duplicates += 1
                return
            if kept is not data:
                message = {**message, "data": kept}
                self._append(message, whole=False)
                return
        self._append(message)

    def _append(self, message: Any, *, whole: bool = True) -> None:
        """Queue for Redis; a whole (unfiltered) ``isSnapshot`` message becomes where
        unnamed consumers start. One cut down by the tracker (a takeover's) does not."""
        data = message.get("data") if isinstance(message, dict) else None
        snapshot = whole and isinstance(data, dict) and data.get("isSnapshot") is True
        self._appender.put(self.feed_key, message, snapshot=snapshot)
        self.appended += 1

    @property
    def state(self) -> tuple[str, str | None]:
        """``("pending"|"active"|"refused", the refusal's text)`` of the upstream subscription."""
        handle = self.handle
        if handle is None:
            return "pending", None
        if handle.error is not None:
            return "refused", str(handle.error.server_text or handle.error)
        return ("active", None) if handle.active else ("pending", None)


class Backfills:
    """The held feeds' gap backfills, one after another on ``<gateway>-backfill``: off the
    control thread, which must go on renewing the leader lease however slow ``/info`` is.
    ``add`` queues one (any thread); ``wanted(held)`` says whether it still matters when
    its turn comes (the gateway may have let the feed go or stepped down meanwhile), and
    ``report`` gets a ``BackfillError`` for one that failed. ``stop`` joins the thread."""

    def __init__(self, name: str, wanted: Callable[[HeldFeed], bool],
                 report: Callable[[BaseException], None]) -> None:
        self._name = f"{name}-backfill"
        self._wanted = wanted
        self._report = report
        self._jobs: deque[tuple[HeldFeed, Callable[[dict[str, Any]], Any]]] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def add(self, held: HeldFeed, info: Callable[[dict[str, Any]], Any]) -> None:
        with self._ready:
            if self._stopping:
                return
            self._jobs.append((held, info))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._ready.notify()

    def stop(self, timeout: float | None) -> None:
        with self._ready:
            self._stopping = True
            self._jobs.clear()
            self._ready.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._jobs and not self._stopping:
                    self._ready.wait()
                if self._stopping:
                    return
                held, info = self._jobs.popleft()
            if not self._wanted(held):
                continue
            gap_start = held.gap_start_ms
            try:
                problem = held.backfill(info)
            except Exception as exc:  # a bug must not end the thread silently (STYLE 10a)
                log.exception("%s: backfill of %s failed", self._name, held.feed_key)
                problem = exc
            if problem is not None and self._wanted(held):
                start, end = ((problem.start_ms, problem.end_ms) if isinstance(problem, Partial)  # as in its mark
                              else (gap_start or 0, int(time.time() * 1000)))
                error = BackfillError(dict(held.canonical), start, end, problem)
                log.warning("%s: %s", self._name, error)
                self._report(error)
