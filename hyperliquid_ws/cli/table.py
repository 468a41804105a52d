"""``hyperliquid-ws --format table``: messages and ``/info`` answers as short lines for a
person at a terminal (``--format json``, the default, is for programs).

Pure functions from a parsed message to lines of text; no I/O. The common feeds get a
line shaped for them (a trade, a book's top, a candle); anything else is shown as its
plain fields, nested values summarised, each line cut to ``WIDTH`` characters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

WIDTH = 160  # characters per line at most
_MIDS_SHOWN = 8  # allMids: coins per line


def message_lines(message: Any) -> list[str]:
    """The lines one feed message prints as."""
    if not isinstance(message, dict):
        return [_cut(json.dumps(message))]
    channel, data = message.get("channel"), message.get("data")
    shape = _SHAPES.get(str(channel))
    try:
        lines = shape(data) if shape is not None else [f"{channel}  {_fields(data)}"]
    except (KeyError, TypeError, ValueError, IndexError):  # an unusual message: show it plainly
        lines = [f"{channel}  {_fields(data)}"]
    return [_cut(line) for line in lines]


def answer_lines(answer: Any) -> list[str]:
    """The lines an ``/info`` answer prints as: a list of records as aligned rows, a
    dict key by key (its lists of records as rows under the key)."""
    if isinstance(answer, list):
        return _rows(answer)
    if isinstance(answer, dict):
        lines: list[str] = []
        for key, value in answer.items():
            if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
                lines.append(f"{key} ({len(value)}):")
                lines.extend("  " + row for row in _rows(value))
            else:
                lines.append(_cut(f"{key}: {_value(value)}"))
        return lines
    return [_cut(json.dumps(answer))]


def _rows(items: list[Any]) -> list[str]:
    """Records as rows of aligned columns: their plain fields, in the first one's order."""
    records = [item for item in items if isinstance(item, dict)]
    if len(records) != len(items) or not records:
        return [_cut(_value(item)) for item in items]
    columns = list(dict.fromkeys(key for record in records for key in record))
    cells = [[_value(record.get(column, "")) for column in columns] for record in records]
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    header = "  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))
    body = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return [_cut(line.rstrip()) for line in (header, *body)]


def _trades(data: Any) -> list[str]:
    return [f"{_clock(t['time'])}  {t['coin']:<10} {'buy ' if t['side'] == 'B' else 'sell'} "
            f"{t['sz']:>12} @ {t['px']}" for t in data]


def _book(data: Any) -> list[str]:
    bids, asks = data["levels"]
    return [f"{_clock(data['time'])}  {data['coin']:<10} {_level('bid', bids[0] if bids else None)}  |  "
            f"{_level('ask', asks[0] if asks else None)}  ({len(bids)}/{len(asks)} levels)"]


def _bbo(data: Any) -> list[str]:
    bid, ask = data["bbo"]
    return [f"{_clock(data['time'])}  {data['coin']:<10} {_level('bid', bid)}  |  {_level('ask', ask)}"]


def _candle(data: Any) -> list[str]:
    return [f"{_clock(data['t'])}  {data['s']:<10} {data['i']:<3} o {data['o']}  h {data['h']}  "
            f"l {data['l']}  c {data['c']}  v {data['v']}  ({data['n']} trades)"]


def _mids(data: Any) -> list[str]:
    mids = sorted(data["mids"].items())
    return [f"allMids  {len(mids)} coins: " + "  ".join(f"{coin} {px}" for coin, px in mids[:_MIDS_SHOWN])
            + ("  …" if len(mids) > _MIDS_SHOWN else "")]


_SHAPES: dict[str, Callable[[Any], list[str]]] = {
    "trades": _trades, "l2Book": _book, "bbo": _bbo, "candle": _candle, "allMids": _mids,
}


def _level(side: str, level: Any) -> str:
    return f"{side} -" if not level else f"{side} {level['px']} x {level['sz']}"


def _clock(ms: Any) -> str:
    seconds = int(ms) / 1000
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) + f".{int(ms) % 1000:03d}"


def _fields(data: Any) -> str:
    if isinstance(data, dict):
        return "  ".join(f"{key}={_value(value)}" for key, value in data.items())
    return _value(data)


def _value(value: Any) -> str:
    """A plain value as it is; a nested one as its size (``[20]``, ``{3}``)."""
    if isinstance(value, list):
        return f"[{len(value)}]"
    if isinstance(value, dict):
        return "{" + str(len(value)) + "}"
    return "-" if value is None else str(value)


def _cut(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"
