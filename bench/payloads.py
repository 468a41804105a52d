"""Realistic frame payloads (protocol.md §7) and the subscriptions that receive them.

Everything is deterministic (seeded), so the blaster process and the client workers
build the same subscriptions independently from a workload name.

Trades must be unique, as on the real feed: hyperliquid_ws drops a trade whose
``(tid, time)`` it has delivered before. So a pool holds trades as ``Template``s, with
fixed-width holes for ``time`` and ``tid`` that the blaster fills from a counter;
every other payload is a plain, pre-built ``bytes``.
"""

from __future__ import annotations

import json
import random
from typing import Any

Payload = dict[str, Any]
Template = tuple[bytes, bytes, bytes]  # before time, between time and tid, after tid
PoolItem = bytes | Template

TIME_BASE = 1_764_835_613_064  # ms; 13 digits, and stays 13 wide
TID_BASE = 500_000_000_000_000  # 15 digits, and stays 15 wide (tids are 50-bit)
TRADES_PER_MS = 4
_TIME_HOLE, _TID_HOLE = 9_999_999_999_999, 999_999_999_999_999

_REAL_COINS = (
    "BTC", "ETH", "SOL", "HYPE", "XRP", "DOGE", "SUI", "AVAX", "LINK", "BNB", "ADA", "TRX",
    "kPEPE", "WIF", "ARB", "OP", "APT", "NEAR", "LTC", "TIA", "SEI", "INJ", "TON", "ENA",
    "AAVE", "UNI", "JUP", "PENDLE", "FTM", "ATOM", "PURR/USDC", "@107",
)  # fmt: skip
MIX_COINS = 250
"""The mixed workload: this many coins x (trades, l2Book, bbo, candle) = 1,000 feeds."""
RECONNECT_COINS = 100
BOOK_LEVELS = 20


def coins(n: int) -> list[str]:
    """``n`` coin names: the real ones first, then ``COIN32``, ``COIN33``, ..."""
    return [_REAL_COINS[i] if i < len(_REAL_COINS) else f"COIN{i}" for i in range(n)]


def compact(payload: Payload) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _address(rng: random.Random) -> str:
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))


def _hash(rng: random.Random) -> str:
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(64))


def _level(rng: random.Random, px: float) -> dict[str, Any]:
    return {"px": f"{px:.1f}", "sz": f"{rng.uniform(0.001, 40):.4f}", "n": rng.randint(1, 30)}


def trade(rng: random.Random, coin: str, stamp: int, tid: int) -> dict[str, Any]:
    """One WsTrade (§7.10); ``stamp`` goes in ``time``."""
    return {
        "coin": coin, "side": rng.choice("AB"), "px": f"{rng.uniform(90000, 110000):.1f}",
        "sz": f"{rng.uniform(0.0001, 3):.5f}", "time": stamp, "hash": _hash(rng),
        "tid": tid, "users": [_address(rng), _address(rng)],
    }  # fmt: skip


def trades_frame(rng: random.Random, coin: str, stamp: int = TIME_BASE, tid: int = TID_BASE) -> Payload:
    return {"channel": "trades", "data": [trade(rng, coin, stamp, tid)]}


def trades_template(rng: random.Random, coin: str) -> Template:
    text = compact(trades_frame(rng, coin, _TIME_HOLE, _TID_HOLE))
    before, rest = text.split(b'"time":%d' % _TIME_HOLE)
    between, after = rest.split(b'"tid":%d' % _TID_HOLE)
    return before + b'"time":', between + b'"tid":', after


def fill(template: Template, seq: int) -> bytes:
    """The ``seq``-th unique trade from ``template``: same width as every other."""
    return b"%s%d%s%d%s" % (template[0], TIME_BASE + seq // TRADES_PER_MS, template[1], TID_BASE + seq,
                            template[2])


def l2book_frame(rng: random.Random, coin: str, stamp: int = 1764842873555, levels: int = BOOK_LEVELS) -> Payload:
    """A full book (§7.9), 20 levels a side unless told: bids descending, asks ascending."""
    mid = rng.uniform(90000, 110000)
    bids = [_level(rng, mid - 0.5 - i) for i in range(levels)]
    asks = [_level(rng, mid + 0.5 + i) for i in range(levels)]
    return {"channel": "l2Book", "data": {"coin": coin, "time": stamp, "levels": [bids, asks]}}


def bbo_frame(rng: random.Random, coin: str, stamp: int = 1766566375292) -> Payload:
    mid = rng.uniform(90000, 110000)
    return {"channel": "bbo",
            "data": {"coin": coin, "time": stamp, "bbo": [_level(rng, mid - 0.5), _level(rng, mid + 0.5)]}}


