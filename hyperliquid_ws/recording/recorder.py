"""``Recorder``: subscribe through a normal client and write every message to disk.

Threads: the recorder subscribes with a ``subscription.FrameTap`` on its queue, so the
thread that delivers (the client's reader) only appends each message with its time to
that deque: no recorder code runs there, and the feed keeps its lock-free fast path.
One ``hlws-recorder-flush`` thread takes what is queued every ``DRAIN_EVERY`` s,
builds the lines, compresses and writes them, and flushes the file every
``flush_interval`` s, so a crash loses at most about that much. ``close()`` writes the
rest, stops and joins it, and finishes the file. Every public method is thread-safe.
A write that fails (a full disk) loses nothing: the writer holds the lines and the next
round writes them into a new file (``writer.py``); the failure is logged once, and
again when writing works again.

A message is not encoded again when it is a frame as it came: the tap hands over the
frame's bytes instead of the message then, so such a line is the frame's bytes with
the time and subscription around them. Only messages the client changed (trades
deduped out of a frame, backfilled messages, a joiner's first message) are encoded
from the parsed message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any

from ..client import HyperliquidWS
from ..endpoints import MAINNET_API_URL
from ..feeds import canonical
from ..subscription import FrameTap, Subscription
from .codec import encode_subscription
from .writer import Line, RecordingWriter

logger = logging.getLogger(__name__)

FLUSH_THREAD = "hlws-recorder-flush"
_SUB = itemgetter(1)  # a queued line's encoded subscription
_MESSAGE = itemgetter(2)  # its parsed message, or None when the line is made from its frame
BATCH = 4096  # queued messages written in one go
DRAIN_EVERY = 0.05  # s between the flush thread's looks at the queue: ~7,500 messages at 150k/s


def feed_label(subscription: Mapping[str, Any]) -> str:
    """``{"type": "l2Book", "coin": "ETH"}`` -> ``"l2Book ETH"`` (for progress lines)."""
    values = [str(v) for k, v in subscription.items() if k != "type"]
    return " ".join([str(subscription.get("type")), *values])


class _FeedCounter:
    __slots__ = ("backfilled", "bytes", "encoded", "label", "messages")

    def __init__(self, label: str, encoded: bytes) -> None:
        self.label = label  # for stats() and the progress line
        self.encoded = encoded  # the subscription as it appears in each line
        self.messages = 0
        self.bytes = 0
        self.backfilled = 0


class Recorder:
    """Records feeds into hourly NDJSON files under ``out``.

        with Recorder("data/", base_url=MAINNET_API_URL) as recorder:
            recorder.record({"type": "trades", "coin": "BTC"})
            recorder.client.run_forever()

    Each line holds the receive time (s since the epoch: the wall clock when the socket
    read that brought the frame returned; for a backfilled message, when it was
    delivered; raised to the line before's where it is earlier), the subscription (canonical form) and the message as
    delivered, so reconnects, dedupe and backfill apply and backfilled messages keep
    their ``"backfill": true``. ``client``: record through this client (not closed by
    ``close()``); else one is made for ``base_url`` with ``client_options`` (keyword
    arguments of ``HyperliquidWS``) and closed with the recorder.
    ``compression``: ``"gzip"`` (default), ``"zstd"`` (``zstd`` extra) or ``"none"``.
    ``flush_interval`` (s, > 0): the most a crash can lose. Raises ``ValueError`` for
    bad arguments, ``ImportError`` for zstd without ``zstandard``.
    """

    def __init__(self, out: str | Path, *, base_url: str = MAINNET_API_URL, client: HyperliquidWS | None = None,
                 compression: str = "gzip", flush_interval: float = 1.0, prefix: str = "hl-",
                 client_options: Mapping[str, Any] | None = None) -> None:
        if isinstance(flush_interval, bool) or not isinstance(flush_interval, (int, float)) or flush_interval <= 0:
            raise ValueError(f"flush_interval must be a positive number of seconds, got {flush_interval!r}")
        if client is not None and client_options:
            raise ValueError("pass client or client_options, not both")
        self.writer = RecordingWriter(out, compression=compression, prefix=prefix)
        self._owns_client = client is None
        self.client = client if client is not None else HyperliquidWS(base_url, **dict(client_options or {}))
        self.flush_interval = float(flush_interval)
        self._lock = threading.Lock()
        self._counters: dict[bytes, _FeedCounter] = {}  # by the encoded subscription each line holds
        self._handles: list[Subscription] = []
        self._pending: deque[Line] = deque()
        self._stopping = threading.Event()
        self._closed = False
        self._started = time.monotonic()
        self._flusher = threading.Thread(target=self._flush_forever, name=FLUSH_THREAD, daemon=True)
        self._flusher.start()

    def record(self, subscription: Mapping[str, Any], *, allow_unknown: bool = False) -> Subscription:
        """Subscribe to ``subscription`` and record its messages; return the client's
        handle (``handle.wait()`` blocks until acknowledged). Raises ``ValueError`` for a
        malformed subscription or when closed."""
        _, form = canonical(subscription, allow_unknown=allow_unknown)
        with self._lock:
            if self._closed:
                raise ValueError("Recorder is closed")
            encoded = encode_subscription(form)
            sub = self._counters.setdefault(encoded, _FeedCounter(feed_label(form), encoded)).encoded
        # Only the frame's bytes are queued when they are the message: one object, which the
        # garbage collector never scans, instead of the parsed message's tree. The items are
        # writer.Lines: (t, the encoded subscription, the message or None, the frame or None).
        handle = self.client.subscribe(subscription, FrameTap(self._pending, sub), allow_unknown=allow_unknown)
        with self._lock:
            closed = self._closed
            if not closed:
                self._handles.append(handle)
        if closed:  # close() ran meanwhile: nothing would drain this queue any more
            self.client.unsubscribe(handle)
            raise ValueError("Recorder is closed")
        return handle

    def stats(self) -> dict[str, Any]:
        """``{"seconds", "messages", "bytes", "disk_bytes", "files", "held", "lost", "feeds":
        {label: {"messages", "bytes", "backfilled"}}}``; bytes are uncompressed line bytes
        except ``disk_bytes`` (the files' size on disk as flushed); ``messages`` counts the
        lines handed to the writer, written or held to be written. ``held``: lines waiting
        to be written again after a failed write; ``lost``: lines dropped because writes
        kept failing (``RecordingWriter.max_held``)."""
        with self._lock:
            feeds = {c.label: {"messages": c.messages, "bytes": c.bytes, "backfilled": c.backfilled}
                     for c in self._counters.values()}
        return {"seconds": time.monotonic() - self._started,
                "messages": sum(f["messages"] for f in feeds.values()),
                "bytes": sum(f["bytes"] for f in feeds.values()),
                "disk_bytes": self.writer.disk_bytes, "files": [str(p) for p in self.writer.files],
                "held": self.writer.held, "lost": self.writer.lost, "feeds": feeds}

    def progress_line(self) -> str:
        """One line for a terminal: messages and bytes per feed, then the totals."""
        stats = self.stats()
        parts = [f"{label}: {f['messages']:,} msgs {_size(f['bytes'])}" for label, f in stats["feeds"].items()]
        parts.append(f"total {stats['messages']:,} msgs, {_size(stats['disk_bytes'])} on disk")
        if stats["held"] or stats["lost"]:
            parts.append(f"writes failing: {stats['held']:,} held, {stats['lost']:,} lost")
        return " | ".join(parts)

    def close(self) -> None:
        """Stop recording: no new lines, flush, finish the file, join the flush thread,
        and close the client if the recorder made it. Idempotent; any thread except the
        flush thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            handles, self._handles = self._handles, []
        if self._owns_client:
            self.client.close()
        else:
            for handle in handles:
                self.client.unsubscribe(handle)
        self._stopping.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join(30.0)
        if self._flusher.is_alive():
            logger.error("the recorder's flush thread did not finish in time")
            return
        try:
            self.writer.close()
        except OSError as exc:
            logger.error("recording: could not finish the file: %s", exc)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _flush_forever(self) -> None:
        """The flush thread: write what is queued, flush; one guard per round, so a full
        disk is logged (once per outage), not fatal. After ``close()``, one last round
        writes the rest."""
        flushed = time.monotonic()
        failing = 0  # rounds failed in a row
        while True:
            stopping = self._stopping.wait(min(DRAIN_EVERY, self.flush_interval))
            try:
                self._drain()
                if stopping or failing or time.monotonic() - flushed >= self.flush_interval:
                    flushed = time.monotonic()
                    self.writer.flush()
            except OSError as exc:
                if not failing:
                    logger.error("recording: writing failed (%s); holding %d line(s), retrying every %.1f s",
                                 exc, self.writer.held, self.flush_interval)
                failing += 1
                if not stopping:
                    self._stopping.wait(self.flush_interval)
            except Exception:  # a bug: logged, and the next round goes on (STYLE 10a)
                logger.exception("recording: a write round failed")
                self._stopping.wait(self.flush_interval)
            else:
                if failing:
                    logger.warning("recording: writing again (into %s) after %d failed round(s)",
                                   self.writer.files[-1] if self.writer.files else "?", failing)
                    failing = 0
            if stopping:
                return

    def _drain(self) -> None:
        """Write every queued message (flush thread). A batch of one feed (the usual
        case) is counted at once, without a step per message."""
        pending = self._pending
        while pending:
            batch = [pending.popleft() for _ in range(min(len(pending), BATCH))]
            try:
                sizes = self.writer.write_many(batch)
            except OSError:  # the writer holds the batch, and the rest, for the next round
                rest = [pending.popleft() for _ in range(len(pending))]
                self.writer.hold(rest)
                for lines in (batch, rest):
                    if lines:
                        self._count(lines, [len(line[3] or b"") for line in lines])
                raise
            self._count(batch, sizes)

    def _count(self, batch: list[Line], sizes: list[int]) -> None:
        """Count a written (or held) batch in the per-feed figures."""
        subs: list[bytes] = list(map(_SUB, batch))  # the recorder's lines hold encoded subscriptions
        messages = list(map(_MESSAGE, batch))  # None for a line made from a frame (almost all)
        with self._lock:
            if subs.count(subs[0]) == len(subs):  # one feed: the usual case
                counter = self._counters[subs[0]]
                counter.messages += len(batch)
                counter.bytes += sum(sizes)
            else:
                for sub, size in zip(subs, sizes, strict=True):
                    counter = self._counters[sub]
                    counter.messages += 1
                    counter.bytes += size
            if messages.count(None) != len(messages):
                for sub, message in zip(subs, messages, strict=True):
                    if isinstance(message, dict) and message.get("backfill"):
                        self._counters[sub].backfilled += 1


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
