"""``HyperliquidWS.stream``: a blocking iterator over one feed, for scripts and notebooks.

    for message in ws.stream({"type": "trades", "coin": "SOL"}, timeout=30):
        ...

A bounded queue sits between the client's thread that runs callbacks (it fills the
queue) and the consumer.
When the consumer falls behind and the queue is full, the overflow policy decides:
``"drop_oldest"`` (the default: the consumer always sees the freshest data) or
``"drop_newest"``. A drop is never silent: it is counted (``dropped``, and in
``ws.stats()``) and logged. Leaving the loop in any way (break, an exception, garbage
collection, a ``with`` block, ``close()``) unsubscribes.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .subscription import Subscription

log = logging.getLogger(__name__)

OVERFLOW_POLICIES = ("drop_oldest", "drop_newest")


class Stream:
    """Thread-safe; iterate it from one thread."""

    def __init__(self, subscription: dict[str, Any], *, timeout: float | None, maxsize: int, overflow: str) -> None:
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

    def attach(self, handle: Subscription) -> None:
        self._handle = handle

    def feeder(self) -> _Feeder:
        """The callback to subscribe with; it holds the stream weakly, so dropping the
        stream (leaving the loop) lets it be collected and unsubscribe."""
        return _Feeder(weakref.ref(self))

    @property
    def depth(self) -> int:
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
        with self._ready:
            if not self._ready.wait_for(lambda: self._queue or self._closed, self.timeout):
                timed_out = True
            else:
                timed_out = False
                if self._queue:
                    return self._queue.popleft()
        if timed_out:
            log.info("stream %s: nothing within %s s; ending", self.subscription, self.timeout)
        self.close()
        raise StopIteration

    def close(self) -> None:
        """Unsubscribe and end the iteration. Idempotent."""
        with self._ready:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            self._ready.notify_all()
        if self._handle is not None:
            self._handle.unsubscribe()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
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
