"""Builders for subscription dicts, one per subscription type, with snake_case arguments.

    from hyperliquid_ws import subs
    ws.subscribe(subs.trades("SOL"), on_trades)
    ws.subscribe(subs.l2_book("ETH", n_sig_figs=5, fast=True), on_book)

Each returns the same plain dict you could write by hand (``{"type": "trades", "coin":
"SOL"}``), typed with its ``TypedDict`` from :mod:`hyperliquid_ws.messages`. Optional
arguments left at their default are left out of the dict. Every dict is checked by
``feeds.canonical``, the check ``subscribe`` runs, so a bad argument raises
``ValueError`` here, where it was written. Pure functions: no I/O, no state.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from .feeds import canonical
from .messages import (
    ActiveAssetCtxSubscription,
    ActiveAssetDataSubscription,
    AllDexsAssetCtxsSubscription,
    AllDexsClearinghouseStateSubscription,
    AllMidsSubscription,
    AssetCtxsSubscription,
    BboSubscription,
    CandleSubscription,
    ClearinghouseStateSubscription,
    FastAssetCtxsSubscription,
    L2BookSubscription,
    NotificationSubscription,
    OpenOrdersSubscription,
    OrderUpdatesSubscription,
    OutcomeMetaUpdatesSubscription,
    SpotAssetCtxsSubscription,
    SpotStateSubscription,
    TradesSubscription,
    TwapStatesSubscription,
    UserEventsSubscription,
    UserFillsSubscription,
    UserFundingsSubscription,
    UserHistoricalOrdersSubscription,
    UserNonFundingLedgerUpdatesSubscription,
    UserTwapHistorySubscription,
    UserTwapSliceFillsSubscription,
    WebData2Subscription,
    WebData3Subscription,
)
from .shapes import CandleInterval

__all__ = [
    "active_asset_ctx",
    "active_asset_data",
    "all_dexs_asset_ctxs",
    "all_dexs_clearinghouse_state",
    "all_mids",
    "asset_ctxs",
    "bbo",
    "candle",
    "clearinghouse_state",
    "fast_asset_ctxs",
    "l2_book",
    "notification",
    "open_orders",
    "order_updates",
    "outcome_meta_updates",
    "spot_asset_ctxs",
    "spot_state",
    "trades",
    "twap_states",
    "user_events",
    "user_fills",
    "user_fundings",
    "user_historical_orders",
    "user_non_funding_ledger_updates",
    "user_twap_history",
    "user_twap_slice_fills",
    "web_data2",
    "web_data3",
]

_Sub = TypeVar("_Sub")


def _checked(subscription: _Sub) -> _Sub:
    """Run the client's own check (raises ``ValueError``) and return the dict unchanged."""
    canonical(subscription)
    return subscription


# --- Market data ---------------------------------------------------------------------------


def all_mids(*, dex: str | None = None) -> AllMidsSubscription:
    """Mid prices of every coin (of one perp dex; spot mids come with the first dex)."""
    sub: AllMidsSubscription = {"type": "allMids"}
    if dex is not None:
        sub["dex"] = dex
    return _checked(sub)


def trades(coin: str) -> TradesSubscription:
    """Trades of one coin, such as ``"BTC"``, ``"PURR/USDC"`` or ``"@107"``."""
    sub: TradesSubscription = {"type": "trades", "coin": coin}
    return _checked(sub)


def candle(coin: str, interval: CandleInterval) -> CandleSubscription:
    """Candles of one coin; ``interval`` is one of ``feeds.CANDLE_INTERVALS``."""
    sub: CandleSubscription = {"type": "candle", "coin": coin, "interval": interval}
    return _checked(sub)


def l2_book(
    coin: str,
    *,
    n_sig_figs: Literal[2, 3, 4, 5] | None = None,
    mantissa: Literal[1, 2, 5] | None = None,
    fast: bool = False,
) -> L2BookSubscription:
    """The order book of one coin; ``n_sig_figs`` aggregates it (``mantissa`` only with 5),
    ``fast`` sends 5 levels about every 0.5 s instead of 20."""
    sub: L2BookSubscription = {"type": "l2Book", "coin": coin}
    if n_sig_figs is not None:
        sub["nSigFigs"] = n_sig_figs
    if mantissa is not None:
        sub["mantissa"] = mantissa
    if fast is not False:  # not "if fast:", so that fast=0 reaches the check and is refused
        sub["fast"] = fast
    return _checked(sub)


def bbo(coin: str) -> BboSubscription:
    """The best bid and offer of one coin, pushed when it changes."""
    sub: BboSubscription = {"type": "bbo", "coin": coin}
    return _checked(sub)


def active_asset_ctx(coin: str) -> ActiveAssetCtxSubscription:
    """The context of one coin: channel ``activeAssetCtx`` (perp) or ``activeSpotAssetCtx`` (spot)."""
    sub: ActiveAssetCtxSubscription = {"type": "activeAssetCtx", "coin": coin}
    return _checked(sub)


def asset_ctxs(*, dex: str | None = None) -> AssetCtxsSubscription:
    """The contexts of every perp of one dex."""
    sub: AssetCtxsSubscription = {"type": "assetCtxs"}
    if dex is not None:
        sub["dex"] = dex
    return _checked(sub)


def all_dexs_asset_ctxs() -> AllDexsAssetCtxsSubscription:
    """The contexts of every perp of every dex."""
    sub: AllDexsAssetCtxsSubscription = {"type": "allDexsAssetCtxs"}
    return _checked(sub)


