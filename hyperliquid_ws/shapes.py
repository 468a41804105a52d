"""Typed shapes of the objects that many channels share (protocol.md §8).

These are ``TypedDict`` descriptions of the plain dicts the server sends; nothing here
converts or checks anything at run time. Prices, sizes, amounts and rates are decimal
strings (``"35.276"``); times (ms), ids and counts are ints. Channel frames that use
these shapes are in :mod:`hyperliquid_ws.messages`.

Python 3.10 has no ``NotRequired``, so a key that may be missing is declared in a small
``total=False`` base class that the full shape inherits from.

JSON arrays of fixed length and mixed content (a pair of prices, ``[dex, state]``) are
typed as tuples so that each position has its own type. At run time they are lists:
index and unpack them, but do not compare them with tuples.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Side = Literal["A", "B"]  # "B" = bid (buy), "A" = ask (sell)
CandleInterval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M"]

# The documented list (§8.7); newer statuses may appear, and arrive as plain strings.
OrderStatus = Literal[
    "open", "filled", "canceled", "triggered", "rejected", "marginCanceled",
    "vaultWithdrawalCanceled", "openInterestCapCanceled", "selfTradeCanceled",
    "reduceOnlyCanceled", "siblingFilledCanceled", "delistedCanceled", "liquidatedCanceled",
    "outcomeSettledCanceled", "scheduledCancel", "internalCancel", "tickRejected",
    "minTradeNtlRejected", "perpMarginRejected", "reduceOnlyRejected", "badAloPxRejected",
    "iocCancelRejected", "badTriggerPxRejected", "marketOrderNoLiquidityRejected",
    "positionIncreaseAtOpenInterestCapRejected", "positionFlipAtOpenInterestCapRejected",
    "tooAggressiveAtOpenInterestCapRejected", "openInterestIncreaseRejected",
    "insufficientSpotBalanceRejected", "oracleRejected", "perpMaxPositionRejected",
    "tooManyOpenOrdersRejected",
]  # fmt: skip


# --- Book levels and trades (§7.10, §8.2) ------------------------------------------------


class WsLevel(TypedDict):
    px: str
    sz: str
    n: int  # number of orders at this level


class WsTrade(TypedDict):
    coin: str
    side: Side
    px: str
    sz: str
    hash: str
    time: int
    tid: int
    users: tuple[str, str]  # [buyer, seller]


class Candle(TypedDict):
    t: int  # open time, ms
    T: int  # close time, ms (the next open minus 1 ms)
    s: str  # coin
    i: CandleInterval
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - the server's key
    v: str  # volume in the base asset
    n: int  # number of trades


# --- Fills and funding (§8.1, §7.14) -------------------------------------------------------


class _FillLiquidationOptional(TypedDict, total=False):
    liquidatedUser: str


class FillLiquidation(_FillLiquidationOptional):
    markPx: str
    method: Literal["market", "backstop"]


class _WsFillOptional(TypedDict, total=False):
    builderFee: str  # omitted when zero
    cloid: str
    liquidation: FillLiquidation
    feeTrialEscrow: str
    twapId: int | None  # in frames since 2025; older fills lack the key


class WsFill(_WsFillOptional):
    coin: str
    px: str
    sz: str
    side: Side
    time: int
    startPosition: str
    dir: str  # display text such as "Open Long" or "Sell"; treat as free text
    closedPnl: str
    hash: str
    oid: int
    crossed: bool  # true when this fill took liquidity
    fee: str  # negative for a rebate; includes the builder fee
    tid: int
    feeToken: str


class UserFunding(TypedDict):
    time: int
    coin: str
    usdc: str
    szi: str
    fundingRate: str
    nSamples: int | None


# --- Asset contexts (§8.3) -----------------------------------------------------------------


class PerpAssetCtx(TypedDict):
    prevDayPx: str
    dayNtlVlm: str
    markPx: str
    midPx: str | None
    funding: str
    openInterest: str
    premium: str | None
    oraclePx: str
    impactPxs: tuple[str, str] | None  # [bid, ask]
    dayBaseVlm: str


class SpotAssetCtx(TypedDict):
    prevDayPx: str
    dayNtlVlm: str
    markPx: str
    midPx: str | None
    circulatingSupply: str
    coin: str  # "PURR/USDC" or "@N"
    totalSupply: str
    dayBaseVlm: str


# --- Orders (§8.4, §7.11) ------------------------------------------------------------------


class FrontendOpenOrder(TypedDict):
    coin: str
    side: Side
    limitPx: str
    sz: str
    oid: int
    timestamp: int
    origSz: str
    triggerCondition: str  # "N/A" for an order that is not a trigger
    isTrigger: bool
    triggerPx: str
    children: list[FrontendOpenOrder]
    isPositionTpsl: bool
    reduceOnly: bool
    orderType: Literal[
        "Market", "Limit", "Stop Market", "Stop Limit", "Take Profit Market",
        "Take Profit Limit", "Twap Slice", "Vault Close", "Spot Dust Conversion",
    ]  # fmt: skip
    tif: Literal["Gtc", "Ioc", "Alo", "FrontendMarket", "LiquidationMarket"] | None
    cloid: str | None


class _BasicOrderOptional(TypedDict, total=False):
    cloid: str  # omitted when the order has none
    reduceOnly: bool  # present (true) only for reduce-only orders


class BasicOrder(_BasicOrderOptional):
    """The order inside an ``orderUpdates`` item: fewer fields than FrontendOpenOrder."""

    coin: str
    side: Side
    limitPx: str
    sz: str  # remaining size
    oid: int
    timestamp: int
    origSz: str


class WsOrderUpdate(TypedDict):
    order: BasicOrder
    status: OrderStatus
    statusTimestamp: int


class HistoricalOrder(TypedDict):
    order: FrontendOpenOrder
    status: OrderStatus
    statusTimestamp: int


# --- Clearinghouse state (§8.5) ------------------------------------------------------------


class CrossLeverage(TypedDict):
    type: Literal["cross"]
    value: int


class IsolatedLeverage(TypedDict):
    type: Literal["isolated"]
    value: int
    rawUsd: str


Leverage = CrossLeverage | IsolatedLeverage


class MarginSummary(TypedDict):
    accountValue: str
    totalNtlPos: str
    totalRawUsd: str
    totalMarginUsed: str


class CumFunding(TypedDict):
    allTime: str
    sinceOpen: str
    sinceChange: str


class Position(TypedDict):
    coin: str
    szi: str  # signed size: negative when short
    leverage: Leverage
    entryPx: str
    positionValue: str
    unrealizedPnl: str
    returnOnEquity: str
    liquidationPx: str | None
    marginUsed: str
    maxLeverage: int
    cumFunding: CumFunding


class AssetPosition(TypedDict):
    type: Literal["oneWay"]
    position: Position


class ClearinghouseState(TypedDict):
    marginSummary: MarginSummary
    crossMarginSummary: MarginSummary
    crossMaintenanceMarginUsed: str
    withdrawable: str
    assetPositions: list[AssetPosition]
    time: int


# --- Spot balances (§7.21) -----------------------------------------------------------------


class _SpotBalanceOptional(TypedDict, total=False):
    spotHold: str
    ltv: str
    borrowed: str
    supplied: str


class SpotBalance(_SpotBalanceOptional):
    coin: str
    token: int  # token index
    total: str
    hold: str
    entryNtl: str


class SpotClearinghouseState(TypedDict):
    balances: list[SpotBalance]  # portfolio-margin accounts carry more, untyped, keys


# --- TWAP (§8.8, §7.18, §7.19) -------------------------------------------------------------


class TwapTrigger(TypedDict):
    px: str
    above: bool


class TwapState(TypedDict):
    coin: str
    user: str
    side: Side
    sz: str
    executedSz: str
    executedNtl: str
    minutes: int
    reduceOnly: bool
    randomize: bool
    timestamp: int  # ms
    trigger: TwapTrigger | None
    stopPx: str | None


class TwapRunningStatus(TypedDict):
    status: Literal["activated", "finished", "terminated", "waitingForTrigger", "stopped"]


class TwapErrorStatus(TypedDict):
    status: Literal["error"]
    description: str


TwapStatus = TwapRunningStatus | TwapErrorStatus


class _TwapHistoryItemOptional(TypedDict, total=False):
    twapId: int


class TwapHistoryItem(_TwapHistoryItemOptional):
    time: int  # epoch *seconds*, unlike state.timestamp (ms)
    state: TwapState
    status: TwapStatus


class TwapSliceFill(TypedDict):
    fill: WsFill  # its own twapId is null; the one below is set
    twapId: int


# --- Non-funding ledger updates (§8.6): one shape per delta ``type`` -----------------------


class LiquidatedPosition(TypedDict):
    coin: str
    szi: str


class DepositDelta(TypedDict):
    type: Literal["deposit"]
    usdc: str


class WithdrawDelta(TypedDict):
    type: Literal["withdraw"]
    usdc: str
    nonce: int
    fee: str


class InternalTransferDelta(TypedDict):
    type: Literal["internalTransfer"]
    usdc: str
    user: str
    destination: str
    fee: str


class SubAccountTransferDelta(TypedDict):
    type: Literal["subAccountTransfer"]
    usdc: str
    user: str
    destination: str


class LiquidationDelta(TypedDict):
    type: Literal["liquidation"]
    liquidatedNtlPos: str
    accountValue: str
    leverageType: Literal["Cross", "Isolated"]
    liquidatedPositions: list[LiquidatedPosition]


class VaultCreateDelta(TypedDict):
    type: Literal["vaultCreate"]
    vault: str
    usdc: str
    fee: str


class VaultDepositDelta(TypedDict):
    type: Literal["vaultDeposit"]
    vault: str
    usdc: str


class VaultDistributionDelta(TypedDict):
    type: Literal["vaultDistribution"]
    vault: str
    usdc: str


class VaultWithdrawDelta(TypedDict):
    type: Literal["vaultWithdraw"]
    vault: str
    user: str
    requestedUsd: str
    commission: str
    closingCost: str
    basis: str
    netWithdrawnUsd: str


class VaultLeaderCommissionDelta(TypedDict):
    type: Literal["vaultLeaderCommission"]
    user: str
    usdc: str


class SpotTransferDelta(TypedDict):
    type: Literal["spotTransfer"]
    token: str
    amount: str
    usdcValue: str
    user: str
    destination: str
    fee: str
    nativeTokenFee: str
    nonce: int
    feeToken: str


class AccountClassTransferDelta(TypedDict):
    type: Literal["accountClassTransfer"]
    usdc: str
    toPerp: bool


class SpotGenesisDelta(TypedDict):
    type: Literal["spotGenesis"]
    token: str
    amount: str


class RewardsClaimDelta(TypedDict):
    type: Literal["rewardsClaim"]
    amount: str
    token: str


class SendDelta(TypedDict):
    type: Literal["send"]
    user: str
    destination: str
    sourceDex: str
    destinationDex: str
    token: str
    amount: str
    usdcValue: str
    fee: str
    nativeTokenFee: str
    nonce: int
    feeToken: str


class DeployGasAuctionDelta(TypedDict):
    type: Literal["deployGasAuction"]
    token: str
    amount: str


class CStakingTransferDelta(TypedDict):
    type: Literal["cStakingTransfer"]
    token: str
    amount: str
    isDeposit: bool


class BorrowLendDelta(TypedDict):
    type: Literal["borrowLend"]
    token: str
    operation: Literal["supply", "withdraw", "repay", "borrow"]
    amount: str
    interestAmount: str


class ActivateDexAbstractionDelta(TypedDict):
    type: Literal["activateDexAbstraction"]
    dex: str
    token: str
    amount: str


# Narrow with ``if delta["type"] == "deposit":``.
LedgerDelta = (
    DepositDelta
    | WithdrawDelta
    | InternalTransferDelta
    | SubAccountTransferDelta
    | LiquidationDelta
    | VaultCreateDelta
    | VaultDepositDelta
    | VaultDistributionDelta
    | VaultWithdrawDelta
    | VaultLeaderCommissionDelta
    | SpotTransferDelta
    | AccountClassTransferDelta
    | SpotGenesisDelta
    | RewardsClaimDelta
    | SendDelta
    | DeployGasAuctionDelta
    | CStakingTransferDelta
    | BorrowLendDelta
    | ActivateDexAbstractionDelta
)


class LedgerUpdate(TypedDict):
    time: int
    hash: str
    delta: LedgerDelta
