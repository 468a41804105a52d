"""The dispatcher threads: the only place user callbacks run.

The reader never runs user code: it hands each message to the *lane* of its
subscription and goes back to the socket, so a slow callback cannot stall the keepalive
or make a live link look dead.

Every subscription (and every hook) has its own lane: a FIFO of messages. A small pool
of dispatcher threads (``callback_threads``, default 2) serves the lanes; a lane is
served by one thread at a time, so each subscription's callbacks see its messages in
arrival order, while a callback that blocks holds up only its own lane. Other
subscriptions are delayed only when every dispatcher thread is blocked at once. With
``callback_threads=1`` every message is delivered in global arrival order. With
``callback_threads=0`` (inline) there is no dispatcher thread: callbacks run on the
thread that hands the message over, the reader for live frames, which saves the
thread hand-off (lowest latency) but lets a slow callback hold up its whole connection.

Overflow: a lane holds at most ``lane_limit`` messages waiting for a slow callback;
beyond that its oldest waiting message is dropped, counted (``Lane.dropped``, in
``stats()``), logged, and reported to ``on_error`` as a ``SlowConsumerError``.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from .errors import CallbackError, SlowConsumerError

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
ErrorHook = Callable[[BaseException], None]
PACE_HIGH = 512  # messages waiting above which the reader pauses briefly
PACE_LOW = 64  # ... until the callbacks are down to this many
PACE_WAIT = 0.002  # seconds; the longest such pause


def call_user(callback: Callback, argument: Any, on_error: ErrorHook | None) -> bool:
    """Run one user callback; whatever it raises is logged and handed to ``on_error``.
    Returns False if it raised."""
    try:
        callback(argument)
        return True
    except BaseException as exc:
        log.exception("callback %r raised", callback)
        if on_error is not None and callback is not on_error:
            try:
                on_error(CallbackError(callback, argument, exc))
            except BaseException:
                log.exception("on_error hook %r raised", on_error)
        return False


class _Listeners(Protocol):
    @property
    def callbacks(self) -> tuple[Callback, ...]: ...


class _Fixed:
    def __init__(self, callbacks: tuple[Callback, ...]) -> None:
        self.callbacks = callbacks


class Lane:
    """The messages waiting for one subscription's (or one hook's) callbacks.

    The callbacks are read when a message is delivered, so a callback removed in the
    meantime is not called.
    """

    __slots__ = ("dropped", "listeners", "name", "queue", "scheduled")

    def __init__(self, listeners: _Listeners, name: str) -> None:
        self.listeners = listeners
        self.name = name
        self.queue: deque[Any] = deque()
        self.scheduled = False  # in the ready queue, or being served
        self.dropped = 0


class Dispatcher:
    """``submit``/``submit_many`` are thread-safe and never wait on user code."""

    def __init__(self, name: str, on_error: ErrorHook | None, *, threads: int = 2,
                 lane_limit: int = 100_000) -> None:
        self._on_error = on_error
        self._lane_limit = lane_limit
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._lanes: deque[Lane] = deque()  # lanes with messages and no thread serving them
        self._hook_lanes: dict[Any, Lane] = {}
        self._waiting = 0  # messages in lanes, not yet taken by a thread
        self._idle = 0
        self._stopping = False
        self.delivered = 0
        self.callback_errors = 0
        self.threads = [threading.Thread(target=self._run, name=f"{name}-dispatch-{n}", daemon=True)
                        for n in range(1, threads + 1)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    @property
    def depth(self) -> int:
        return self._waiting

    def submit(self, lane: Lane, message: Any) -> None:
        self.submit_many([(lane, message)])

    def submit_many(self, items: list[tuple[Lane, Any]]) -> None:
        """Queue ``(lane, message)`` pairs: one lock, at most one wake-up per thread.

        If many messages are waiting, pause a moment (never more than ``PACE_WAIT``)
        for the callbacks to catch up: messages then leave memory soon after they were
        parsed, which is far cheaper than freeing thousands of them long after. A
        blocked callback cannot stall the reader: the pause always ends in time.
        """
        if not self.threads:
            self._deliver_inline(items)
            return
        overflowed: list[Lane] = []
        with self._lock:
            for lane, message in items:
                queue = lane.queue
                if len(queue) >= self._lane_limit:
                    queue.popleft()
                    self._waiting -= 1
                    lane.dropped += 1
                    if lane.dropped == 1 or lane.dropped % 1000 == 0:
                        overflowed.append(lane)
                queue.append(message)
                if not lane.scheduled:
                    lane.scheduled = True
                    self._lanes.append(lane)
            self._waiting += len(items)
            if self._idle:
                self._ready.notify(min(self._idle, len(self._lanes)))
            if self._waiting > PACE_HIGH:
                self._drained.wait(PACE_WAIT)
        for lane in overflowed:
            error = SlowConsumerError(lane.name, self._lane_limit, lane.dropped)
            log.warning("%s", error)
            self.report(error)

    def _deliver_inline(self, items: list[tuple[Lane, Any]]) -> None:
        errors = sum(self._call(lane, message) for lane, message in items)
        with self._lock:
            self.delivered += len(items)
            self.callback_errors += errors

    def _call(self, lane: Lane, message: Any) -> int:
        """Hand ``message`` to each of ``lane``'s callbacks; return how many raised."""
        errors = 0
        for callback in lane.listeners.callbacks:
            if not call_user(callback, message, self._on_error):
                errors += 1
        return errors

    def report(self, error: BaseException) -> None:
        """Queue ``error`` for the ``on_error`` hook, if there is one (callers log it)."""
        if self._on_error is not None:
            self.submit(self.hook_lane(self._on_error), error)

    def hook_lane(self, hook: Callback) -> Lane:
        lane = self._hook_lanes.get(hook)
        if lane is None:
            lane = self._hook_lanes.setdefault(hook, Lane(_Fixed((hook,)), getattr(hook, "__qualname__", "hook")))
        return lane

    def stop(self) -> None:
        """Ask the threads to finish their current callback and exit; does not join."""
        with self._lock:
            self._stopping = True
            self._ready.notify_all()
            self._drained.notify_all()

    def _run(self) -> None:
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
                batch, lane.queue = lane.queue, deque()
                self._waiting -= len(batch)
                if self._waiting <= PACE_LOW:
                    self._drained.notify_all()
            delivered = errors = 0
            pop = batch.popleft
            while batch and not self._stopping:  # one by one: each message is freed right after use
                errors += self._call(lane, pop())
                delivered += 1
            with self._lock:
                self.delivered += delivered
                self.callback_errors += errors
                if lane.queue:
                    self._lanes.append(lane)
                    if self._idle:
                        self._ready.notify()
                else:
                    lane.scheduled = False
