"""The recording format: one JSON object per line, in files rotated by hour.

A line is ``{"t": <receive time, s since the epoch, float>, "sub": <subscription>, "msg": <message>}``
where ``msg`` is the message exactly as the client delivered it (``{"channel", "data"}``,
plus ``"backfill": true`` on messages recovered over HTTP after a reconnect).

Files are named ``<prefix><YYYYMMDD>T<HH>[.<n>].ndjson[.gz|.zst]`` (UTC hour of the lines'
``t``); ``.gz`` is gzip (written through ISA-L with the ``isal`` extra, else stdlib zlib;
read by either), ``.zst`` needs the ``zstandard`` package (the ``zstd``
extra). Pure functions and small stream classes; safe on any thread that owns them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

COMPRESSIONS = ("gzip", "zstd", "none")
SUFFIXES = {"gzip": ".ndjson.gz", "zstd": ".ndjson.zst", "none": ".ndjson"}
CHUNK = 1 << 16
GZIP_LEVEL = 1  # the fastest: level 6 costs three times the CPU for ~15% smaller files
ZSTD_LEVEL = 1

logger = logging.getLogger(__name__)


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


dumps: Callable[[Any], bytes] = _stdlib_dumps
try:  # the "fast" extra: encoding is most of what recording a message costs
    import orjson
except ImportError:  # pragma: no cover - exercised by installs without the extra
    pass
else:
    dumps = orjson.dumps


deflate: Any = zlib  # what writes .gz files: a zlib-like module (compressobj, Z_SYNC_FLUSH)
try:  # the "isal" extra: the same gzip for 2-2.5x less CPU a line (bench/recording.py, writer rows)
    from isal import isal_zlib
except ImportError:  # pragma: no cover - exercised by installs without the extra
    pass
else:
    deflate = isal_zlib


HEAD = b'{"t":%.6f,"sub":%s,"msg":'  # % (t, encoded subscription); then the message, then TAIL
TAIL = b"}\n"


def encode_subscription(subscription: dict[str, Any]) -> bytes:
    """The ``"sub"`` part of a line, encoded once per feed."""
    return _stdlib_dumps(subscription)


def encode_line(t: float, subscription: bytes | dict[str, Any], message: Any, frame: bytes | None = None) -> bytes:
    """One recording line (UTF-8, ending in ``\\n``); ``subscription`` as a dict or already
    encoded (``encode_subscription``). ``frame``: the text frame ``message`` was parsed
    from, if it is that frame unchanged: then it is the line's ``msg`` as it is, with no
    encoding at all (a newline byte in a frame can only be whitespace between tokens,
    since JSON strings escape theirs, so it becomes a space). Raises ``TypeError`` for
    data JSON cannot encode."""
    sub = subscription if isinstance(subscription, bytes) else encode_subscription(subscription)
    if frame is None:
        return HEAD % (t, sub) + dumps(message) + TAIL
    return HEAD % (t, sub) + (frame.replace(b"\n", b" ") if b"\n" in frame else frame) + TAIL


def hour_of(t: float) -> str:
    """``1764702000.5`` -> ``"20251202T19"``: the UTC hour a line at ``t`` (s) is filed under."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H")


def file_name(prefix: str, hour: str, compression: str, n: int = 0) -> str:
    return f"{prefix}{hour}{'' if n == 0 else f'.{n}'}{SUFFIXES[compression]}"


def compression_of(path: Path) -> str:
    """The compression a recording file's name says; raises ``ValueError`` for other files."""
    name = path.name
    for compression in ("gzip", "zstd", "none"):
        if name.endswith(SUFFIXES[compression]):
            return compression
    raise ValueError(f"not a recording file (.ndjson, .ndjson.gz, .ndjson.zst): {path}")


