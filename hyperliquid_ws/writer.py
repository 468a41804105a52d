"""The writer thread: sends subscribe and unsubscribe messages in order, paced by the
shared message-rate limiter.

Pacing means waiting, and the reader must never wait (it would stop reading acks and
pongs), so a reconnect hands its whole replay to this thread and goes back to the
socket. A message claimed for a link that has since died is skipped: the next connect
replays the registry anyway.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque

from .connection import Connection
from .ratelimit import RateLimiter
from .subscription import Entry

log = logging.getLogger(__name__)


class Writer:
    def __init__(self, connection: Connection, limiter: RateLimiter) -> None:
        self._connection = connection
        self._limiter = limiter
        self._queue: deque[tuple[str, Entry, int]] = deque()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, name=f"{connection.name}-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, method: str, entries: list[Entry], generation: int) -> None:
        """Queue ``method`` for each entry, to go out on link ``generation`` (any thread)."""
        with self._ready:
            self._queue.extend((method, entry, generation) for entry in entries)
            self._ready.notify()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _run(self) -> None:
        """The writer thread; its one guard drops a message that fails, never the thread."""
        while True:
            try:
                self._send_all()
                return
            except Exception:
                log.exception("%s: writer failed on a message; going on", self._connection.name)

    def _send_all(self) -> None:
        connection = self._connection
        while not self._stop.is_set():
            with self._ready:
                while not self._queue and not self._stop.is_set():
                    self._ready.wait()
                if self._stop.is_set():
                    return
                method, entry, generation = self._queue.popleft()
            if generation != connection.generation or not connection.connected:
                log.debug("%s of %s skipped: its link is gone", method, entry.key)
                continue
            if not self._limiter.acquire(self._stop):
                return
            text = json.dumps({"method": method, "subscription": entry.wire}, separators=(",", ":"))
            if method == "subscribe":
                # Stamped before it goes out: the server's answer, an error dropping it
                # included, can be read on another thread before send_text returns.
                entry.sent_at = time.monotonic()
            if connection.send_text(text, generation):
                self.sent += 1
            else:
                log.debug("%s of %s not sent: link down; the next connect replays it", method, entry.key)
