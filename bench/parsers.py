"""Which JSON parser the ``fast`` extra should use, by measurement: ``python -m bench.parsers``.

Decodes the same frames (bytes off the wire) into the same Python objects with each
parser, in this process: ``json`` (stdlib ``json.loads``), ``ours`` (the stdlib scanner as
``hyperliquid_ws.router`` calls it without the extra), ``orjson.loads`` and
``msgspec.json.decode`` (plain decode into dicts and lists). Every parser must give an
output equal to ``json.loads``'s, or its row says how it differs. Figures are us per
frame: median and spread (min-max) over ``repeats`` timings of about 0.1 s each.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from bench.payloads import compact, l2book_frame, trades_frame

Parser = Callable[[bytes], Any]


def frames() -> dict[str, bytes]:
    rng = random.Random(3)
    return {"trades 0.3 KB": compact(trades_frame(rng, "BTC")),
            "l2Book 1.6 KB": compact(l2book_frame(rng, "BTC")),
            "l2Book 16 KB": compact(l2book_frame(rng, "BTC", levels=200)),
            "l2Book 160 KB": compact(l2book_frame(rng, "BTC", levels=2000))}


def parsers() -> dict[str, Parser]:
    from hyperliquid_ws.router import _stdlib_loads

    found: dict[str, Parser] = {"json": json.loads, "ours (stdlib scanner)": _stdlib_loads}
    try:
        import orjson
        found["orjson"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec
        found["msgspec"] = msgspec.json.Decoder().decode
    except ImportError:
        pass
    return found


def time_one(parse: Parser, frame: bytes, repeats: int) -> list[float]:
    """us per call, ``repeats`` times, each over enough calls to take ~0.1 s."""
    timer = timeit.Timer(lambda: parse(frame))
    number, _ = timer.autorange()
    number = max(1, number // 2)  # autorange aims at 0.2 s
    return [t / number * 1e6 for t in timer.repeat(repeats, number)]


def measure(repeats: int = 7) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, frame in frames().items():
        expected = json.loads(frame)
        out[name] = {}
        for parser_name, parse in parsers().items():
            same = parse(frame) == expected
            times = time_one(parse, frame, repeats)
            out[name][parser_name] = {"us": statistics.median(times), "min": min(times), "max": max(times),
                                      "same_output": same, "bytes": len(frame)}
    return out


def render(result: dict[str, dict[str, dict[str, Any]]], repeats: int) -> list[str]:
    names = list(dict.fromkeys(p for by_parser in result.values() for p in by_parser))
    header = "| frame | " + " | ".join(names) + " |"
    lines = [f"## Parsers: us per frame decoded from bytes (median of {repeats}, min-max; x = vs json.loads)",
             header, "|" + "---|" * (len(names) + 1)]
    for frame, by_parser in result.items():
        base = by_parser["json"]["us"]
        cells = []
        for name in names:
            row = by_parser.get(name)
            if row is None:
                cells.append("n/a")
                continue
            cell = f"{row['us']:.2f} ({row['min']:.2f}-{row['max']:.2f}) {base / row['us']:.2f}x"
            cells.append(cell if row["same_output"] else cell + " DIFFERENT OUTPUT")
        lines.append(f"| {frame} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parsers", description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print("\n".join(render(measure(args.repeats), args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
