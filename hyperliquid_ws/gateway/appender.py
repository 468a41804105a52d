"""The gateway's appender: a bounded buffer of messages and the thread that writes them.

Upstream callbacks (the gateway's ``HyperliquidWS`` threads) call ``put``; the thread
``<gateway>-appender`` takes whatever is queued (up to ``BATCH`` messages) the moment the
previous write has returned, and writes it with one ``APPEND`` script call (``broker.py``)
on its own ``Channel``: one round trip per batch, no timer, so a batch is what arrived
during the last round trip (one message at a time while Redis keeps up). Each message gets its entry ID
(``ms-seq``, strictly after the stream's last) before its first attempt and keeps it
through retries, so a reply lost in a Redis outage cannot make a duplicate: the retry
answers ``"dup"``. Each message also gets its number in the stream (field ``n``, one more
than the last, ``keys.py``) as it is queued, so any message that never reaches the stream
leaves a hole its readers see. While Redis is unreachable the buffer holds up to ``max_buffer``
messages; beyond that the oldest is dropped, counted (``dropped``) and reported, never
silently. A fenced-off append (another gateway leads now) calls ``on_fenced`` and
discards the buffer: the new leader backfills from the stream's tail. A lease Redis lost
while nobody else led (a restart outlasting it) is taken back by the append itself
(``broker.APPEND``), so that buffer is written, not discarded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..backoff import Backoff
from .broker import APPEND, ERRORS, translate
from .channel import Channel
from .errors import GatewayError
from .keys import Keys, encode, id_tuple

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class Pending:
    feed_key: str
    text: bytes  # the message's JSON (keys.encode)
    snapshot: bool
    number: int  # the entry's number in its stream (field ``n``)
    entry_id: str = ""  # assigned before the first attempt


class Appender:
    """Thread-safe ``put``; one writer thread. ``retention`` is ``("MAXLEN", n)`` or
    ``("MINID", age_ms)``, applied with ``~`` (whole macro nodes: cheap)."""

    def __init__(self, name: str, client: Any, url: str, keys: Keys, *, retention: tuple[str, int],
                 max_buffer: int, report: Callable[[BaseException], None], backoff: Backoff | None = None) -> None:
        self._url = url
        self._keys = keys
        self._retention = retention
        self._max_buffer = max_buffer
        self._report = report
        self._backoff = backoff or Backoff(initial=0.1, maximum=2.0)
        self._script = client.register_script(APPEND)
        self._channel = Channel(client)  # the appender thread's own connection
        self._buffer: deque[Pending] = deque()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._last: dict[str, tuple[int, int]] = {}  # feed key -> last assigned entry ID
        self._numbers: dict[str, int] = {}  # feed key -> last assigned entry number
        self.lease_key = ""  # the leader key of the gateway's shard
        self.term_key = ""  # its term key (the value of the last gateway that won it)
        self.lease_ttl_ms = 0  # for taking the lease back in APPEND
        self.lease_value: str | None = None  # the leader lease value to write under; None: do not write
        self.on_fenced: Callable[[], None] = lambda: None
        self.appended = 0
        self.duplicates_skipped = 0
        self.dropped = 0
        self.outages = 0
        self.broker_up = True
        self.thread = threading.Thread(target=self._run, name=f"{name}-appender", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float | None) -> None:
        """Stop after one last attempt to write what is buffered (bounded by ``timeout``)."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def seed(self, feed_key: str, last_id: str | None, last_number: int = 0) -> None:
        """The stream's last entry ID and number as they are in Redis (before this gateway
        appends); what this gateway has queued and not written yet stays ahead of them."""
        with self._ready:
            if last_id is not None:
                seen = id_tuple(last_id)
                self._last[feed_key] = max(seen, self._last.get(feed_key, (0, 0)))
            self._numbers[feed_key] = max(last_number, self._numbers.get(feed_key, 0))

    def put(self, feed_key: str, message: Any, *, snapshot: bool = False) -> None:
        """Queue one message (any thread); drops the oldest when the buffer is full, and
        drops this one while the gateway does not lead (the leader backfills it)."""
        text = encode(message)
        with self._ready:
            if self.lease_value is None:
                return
            number = self._numbers[feed_key] = self._numbers.get(feed_key, 0) + 1
            item = Pending(feed_key, text, snapshot, number)
            if len(self._buffer) >= self._max_buffer:
                self._buffer.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    error = GatewayError(f"the gateway's buffer is full ({self._max_buffer} messages, Redis "
                                         f"unreachable); dropped its oldest ({self.dropped} so far)")
                    log.warning("%s", error)
                    self._report(error)
            self._buffer.append(item)
            self._ready.notify()

    def discard(self) -> int:
        """Forget what is buffered (this gateway no longer leads); return how many. The
        entry numbers start again from each stream's tail (``seed``) when it leads again."""
        with self._ready:
            count = len(self._buffer)
            self._buffer.clear()
            self._numbers.clear()
            return count

    @property
    def depth(self) -> int:
        return len(self._buffer)

    def _run(self) -> None:
        try:
            self._write_until_stopped()
        finally:
            self._channel.close()

    def _write_until_stopped(self) -> None:
        attempt = 0
        while True:
            with self._ready:
                while not self._buffer and not self._stop.is_set():
                    self._ready.wait()
                if not self._buffer:
                    return
                batch = [self._buffer[i] for i in range(min(BATCH, len(self._buffer)))]
                for item in batch:
                    if not item.entry_id:
                        item.entry_id = self._next_id(item.feed_key)
                value = self.lease_value
            if value is None:  # not leading (yet): hold on, the control thread decides
                if self._stop.wait(0.05):
                    return
                continue
            try:
                results = self._write(batch, value)
            except ERRORS as exc:
                if self._stop.is_set():
                    log.warning("stopping with %d message(s) not written: Redis unreachable", self.depth)
                    return
                self._outage(exc)
                if self._stop.wait(self._backoff.delay(attempt)):
                    return
                attempt += 1
                continue
            except Exception as exc:  # a bug must not end the loop silently (STYLE 10a)
                log.exception("appender: unexpected failure; dropping a batch of %d", len(batch))
                self._report(GatewayError(f"appender failed: {exc!r}"))
                self._forget(len(batch))
                continue
            attempt = 0
            if not self.broker_up:
                self.broker_up = True
                log.info("Redis reachable again; %d message(s) buffered", self.depth)
            if results is None:
                log.warning("appends fenced off: another gateway leads this shard now")
                self.lease_value = None  # write nothing more under it
                self.discard()
                self.on_fenced()
                continue
            self.appended += results[0]
            self.duplicates_skipped += results[1]
            self._forget(len(batch))

    def _forget(self, count: int) -> None:
        with self._ready:
            for _ in range(min(count, len(self._buffer))):
                self._buffer.popleft()

    def _write(self, batch: list[Pending], value: str) -> tuple[int, int] | None:
        """One ``APPEND`` call for the whole batch: ``(appended, dups)``, None when fenced."""
        mode, threshold = self._retention
        limit = str(threshold) if mode == "MAXLEN" else f"{int(time.time() * 1000) - threshold}-0"
        prefix = self._keys.stream("")
        keys = [self.lease_key, self._keys.snapshot, self.term_key]
        index: dict[str, int] = {}
        streams, encoded, snapshots = [], [], []
        for number, item in enumerate(batch, 1):
            position = index.get(item.feed_key)
            if position is None:
                keys.append(prefix + item.feed_key)
                position = index[item.feed_key] = len(keys)  # Lua counts from 1
            streams.append(str(position))
            encoded.append(item.text)
            if item.snapshot:
                snapshots.append(str(number))
        args = [value, mode, limit, ",".join(item.entry_id for item in batch), ",".join(streams),
                ",".join(str(len(text)) for text in encoded), ",".join(snapshots), b"".join(encoded), prefix,
                ",".join(str(item.number) for item in batch), self.lease_ttl_ms]
        result = self._channel.evalsha(self._script, keys, args)
        return None if result is None else (int(result[0]), int(result[1]))

    def _next_id(self, feed_key: str) -> str:
        now = int(time.time() * 1000)
        last_ms, last_seq = self._last.get(feed_key, (0, 0))
        entry = (now, 0) if now > last_ms else (last_ms, last_seq + 1)
        self._last[feed_key] = entry
        return f"{entry[0]}-{entry[1]}"

    def _outage(self, exc: BaseException) -> None:
        if self.broker_up:
            self.broker_up = False
            self.outages += 1
            error = translate(exc, self._url, "appending")
            log.warning("%s; buffering (up to %d messages) and retrying", error, self._max_buffer)
            self._report(error)