def spot_asset_ctxs() -> SpotAssetCtxsSubscription:
    """The contexts of every spot pair."""
    sub: SpotAssetCtxsSubscription = {"type": "spotAssetCtxs"}
    return _checked(sub)


def fast_asset_ctxs() -> FastAssetCtxsSubscription:
    """Compressed mark and mid price changes of every coin (``data`` is a base64 string)."""
    sub: FastAssetCtxsSubscription = {"type": "fastAssetCtxs"}
    return _checked(sub)


def outcome_meta_updates() -> OutcomeMetaUpdatesSubscription:
    """Outcome and question updates."""
    sub: OutcomeMetaUpdatesSubscription = {"type": "outcomeMetaUpdates"}
    return _checked(sub)


# --- One account: ``user`` is its address, "0x" and 40 hex digits -----------------------


def notification(user: str) -> NotificationSubscription:
    """Free-text notifications to one account."""
    sub: NotificationSubscription = {"type": "notification", "user": user}
    return _checked(sub)


def web_data2(user: str) -> WebData2Subscription:
    """The legacy all-in-one account view; prefer ``web_data3``."""
    sub: WebData2Subscription = {"type": "webData2", "user": user}
    return _checked(sub)


def web_data3(user: str) -> WebData3Subscription:
    """Account-wide state: agent, vault and per-dex summaries."""
    sub: WebData3Subscription = {"type": "webData3", "user": user}
    return _checked(sub)


def twap_states(user: str, *, dex: str | None = None) -> TwapStatesSubscription:
    """The running TWAP orders of one account (on one perp dex)."""
    sub: TwapStatesSubscription = {"type": "twapStates", "user": user}
    if dex is not None:
        sub["dex"] = dex
    return _checked(sub)


def clearinghouse_state(user: str, *, dex: str | None = None) -> ClearinghouseStateSubscription:
    """Margin summary and positions of one account (on one perp dex)."""
    sub: ClearinghouseStateSubscription = {"type": "clearinghouseState", "user": user}
    if dex is not None:
        sub["dex"] = dex
    return _checked(sub)


def open_orders(user: str, *, dex: str | None = None) -> OpenOrdersSubscription:
    """The open orders of one account (on one perp dex)."""
    sub: OpenOrdersSubscription = {"type": "openOrders", "user": user}
    if dex is not None:
        sub["dex"] = dex
    return _checked(sub)


def order_updates(user: str) -> OrderUpdatesSubscription:
    """Status changes of the orders of one account."""
    sub: OrderUpdatesSubscription = {"type": "orderUpdates", "user": user}
    return _checked(sub)


def user_events(user: str) -> UserEventsSubscription:
    """Fills, funding, liquidations and cancels; the frames' channel is ``"user"``."""
    sub: UserEventsSubscription = {"type": "userEvents", "user": user}
    return _checked(sub)


def user_fills(user: str, *, aggregate_by_time: bool = False) -> UserFillsSubscription:
    """Fills; ``aggregate_by_time`` merges the partial fills of one crossing order."""
    sub: UserFillsSubscription = {"type": "userFills", "user": user}
    if aggregate_by_time is not False:
        sub["aggregateByTime"] = aggregate_by_time
    return _checked(sub)


def user_fundings(user: str) -> UserFundingsSubscription:
    """Funding payments of one account."""
    sub: UserFundingsSubscription = {"type": "userFundings", "user": user}
    return _checked(sub)


def user_non_funding_ledger_updates(user: str) -> UserNonFundingLedgerUpdatesSubscription:
    """Deposits, withdrawals, transfers and other balance changes but funding."""
    sub: UserNonFundingLedgerUpdatesSubscription = {"type": "userNonFundingLedgerUpdates", "user": user}
    return _checked(sub)


def user_twap_slice_fills(user: str) -> UserTwapSliceFillsSubscription:
    """Fills of the slices of TWAP orders."""
    sub: UserTwapSliceFillsSubscription = {"type": "userTwapSliceFills", "user": user}
    return _checked(sub)


def user_twap_history(user: str) -> UserTwapHistorySubscription:
    """Status changes of TWAP orders."""
    sub: UserTwapHistorySubscription = {"type": "userTwapHistory", "user": user}
    return _checked(sub)


def user_historical_orders(user: str) -> UserHistoricalOrdersSubscription:
    """Orders of one account with their final or current status."""
    sub: UserHistoricalOrdersSubscription = {"type": "userHistoricalOrders", "user": user}
    return _checked(sub)


def active_asset_data(user: str, coin: str) -> ActiveAssetDataSubscription:
    """Leverage and tradable sizes of one account on one perp."""
    sub: ActiveAssetDataSubscription = {"type": "activeAssetData", "user": user, "coin": coin}
    return _checked(sub)


def spot_state(
    user: str, *, is_portfolio_margin: bool = False, ignore_portfolio_margin: bool = False
) -> SpotStateSubscription:
    """Spot balances of one account."""
    # Both flag spellings exist in the sources (protocol.md §7.21); both are passed through.
    sub: SpotStateSubscription = {"type": "spotState", "user": user}
    if is_portfolio_margin is not False:
        sub["isPortfolioMargin"] = is_portfolio_margin
    if ignore_portfolio_margin is not False:
        sub["ignorePortfolioMargin"] = ignore_portfolio_margin
    return _checked(sub)


def all_dexs_clearinghouse_state(user: str) -> AllDexsClearinghouseStateSubscription:
    """Margin summary and positions of one account on every perp dex."""
    sub: AllDexsClearinghouseStateSubscription = {"type": "allDexsClearinghouseState", "user": user}
    return _checked(sub)
