"""Import Hyperliquid's S3 archive files into the recording format (no download code).

- l2Book: ``market_data/<date>/<hour>/l2Book/<coin>.lz4``, LZ4-framed JSON lines of
  ``{"time": <ISO-8601 or ms>, "ver_num": n, "raw": {"channel": "l2Book", "data": {...}}}``.
- node fills: JSON lines (``.lz4`` or plain), each either ``[user, fill]`` or a block
  ``{"block_time": ..., "events": [[user, fill], ...]}``, fills in the API's shape.

Each input becomes lines of its own files (prefix ``archive-``), sorted by time, so
``read()`` merges them with recordings. Runs on the caller's thread; ``lz4`` (the
``data`` extra) is imported for ``.lz4`` files only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .writer import RecordingWriter

logger = logging.getLogger(__name__)


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".lz4":
        try:
            import lz4.frame
        except ImportError as exc:
            raise ImportError("archive .lz4 files need the lz4 package: pip install 'hyperliquid-ws[data]'") from exc
        return lz4.frame.open(path, "rb")  # type: ignore[no-any-return]
    return path.open("rb")


def _lines(path: Path) -> Iterator[Any]:
    with _open(path) as stream:
        for line in stream:
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    logger.warning("%s: skipping a line that is not JSON: %r", path, line[:80])


def _seconds(value: Any) -> float:
    """An archive time (ISO-8601 text, maybe with nanoseconds and no zone: UTC; or ms) in s."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000.0
    text = str(value).rstrip("Z")
    whole, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def l2book_records(path: Path) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """``(t, subscription, message)`` for every book in one archive l2Book file, by time."""
    out = []
    for line in _lines(path):
        raw = line.get("raw") if isinstance(line, dict) else None
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, dict):
            continue
        when = _seconds(line["time"]) if "time" in line else float(data["time"]) / 1000.0
        out.append((when, {"type": "l2Book", "coin": data.get("coin")}, {"channel": "l2Book", "data": data}))
    return sorted(out, key=lambda item: item[0])


def fill_records(path: Path) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """``(t, subscription, message)``: one userFills message per fill, by fill time."""
    out = []
    for line in _lines(path):
        events: Iterable[Any] = line.get("events", []) if isinstance(line, dict) else [line]
        for event in events:
            if not (isinstance(event, list) and len(event) == 2 and isinstance(event[1], dict)):
                continue
            user, fill = str(event[0]).lower(), event[1]
            message = {"channel": "userFills", "data": {"user": user, "fills": [fill]}}
            out.append((float(fill["time"]) / 1000.0, {"type": "userFills", "user": user}, message))
    return sorted(out, key=lambda item: item[0])


def import_archive(paths: Iterable[str | Path], out: str | Path, *, kind: str = "l2Book",
                   compression: str = "gzip") -> int:
    """Convert archive files (``kind``: ``"l2Book"`` or ``"fills"``) into recording files
    under ``out``; return how many messages were written. Raises ``ValueError`` for an
    unknown kind, ``ImportError`` for ``.lz4`` without lz4, ``OSError`` for unreadable files."""
    convert = {"l2Book": l2book_records, "fills": fill_records}.get(kind)
    if convert is None:
        raise ValueError(f"kind must be 'l2Book' or 'fills', got {kind!r}")
    written = 0
    for path in map(Path, paths):
        stem = path.name.split(".")[0].replace("/", "_")
        writer = RecordingWriter(out, compression=compression, prefix=f"archive-{kind}-{stem}-")
        try:
            for when, subscription, message in convert(path):
                writer.write(subscription, message, t=when)
                written += 1
        finally:
            writer.close()
    return written
