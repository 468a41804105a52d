"""Where user callbacks run, and in what order.

Every subscription (and every hook) has its own *lane*: a FIFO of messages. A lane is
served by one thread at a time, so each subscription's callbacks see its messages in
arrival order, while a callback that blocks holds up only its own lane.

Two ways to serve the lanes (``callback_threads``):

- ``0``, the default, *on the connection's threads*: the thread that read a batch of
  frames runs their callbacks itself, straight away: no hand-off, the lowest latency.
  If a callback keeps it longer than ``connection.RELAY_AFTER``, the connection's relay
  thread takes over the socket (and the other lanes) and reading goes on; see
  ``connection.py``. Connection hooks run there too (between connections, on the
  relay). Messages queued by any other thread (the backfill's) are served by that
  thread, or by whichever thread already serves their lane. The lanes of a read are
  taken a group at a time, under one lock (``Ready``), and either connection thread
  can finish a group the other began.
- ``N > 0``, *dispatcher threads*: the reader never runs user code; it queues each
  message on its lane and ``N`` dispatcher threads serve the lanes. Other subscriptions
  are delayed only when all ``N`` are blocked at once. With ``N = 1`` every message is
  delivered in global arrival order: the one thread follows ``_order``, the lane of each
  message as it arrived, taking one message at a time (a lane served as a batch would
  overtake another lane's message that came in between). The hand-off costs about 15 us
  of latency a frame.

Overflow: a lane holds at most ``lane_limit`` messages waiting for a slow callback, and
the whole client at most ``max_backlog``, however many feeds are slow. Beyond either,
the oldest waiting message of the lane that is furthest behind is dropped (the lane the
message is for, when it holds at least its fair share, ``max_backlog`` / lanes with
messages waiting; else the longest): counted (``Lane.dropped``, in ``stats()``),
logged, and reported to ``on_error`` as a ``SlowConsumerError``. So a feed whose
callbacks keep up loses nothing to the others' backlog. The reports wait on
``on_error``'s own lane, which is never dropped from for a feed's sake and not held to
``lane_limit`` (only to ``HOOK_LIMIT``): thirty feeds overflowing in one read give
thirty reports. A serving thread takes at most
``TAKE`` messages of a lane at a time, so what is held by threads stays small too.

Live frames held while a feed is backfilled (``subscription.Entry.held``) count in
``max_backlog`` too (``may_hold``/``unhold``). A hold may take at most half of it (and
half of ``lane_limit``), so that when a hold gives up (``Entry.deliver``) its frames
fit on their lanes with room to spare.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from .errors import CallbackError, SlowConsumerError, shown
from .guard import Throttle

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
ErrorHook = Callable[[BaseException], None]
PACE_HIGH = 512  # messages waiting above which the reader pauses briefly
PACE_LOW = 64  # ... until the callbacks are down to this many
PACE_WAIT = 0.002  # seconds; the longest such pause (and none while one timed out)
TAKE = 256  # messages of one lane a thread takes to serve at once
LONG = 64  # messages waiting on a lane from which its queue is a deque (a list below: see ``Lane``)
HOOK_LIMIT = 100_000  # reports waiting on a hook's lane (on_error too slow for them) beyond which its oldest go
DEFAULT_MAX_BACKLOG = 20_000  # messages: ~270 MB of 20-level books (13 KB parsed), ~35 MB of trades


_HOOK_ERRORS = Throttle()  # log state only (keyed by id: it keeps no hook alive), as logging's own


def call_user(callback: Callback, argument: Any, on_error: ErrorHook | None) -> bool:
    """Run one user callback; whatever it raises is logged and handed to ``on_error``.
    Returns False if it raised. An ``on_error`` that raises is logged at most once every
    ``guard.LOG_EVERY`` seconds (with the count in between): it is called for every
    error, and one ERROR line per call would flood the log."""
    try:
        callback(argument)
        return True
    except BaseException as exc:
        callback_failed(callback, argument, exc, on_error)
        return False


def callback_failed(callback: Callback, argument: Any, exc: BaseException, on_error: ErrorHook | None) -> None:
    """What ``call_user`` does when the callback raised ``exc`` (for loops that write the
    ``try`` out themselves): log it with its traceback and hand it to ``on_error``."""
    if callback is on_error:
        _hook_raised(callback, exc)
        return
    log.error("callback %s raised", shown(callback), exc_info=exc)
    if on_error is not None:
        try:
            on_error(CallbackError(callback, argument, exc))
        except BaseException as hook_exc:
            _hook_raised(on_error, hook_exc)


def _hook_raised(hook: ErrorHook, exc: BaseException) -> None:
    since = _HOOK_ERRORS.allow(id(hook))
    if since is not None:
        more = f" ({since} more times since the last report)" if since else ""
        log.error("on_error hook %s raised%s", shown(hook), more, exc_info=exc)


class Lane:
    """The messages waiting for one subscription's (or one hook's) callbacks.

    ``callbacks`` is read when a message is delivered, so a callback removed in the
    meantime (its subscription closed: ``()``) is not called.

    ``queue`` is a list while it is short, the common case (with many busy feeds, a
    message or two a lane per read): 88 bytes where a deque takes 1.3 KB, so a thousand
    lanes stay in the CPU's cache. From ``LONG`` messages on it is a deque, so the
    overflow rule drops its oldest in O(1) however long it grows.
    """

    # Laid out in this order, what is touched per message first (with many feeds, fewer cold cache lines).
    __slots__ = ("queue", "scheduled", "callbacks", "dropped", "name", "skipped", "hook")  # noqa: RUF023

    def __init__(self, callbacks: tuple[Callback, ...], name: str, *, hook: bool = False) -> None:
        self.callbacks = callbacks
        self.name = name
        self.queue: list[Any] | deque[Any] = []
        self.scheduled = False  # in the ready queue, or being served
        self.dropped = 0
        self.skipped = 0  # with one dispatcher thread: drops whose place in ``_order`` was passed
        self.hook = hook  # a hook's lane (on_error's reports): see Dispatcher._furthest_behind


Batch = list[Any] | deque[Any]  # messages a thread took from a lane to serve


class Ready(deque[Lane]):
    """Lanes with messages and no thread serving them (one connection's, or one caller's).

    Threads that serve the same ``Ready`` (``Dispatcher.serve``: a connection's reader
    and its relay) take its lanes a group at a time, under one lock, into ``claimed``;
    begin each with an atomic ``popleft`` (whichever thread gets there first); and put
    each done into ``served``, handed back under the lock that takes the next group. So
    a thread stuck in one lane's callback holds only that lane: the other thread serves
    the rest of its group and hands back what it had served.
    """

    __slots__ = ("claimed", "served")

    def __init__(self) -> None:
        super().__init__()
        self.claimed: deque[tuple[Lane, Batch]] = deque()  # taken, not begun
        self.served: deque[Lane] = deque()  # done, not handed back


def _pop_oldest(queue: list[Any] | deque[Any]) -> Any:
    """A lane's oldest waiting message, taken off (a list is short: see ``Lane``)."""
    return queue.pop(0) if type(queue) is list else cast("deque[Any]", queue).popleft()