def check_compression(compression: str) -> str:
    """Validate ``compression``; raises ``ValueError``, or ``ImportError`` when zstd is missing."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
    if compression == "zstd":
        _zstandard()
    return compression


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError as exc:
        raise ImportError("zstd recordings need the zstandard package: "
                          "pip install 'hyperliquid-ws[zstd]'") from exc
    return zstandard


SPILL = 1 << 20  # bytes of output a FileSink holds before it writes them


class FileSink:
    """A new recording file at ``path`` (never appended to: ``FileExistsError``), written
    through a streaming compressor (gzip, zstd) or as it is (``"none"``).

    Output is held in memory and written (``os.write``) when ``SPILL`` bytes are held and
    at ``flush``, which ends a compressed block: every line written before a ``flush``
    that returned can be read back even if the file is never closed. ``good`` is the
    file's size after the last ``flush`` that returned. A failed write (``OSError``: disk
    full, file too large) leaves the file's end undefined: ``cut`` then shortens it back
    to ``good`` and closes it, so it ends on a whole block and holds nothing half
    written; a file cut to nothing is removed. One thread at a time (the writer's lock).
    """

    def __init__(self, path: Path, compression: str) -> None:
        self.path = path
        self.good = 0
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                                       0o666)
        self._size = 0  # bytes written to the file
        self._held = bytearray()
        self._compress: Callable[[bytes], bytes] | None = None
        self._block: Callable[[], bytes] = bytes
        self._end: Callable[[], bytes] = bytes
        if compression == "gzip":
            zlib_like = deflate.compressobj(GZIP_LEVEL, deflate.DEFLATED, 31)
            self._compress = zlib_like.compress
            self._block = lambda: zlib_like.flush(deflate.Z_SYNC_FLUSH)
            self._end = zlib_like.flush
        elif compression == "zstd":
            zstandard = _zstandard()
            zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
            self._compress = zstd.compress
            self._block = lambda: zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            self._end = zstd.flush

    def write(self, data: bytes, /) -> None:
        """Take ``data`` (whole lines); raises ``OSError`` if a write to the file fails."""
        out = data if self._compress is None else self._compress(data)
        if len(out) >= SPILL and not self._held:  # a long run as it is: no copy into the buffer
            self._write_out(out)
            return
        self._held += out
        if len(self._held) >= SPILL:
            self._spill()

    def flush(self) -> None:
        """End a block and write everything held; then ``good`` is the file's size."""
        self._held += self._block()
        self._spill()
        self.good = self._size

    def close(self) -> None:
        """End the stream, write it out and close the file; raises ``OSError`` on a failed
        write (the file is still open then: ``cut`` it)."""
        self._held += self._end()
        self._spill()
        self.good = self._size
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def cut(self) -> None:
        """After a failed write: back to ``good`` (the last whole block), closed; removed if
        that leaves it empty. Never raises."""
        self._held.clear()
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, self.good)  # shrinking needs no space: it works on a full disk
        with contextlib.suppress(OSError):
            os.close(fd)
        if self.good == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _spill(self) -> None:
        if self._held:
            held, self._held = self._held, bytearray()
            self._write_out(held)

    def _write_out(self, data: bytes | bytearray) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            self._size += written
            view = view[written:]


def _decompressed(raw: IO[bytes], compression: str) -> Iterator[bytes]:
    """The file's bytes decompressed, chunk by chunk; a file cut short (a crash) simply
    ends where its data ends: no error for a missing end-of-stream marker."""
    if compression == "none":
        while chunk := raw.read(CHUNK):
            yield chunk
        return
    zstd = _zstandard() if compression == "zstd" else None

    def make() -> Any:
        return zlib.decompressobj(31) if zstd is None else zstd.ZstdDecompressor().decompressobj()
    decoder = make()
    while chunk := raw.read(CHUNK):
        while chunk:
            if getattr(decoder, "eof", False):  # the next gzip member / zstd frame
                decoder = make()
            yield decoder.decompress(chunk)
            chunk = decoder.unused_data if getattr(decoder, "eof", False) else b""


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Every whole line of one recording file, parsed, in file order.

    A last line without its newline (the file was cut short) is dropped, as is a
    line that is not JSON; raises ``OSError`` if the file cannot be opened.
    """
    compression = compression_of(path)
    with path.open("rb") as raw:
        pending = b""
        try:
            for chunk in _decompressed(raw, compression):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    parsed = _parse(line)
                    if parsed is not None:
                        yield parsed
        except (zlib.error, EOFError) as exc:  # corrupt tail: stop at the last whole line
            _log_truncated(path, exc)
        except Exception as exc:
            if type(exc).__name__ != "ZstdError":
                raise
            _log_truncated(path, exc)


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        parsed = json.loads(line)
    except ValueError:
        logger.warning("skipping a line that is not JSON: %r", line[:80])
        return None
    return parsed if isinstance(parsed, dict) and "t" in parsed and "msg" in parsed else None


def _log_truncated(path: Path, exc: BaseException) -> None:
    logger.warning("%s: corrupt data after the last whole line (%s)", path, exc)