def candle_frame(rng: random.Random, coin: str, stamp: int = 1764806400000) -> Payload:
    o, c = rng.uniform(90000, 110000), rng.uniform(90000, 110000)
    return {"channel": "candle", "data": {
        "t": stamp, "T": stamp + 59_999, "s": coin, "i": "1m", "o": f"{o:.1f}", "c": f"{c:.1f}",
        "h": f"{max(o, c) + 10:.1f}", "l": f"{min(o, c) - 10:.1f}", "v": f"{rng.uniform(1, 500):.4f}",
        "n": rng.randint(1, 2000),
    }}  # fmt: skip


def scaled(workload: str) -> tuple[str, int, int] | None:
    """The scaling workloads: ``trades:N`` / ``l2Book:N`` spread frames evenly over N
    feeds (N coins); ``l2Book+L`` is one book feed whose frames carry L levels a side
    (``l2Book+200`` is ~16 KB, ``l2Book+2000`` ~160 KB). Returns (feed type, feeds,
    levels) or None for the fixed workloads."""
    for sep in (":", "+"):
        kind, found, number = workload.partition(sep)
        if found and kind in ("trades", "l2Book") and number.isdigit() and int(number) > 0:
            if sep == ":":
                return kind, int(number), BOOK_LEVELS
            if kind == "l2Book":
                return kind, 1, int(number)
    return None


def subscriptions(workload: str) -> list[dict[str, Any]]:
    """What a client subscribes to for ``workload``."""
    shape = scaled(workload)
    if shape is not None:
        return [{"type": shape[0], "coin": coin} for coin in coins(shape[1])]
    if workload in ("trades", "latency", "soak"):
        return [{"type": "trades", "coin": "BTC"}]
    if workload == "l2Book":
        return [{"type": "l2Book", "coin": "BTC"}]
    if workload == "mix":
        subs: list[dict[str, Any]] = []
        for coin in coins(MIX_COINS):
            subs += [{"type": "trades", "coin": coin}, {"type": "l2Book", "coin": coin},
                     {"type": "bbo", "coin": coin}, {"type": "candle", "coin": coin, "interval": "1m"}]
        return subs
    if workload == "reconnect":
        return [{"type": "trades", "coin": coin} for coin in coins(RECONNECT_COINS)]
    raise ValueError(f"unknown workload {workload!r}")


def frame_pool(workload: str, seed: int = 7) -> list[PoolItem]:
    """The payloads the blaster cycles through for ``workload``.

    The mix weighs feeds as a busy market does: per coin, three trade and three bbo
    frames for every full book and every candle update.
    """
    rng = random.Random(seed)
    shape = scaled(workload)
    if shape is not None:
        kind, feeds, levels = shape
        names = coins(feeds) * max(1, (64 if kind == "trades" else 16) // feeds)
        if kind == "trades":
            return [trades_template(rng, coin) for coin in names]
        return [compact(l2book_frame(rng, coin, levels=levels)) for coin in names]
    if workload in ("trades", "soak"):
        return [trades_template(rng, "BTC") for _ in range(64)]
    if workload == "l2Book":
        return [compact(l2book_frame(rng, "BTC")) for _ in range(16)]
    if workload == "mix":
        pool: list[PoolItem] = []
        for coin in coins(MIX_COINS):
            pool += [trades_template(rng, coin) for _ in range(3)]
            pool += [compact(bbo_frame(rng, coin)) for _ in range(3)]
            pool += [compact(l2book_frame(rng, coin)), compact(candle_frame(rng, coin))]
        rng.shuffle(pool)
        return pool
    raise ValueError(f"workload {workload!r} has no frame pool")


class StampedTrades:
    """Trades frames for BTC with a fresh ``time_ns()`` stamp in ``time``, built per send."""

    MARK = 1_000_000_000_000_000_000  # 19 digits, as wide as a time_ns() stamp

    def __init__(self, seed: int = 11) -> None:
        rng = random.Random(seed)
        self._templates = []
        for _ in range(64):
            text = compact(trades_frame(rng, "BTC", self.MARK, rng.randrange(1 << 50)))
            before, after = text.split(str(self.MARK).encode())
            self._templates.append((before, after))
        self._next = 0

    def build(self, stamp_ns: int) -> bytes:
        before, after = self._templates[self._next]
        self._next = (self._next + 1) % len(self._templates)
        return b"%s%d%s" % (before, stamp_ns, after)


def stamp_of_raw(frame: bytes) -> int:
    """The send stamp in a raw stamped trades frame, without parsing the JSON."""
    start = frame.index(b'"time":') + 7
    return int(frame[start : start + 19])
