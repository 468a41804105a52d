"""``read()``: the messages of a recording, in time order across its files and feeds.

Runs on the caller's thread; files are read lazily, a chunk at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Union

from ..feeds import FEEDS, feed_hint
from .codec import SUFFIXES, read_lines

FeedFilter = Union[str, Mapping[str, Any]]  # noqa: UP007 (a runtime alias: py3.10 has no "str | Mapping[...]" here)
TimeBound = Union[float, int, datetime, None]  # noqa: UP007


@dataclass(frozen=True)
class Record:
    """One recorded message.

    ``time``: when the client received it (s since the epoch, float);
    ``subscription``: the subscription it came on (a dict as subscribed);
    ``message``: ``{"channel": str, "data": ...}`` as delivered, with
    ``"backfill": True`` when it was recovered over HTTP after a reconnect.
    """

    time: float
    subscription: dict[str, Any]
    message: dict[str, Any]

    @property
    def channel(self) -> str:
        return str(self.message.get("channel"))

    @property
    def data(self) -> Any:
        return self.message.get("data")

    @property
    def backfill(self) -> bool:
        return bool(self.message.get("backfill"))


def file_order(path: Path) -> tuple[str, str, int, str]:
    """Where a file goes among a directory's: by name, and an hour's ``.1``, ``.2`` ...
    ``.10`` after the file they follow, in number order. ``read`` merges lines with
    the same ``t`` in this order, so lines written again after a failed write (into the
    next ``.N`` file, ``writer.py``) come after the ones before them."""
    name = path.name
    suffix = next((s for s in SUFFIXES.values() if name.endswith(s)), "")
    stem = name[:len(name) - len(suffix)]
    base, dot, number = stem.rpartition(".")
    if dot and number.isascii() and number.isdigit():
        return str(path.parent), base, int(number), suffix
    return str(path.parent), stem, 0, suffix


def recording_files(path: str | Path | Iterable[str | Path]) -> list[Path]:
    """The recording files at ``path``: a file, a directory (searched recursively, its
    files in ``file_order``) or several of them. Raises ``FileNotFoundError`` if a path
    does not exist."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found += sorted((p for p in item.rglob("*") if p.is_file() and p.name.endswith(tuple(SUFFIXES.values()))),
                            key=file_order)
        elif item.exists():
            found.append(item)
        else:
            raise FileNotFoundError(f"no recording at {item}")
    return found


def read(path: str | Path | Iterable[str | Path], *, feeds: Iterable[FeedFilter] | None = None,
         start: TimeBound = None, end: TimeBound = None) -> Iterator[Record]:
    """Yield the ``Record`` s of a recording in receive-time order, merged across files.

    - ``path``: a recording file, a directory of them, or a list of either.
    - ``feeds``: keep only these: a type name (``"trades"``: every trades feed) or a
      subscription dict, matched on the fields it gives (``{"type": "l2Book", "coin": "ETH"}``);
      a type name this version does not know raises ``ValueError`` (a dict matches any).
    - ``start``/``end``: receive-time bounds, inclusive (s since the epoch, or an aware ``datetime``).

    Each file must be in time order (the recorder and the importer write them so); a
    file cut short by a crash yields its lines up to the last whole one. Raises
    ``FileNotFoundError`` for a missing path, ``ValueError`` for a file that is not a recording.
    """
    wanted = None if feeds is None else [_matcher(f) for f in feeds]
    low, high = _seconds(start), _seconds(end)
    streams = [_records(p) for p in recording_files(path)]
    for record in heapq.merge(*streams, key=lambda r: r.time):
        if low is not None and record.time < low:
            continue
        if high is not None and record.time > high:
            continue  # later files may still hold earlier lines: keep merging
        if wanted is not None and not any(match(record.subscription) for match in wanted):
            continue
        yield record


def _records(path: Path) -> Iterator[Record]:
    for line in read_lines(path):
        yield Record(float(line["t"]), dict(line.get("sub") or {}), line["msg"])


def _matcher(feed: FeedFilter) -> Any:
    if isinstance(feed, str):
        if feed not in FEEDS:  # a typo would match nothing, silently
            raise ValueError(f"unknown feed type {feed!r} in feeds; {feed_hint(feed)} "
                             f"(a type this version does not know: {{'type': {feed!r}}})")
        return lambda sub: sub.get("type") == feed
    if isinstance(feed, Mapping):
        wanted = dict(feed)
        return lambda sub: all(sub.get(k) == v for k, v in wanted.items())
    raise ValueError(f"a feed filter is a type name or a subscription dict, got {feed!r}")


def _seconds(bound: TimeBound) -> float | None:
    if bound is None:
        return None
    if isinstance(bound, datetime):
        if bound.tzinfo is None:
            raise ValueError("start/end datetimes must be timezone-aware (e.g. tzinfo=timezone.utc)")
        return bound.timestamp()
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise ValueError(f"start/end must be seconds since the epoch or a datetime, got {bound!r}")
    return float(bound)
