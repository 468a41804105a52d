"""The scripted market: prices, books, trades, candles and two users' accounts.

Deterministic for a seed (only the wall-clock timestamps differ between runs). A
``Market`` is not thread-safe: once handed to a running ``LocalServer`` it belongs to
the server loop thread, and tests move it with ``LocalServer.advance`` rather than
calling ``step`` themselves.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from typing import Any

from hyperliquid_ws.testing.accounts import Account
from hyperliquid_ws.testing.assets import (
    ALL_ASSETS,
    ASSETS_BY_COIN,
    DELISTED,
    PERPS,
    SPOTS,
    Asset,
    Delisted,
    decimal_text,
    dex_perps,
    mid_coins,
    px_text,
    round_to_tick,
    significant_step,
    sz_text,
    usd_text,
)
from hyperliquid_ws.testing.candles import INTERVALS, CandleSeries
from hyperliquid_ws.testing.events import AccountEvents, Tick
from hyperliquid_ws.testing.market_activity import fill_once, move_money, simulate_account
from hyperliquid_ws.testing.order_rules import RestingOrders

BOOK_DEPTH = 20
MAX_TRADES_PER_COIN = 1000
MAX_FUNDING_HISTORY = 2000

Level = tuple[float, float, int]


class Market:
    """A small exchange that moves one tick per ``step`` call."""

    def __init__(self, seed: int = 1, *, funding_every: int = 10, warmup_ticks: int = 40) -> None:
        if funding_every < 1:
            raise ValueError("funding_every must be at least 1")
        if warmup_ticks < 0:
            raise ValueError("warmup_ticks must not be negative")
        self.seed = seed
        self.funding_every = funding_every
        self.rng = random.Random(seed)
        self.users: tuple[str, ...] = tuple(self.random_address() for _ in range(2))
        self.strangers: tuple[str, ...] = tuple(self.random_address() for _ in range(8))
        self.accounts: dict[str, Account] = {
            user: Account(user, usdc=100_000.0 * (n + 1)) for n, user in enumerate(self.users)}
        self.mids: dict[str, float] = {a.coin: a.start_px for a in ALL_ASSETS}
        self.books: dict[str, tuple[list[Level], list[Level]]] = {}
        self.book_times: dict[str, int] = {}
        self.trades: dict[str, deque[dict[str, Any]]] = {
            a.coin: deque(maxlen=MAX_TRADES_PER_COIN) for a in ALL_ASSETS}
        self.candles: dict[tuple[str, str], CandleSeries] = {
            (a.coin, i): CandleSeries(a, i) for a in ALL_ASSETS for i in INTERVALS}
        self.funding_rates: dict[str, float] = {a.coin: 0.0000125 for a in PERPS}
        self.funding_history: dict[str, deque[dict[str, Any]]] = {
            a.coin: deque(maxlen=MAX_FUNDING_HISTORY) for a in PERPS}
        self.day_volume: dict[str, tuple[float, float]] = {a.coin: (0.0, 0.0) for a in ALL_ASSETS}
        self.open_interest: dict[str, float] = {a.coin: 1000.0 / a.start_px * 1e4 for a in PERPS}
        self.last_fast: dict[str, dict[str, str | None]] = {}
        self.resting = RestingOrders()  # what order actions left on the book
        self.twaps: set[int] = set()  # TWAPs placed through actions and not cancelled
        self.trades_replay = 10  # trades sent right after a trades ack (LocalServer sets it)
        self.thin_books: dict[str, tuple[bool, bool]] = {}
        """Coins whose book lacks a side: (keeps bids, keeps asks); see ``scenarios``."""
        self.tick_count = 0
        self._next_oid = 1_000_000 + self.rng.randrange(1_000_000)
        self._next_tid = 10**14 + self.rng.randrange(10**12)
        self._next_twap_id = 100_000 + self.rng.randrange(100_000)
        self._last_time = 0
        start = self.now_ms()
        self._book_depth = 2  # while warming up only the touch is read: a cheap book will do
        for asset in ALL_ASSETS:
            self.rebuild_book(asset, start)
            for interval in INTERVALS:
                self.candles[(asset.coin, interval)].warm_up(
                    self.rng, start - (warmup_ticks + 1) * 1000, asset.start_px)
        for n in range(warmup_ticks):
            self.step(start - (warmup_ticks - n) * 1000)
        self._book_depth = BOOK_DEPTH
        for asset in ALL_ASSETS:
            self.rebuild_book(asset, self.book_times[asset.coin])
        self.last_fast = self.fast_ctxs()

    # ------------------------------------------------------------ identities
    def random_address(self) -> str:
        return f"0x{self.rng.getrandbits(160):040x}"

    def random_hash(self) -> str:
        return f"0x{self.rng.getrandbits(256):064x}"

    def new_oid(self) -> int:
        self._next_oid += 1
        return self._next_oid

    def new_tid(self) -> int:
        self._next_tid += 1 + self.rng.randrange(10**6)
        return self._next_tid

    def new_twap_id(self) -> int:  # running TWAPs placed through actions are in ``twaps``
        self._next_twap_id += 1
        return self._next_twap_id

    def now_ms(self) -> int:
        """Wall-clock milliseconds, never going backwards between calls."""
        self._last_time = max(int(time.time() * 1000), self._last_time)
        return self._last_time

    def account(self, user: str) -> Account:
        """The account of ``user`` (lowercase); an empty throwaway one for strangers."""
        return self.accounts.get(user.lower()) or Account(user.lower())

    # ----------------------------------------------------------------- ticks
    def step(self, at_ms: int | None = None) -> Tick:
        """Move the market one tick (at ``at_ms`` or now) and return what happened."""
        now = self.now_ms() if at_ms is None else at_ms
        tick = Tick(time=now)
        self.tick_count += 1
        for asset in ALL_ASSETS:
            drift = self.rng.gauss(0, asset.volatility)
            mid = round_to_tick(asset, self.mids[asset.coin] * math.exp(drift))
            self.mids[asset.coin] = max(mid, asset.tick * 10)
            self.rebuild_book(asset, now)
            if asset.coin in self.thin_books:
                continue  # nobody trades against a missing side
            for _ in range(self.rng.choice((0, 1, 1, 2, 3))):
                buyer, seller = self.rng.sample(self.strangers, 2)
                is_buy = self.rng.random() < 0.5
                sz = self.random_size(asset)
                self.record_trade(tick, asset, is_buy, self.touch_price(asset, is_buy), sz,
                                  buyer, seller, self.random_hash())
        for user in self.users:
            tick.accounts[user] = simulate_account(self, self.accounts[user], tick)
        if self.tick_count % self.funding_every == 0:
            self._pay_funding(tick)
        tick.changed_fast = self.fast_changes()
        return tick

    def fast_changes(self) -> dict[str, dict[str, str | None]]:
        """What changed in each coin's ``fastAssetCtxs`` entry since the last call: only the
        changed coins, and only their changed fields (``midPx`` may change to null)."""
        current = self.fast_ctxs()
        changed: dict[str, dict[str, str | None]] = {}
        for coin, ctx in current.items():
            before = self.last_fast.get(coin, {})
            delta = {name: value for name, value in ctx.items() if before.get(name, "") != value}
            if delta:
                changed[coin] = delta
        self.last_fast = current
        return changed

    def extra_trade(self, coin: str) -> Tick:
        """One more trade between strangers on ``coin``, now (for ``LocalServer.emit``)."""
        tick = Tick(time=self.now_ms())
        asset = ASSETS_BY_COIN[coin]
        buyer, seller = self.rng.sample(self.strangers, 2)
        is_buy = self.rng.random() < 0.5
        self.record_trade(tick, asset, is_buy, self.touch_price(asset, is_buy),
                          self.random_size(asset), buyer, seller, self.random_hash())
        return tick

    def extra_account_event(self, user: str, *, ledger: bool = False) -> AccountEvents:
        """One more fill (or ledger update) of ``user``, now (for ``LocalServer.emit``)."""
        tick = Tick(time=self.now_ms())
        events = AccountEvents()
        act = move_money if ledger else fill_once
        act(self, self.account(user), tick, events)
        return events

    def record_trade(
        self, tick: Tick, asset: Asset, is_buy: bool, px: float, sz: float,
        buyer: str, seller: str, trade_hash: str, tid: int | None = None,
    ) -> dict[str, Any]:
        """Add one trade to the tape, the candles and the volumes; return the WsTrade."""
        trade = {"coin": asset.coin, "side": "B" if is_buy else "A", "px": px_text(asset, px),
                 "sz": sz_text(asset, sz), "time": tick.time, "hash": trade_hash,
                 "tid": tid if tid is not None else self.new_tid(), "users": [buyer, seller]}
        self.trades[asset.coin].append(trade)
        tick.trades.setdefault(asset.coin, []).append(trade)
        for interval in INTERVALS:
            candle = self.candles[(asset.coin, interval)].record_trade(tick.time, px, sz)
            tick.candles[(asset.coin, interval)] = candle
        base, notional = self.day_volume[asset.coin]
        self.day_volume[asset.coin] = (base + sz, notional + sz * px)
        return trade

    def random_size(self, asset: Asset) -> float:
        notional = self.rng.lognormvariate(math.log(2000), 1.0)
        minimum = 10.0 ** -asset.sz_decimals
        return max(round(notional / self.mids[asset.coin], asset.sz_decimals), minimum)

    def touch_price(self, asset: Asset, is_buy: bool) -> float:
        """Best ask for a buy, best bid for a sell (the mid when that side is empty)."""
        bids, asks = self.books[asset.coin]
        side = asks if is_buy else bids
        return side[0][0] if side else self.mids[asset.coin]

    def book_mid(self, asset: Asset) -> float | None:
        """Halfway between the best bid and ask; None unless both sides have an order."""
        bids, asks = self.books[asset.coin]
        return (bids[0][0] + asks[0][0]) / 2 if bids and asks else None

    def rebuild_book(self, asset: Asset, now: int) -> None:
        mid = self.mids[asset.coin]
        half_spread = max(asset.tick, mid * 0.0001) / 2
        best_bid = math.floor((mid - half_spread) / asset.tick) * asset.tick
        best_ask = max(math.ceil((mid + half_spread) / asset.tick) * asset.tick,
                       best_bid + asset.tick)
        sides: list[list[Level]] = []
        for best, direction in ((best_bid, -1), (best_ask, 1)):
            levels: list[Level] = []
            px = best
            for _ in range(self._book_depth):
                levels.append((round_to_tick(asset, px), self.random_size(asset),
                               self.rng.randint(1, 12)))
                px += direction * asset.tick * self.rng.randint(1, 3)
            sides.append(levels)
        keep_bids, keep_asks = self.thin_books.get(asset.coin, (True, True))
        self.books[asset.coin] = (sides[0] if keep_bids else [], sides[1] if keep_asks else [])
        self.book_times[asset.coin] = now

    def _pay_funding(self, tick: Tick) -> None:
        for asset in PERPS:
            rate = self.rng.gauss(0.0000125, 0.00002)
            self.funding_rates[asset.coin] = rate
            self.funding_history[asset.coin].append({
                "coin": asset.coin, "fundingRate": decimal_text(rate, 10),
                "premium": decimal_text(rate - 0.0000125, 10), "time": tick.time})
            for user in self.users:
                payment = self.accounts[user].pay_funding(
                    asset, rate, self.mids[asset.coin], tick.time, self.random_hash())
                if payment is not None:
                    tick.accounts[user].fundings.append(payment)

    # ----------------------------------------------------------------- views
    def marks(self) -> dict[str, float]:
        return dict(self.mids)

    def all_mids(self, dex: str = "") -> dict[str, str]:
        """The allMids map of one perp dex (spot pairs come with the first one)."""
        return {a.coin: px_text(a, self.mids[a.coin]) for a in mid_coins(dex)}

    def fast_ctxs(self) -> dict[str, dict[str, str | None]]:
        """Every coin's ``fastAssetCtxs`` entry: its mark and its book mid (null when the
        book lacks a side)."""
        fast: dict[str, dict[str, str | None]] = {}
        for asset in ALL_ASSETS:
            mid = self.book_mid(asset)
            fast[asset.coin] = {"markPx": px_text(asset, self.mids[asset.coin]),
                                "midPx": None if mid is None else px_text(asset, mid)}
        return fast

    def l2_book(
        self, coin: str, *, n_sig_figs: int | None = None, mantissa: int | None = None,
        depth: int = BOOK_DEPTH,
    ) -> dict[str, Any]:
        """The l2Book data of ``coin``, aggregated to ``n_sig_figs`` when given."""
        asset = ASSETS_BY_COIN[coin]
        bids, asks = self.books[coin]
        sides = [bids, asks]
        if n_sig_figs is not None:
            step = significant_step(self.mids[coin], n_sig_figs, mantissa)
            sides = [_aggregate(bids, step, math.floor), _aggregate(asks, step, math.ceil)]
        levels = [[{"px": px_text(asset, px) if n_sig_figs is None else decimal_text(px, 8),
                    "sz": sz_text(asset, sz), "n": n} for px, sz, n in side[:depth]]
                  for side in sides]
        book: dict[str, Any] = {"coin": coin, "time": self.book_times[coin], "levels": levels}
        if n_sig_figs is not None and sides[0] and sides[1]:
            book["spread"] = decimal_text(sides[1][0][0] - sides[0][0][0], 8)
        return book

    def bbo(self, coin: str) -> dict[str, Any]:
        book = self.l2_book(coin, depth=1)
        bid, ask = book["levels"]
        return {"coin": coin, "time": book["time"],
                "bbo": [bid[0] if bid else None, ask[0] if ask else None]}

    def perp_ctx(self, asset: Asset) -> dict[str, Any]:
        """PerpAssetCtx (§8.3) of a perp."""
        bids, asks = self.books[asset.coin]
        base, notional = self.day_volume[asset.coin]
        mid = self.mids[asset.coin]
        rate = self.funding_rates[asset.coin]
        book_mid = self.book_mid(asset)
        two_sided = book_mid is not None and len(bids) > 1 and len(asks) > 1
        return {
            "funding": decimal_text(rate, 10), "openInterest": sz_text(asset, self.open_interest[
                asset.coin]), "prevDayPx": px_text(asset, asset.start_px),
            "dayNtlVlm": usd_text(notional),
            "premium": decimal_text(rate - 0.0000125, 10) if two_sided else None,
            "oraclePx": px_text(asset, mid * 0.9999), "markPx": px_text(asset, mid),
            "midPx": None if book_mid is None else px_text(asset, book_mid),
            "impactPxs": [px_text(asset, bids[1][0]), px_text(asset, asks[1][0])] if two_sided else None,
            "dayBaseVlm": sz_text(asset, base),
        }

    def spot_ctx(self, asset: Asset) -> dict[str, Any]:
        """SpotAssetCtx (§8.3) of a spot pair."""
        base, notional = self.day_volume[asset.coin]
        book_mid = self.book_mid(asset)
        return {
            "prevDayPx": px_text(asset, asset.start_px), "dayNtlVlm": usd_text(notional),
            "markPx": px_text(asset, self.mids[asset.coin]),
            "midPx": None if book_mid is None else px_text(asset, book_mid),
            "circulatingSupply": "599999999.0", "coin": asset.coin,
            "totalSupply": "1000000000.0", "dayBaseVlm": sz_text(asset, base),
        }

    def asset_ctx(self, asset: Asset) -> dict[str, Any]:
        return self.spot_ctx(asset) if asset.is_spot else self.perp_ctx(asset)

    def perp_ctxs(self, dex: str = "") -> list[dict[str, Any]]:
        """One dex's PerpAssetCtx list, in universe order: ctx ``i`` is ``meta.universe[i]``'s,
        a delisted entry's included (frozen, as live keeps it)."""
        ctxs = [(a.index, self.perp_ctx(a)) for a in dex_perps(dex)]
        if dex == "":
            ctxs += [(gone.index, _delisted_ctx(gone)) for gone in DELISTED]
        return [ctx for _, ctx in sorted(ctxs, key=lambda pair: pair[0])]

    def spot_ctxs(self) -> list[dict[str, Any]]:
        return [self.spot_ctx(a) for a in SPOTS]


def _delisted_ctx(gone: Delisted) -> dict[str, Any]:
    """The context live keeps for a delisted perp: its last prices, no activity."""
    return {"funding": "0.0", "openInterest": "0.0", "prevDayPx": gone.final_px, "dayNtlVlm": "0.0",
            "premium": None, "oraclePx": gone.final_px, "markPx": gone.final_px, "midPx": None,
            "impactPxs": None, "dayBaseVlm": "0.0"}


def _aggregate(levels: list[Level], step: float, to_bucket: Any) -> list[Level]:
    """Merge levels into price buckets of width ``step`` (bids round down, asks up)."""
    merged: dict[float, tuple[float, int]] = {}
    for px, sz, n in levels:
        bucket = round(to_bucket(px / step) * step, 8)
        old_sz, old_n = merged.get(bucket, (0.0, 0))
        merged[bucket] = (old_sz + sz, old_n + n)
    return [(px, sz, n) for px, (sz, n) in merged.items()]
