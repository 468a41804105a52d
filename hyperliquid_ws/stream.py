"""``HyperliquidWS.stream``: a blocking iterator over one feed, for scripts and notebooks.

    for message in ws.stream({"type": "trades", "coin": "SOL"}, timeout=30):
        ...

A bounded queue sits between the client's thread that runs callbacks (it fills the
queue) and the consumer. A subscription the server refuses ends the loop with its
``SubscriptionError`` (within ``REFUSAL_POLL``), with or without ``wait()``.
When the consumer falls behind and the queue is full, the overflow policy decides:
``"drop_oldest"`` (the default: the consumer always sees the freshest data) or
``"drop_newest"``. A drop is never silent: it is counted (``dropped``, and in
``ws.stats()``) and logged. Leaving the loop in any way (break, an exception, garbage
collection, a ``with`` block, ``close()``) unsubscribes.

A durable stream (``GatewayClient.stream`` on a named consumer) has no queue: its
callback is a ``Handover``, which hands one message at a time to the loop and returns
only once the loop is done with it, so the reader records a position exactly as it does
after a callback returns. The loop is done with a message when it comes back for the
next, or the stream is closed with ``close()`` or at the end of a ``with`` block with no
exception; any other end (an exception out of the block, garbage collection, the client
closing) leaves it unfinished, so a restart delivers it again, marked ``redelivered``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .subscription import Subscription

log = logging.getLogger(__name__)

OVERFLOW_POLICIES = ("drop_oldest", "drop_newest")
REFUSAL_POLL = 0.25  # seconds between looks, while a loop waits, at whether the server refused the feed

# How a ``Handover`` call ended (its ``outcome``).
DONE = "done"  # the loop finished the message
PARKED = "parked"  # not yet: the reader goes on with other feeds, and polls it later
PARK_AFTER = 0.005  # seconds a reader waits for the loop before it parks the message
UNTAKEN = "untaken"  # the stream ended before the loop took it
INTERRUPTED = "interrupted"  # the stream ended while the loop held it


class Stream:
    """Thread-safe; iterate it from one thread."""

    def __init__(self, subscription: dict[str, Any], *, timeout: float | None, maxsize: int, overflow: str,
                 durable: bool = False) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a whole number >= 1, got {maxsize!r}")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, got {overflow!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        self.subscription = subscription
        self.timeout = timeout
        self.maxsize = maxsize
        self.overflow = overflow
        self.dropped = 0
        self.received = 0
        self._queue: deque[Any] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._handle: Subscription | None = None
        self._handover = Handover() if durable else None

    def attach(self, handle: Subscription) -> None:
        self._handle = handle

    def feeder(self) -> _Feeder | Handover:
        """The callback to subscribe with; it holds the stream weakly, so dropping the
        stream (leaving the loop) lets it be collected and unsubscribe. A durable
        stream's is its ``Handover``, which holds none of the stream."""
        if self._handover is not None:
            return self._handover
        return _Feeder(weakref.ref(self))

    @property
    def durable(self) -> bool:
        return self._handover is not None

    @property
    def depth(self) -> int:
        if self._handover is not None:
            return self._handover.depth
        return len(self._queue)

    def put(self, message: Any) -> None:
        """Dispatcher thread."""
        with self._ready:
            if self._closed:
                return
            self.received += 1
            if len(self._queue) >= self.maxsize:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("stream %s: consumer behind, queue full (%d); %s, %d dropped so far",
                                self.subscription, self.maxsize, self.overflow.replace("_", " "), self.dropped)
                if self.overflow == "drop_newest":
                    return
                self._queue.popleft()
            self._queue.append(message)
            self._ready.notify()

    def wait(self, timeout: float | None = 10.0) -> Stream:
        """Block until the server acknowledged the subscription (see ``Subscription.wait``)."""
        if self._handle is not None:
            self._handle.wait(timeout)
        return self

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Any:
        if self._handover is not None:
            taken, message = self._handover.take(self.timeout)
            if taken:
                self.received += 1
                return message
            if not self._handover.closed:
                log.info("stream %s: nothing within %s s; ending", self.subscription, self.timeout)
            self.close()
            raise StopIteration
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        refused: BaseException | None = None
        timed_out = False
        with self._ready:
            while not (self._queue or self._closed):
                refused = getattr(self._handle, "error", None)
                if refused is not None:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    timed_out = True
                    break
                self._ready.wait(REFUSAL_POLL if left is None else min(REFUSAL_POLL, left))
            if self._queue:
                return self._queue.popleft()
        if timed_out:
            log.info("stream %s: nothing within %s s; ending", self.subscription, self.timeout)
        self.close()
        if refused is not None:
            raise refused  # the server's SubscriptionError: the feed will never come
        raise StopIteration

    def close(self) -> None:
        """Unsubscribe and end the iteration (a durable stream's loop is done with the
        message it holds). Idempotent."""
        self._close(finished=True)

    def end(self) -> None:
        """End the iteration without unsubscribing: the client is closing. A durable
        stream's message in hand stays unfinished, unless the client is closed from the
        loop's own body (as ``close()`` from a callback, the message counts as finished).
        Idempotent."""
        self._close(finished=self._handover is not None and self._handover.on_loop_thread(), unsubscribe=False)

    def _close(self, *, finished: bool, unsubscribe: bool = True) -> None:
        with self._ready:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            self._ready.notify_all()
        # Unsubscribe first: a reader waiting in the handover sees the feed gone when it wakes.
        if unsubscribe and self._handle is not None:
            self._handle.unsubscribe()
        if self._handover is not None:
            self._handover.close(finished=finished)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        self._close(finished=exc_type is None)

    def __del__(self) -> None:
        try:
            self._close(finished=False)
        except Exception:
            log.debug("closing a collected stream failed", exc_info=True)

    def __repr__(self) -> str:
        return f"<Stream {self.subscription} depth={self.depth} dropped={self.dropped}>"


