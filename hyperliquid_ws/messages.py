"""Typed descriptions of every subscription and every message (protocol.md §7).

Everything here is a ``TypedDict``: a static description of the plain dicts that go over
the wire. The client never builds or converts these types; annotating a callback with one
only tells the type checker (and the reader) what the dict holds::

    from hyperliquid_ws.messages import TradesMessage

    def on_trades(message: TradesMessage) -> None:
        for trade in message["data"]:
            prices[trade["coin"]] = trade["px"]

Three groups, in order: the ``subscription`` dicts (``TradesSubscription`` ...), the
``data`` of each channel (``L2BookData`` ...), and the whole frames a callback receives
(``TradesMessage`` ...), with the unions ``SubscriptionDict`` and ``Message``. Objects
that several channels share (fills, levels, asset contexts ...) are in
:mod:`hyperliquid_ws.shapes`.

Python 3.10 has no ``NotRequired``, so keys that may be missing are declared in small
``total=False`` base classes that the full types inherit from.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, final

from .shapes import (
    Candle,
    CandleInterval,
    ClearinghouseState,
    FrontendOpenOrder,
    HistoricalOrder,
    LedgerUpdate,
    Leverage,
    PerpAssetCtx,
    SpotAssetCtx,
    SpotClearinghouseState,
    TwapHistoryItem,
    TwapSliceFill,
    TwapState,
    UserFunding,
    WsFill,
    WsLevel,
    WsOrderUpdate,
    WsTrade,
)

# --- Subscriptions: the dict given to ``subscribe`` (§7 "req") ----------------------------


class _DexOption(TypedDict, total=False):
    dex: str  # a perp dex by name; left out (or "") is the first perp dex


class AllMidsSubscription(_DexOption):
    type: Literal["allMids"]


class NotificationSubscription(TypedDict):
    type: Literal["notification"]
    user: str


class WebData2Subscription(TypedDict):
    type: Literal["webData2"]
    user: str


class WebData3Subscription(TypedDict):
    type: Literal["webData3"]
    user: str


class TwapStatesSubscription(_DexOption):
    type: Literal["twapStates"]
    user: str


class ClearinghouseStateSubscription(_DexOption):
    type: Literal["clearinghouseState"]
    user: str


class OpenOrdersSubscription(_DexOption):
    type: Literal["openOrders"]
    user: str


class CandleSubscription(TypedDict):
    type: Literal["candle"]
    coin: str
    interval: CandleInterval


class _L2BookOptions(TypedDict, total=False):
    nSigFigs: Literal[2, 3, 4, 5] | None  # None: full precision
    mantissa: Literal[1, 2, 5] | None  # only with nSigFigs=5
    fast: bool  # 5 levels about every 0.5 s instead of 20


class L2BookSubscription(_L2BookOptions):
    type: Literal["l2Book"]
    coin: str


class TradesSubscription(TypedDict):
    type: Literal["trades"]
    coin: str


class OrderUpdatesSubscription(TypedDict):
    type: Literal["orderUpdates"]
    user: str


class UserEventsSubscription(TypedDict):
    type: Literal["userEvents"]
    user: str


class _UserFillsOptions(TypedDict, total=False):
    aggregateByTime: bool  # merge the partial fills of one crossing order


class UserFillsSubscription(_UserFillsOptions):
    type: Literal["userFills"]
    user: str


class UserFundingsSubscription(TypedDict):
    type: Literal["userFundings"]
    user: str


class UserNonFundingLedgerUpdatesSubscription(TypedDict):
    type: Literal["userNonFundingLedgerUpdates"]
    user: str


class UserTwapSliceFillsSubscription(TypedDict):
    type: Literal["userTwapSliceFills"]
    user: str


class UserTwapHistorySubscription(TypedDict):
    type: Literal["userTwapHistory"]
    user: str


class UserHistoricalOrdersSubscription(TypedDict):
    type: Literal["userHistoricalOrders"]
    user: str


class ActiveAssetCtxSubscription(TypedDict):
    type: Literal["activeAssetCtx"]
    coin: str


class ActiveAssetDataSubscription(TypedDict):
    type: Literal["activeAssetData"]
    user: str
    coin: str


class BboSubscription(TypedDict):
    type: Literal["bbo"]
    coin: str


class _SpotStateOptions(TypedDict, total=False):
    # The docs name the flag isPortfolioMargin, one SDK sends ignorePortfolioMargin (§7.21).
    isPortfolioMargin: bool
    ignorePortfolioMargin: bool


class SpotStateSubscription(_SpotStateOptions):
    type: Literal["spotState"]
    user: str


class AllDexsClearinghouseStateSubscription(TypedDict):
    type: Literal["allDexsClearinghouseState"]
    user: str


class AllDexsAssetCtxsSubscription(TypedDict):
    type: Literal["allDexsAssetCtxs"]


class AssetCtxsSubscription(_DexOption):
    type: Literal["assetCtxs"]


class SpotAssetCtxsSubscription(TypedDict):
    type: Literal["spotAssetCtxs"]


class FastAssetCtxsSubscription(TypedDict):
    type: Literal["fastAssetCtxs"]


class OutcomeMetaUpdatesSubscription(TypedDict):
    type: Literal["outcomeMetaUpdates"]


SubscriptionDict = (
    AllMidsSubscription
    | NotificationSubscription
    | WebData2Subscription
    | WebData3Subscription
    | TwapStatesSubscription
    | ClearinghouseStateSubscription
    | OpenOrdersSubscription
    | CandleSubscription
    | L2BookSubscription
    | TradesSubscription
    | OrderUpdatesSubscription
    | UserEventsSubscription
    | UserFillsSubscription
    | UserFundingsSubscription
    | UserNonFundingLedgerUpdatesSubscription
    | UserTwapSliceFillsSubscription
    | UserTwapHistorySubscription
    | UserHistoricalOrdersSubscription
    | ActiveAssetCtxSubscription
    | ActiveAssetDataSubscription
    | BboSubscription
    | SpotStateSubscription
    | AllDexsClearinghouseStateSubscription
    | AllDexsAssetCtxsSubscription
    | AssetCtxsSubscription
    | SpotAssetCtxsSubscription
    | FastAssetCtxsSubscription
    | OutcomeMetaUpdatesSubscription
)


# --- Channel data: the ``data`` of each frame ---------------------------------------------


class _Snapshot(TypedDict, total=False):
    # Present (true) on the first message after each (re)subscribe: the recent history.
    isSnapshot: bool


class _AllMidsOptional(TypedDict, total=False):
    dex: str  # present only when a dex other than the first was asked for


class AllMidsData(_AllMidsOptional):
    mids: dict[str, str]  # coin -> mid price


class NotificationData(TypedDict):
    notification: str  # free text


class LeadingVault(TypedDict):
    address: str
    name: str


class _WebData2Optional(TypedDict, total=False):
    spotState: SpotClearinghouseState
    optOutOfSpotDusting: bool
    perpsAtOpenInterestCap: list[str]


class WebData2Data(_WebData2Optional):
    clearinghouseState: ClearinghouseState
    leadingVaults: list[LeadingVault]
    totalVaultEquity: str
    openOrders: list[FrontendOpenOrder]
    agentAddress: str | None
    agentValidUntil: int | None
    cumLedger: str
    meta: dict[str, Any]  # the info "meta" answer (universe ...), left loose: it is large
    assetCtxs: list[PerpAssetCtx]
    serverTime: int
    isVault: bool
    user: str
    twapStates: list[tuple[int, TwapState]]  # [twapId, state]
    spotAssetCtxs: list[SpotAssetCtx]


class _WebData3UserStateOptional(TypedDict, total=False):
    optOutOfSpotDusting: bool
    dexAbstractionEnabled: bool
    abstraction: Literal["unifiedAccount", "portfolioMargin", "disabled"]


class WebData3UserState(_WebData3UserStateOptional):
    agentAddress: str | None
    agentValidUntil: int | None
    serverTime: int
    cumLedger: str
    isVault: bool
    user: str


class _PerpDexStateOptional(TypedDict, total=False):
    perpsAtOpenInterestCap: list[str]
    leadingVaults: list[LeadingVault]


class PerpDexState(_PerpDexStateOptional):
    totalVaultEquity: str


class WebData3Data(TypedDict):
    userState: WebData3UserState
    perpDexStates: list[PerpDexState]


class TwapStatesData(TypedDict):
    dex: str
    user: str
    states: list[tuple[int, TwapState]]  # [twapId, state]


class ClearinghouseStateData(TypedDict):
    dex: str
    user: str
    clearinghouseState: ClearinghouseState


class OpenOrdersData(TypedDict):
    dex: str
    user: str
    orders: list[FrontendOpenOrder]


class _L2BookOptional(TypedDict, total=False):
    spread: str  # present when the book is aggregated (nSigFigs set)
    fast: bool  # present (true) for fast subscriptions


class L2BookData(_L2BookOptional):
    coin: str
    time: int
    levels: tuple[list[WsLevel], list[WsLevel]]  # [bids high to low, asks low to high]


@final  # so that ``"fills" in data`` narrows the union below
class UserFillsEvent(TypedDict):
    fills: list[WsFill]


@final
class UserFundingEvent(TypedDict):
    funding: UserFunding


class Liquidation(TypedDict):
    # snake_case keys: that is how the server spells them here
    lid: int
    liquidator: str
    liquidated_user: str
    liquidated_ntl_pos: str
    liquidated_account_value: str


@final
class UserLiquidationEvent(TypedDict):
    liquidation: Liquidation


class NonUserCancel(TypedDict):
    coin: str
    oid: int


@final
class UserNonUserCancelEvent(TypedDict):
    nonUserCancel: list[NonUserCancel]


# Exactly one key per message; narrow with ``if "fills" in message["data"]:``.
UserEventsData = UserFillsEvent | UserFundingEvent | UserLiquidationEvent | UserNonUserCancelEvent


class UserFillsData(_Snapshot):
    user: str
    fills: list[WsFill]


class UserFundingsData(_Snapshot):
    user: str
    fundings: list[UserFunding]


class UserNonFundingLedgerUpdatesData(_Snapshot):
    user: str
    nonFundingLedgerUpdates: list[LedgerUpdate]


class ActiveAssetCtxData(TypedDict):
    coin: str
    ctx: PerpAssetCtx


class ActiveSpotAssetCtxData(TypedDict):
    coin: str
    ctx: SpotAssetCtx


class ActiveAssetData(TypedDict):
    user: str
    coin: str
    leverage: Leverage
    maxTradeSzs: tuple[str, str]  # [buy, sell]
    availableToTrade: tuple[str, str]  # [buy, sell]
    markPx: str


class UserTwapSliceFillsData(_Snapshot):
    user: str
    twapSliceFills: list[TwapSliceFill]


class UserTwapHistoryData(_Snapshot):
    user: str
    history: list[TwapHistoryItem]


class UserHistoricalOrdersData(_Snapshot):
    user: str
    orderHistory: list[HistoricalOrder]


class BboData(TypedDict):
    coin: str
    time: int
    bbo: tuple[WsLevel | None, WsLevel | None]  # [best bid, best ask]; None when that side is empty


class SpotStateData(TypedDict):
    user: str
    spotState: SpotClearinghouseState


class AllDexsClearinghouseStateData(TypedDict):
    user: str
    clearinghouseStates: list[tuple[str, ClearinghouseState]]  # [dex, state]; the first dex is ""


class AllDexsAssetCtxsData(TypedDict):
    ctxs: list[tuple[str, list[PerpAssetCtx]]]  # [dex, ctxs in the order of that dex's universe]


class AssetCtxsData(TypedDict):
    dex: str
    ctxs: list[PerpAssetCtx]


# --- Frames: what a callback receives -----------------------------------------------------


class _Backfillable(TypedDict, total=False):
    # Set (true) by this client on messages it recovered over HTTP after a reconnect.
    backfill: bool


class AllMidsMessage(TypedDict):
    channel: Literal["allMids"]
    data: AllMidsData


class NotificationMessage(TypedDict):
    channel: Literal["notification"]
    data: NotificationData


class WebData2Message(TypedDict):
    channel: Literal["webData2"]
    data: WebData2Data


class WebData3Message(TypedDict):
    channel: Literal["webData3"]
    data: WebData3Data


class TwapStatesMessage(TypedDict):
    channel: Literal["twapStates"]
    data: TwapStatesData


class ClearinghouseStateMessage(TypedDict):
    channel: Literal["clearinghouseState"]
    data: ClearinghouseStateData


class OpenOrdersMessage(TypedDict):
    channel: Literal["openOrders"]
    data: OpenOrdersData


class CandleMessage(_Backfillable):
    channel: Literal["candle"]
    data: Candle  # one candle, although the docs say a list


class L2BookMessage(TypedDict):
    channel: Literal["l2Book"]
    data: L2BookData


class TradesMessage(_Backfillable):
    channel: Literal["trades"]
    data: list[WsTrade]


class OrderUpdatesMessage(_Backfillable):
    channel: Literal["orderUpdates"]
    data: list[WsOrderUpdate]


class UserEventsMessage(_Backfillable):
    channel: Literal["user"]  # not "userEvents"
    data: UserEventsData


class UserFillsMessage(_Backfillable):
    channel: Literal["userFills"]
    data: UserFillsData


class UserFundingsMessage(_Backfillable):
    channel: Literal["userFundings"]
    data: UserFundingsData


class UserNonFundingLedgerUpdatesMessage(_Backfillable):
    channel: Literal["userNonFundingLedgerUpdates"]
    data: UserNonFundingLedgerUpdatesData


class ActiveAssetCtxMessage(TypedDict):
    channel: Literal["activeAssetCtx"]  # a perp coin
    data: ActiveAssetCtxData


class ActiveSpotAssetCtxMessage(TypedDict):
    channel: Literal["activeSpotAssetCtx"]  # a spot coin, on the same activeAssetCtx subscription
    data: ActiveSpotAssetCtxData


class ActiveAssetDataMessage(TypedDict):
    channel: Literal["activeAssetData"]
    data: ActiveAssetData


class UserTwapSliceFillsMessage(_Backfillable):
    channel: Literal["userTwapSliceFills"]
    data: UserTwapSliceFillsData


class UserTwapHistoryMessage(TypedDict):
    channel: Literal["userTwapHistory"]
    data: UserTwapHistoryData


class UserHistoricalOrdersMessage(_Backfillable):
    channel: Literal["userHistoricalOrders"]
    data: UserHistoricalOrdersData


class BboMessage(TypedDict):
    channel: Literal["bbo"]
    data: BboData


class SpotStateMessage(TypedDict):
    channel: Literal["spotState"]
    data: SpotStateData


class AllDexsClearinghouseStateMessage(TypedDict):
    channel: Literal["allDexsClearinghouseState"]
    data: AllDexsClearinghouseStateData


class AllDexsAssetCtxsMessage(TypedDict):
    channel: Literal["allDexsAssetCtxs"]
    data: AllDexsAssetCtxsData


class AssetCtxsMessage(TypedDict):
    channel: Literal["assetCtxs"]
    data: AssetCtxsData


class SpotAssetCtxsMessage(TypedDict):
    channel: Literal["spotAssetCtxs"]
    data: list[SpotAssetCtx]


class FastAssetCtxsMessage(TypedDict):
    # base64 of raw DEFLATE of {coin: {"markPx"?, "midPx"?}}:
    # json.loads(zlib.decompress(base64.b64decode(data), -15)). Later messages hold only changes.
    channel: Literal["fastAssetCtxs"]
    data: str


class OutcomeMetaUpdatesMessage(TypedDict):
    channel: Literal["outcomeMetaUpdates"]
    data: Any  # sources disagree on the shape (§7.24)


# Narrow with ``if message["channel"] == "trades":``.
Message = (
    AllMidsMessage
    | NotificationMessage
    | WebData2Message
    | WebData3Message
    | TwapStatesMessage
    | ClearinghouseStateMessage
    | OpenOrdersMessage
    | CandleMessage
    | L2BookMessage
    | TradesMessage
    | OrderUpdatesMessage
    | UserEventsMessage
    | UserFillsMessage
    | UserFundingsMessage
    | UserNonFundingLedgerUpdatesMessage
    | ActiveAssetCtxMessage
    | ActiveSpotAssetCtxMessage
    | ActiveAssetDataMessage
    | UserTwapSliceFillsMessage
    | UserTwapHistoryMessage
    | UserHistoricalOrdersMessage
    | BboMessage
    | SpotStateMessage
    | AllDexsClearinghouseStateMessage
    | AllDexsAssetCtxsMessage
    | AssetCtxsMessage
    | SpotAssetCtxsMessage
    | FastAssetCtxsMessage
    | OutcomeMetaUpdatesMessage
)
