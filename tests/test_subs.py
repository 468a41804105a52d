"""Subscription builders: each returns the dict a user would write, checked like subscribe()."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from typing import Any

import pytest

from hyperliquid_ws import subs
from hyperliquid_ws.feeds import CANDLE_INTERVALS, FEEDS, canonical
from hyperliquid_ws.messages import SubscriptionDict
from hyperliquid_ws.shapes import CandleInterval

USER = "0x" + "Ab" * 20
unchecked: Any = subs  # the builders as an untyped caller reaches them: wrong types get through to run time

# (what the builder is called with, the dict a user would write by hand)
CASES: list[tuple[Callable[[], Any], dict[str, Any]]] = [
    (lambda: subs.all_mids(), {"type": "allMids"}),
    (lambda: subs.all_mids(dex="xyz"), {"type": "allMids", "dex": "xyz"}),
    (lambda: subs.all_mids(dex=""), {"type": "allMids", "dex": ""}),
    (lambda: subs.notification(USER), {"type": "notification", "user": USER}),
    (lambda: subs.web_data2(USER), {"type": "webData2", "user": USER}),
    (lambda: subs.web_data3(USER), {"type": "webData3", "user": USER}),
    (lambda: subs.twap_states(USER), {"type": "twapStates", "user": USER}),
    (lambda: subs.twap_states(USER, dex="xyz"), {"type": "twapStates", "user": USER, "dex": "xyz"}),
    (lambda: subs.clearinghouse_state(USER), {"type": "clearinghouseState", "user": USER}),
    (
        lambda: subs.clearinghouse_state(USER, dex="xyz"),
        {"type": "clearinghouseState", "user": USER, "dex": "xyz"},
    ),
    (lambda: subs.open_orders(USER), {"type": "openOrders", "user": USER}),
    (lambda: subs.open_orders(USER, dex="xyz"), {"type": "openOrders", "user": USER, "dex": "xyz"}),
    (lambda: subs.candle("BTC", "1m"), {"type": "candle", "coin": "BTC", "interval": "1m"}),
    (lambda: subs.candle("HYPE", "1M"), {"type": "candle", "coin": "HYPE", "interval": "1M"}),
    (lambda: subs.l2_book("ETH"), {"type": "l2Book", "coin": "ETH"}),
    (
        lambda: subs.l2_book("ETH", n_sig_figs=None, mantissa=None, fast=False),
        {"type": "l2Book", "coin": "ETH"},
    ),
    (lambda: subs.l2_book("ETH", n_sig_figs=3), {"type": "l2Book", "coin": "ETH", "nSigFigs": 3}),
    (
        lambda: subs.l2_book("ETH", n_sig_figs=5, mantissa=2, fast=True),
        {"type": "l2Book", "coin": "ETH", "nSigFigs": 5, "mantissa": 2, "fast": True},
    ),
    (lambda: subs.trades("SOL"), {"type": "trades", "coin": "SOL"}),
    (lambda: subs.trades("@107"), {"type": "trades", "coin": "@107"}),
    (lambda: subs.order_updates(USER), {"type": "orderUpdates", "user": USER}),
    (lambda: subs.user_events(USER), {"type": "userEvents", "user": USER}),
    (lambda: subs.user_fills(USER), {"type": "userFills", "user": USER}),
    (
        lambda: subs.user_fills(USER, aggregate_by_time=True),
        {"type": "userFills", "user": USER, "aggregateByTime": True},
    ),
    (lambda: subs.user_fundings(USER), {"type": "userFundings", "user": USER}),
    (
        lambda: subs.user_non_funding_ledger_updates(USER),
        {"type": "userNonFundingLedgerUpdates", "user": USER},
    ),
    (lambda: subs.user_twap_slice_fills(USER), {"type": "userTwapSliceFills", "user": USER}),
    (lambda: subs.user_twap_history(USER), {"type": "userTwapHistory", "user": USER}),
    (lambda: subs.user_historical_orders(USER), {"type": "userHistoricalOrders", "user": USER}),
    (lambda: subs.active_asset_ctx("BTC"), {"type": "activeAssetCtx", "coin": "BTC"}),
    (lambda: subs.active_asset_ctx("@1"), {"type": "activeAssetCtx", "coin": "@1"}),
    (
        lambda: subs.active_asset_data(USER, "BTC"),
        {"type": "activeAssetData", "user": USER, "coin": "BTC"},
    ),
    (lambda: subs.bbo("ETH"), {"type": "bbo", "coin": "ETH"}),
    (lambda: subs.spot_state(USER), {"type": "spotState", "user": USER}),
    (
        lambda: subs.spot_state(USER, is_portfolio_margin=True),
        {"type": "spotState", "user": USER, "isPortfolioMargin": True},
    ),
    (
        lambda: subs.spot_state(USER, ignore_portfolio_margin=True),
        {"type": "spotState", "user": USER, "ignorePortfolioMargin": True},
    ),
    (
        lambda: subs.all_dexs_clearinghouse_state(USER),
        {"type": "allDexsClearinghouseState", "user": USER},
    ),
    (lambda: subs.all_dexs_asset_ctxs(), {"type": "allDexsAssetCtxs"}),
    (lambda: subs.asset_ctxs(), {"type": "assetCtxs"}),
    (lambda: subs.asset_ctxs(dex="xyz"), {"type": "assetCtxs", "dex": "xyz"}),
    (lambda: subs.spot_asset_ctxs(), {"type": "spotAssetCtxs"}),
    (lambda: subs.fast_asset_ctxs(), {"type": "fastAssetCtxs"}),
    (lambda: subs.outcome_meta_updates(), {"type": "outcomeMetaUpdates"}),
]


def snake_case(type_: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", type_).lower()


@pytest.mark.parametrize(("build", "expected"), CASES, ids=[repr(e) for _, e in CASES])
def test_builder_returns_the_dict_a_user_would_write(build: Callable[[], Any], expected: dict[str, Any]) -> None:
    built = build()
    assert built == expected
    assert type(built) is dict  # a plain dict: TypedDicts are types for the checker only
    assert list(built) == list(expected)  # even the key order
    feed, _ = canonical(built)
    assert feed.type == expected["type"]


def test_every_subscription_type_has_a_builder_named_after_it() -> None:
    for type_ in FEEDS:
        name = snake_case(type_)
        assert callable(getattr(subs, name, None)), f"subs has no builder {name}() for {type_}"
    assert sorted(subs.__all__) == sorted(snake_case(t) for t in FEEDS)
    assert {expected["type"] for _, expected in CASES} == set(FEEDS)


def test_every_subscription_type_has_a_typed_dict() -> None:
    typed = {typing.get_args(typing.get_type_hints(td)["type"])[0] for td in typing.get_args(SubscriptionDict)}
    assert typed == set(FEEDS)


def test_typed_fields_match_the_feed_table() -> None:
    for td in typing.get_args(SubscriptionDict):
        type_ = typing.get_args(typing.get_type_hints(td)["type"])[0]
        feed = FEEDS[type_]
        assert td.__required_keys__ == {"type", *feed.required}, type_
        assert td.__optional_keys__ == set(feed.optional), type_


def test_candle_interval_literal_matches_the_feed_table() -> None:
    assert typing.get_args(CandleInterval) == CANDLE_INTERVALS
    for interval in CANDLE_INTERVALS:
        assert unchecked.candle("BTC", interval)["interval"] == interval


def test_user_addresses_are_kept_as_written() -> None:
    # subscribe() lowercases for routing; the builder returns what was asked.
    assert subs.user_fills(USER)["user"] == USER


@pytest.mark.parametrize(
    ("build", "complaint"),
    [
        (lambda: unchecked.trades(""), "non-empty string"),
        (lambda: unchecked.trades(" SOL"), "non-empty string"),
        (lambda: unchecked.trades(7), "non-empty string"),
        (lambda: unchecked.bbo(None), "non-empty string"),
        (lambda: unchecked.candle("BTC", "2m"), "1m, 3m, 5m"),
        (lambda: unchecked.candle("", "1m"), "non-empty string"),
        (lambda: unchecked.l2_book("BTC", n_sig_figs=6), "2, 3, 4, 5 or None"),
        (lambda: unchecked.l2_book("BTC", n_sig_figs=True), "2, 3, 4, 5 or None"),
        (lambda: unchecked.l2_book("BTC", n_sig_figs=4, mantissa=2), "only with nSigFigs=5"),
        (lambda: unchecked.l2_book("BTC", n_sig_figs=5, mantissa=3), "1, 2, 5 or None"),
        (lambda: unchecked.l2_book("BTC", fast="yes"), "true or false"),
        (lambda: unchecked.l2_book("BTC", fast=0), "true or false"),
        (lambda: unchecked.user_fills("0x1234"), "40 hex digits"),
        (lambda: unchecked.user_fills(USER, aggregate_by_time=1), "true or false"),
        (lambda: unchecked.order_updates("0x" + "g" * 40), "40 hex digits"),
        (lambda: unchecked.active_asset_data(USER, ""), "non-empty string"),
        (lambda: unchecked.active_asset_data("BTC", USER), "40 hex digits"),
        (lambda: unchecked.all_mids(dex=3), "'dex' as a string"),
        (lambda: unchecked.clearinghouse_state(USER, dex=0), "'dex' as a string"),
        (lambda: unchecked.spot_state(USER, is_portfolio_margin="no"), "true or false"),
    ],
)
def test_bad_arguments_raise_value_error_at_once(build: Callable[[], Any], complaint: str) -> None:
    with pytest.raises(ValueError) as caught:
        build()
    assert complaint in str(caught.value)


def test_builders_take_options_by_keyword_only() -> None:
    with pytest.raises(TypeError):
        unchecked.l2_book("ETH", 5)
    with pytest.raises(TypeError):
        unchecked.user_fills(USER, True)
