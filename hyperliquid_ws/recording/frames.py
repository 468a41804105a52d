"""Tidy tables from a recording: ``to_dataframe`` and ``to_parquet`` (the ``data`` extra).

pandas (and pyarrow, for Parquet) are imported when these are called, never before.
Runs on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .reader import Record, read

TABLES = ("trades", "l2Book", "candle", "fills")
"""The tables ``to_dataframe`` can make (``fills`` come from userFills and userEvents)."""


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ImportError("tables need pandas: pip install 'hyperliquid-ws[data]'") from exc
    return pandas


def _num(text: Any) -> float | None:
    return None if text is None else float(text)


def _trade_rows(record: Record) -> Iterator[dict[str, Any]]:
    for trade in record.data or []:
        yield {"received": record.time, "time": trade.get("time"), "coin": trade.get("coin"),
               "side": trade.get("side"), "px": _num(trade.get("px")), "sz": _num(trade.get("sz")),
               "tid": trade.get("tid"), "hash": trade.get("hash"), "backfill": record.backfill}


def _book_rows(record: Record, levels: int) -> Iterator[dict[str, Any]]:
    data = record.data or {}
    row: dict[str, Any] = {"received": record.time, "time": data.get("time"), "coin": data.get("coin")}
    sides = data.get("levels") or [[], []]
    for side, name in zip(sides, ("bid", "ask"), strict=False):
        for n in range(levels):
            level = side[n] if n < len(side) else {}
            row[f"{name}_px_{n}"] = _num(level.get("px"))
            row[f"{name}_sz_{n}"] = _num(level.get("sz"))
            row[f"{name}_n_{n}"] = level.get("n")
    yield row


def _candle_rows(record: Record) -> Iterator[dict[str, Any]]:
    c = record.data or {}
    yield {"received": record.time, "time": c.get("t"), "close_time": c.get("T"), "coin": c.get("s"),
           "interval": c.get("i"), "open": _num(c.get("o")), "high": _num(c.get("h")), "low": _num(c.get("l")),
           "close": _num(c.get("c")), "volume": _num(c.get("v")), "trades": c.get("n"),
           "backfill": record.backfill}


def _fill_rows(record: Record) -> Iterator[dict[str, Any]]:
    data = record.data if isinstance(record.data, dict) else {}
    user = record.subscription.get("user")
    for fill in data.get("fills") or []:
        yield {"received": record.time, "time": fill.get("time"), "user": user, "coin": fill.get("coin"),
               "side": fill.get("side"), "px": _num(fill.get("px")), "sz": _num(fill.get("sz")),
               "dir": fill.get("dir"), "closedPnl": _num(fill.get("closedPnl")), "fee": _num(fill.get("fee")),
               "oid": fill.get("oid"), "tid": fill.get("tid"), "snapshot": bool(data.get("isSnapshot")),
               "backfill": record.backfill}


def rows(records: Iterable[Record], table: str, *, levels: int = 5) -> Iterator[dict[str, Any]]:
    """The flat rows of one ``table`` (see ``TABLES``) from ``records``; no pandas needed.
    Prices and sizes become floats; times stay as sent (ms), ``received`` in s."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {', '.join(TABLES)}, got {table!r}")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a whole number >= 1, got {levels!r}")
    for record in records:
        kind = record.subscription.get("type")
        if table == "trades" and kind == "trades":
            yield from _trade_rows(record)
        elif table == "l2Book" and kind == "l2Book":
            yield from _book_rows(record, levels)
        elif table == "candle" and kind == "candle":
            yield from _candle_rows(record)
        elif table == "fills" and kind in ("userFills", "userEvents"):
            yield from _fill_rows(record)


def to_dataframe(source: str | Path | Iterable[Record], table: str = "trades", *, levels: int = 5) -> Any:
    """A pandas ``DataFrame`` of one table (``"trades"``, ``"l2Book"`` with ``levels``
    levels a side, ``"candle"``, ``"fills"``) from a recording path or ``Record`` s.
    ``received`` and ``time`` become UTC timestamps. Raises ``ImportError`` without pandas,
    ``ValueError`` for an unknown table."""
    pandas = _pandas()
    records = read(source) if isinstance(source, (str, Path)) else source
    frame = pandas.DataFrame(list(rows(records, table, levels=levels)))
    if len(frame):
        frame["received"] = pandas.to_datetime(frame["received"], unit="s", utc=True)
        frame["time"] = pandas.to_datetime(frame["time"], unit="ms", utc=True)
    return frame


def to_parquet(source: str | Path, out: str | Path, *, levels: int = 5) -> list[Path]:
    """Write one Parquet file per non-empty table into ``out`` (created); return their paths.
    Needs pandas and pyarrow (the ``data`` extra)."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    records = list(read(source))
    for table in TABLES:
        frame = to_dataframe(records, table, levels=levels)
        if len(frame):
            path = directory / f"{table}.parquet"
            frame.to_parquet(path, index=False)
            written.append(path)
    return written
