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
from pathlib import Path
from typing import Any

from .codec import Sink, check_compression, encode_line, file_name, hour_of, open_sink

logger = logging.getLogger(__name__)


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
        self._hour = ""
        self._dirty = False
        self._closed = False
        self.files: list[Path] = []
        self.lines = 0
        self.bytes = 0  # uncompressed

    def write(self, subscription: dict[str, Any], message: Any, t: float | None = None) -> int:
        """Append one line; return its uncompressed size in bytes. Raises ``ValueError``
        once closed and ``TypeError`` for data JSON cannot encode."""
        with self._lock:
            if self._closed:
                raise ValueError("RecordingWriter is closed")
            when = self._clock() if t is None else t
            line = encode_line(when, subscription, message)
            hour = hour_of(when)
            if hour != self._hour or self._sink is None:
                self._rotate(hour)
            assert self._sink is not None
            self._sink.write(line)
            self._dirty = True
            self.lines += 1
            self.bytes += len(line)
            return len(line)

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

    def _rotate(self, hour: str) -> None:
        self._finish()
        n = 0
        while (path := self.directory / file_name(self.prefix, hour, self.compression, n)).exists():
            n += 1
        self._sink = open_sink(path, self.compression)
        self._hour = hour
        self.files.append(path)
        logger.info("recording into %s", path)

    def _finish(self) -> None:
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.close()
            self._dirty = False
