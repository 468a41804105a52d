"""The dispatcher thread: the only place user callbacks run.

The reader thread never runs user code: it hands ``(callbacks, message)`` to the
dispatcher and goes back to the socket, so a slow callback cannot stall the keepalive
or make a live link look dead. Messages are delivered in arrival order.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .errors import CallbackError

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
PACE_HIGH = 512  # queued messages above which the reader pauses briefly
PACE_LOW = 64  # ... until the callbacks are down to this many
PACE_WAIT = 0.002  # seconds; the longest such pause
ErrorHook = Callable[[BaseException], None]


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


class Dispatcher:
    """One thread, one queue. ``submit`` is thread-safe and never blocks on user code."""

    def __init__(self, name: str, on_error: ErrorHook | None) -> None:
        self._on_error = on_error
        self._queue: deque[tuple[tuple[Callback, ...], Any]] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._idle = False
        self._stopping = False
        self._drained = threading.Condition(self._lock)  # the queue fell below the low mark
        self.delivered = 0
        self.callback_errors = 0
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, callbacks: tuple[Callback, ...], message: Any) -> None:
        """Queue ``message`` for each of ``callbacks`` (called from any thread)."""
        with self._lock:
            self._queue.append((callbacks, message))
            if self._idle:
                self._ready.notify()

    def submit_many(self, items: list[tuple[tuple[Callback, ...], Any]]) -> None:
        """Queue a batch of ``(callbacks, message)`` at once: one lock, at most one wake-up.

        If the queue is deep, wait a moment (never more than ``PACE_WAIT``) for the
        callbacks to catch up: messages then leave memory soon after they were parsed,
        which is far cheaper than freeing thousands of them long after. A blocked
        callback cannot stall the reader: the wait always ends in time.
        """
        with self._lock:
            self._queue.extend(items)
            if self._idle:
                self._ready.notify()
            if len(self._queue) > PACE_HIGH:
                self._drained.wait(PACE_WAIT)

    def report(self, error: BaseException) -> None:
        """Queue ``error`` for the ``on_error`` hook, if there is one (callers log it)."""
        if self._on_error is not None:
            self.submit((self._on_error,), error)

    @property
    def depth(self) -> int:
        return len(self._queue)

    def stop(self) -> None:
        """Ask the thread to finish its current callback and exit; does not join."""
        with self._lock:
            self._stopping = True
            self._ready.notify()

    def _run(self) -> None:
        on_error = self._on_error
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._idle = True
                    self._ready.wait()
                    self._idle = False
                if self._stopping:
                    if self._queue:
                        log.debug("dispatcher stopping; %d queued messages not delivered",
                                  len(self._queue))
                    return
                batch, self._queue = self._queue, deque()
            pop = batch.popleft
            while batch:  # popped one by one, so each message is freed right after use
                callbacks, message = pop()
                for callback in callbacks:
                    if not call_user(callback, message, on_error):
                        self.callback_errors += 1
                self.delivered += 1
                if len(batch) == PACE_LOW or (not batch and len(self._queue) <= PACE_LOW):
                    with self._lock:
                        self._drained.notify_all()
                if self._stopping:
                    break
