"""The fixed catalogue of assets the local market trades, and how its numbers are written.

Everything here is immutable module data or a pure function, so any thread may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SPOT_ASSET_OFFSET = 10000
"""Order actions address spot pair ``i`` as asset ``10000 + i``."""


@dataclass(frozen=True)
class Asset:
    """One tradable coin: a perp (``"BTC"``) or a spot pair (``"PURR/USDC"``, ``"@1"``)."""

    coin: str
    is_spot: bool
    index: int
    sz_decimals: int
    px_decimals: int
    start_px: float
    volatility: float
    max_leverage: int = 0
    base_token: int = 0
    quote_token: int = 0

    @property
    def tick(self) -> float:
        return float(10.0 ** -self.px_decimals)

    @property
    def asset_id(self) -> int:
        """The number an order action uses for this coin (field ``a``)."""
        return SPOT_ASSET_OFFSET + self.index if self.is_spot else self.index


@dataclass(frozen=True)
class Token:
    name: str
    index: int
    sz_decimals: int
    wei_decimals: int
    token_id: str


PERPS: tuple[Asset, ...] = (
    Asset("BTC", False, 0, 5, 0, 65000.0, 0.0008, max_leverage=40),
    Asset("ETH", False, 1, 4, 1, 3500.0, 0.0010, max_leverage=25),
    Asset("SOL", False, 2, 2, 2, 150.0, 0.0015, max_leverage=20),
    Asset("HYPE", False, 3, 2, 3, 35.0, 0.0020, max_leverage=10),
)

TOKENS: tuple[Token, ...] = (
    Token("USDC", 0, 8, 8, "0x6d1e7cde53ba9467b783cb7c530ce054"),
    Token("PURR", 1, 0, 5, "0xc1fb593aeffbeb02f85e0308e9956a90"),
    Token("HYPE", 2, 2, 8, "0x0d01dc56dcaaca66ad901c959b4011ec"),
)

SPOTS: tuple[Asset, ...] = (
    Asset("PURR/USDC", True, 0, 0, 5, 0.2, 0.0020, base_token=1, quote_token=0),
    Asset("@1", True, 1, 2, 3, 35.0, 0.0020, base_token=2, quote_token=0),
)

ALL_ASSETS: tuple[Asset, ...] = PERPS + SPOTS
ASSETS_BY_COIN: dict[str, Asset] = {asset.coin: asset for asset in ALL_ASSETS}
ASSETS_BY_ID: dict[int, Asset] = {asset.asset_id: asset for asset in ALL_ASSETS}
PERP_DEXES: tuple[str, ...] = ("",)
"""Only the first (default) perp dex exists; its name is the empty string."""


def find_asset(coin: object) -> Asset | None:
    """The asset called ``coin`` (case-sensitive, like the real server), or None."""
    return ASSETS_BY_COIN.get(coin) if isinstance(coin, str) else None


def decimal_text(value: float, decimals: int) -> str:
    """Write ``value`` the way Hyperliquid does: no exponent, trailing zeros cut, ``"1.0"``."""
    text = f"{value:.{max(decimals, 0)}f}"
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text += "0"
    else:
        text += ".0"
    if text in ("-0.0", "-0"):
        text = "0.0"
    return text


def round_to_tick(asset: Asset, px: float) -> float:
    return round(px, asset.px_decimals)


def px_text(asset: Asset, px: float) -> str:
    return decimal_text(px, asset.px_decimals)


def sz_text(asset: Asset, sz: float) -> str:
    return decimal_text(sz, asset.sz_decimals)


def usd_text(value: float) -> str:
    return decimal_text(value, 6)


def significant_step(px: float, n_sig_figs: int, mantissa: int | None) -> float:
    """Bucket width that keeps ``n_sig_figs`` significant figures of ``px`` (l2Book aggregation)."""
    digits = math.floor(math.log10(px)) + 1 if px > 0 else 1
    step = float(10.0 ** (digits - n_sig_figs))
    return step * mantissa if mantissa is not None else step


def perp_meta() -> dict[str, Any]:
    """The ``meta`` info answer for the default perp dex."""
    return {
        "universe": [
            {
                "szDecimals": asset.sz_decimals,
                "name": asset.coin,
                "maxLeverage": asset.max_leverage,
                "marginTableId": asset.max_leverage,
            }
            for asset in PERPS
        ],
        "marginTables": [
            [asset.max_leverage, {"description": "", "marginTiers": [
                {"lowerBound": "0.0", "maxLeverage": asset.max_leverage}]}]
            for asset in PERPS
        ],
        "collateralToken": 0,
    }


def spot_meta() -> dict[str, Any]:
    """The ``spotMeta`` info answer."""
    return {
        "universe": [
            {
                "tokens": [asset.base_token, asset.quote_token],
                "name": asset.coin,
                "index": asset.index,
                "isCanonical": asset.coin == "PURR/USDC",
            }
            for asset in SPOTS
        ],
        "tokens": [
            {
                "name": token.name,
                "szDecimals": token.sz_decimals,
                "weiDecimals": token.wei_decimals,
                "index": token.index,
                "tokenId": token.token_id,
                "isCanonical": token.index < 2,
                "evmContract": None,
                "fullName": None,
            }
            for token in TOKENS
        ],
    }


def perp_dexs() -> list[dict[str, Any] | None]:
    """The ``perpDexs`` info answer: the default dex is listed as ``null``."""
    return [None]