class Dispatcher:
    """``submit``/``submit_many``/``serve`` are thread-safe; with dispatcher threads,
    submitting never waits on user code."""

    def __init__(self, name: str, on_error: ErrorHook | None, *, threads: int = 0,
                 lane_limit: int = 100_000, max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
        self._on_error = on_error
        self._lane_limit = lane_limit
        self._max_backlog = max_backlog
        self._backlogged: set[Lane] = set()  # lanes with messages waiting
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._stalled = False  # a pause for the callbacks timed out: no more until they catch up
        self._lanes = Ready()  # the dispatcher threads' ready lanes
        self._order: deque[Lane] = deque()  # one dispatcher thread: each queued message's lane, in arrival order
        self._hook_lanes: dict[Any, Lane] = {}
        self._waiting = 0  # messages in lanes, not yet taken by a thread
        self._held = 0  # live frames held for backfills (Entry.held), counted in max_backlog
        self._served = threading.Condition(self._lock)  # a lane was served (wait_for_lanes)
        self._watchers = 0  # threads in wait_for_lanes
        self._idle = 0
        self._stopping = False
        self.delivered = 0
        self.callback_errors = 0
        self._in_order = threads == 1
        self.threads = [threading.Thread(target=self._run_in_order if self._in_order else self._run,
                                         name=f"{name}-dispatch-{n}", daemon=True)
                        for n in range(1, threads + 1)]
        self.on_connection_threads = not self.threads

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    @property
    def depth(self) -> int:
        return self._waiting

    @property
    def held(self) -> int:
        """Live frames held for backfills, across the client."""
        return self._held

    def submit(self, lane: Lane, message: Any, ready: Ready | None = None) -> None:
        self.submit_many([(lane, message)], ready)

    def submit_many(self, items: list[tuple[Lane, Any]], ready: Ready | None = None) -> None:
        """Queue ``(lane, message)`` pairs on their lanes under one lock.

        With dispatcher threads, wake at most one per lane, and if many messages are
        waiting, pause a moment (never more than ``PACE_WAIT``) for the callbacks to catch
        up: messages then leave memory soon after they were parsed, which is far cheaper
        than freeing thousands of them long after. A blocked callback cannot stall the
        caller: the pause always ends in time, and once one has timed out there is none
        until the callbacks are down to ``PACE_LOW`` (slow consumers must not throttle
        the feeds that keep up).

        On the connection's threads, lanes that now need serving go on ``ready``, for the
        caller's ``serve(ready)``; without ``ready`` they are served now, on this thread.
        """
        if self.on_connection_threads:
            here = Ready() if ready is None else ready
            with self._lock:
                overflowed = self._queue(items, here)
            self._report_overflow(overflowed, ready)
            if ready is None:
                self.serve(here)
            return
        with self._lock:
            overflowed = self._queue(items, self._lanes)
            if self._in_order:
                self._order.extend(lane for lane, _ in items)
                for lane in self._lanes:  # the one thread follows _order, not the ready lanes
                    lane.scheduled = False
                self._lanes.clear()
                if len(self._order) > 2 * self._max_backlog:
                    self._forget_dropped()
                if self._idle:
                    self._ready.notify()
            elif self._idle:
                self._ready.notify(min(self._idle, len(self._lanes)))
            if self._waiting > PACE_HIGH and not self._stalled and not self._drained.wait(PACE_WAIT):
                # The callbacks did not catch up: they are slow, not briefly behind. Waiting
                # for them again would only throttle every feed; wait again once they have.
                self._stalled = True
        self._report_overflow(overflowed, None)

    def _queue(self, items: list[tuple[Lane, Any]], ready: Ready) -> list[tuple[Lane, int, bool]]:
        """Append to the lanes (a lane that was idle goes on ``ready``); return the lanes
        that overflowed, with their drop count then and whether ``lane_limit`` was the
        bound reached. The caller holds the lock."""
        overflowed: list[tuple[Lane, int, bool]] = []
        backlogged = self._backlogged
        waiting = self._waiting
        room = self._max_backlog - self._held
        for lane, message in items:
            queue = lane.queue
            lane_full = len(queue) >= self._lane_limit
            if (lane_full or waiting >= room) and backlogged:
                victim = self._furthest_behind(lane, waiting >= room)
                if victim is not None:
                    _pop_oldest(victim.queue)
                    waiting -= 1
                    if not victim.queue:
                        backlogged.discard(victim)
                    victim.dropped += 1
                    if victim.dropped == 1 or victim.dropped % 1000 == 0:
                        overflowed.append((victim, victim.dropped, lane_full and victim is lane))
            if not queue:
                backlogged.add(lane)
            elif type(queue) is list and len(queue) >= LONG:
                lane.queue = queue = deque(queue)
            queue.append(message)
            waiting += 1
            if not lane.scheduled:
                lane.scheduled = True
                ready.append(lane)
        self._waiting = waiting
        return overflowed

    def _furthest_behind(self, lane: Lane, over_backlog: bool) -> Lane | None:
        """The lane to drop from as a message comes for ``lane`` (over ``lane_limit``, or
        ``over_backlog``): ``lane`` itself if it is over ``lane_limit`` or holds its fair
        share of ``max_backlog``, else the longest (a scan, only then). None: drop nothing.

        A hook's lane (``on_error``'s: the reports of the drops themselves, one per lane at
        its first drop and every 1,000th) is never dropped from for another's sake, nor
        held to ``lane_limit``: over ``max_backlog`` a report takes the place of the
        longest feed's oldest message, or waits beyond the bound when only reports wait.
        ``HOOK_LIMIT`` alone bounds it."""
        length = len(lane.queue)
        if lane.hook:
            if length >= HOOK_LIMIT:
                return lane
            if not over_backlog:
                return None
        elif length >= self._lane_limit or length * len(self._backlogged) >= self._max_backlog:
            return lane
        longest = max((other for other in self._backlogged if not other.hook), key=lambda other: len(other.queue),
                      default=None)
        if longest is not None:
            return longest
        return lane if lane.queue and not lane.hook else None

    def _take(self, lane: Lane) -> Batch:
        """Up to ``TAKE`` of ``lane``'s messages, for a thread to serve (lock held)."""
        queue = lane.queue
        if len(queue) <= TAKE:
            lane.queue = []
            self._backlogged.discard(lane)
            batch = queue
        else:  # a deque: longer than LONG
            pop = cast("deque[Any]", queue).popleft
            batch = [pop() for _ in range(TAKE)]
        self._waiting -= len(batch)
        return batch

    def _report_overflow(self, lanes: list[tuple[Lane, int, bool]], ready: Ready | None) -> None:
        for lane, dropped, lane_full in lanes:
            error = (SlowConsumerError(lane.name, self._lane_limit, dropped, "lane_limit") if lane_full
                     else SlowConsumerError(lane.name, self._max_backlog, dropped, "max_backlog"))
            log.warning("%s", error)
            self.report(error, ready)

    def serve(self, ready: Ready) -> None:
        """Run the callbacks of the lanes on ``ready`` until it is empty (the calling
        thread serves; another thread may serve the same ``ready`` at the same time).

        The hot loop of the default design, written out: one lock per group of lanes,
        up to ``TAKE`` messages in all (it hands back the last group's lanes, see
        ``_hand_back``, and takes the next, see ``_take``), so serving many lanes of one
        message each (many busy feeds) costs about what serving one lane of many does.
        How two threads share a group: ``Ready``."""
        lock = self._lock
        backlogged = self._backlogged
        on_error = self._on_error
        claimed, served = ready.claimed, ready.served
        begin, done = claimed.popleft, served.append
        delivered = errors = 0
        while True:
            try:
                while True:  # until claimed is empty (IndexError), this thread's group or a stuck one's
                    lane, batch = begin()
                    for message in batch:  # at most TAKE, freed together once served
                        if self._stopping:
                            break
                        for callback in lane.callbacks:  # read per message: a removed one is not called
                            try:  # call_user, written out
                                callback(message)
                            except BaseException as exc:
                                callback_failed(callback, message, exc, on_error)
                                errors += 1
                        delivered += 1
                    done(lane)
            except IndexError:
                pass
            with lock:
                self.delivered += delivered
                self.callback_errors += errors
                delivered = errors = 0
                while served:  # _hand_back, inlined
                    lane = served.popleft()
                    if lane.queue:
                        ready.append(lane)
                    else:
                        lane.scheduled = False
                if self._watchers:
                    self._served.notify_all()
                if self._stopping:
                    return
                taken = 0
                while ready and taken < TAKE:  # _take, inlined for the common case
                    lane = ready.popleft()
                    batch = lane.queue
                    if len(batch) <= TAKE:
                        lane.queue = []
                        backlogged.discard(lane)
                        self._waiting -= len(batch)
                    else:
                        batch = self._take(lane)
                    claimed.append((lane, batch))
                    taken += len(batch)
                if not claimed:
                    return

    def _serve_lane(self, lane: Lane, batch: Batch, ready: Ready) -> None:
        """Deliver ``batch`` (taken from ``lane``), then hand the lane back (dispatcher
        threads; ``serve`` does the same steps inline, the hot loop of the default design)."""
        delivered = errors = 0
        for message in batch:
            if self._stopping:
                break
            errors += self._call(lane, message)
            delivered += 1
        with self._lock:
            self._hand_back(lane, ready, delivered, errors)

    def may_hold(self, holding: int) -> bool:
        """Whether a hold of ``holding`` frames may take one more (reader thread); if so,
        it is counted in ``max_backlog`` until ``unhold``. No: the hold must give up."""
        with self._lock:
            if 2 * (holding + 1) > self._lane_limit or 2 * (self._waiting + self._held + 1) > self._max_backlog:
                return False
            self._held += 1
            return True

    def unhold(self, count: int) -> None:
        """``count`` held frames left the hold (to their lanes, or dropped at close)."""
        with self._lock:
            self._held -= count

    def wait_for_lanes(self, lanes: list[Lane], below: int, timeout: float) -> bool:
        """Block until each of ``lanes`` has fewer than ``below`` messages waiting, or
        ``timeout`` seconds pass (False). Any thread but one serving those lanes."""
        with self._lock:
            self._watchers += 1
            try:
                return self._served.wait_for(
                    lambda: self._stopping or all(len(lane.queue) < below for lane in lanes), timeout)
            finally:
                self._watchers -= 1

    def _hand_back(self, lane: Lane, ready: Ready, delivered: int, errors: int) -> None:
        """A thread has served a batch of ``lane``: back onto ``ready`` if more came
        meanwhile, else idle. The caller holds the lock."""
        self.delivered += delivered
        self.callback_errors += errors
        if lane.queue:
            ready.append(lane)
            if ready is self._lanes and self._idle:
                self._ready.notify()
        else:
            lane.scheduled = False
        if self._watchers:
            self._served.notify_all()

    def report(self, error: BaseException, ready: Ready | None = None) -> None:
        """Queue ``error`` for the ``on_error`` hook, if there is one (callers log it)."""
        if self._on_error is not None:
            self.submit(self.hook_lane(self._on_error), error, ready)

    def hook_lane(self, hook: Callback) -> Lane:
        lane = self._hook_lanes.get(hook)
        if lane is None:
            lane = self._hook_lanes.setdefault(hook, Lane((hook,), getattr(hook, "__qualname__", "hook"), hook=True))
        return lane

    def stop(self) -> None:
        """Ask every serving thread to finish its current callback and stop serving; does
        not join."""
        with self._lock:
            self._stopping = True
            self._ready.notify_all()
            self._drained.notify_all()
            self._served.notify_all()

    def _forget_dropped(self) -> None:
        """Take the places of dropped messages out of ``_order`` (lock held): a callback
        blocked for long must not let it grow past the bound on the messages themselves.
        A lane's drops are its oldest messages, so they are its first places."""
        kept: deque[Lane] = deque()
        for lane in self._order:
            if lane.dropped > lane.skipped:
                lane.skipped += 1
            else:
                kept.append(lane)
        self._order = kept

    def _call(self, lane: Lane, message: Any) -> int:
        """Hand ``message`` to each of ``lane``'s callbacks; return how many raised."""
        errors = 0
        for callback in lane.callbacks:
            if not call_user(callback, message, self._on_error):
                errors += 1
        return errors

    def _run_in_order(self) -> None:
        """The one dispatcher thread of ``callback_threads=1``: every message in arrival order."""
        order = self._order
        while True:
            with self._lock:
                lane = None
                while lane is None:
                    while not self._order and not self._stopping:
                        self._idle += 1
                        self._ready.wait()
                        self._idle -= 1
                    if self._stopping:
                        return
                    order = self._order
                    lane = order.popleft()
                    if lane.dropped > lane.skipped:  # this place was a message dropped since
                        lane.skipped += 1
                        lane = None
                message = _pop_oldest(lane.queue)
                if not lane.queue:
                    self._backlogged.discard(lane)
                self._waiting -= 1
                if self._waiting <= PACE_LOW:
                    self._stalled = False
                    self._drained.notify_all()
            errors = self._call(lane, message)
            del message
            with self._lock:
                self.delivered += 1
                self.callback_errors += errors
                if self._watchers:
                    self._served.notify_all()

    def _run(self) -> None:
        """A dispatcher thread."""
        while True:
            with self._lock:
                while not self._lanes and not self._stopping:
                    self._idle += 1
                    self._ready.wait()
                    self._idle -= 1
                if self._stopping:
                    if self._waiting:
                        log.debug("dispatcher stopping; %d messages not delivered", self._waiting)
                    return
                lane = self._lanes.popleft()
                batch = self._take(lane)
                if self._waiting <= PACE_LOW:
                    self._stalled = False
                    self._drained.notify_all()
            self._serve_lane(lane, batch, self._lanes)
            del batch  # served: the messages are the user's alone while this thread waits
