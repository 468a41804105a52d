"""``RecordingWriter``: appends recording lines to the file of their UTC hour.

Thread-safe: ``write``, ``flush`` and ``close`` take one lock, so callbacks on several
client threads and the recorder's flush thread may call them at once. A line is never
written with a ``t`` earlier than the line before it (such a ``t`` is raised to that
one's), so each file is in time order.

A write that fails (``OSError``: the disk is full, the file too large) loses nothing and
repeats nothing: the file is cut back to its last flush (``codec.FileSink.cut``: it ends
on a whole block, readable), and every line given since then is held and written again,
into a new file of its hour (the next ``.1``, ``.2`` ... name), by the next ``write`` or
``flush``; each of those raises ``OSError`` until it succeeds. Held lines are written
again a slice at a time (``RETRY_SLICE`` lines, halved after each failed retry down to
one), each slice flushed, so a disk or a file-size limit with room for part of them
keeps that part. To bound what one failure holds, a file is flushed whenever
``FLUSH_BYTES`` are written since the last flush; while writes keep failing, at most
``max_held`` lines are held and the oldest beyond are dropped, counted in ``lost`` and
logged.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from .codec import HEAD, TAIL, FileSink, check_compression, encode_line, file_name, hour_of

logger = logging.getLogger(__name__)

Line = tuple[float, "bytes | dict[str, Any]", Any, "bytes | None"]  # (t, subscription, message, frame)
_TIME = itemgetter(0)
_FRAME = itemgetter(3)
_SMALL = 4096  # bytes: chunks shorter than this on average are joined before they are written
_RUN = itemgetter(0, 1)  # lines with the same time and subscription share a head
FLUSH_BYTES = 8 << 20  # line bytes written since the last flush that make the writer flush
MAX_HELD = 1_000_000  # lines held while writes keep failing
RETRY_SLICE = 1000  # held lines written again between two flushes


def _runs(items: list[Line], last: float) -> tuple[list[bytes], list[int], float] | None:
    """Every item's line, as chunks of bytes, with each line's size and the last
    ``t`` written; None if one cannot be encoded or is a 3-tuple of before (both raise
    here; ``_write_each`` takes them one by one). ``t`` is raised to ``last`` where it is
    earlier. A run of frames sharing their time and subscription (the frames of one
    socket read) is one join, all in C: the head is formatted once and goes between the
    frames. A run with a parsed message, or a frame with a newline byte between its
    tokens, goes line by line through ``codec.encode_line``."""
    chunks: list[bytes] = []
    sizes: list[int] = []
    try:
        for (t, sub), group in groupby(items, _RUN):
            run = list(group)
            t = round(t, 6)  # as the line shows it (HEAD's %.6f), so it is filed under the hour it shows
            if t < last:
                t = last
            last = t
            if type(sub) is bytes:
                frames = list(map(_FRAME, run))
                if None not in frames and b"\n" not in b"".join(frames):  # (a find in C: fast)
                    head = HEAD % (t, sub)
                    if len(frames) == 1:
                        chunks.append(head + frames[0] + TAIL)
                    else:
                        chunks += (head, (TAIL + head).join(frames), TAIL)
                    extra = len(head) + len(TAIL)
                    sizes += [extra + n for n in map(len, frames)]
                    continue
            for _, _, message, frame in run:
                line = encode_line(t, sub, message, frame)
                chunks.append(line)
                sizes.append(len(line))
    except (TypeError, ValueError, IndexError):
        return None
    return chunks, sizes, last


class RecordingWriter:
    """Writes lines into ``directory`` (created if missing), one file per UTC hour.

    ``compression`` is ``"gzip"`` (default), ``"zstd"`` (needs ``zstandard``) or ``"none"``.
    A new hour closes the previous file, which is then complete. An existing file is
    never appended to: the next free ``.1``, ``.2`` ... name is used. ``clock`` gives
    the receive time (s since the epoch) when ``write`` is not given one. ``max_held``:
    the most lines held for writing again while writes fail (the module docstring).
    Raises ``ValueError``/``ImportError`` for a bad ``compression``.
    """

    def __init__(self, directory: str | Path, *, compression: str = "gzip", prefix: str = "hl-",
                 clock: Callable[[], float] = time.time, max_held: int = MAX_HELD) -> None:
        self.compression = check_compression(compression)
        if "/" in prefix or "\\" in prefix:
            raise ValueError(f"prefix must be a plain file-name prefix, got {prefix!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._sink: FileSink | None = None
        self._hour_start = 0.0  # UTC hour of the open file, s since the epoch
        self._last_t = 0.0  # the t of the last line written: no line goes back in time
        self._dirty = False
        self._closed = False
        self.files: list[Path] = []
        self.lines = 0
        self.bytes = 0  # uncompressed
        self.max_held = max_held
        self.lost = 0  # lines dropped while writes kept failing (beyond max_held)
        self._since_flush: list[Line] = []  # written to the open file since its last flush
        self._since_flush_size = 0  # their line bytes
        self._since_flush_lines = 0  # and how many were written (not skipped)
        self._flushed_t = 0.0  # _last_t at that flush
        self._held: list[Line] = []  # lines to write again after a failure, in order
        self._slice = RETRY_SLICE  # held lines written again between two flushes
        self._durable = 0  # items of the write in progress already in a finished file
        self._durable_lines = self._durable_size = 0  # their lines written and bytes

    def write(self, subscription: bytes | dict[str, Any], message: Any, t: float | None = None) -> int:
        """Append one line; return its uncompressed size in bytes. ``subscription`` as a
        dict or encoded once by ``codec.encode_subscription``. Raises ``ValueError`` once
        closed and ``TypeError`` for data JSON cannot encode."""
        return self.write_many([(self._clock() if t is None else t, subscription, message, None)])[0]

    def write_many(self, items: list[Line]) -> list[int]:
        """Append ``(t, subscription, message, frame)`` lines in the order given (``t``
        earlier than the line before is raised to its ``t``); ``frame``: the text frame
        ``message`` is exactly, or None (``codec.encode_line``); with a frame,
        ``message`` is not read and may be None. A 3-tuple ``(t, subscription,
        message)``, as before frames, means no frame. Return each line's size. A line
        that cannot be encoded is logged and skipped (size 0). Raises ``ValueError``
        once closed, ``OSError`` if the lines could not be written (they are held and
        written by the next call: see the module docstring)."""
        with self._lock:
            if self._closed:
                raise ValueError("RecordingWriter is closed")
            if not items:
                return []
            if not self._held:
                return self._written(items)
            held, self._held = self._held, []
            return self._retried(held + items)[len(held):]

    def _retried(self, items: list[Line]) -> list[int]:
        """Write held lines (and what follows them) a slice at a time, each flushed; on a
        failure, hold the slice and the rest again and raise."""
        sizes: list[int] = []
        step = self._slice
        for start in range(0, len(items), step):
            try:
                sizes += self._written(items[start:start + step])
                self._flush_locked()
            except OSError:
                self._held += items[start + step:]  # behind what _failed held
                self._bound()
                self._slice = max(1, step // 2)
                raise
        self._slice = RETRY_SLICE
        return sizes

    def _written(self, items: list[Line]) -> list[int]:
        """Write ``items`` (the caller holds the lock); on a failed write, hold every line
        since the file's last flush for the next call and raise."""
        try:
            sizes = self._write_all(items)
        except OSError:
            self._failed(items)
            raise
        self.lines += len(sizes) - sizes.count(0)
        self.bytes += sum(sizes)
        fresh = sizes[self._durable:]  # (the lines before are in a file finished meanwhile)
        self._since_flush += items[self._durable:]
        self._since_flush_size += sum(fresh)
        self._since_flush_lines += len(fresh) - fresh.count(0)
        if self._since_flush_size >= FLUSH_BYTES:
            self._flush_locked()
        return sizes

    def _write_all(self, items: list[Line]) -> list[int]:
        self._durable = 0
        start = self._hour_start
        if self._sink is not None and start <= max(round(items[0][0], 6), self._last_t) \
                and max(round(max(map(_TIME, items)), 6), self._last_t) < start + 3600.0:
            runs = _runs(items, self._last_t)  # the usual case: one file, written in one go
            if runs is not None:
                chunks, sizes, self._last_t = runs
                self._write_run(chunks)
                return sizes
        return self._write_each(items)

    def _write_each(self, items: list[Line]) -> list[int]:
        """``write_many`` line by line: across an hour's end, or with a line that cannot be
        encoded (the caller holds the lock)."""
        sizes: list[int] = []
        run: list[bytes] = []
        self._durable = self._durable_lines = self._durable_size = 0
        for index, item in enumerate(items):
            t, subscription, message = max(round(item[0], 6), self._last_t), item[1], item[2]
            try:
                line = encode_line(t, subscription, message, item[3] if len(item) > 3 else None)
            except (TypeError, ValueError) as exc:
                logger.warning("not recorded, not JSON: %r (%s)", message, exc)
                sizes.append(0)
                continue
            if not self._hour_start <= t < self._hour_start + 3600.0 or self._sink is None:
                self._write_run(run)
                run = []
                self._finish()
                self._durable = index  # the lines before this one are in a finished file now
                self._durable_lines, self._durable_size = len(sizes) - sizes.count(0), sum(sizes)
                self._rotate(t)
            run.append(line)
            sizes.append(len(line))
            self._last_t = t
        self._write_run(run)
        return sizes

    def _write_run(self, chunks: list[bytes]) -> None:
        """Write ``chunks`` (whole lines) to the open file."""
        if chunks and self._sink is not None:
            size = sum(map(len, chunks))
            if size < _SMALL * len(chunks):  # many short lines: one write, not a call per line
                chunks = [b"".join(chunks)]
            write = self._sink.write
            for chunk in chunks:  # long runs are not joined: a copy of megabytes costs more than the calls
                write(chunk)
            self._dirty = True

    def _failed(self, items: list[Line]) -> None:
        """A write failed: cut the file back to its last flush and hold what it lost (the
        lines since then, and this call's not in a finished file) to write again."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.cut()
            if not sink.path.exists():
                self.files.remove(sink.path)
        held = self._since_flush + items[self._durable:]
        self.lines += self._durable_lines - self._since_flush_lines  # held ones count when written again
        self.bytes += self._durable_size - self._since_flush_size
        self._durable = self._durable_lines = self._durable_size = 0
        self._since_flush, self._since_flush_size, self._since_flush_lines = [], 0, 0
        self._last_t = self._flushed_t  # the lines held get the same t again when written
        self._dirty = False
        self._held = held
        self._bound()

    def hold(self, items: list[Line]) -> None:
        """Queue lines behind the held ones without trying to write them (while writes
        fail); the next ``write_many`` or ``flush`` writes them all, in order."""
        with self._lock:
            self._held += items
            self._bound()

    def _bound(self) -> None:
        dropped = len(self._held) - self.max_held
        if dropped > 0:
            self.lost += dropped
            del self._held[:dropped]
            logger.error("recording: writes keep failing; dropped the oldest %d line(s) held, %d in all",
                         dropped, self.lost)

    def flush(self) -> None:
        """Make every line written so far readable from disk (ends a compressed block).
        Writes held lines first. Raises ``OSError`` if that fails (the lines are held)."""
        with self._lock:
            if self._held and not self._closed:
                held, self._held = self._held, []
                self._retried(held)
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._sink is not None and self._dirty:
            try:
                self._sink.flush()
            except OSError:
                self._failed([])
                raise
            self._dirty = False
        self._all_flushed()

    def _all_flushed(self) -> None:
        """Every line written so far is in the file, readable: none to hold on a failure."""
        self._since_flush, self._since_flush_size, self._since_flush_lines = [], 0, 0
        self._flushed_t = self._last_t

    def close(self) -> None:
        """Write what is held and what is not flushed (one attempt), and finish the
        current file. Idempotent. Raises ``OSError`` if lines could not be written; they
        are then lost (counted in ``lost``). If only the file's end marker cannot be
        written, the file is cut back to its last block, readable as a crash leaves it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            held, self._held = self._held, []
            try:
                if held:
                    self._retried(held)
                self._flush_locked()
                self._finish()
            except OSError as exc:
                if self._sink is not None:  # only the end marker failed: every line is flushed
                    self._failed([])
                lost = len(self._held)
                self._held = []
                if lost:
                    self.lost += lost
                    logger.error("recording: %d line(s) not written when closing (%s)", lost, exc)
                    raise
                logger.warning("recording: %s ends without its end marker (%s); read() reads it whole",
                               self.files[-1] if self.files else "the file", exc)

    @property
    def held(self) -> int:
        """Lines held to be written again (after a failed write)."""
        return len(self._held)

    @property
    def disk_bytes(self) -> int:
        """Bytes on disk across this writer's files (compressed, flushed part)."""
        total = 0
        for path in list(self.files):  # (a failed write may remove one meanwhile)
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def _rotate(self, t: float) -> None:
        """Open the file of ``t``'s hour (the previous one is finished)."""
        self._hour_start = t - t % 3600.0
        hour = hour_of(self._hour_start)
        n = 0
        while (path := self.directory / file_name(self.prefix, hour, self.compression, n)).exists():
            n += 1
        self._sink = FileSink(path, self.compression)
        self.files.append(path)
        logger.info("recording into %s", path)

    def _finish(self) -> None:
        """Close the open file, its last block written. Raises ``OSError`` with the file
        still open (``_failed`` cuts it)."""
        sink = self._sink
        if sink is None:
            return
        sink.close()
        self._sink = None
        self._dirty = False
        self._all_flushed()