class _Feeder:
    """The stream's callback: a weak reference, so the registry does not keep it alive."""

    __slots__ = ("__weakref__", "_stream")

    def __init__(self, stream: weakref.ref[Stream]) -> None:
        self._stream = stream

    def __call__(self, message: Any) -> None:
        stream = self._stream()
        if stream is not None:
            stream.put(message)


class Handover:
    """A durable stream's callback: hands ``message`` to the loop and returns once the
    loop is done with it, or the stream ended, or ``PARK_AFTER`` passed. ``outcome``
    tells how the last call ended: ``DONE``, ``UNTAKEN``, ``INTERRUPTED`` or ``PARKED``
    (the reader goes on with its other feeds, and polls it once ``wake`` is called). One
    caller at a time (the reader)."""

    __slots__ = ("__weakref__", "_closed", "_cond", "_holding", "_loop", "_message", "_offered", "outcome", "wake")

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._message: Any = None
        self._offered = False  # a message waits for the loop to take it
        self._holding = False  # the loop took a message and has not come back
        self._closed = False
        self._loop: threading.Thread | None = None  # the thread that iterates
        self.outcome = DONE
        self.wake: Callable[[], None] = lambda: None  # tells the reader a parked message settled

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def depth(self) -> int:
        return 1 if self._offered and not self._closed else 0

    def __call__(self, message: Any) -> None:
        with self._cond:
            if self._closed:
                self.outcome = UNTAKEN
                return
            self._message, self._offered = message, True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._closed or not (self._offered or self._holding), PARK_AFTER)
            self.outcome = self._settle()

    def poll(self) -> str:
        """A ``PARKED`` message's outcome now (the reader, each round)."""
        with self._cond:
            if self.outcome == PARKED:
                self.outcome = self._settle()
            return self.outcome

    def _settle(self) -> str:
        if not (self._offered or self._holding):
            return DONE
        if not self._closed:
            return PARKED  # the loop is slow, or reads another stream first (zip)
        if self._offered:
            self._message, self._offered = None, False
            return UNTAKEN
        return INTERRUPTED

    def on_loop_thread(self) -> bool:
        """Is the caller the thread that iterates the stream (its loop's body)?"""
        return self._loop is threading.current_thread()

    def take(self, timeout: float | None) -> tuple[bool, Any]:
        """The loop: done with the message it holds; wait up to ``timeout`` s (None:
        forever) for the next. ``(False, None)`` once closed or timed out."""
        self._loop = threading.current_thread()
        with self._cond:
            self._holding = False
            self._cond.notify_all()
            parked = self.outcome == PARKED
        if parked:
            self.wake()  # the reader polls parked messages when its read returns
        with self._cond:
            if not self._cond.wait_for(lambda: self._offered or self._closed, timeout) or self._closed:
                return False, None
            message, self._message = self._message, None
            self._offered, self._holding = False, True
            self._cond.notify_all()
            return True, message

    def close(self, *, finished: bool) -> None:
        with self._cond:
            if finished:
                self._holding = False
            self._closed = True
            self._cond.notify_all()
            parked = self.outcome == PARKED
        if parked:
            self.wake()
