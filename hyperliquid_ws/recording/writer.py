"""``RecordingWriter``: appends recording lines to the file of their UTC hour.

Thread-safe: ``write``, ``flush`` and ``close`` take one lock, so callbacks on several
client threads and the recorder's flush thread may call them at once. Lines get their
``t`` under that lock, so each file is in time order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

from .codec import HEAD, TAIL, Sink, check_compression, encode_line, file_name, hour_of, open_sink

logger = logging.getLogger(__name__)

Line = tuple[float, "bytes | dict[str, Any]", Any, "bytes | None"]  # (t, subscription, message, frame)
_TIME = itemgetter(0)


def _lines(items: list[Line]) -> list[bytes] | None:
    """Every item's line, or None if one cannot be encoded or is a 3-tuple of before
    (both raise here; ``_write_each`` takes them one by one). A line's head (time and
    subscription) is formatted once for a run of lines that share them (the frames of
    one socket read share their time); a frame without a newline byte (all of them,
    from a compact server) goes in as it is; the rest go through ``codec.encode_line``."""
    lines: list[bytes] = []
    line = lines.append
    last_t: float | None = None
    last_sub: Any = None
    head = b""
    try:
        for t, sub, message, frame in items:
            if frame is None or type(sub) is not bytes or b"\n" in frame:
                line(encode_line(t, sub, message, frame))
                continue
            if t != last_t or sub is not last_sub:
                head, last_t, last_sub = HEAD % (t, sub), t, sub
            line(head + frame + TAIL)
    except (TypeError, ValueError):
        return None
    return lines


class RecordingWriter:
    """Writes lines into ``directory`` (created if missing), one file per UTC hour.

    ``compression`` is ``"gzip"`` (default), ``"zstd"`` (needs ``zstandard``) or ``"none"``.
    A new hour closes the previous file, which is then complete. An existing file is
    never appended to: the next free ``.1``, ``.2`` ... name is used. ``clock`` gives
    the receive time (s since the epoch) when ``write`` is not given one.
    Raises ``ValueError``/``ImportError`` for a bad ``compression``.
    """

    def __init__(self, directory: str | Path, *, compression: str = "gzip", prefix: str = "hl-",
                 clock: Callable[[], float] = time.time) -> None:
        self.compression = check_compression(compression)
        if "/" in prefix or "\\" in prefix:
            raise ValueError(f"prefix must be a plain file-name prefix, got {prefix!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._sink: Sink | None = None
        self._hour_start = 0.0  # UTC hour of the open file, s since the epoch
        self._dirty = False
        self._closed = False
        self.files: list[Path] = []
        self.lines = 0
        self.bytes = 0  # uncompressed

    def write(self, subscription: bytes | dict[str, Any], message: Any, t: float | None = None) -> int:
        """Append one line; return its uncompressed size in bytes. ``subscription`` as a
        dict or encoded once by ``codec.encode_subscription``. Raises ``ValueError`` once
        closed and ``TypeError`` for data JSON cannot encode."""
        return self.write_many([(self._clock() if t is None else t, subscription, message, None)])[0]

    def write_many(self, items: list[Line]) -> list[int]:
        """Append ``(t, subscription, message, frame)`` lines in the order given (sort
        them by ``t`` first); ``frame``: the text frame ``message`` is exactly, or None
        (``codec.encode_line``); with a frame, ``message`` is not read and may be None.
        A 3-tuple ``(t, subscription, message)``, as before frames, means no frame.
        Return each line's size. A line that cannot be encoded is logged and skipped
        (size 0). Raises ``ValueError`` once closed."""
        with self._lock:
            if self._closed:
                raise ValueError("RecordingWriter is closed")
            times = list(map(_TIME, items))
            if times and self._sink is not None and self._hour_start <= min(times) <= max(times) \
                    < self._hour_start + 3600.0:
                lines = _lines(items)  # the usual case: one file, written in one go
                if lines is not None:
                    self._write_run(lines)
                    return list(map(len, lines))
            return self._write_each(items)

    def _write_each(self, items: list[Line]) -> list[int]:
        """``write_many`` line by line: across an hour's end, or with a line that cannot be
        encoded (the caller holds the lock)."""
        sizes: list[int] = []
        run: list[bytes] = []
        for item in items:
            t, subscription, message = item[0], item[1], item[2]
            try:
                line = encode_line(t, subscription, message, item[3] if len(item) > 3 else None)
            except (TypeError, ValueError) as exc:
                logger.warning("not recorded, not JSON: %r (%s)", message, exc)
                sizes.append(0)
                continue
            if not self._hour_start <= t < self._hour_start + 3600.0 or self._sink is None:
                self._write_run(run)
                run = []
                self._rotate(t)
            run.append(line)
            sizes.append(len(line))
        self._write_run(run)
        return sizes

    def _write_run(self, run: list[bytes]) -> None:
        if run and self._sink is not None:
            data = b"".join(run)
            self._sink.write(data)
            self._dirty = True
            self.lines += len(run)
            self.bytes += len(data)

    def flush(self) -> None:
        """Make every line written so far readable from disk (ends a compressed block)."""
        with self._lock:
            if self._sink is not None and self._dirty:
                self._sink.flush()
                self._dirty = False

    def close(self) -> None:
        """Finish the current file. Idempotent."""
        with self._lock:
            self._closed = True
            self._finish()

    @property
    def disk_bytes(self) -> int:
        """Bytes on disk across this writer's files (compressed, flushed part)."""
        return sum(path.stat().st_size for path in self.files if path.exists())

    def _rotate(self, t: float) -> None:
        self._finish()
        self._hour_start = t - t % 3600.0
        hour = hour_of(self._hour_start)
        n = 0
        while (path := self.directory / file_name(self.prefix, hour, self.compression, n)).exists():
            n += 1
        self._sink = open_sink(path, self.compression)
        self.files.append(path)
        logger.info("recording into %s", path)

    def _finish(self) -> None:
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.close()
            self._dirty = False
