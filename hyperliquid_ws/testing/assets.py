"""The fixed catalogue of assets the local market trades (mainnet names and ids), and how
its numbers are written. ``meta`` builds the info answers that describe it.

Everything here is immutable module data or a pure function, so any thread may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SPOT_ASSET_OFFSET = 10000
"""Order actions address spot pair ``@i`` as asset ``10000 + i``."""
BUILDER_DEX_OFFSET = 100000
"""A HIP-3 dex's perp ``i`` is asset ``100000 + 10000 * dex_index + i`` (dex_index >= 1)."""


@dataclass(frozen=True)
class Asset:
    """One tradable coin: a perp (``"BTC"``, ``"xyz:XYZ100"``) or a spot pair (``"PURR/USDC"``, ``"@107"``).

    ``index`` is its place in its dex's ``meta.universe`` (perps) or its spot pair index
    (the ``N`` of ``@N``): the same numbers as on mainnet.
    """

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
    dex: str = ""

    @property
    def tick(self) -> float:
        return float(10.0 ** -self.px_decimals)

    @property
    def asset_id(self) -> int:
        """The number an order action uses for this coin (field ``a``)."""
        if self.is_spot:
            return SPOT_ASSET_OFFSET + self.index
        if self.dex:
            return BUILDER_DEX_OFFSET + 10000 * PERP_DEXES.index(self.dex) + self.index
        return self.index


@dataclass(frozen=True)
class Token:
    name: str
    index: int
    sz_decimals: int
    wei_decimals: int
    token_id: str


@dataclass(frozen=True)
class Delisted:
    """A ``meta.universe`` entry the market does not trade (it keeps later indexes real)."""

    coin: str
    index: int
    sz_decimals: int
    max_leverage: int
    final_px: str = "0.3771"  # its frozen mark, oracle and previous-day price (its context stays)


PERP_DEXES: tuple[str, ...] = ("", "xyz")
"""Perp dexes in ``perpDexs`` order: the first (default) one, named ``""``, and one HIP-3 dex."""

PERPS: tuple[Asset, ...] = (
    Asset("BTC", False, 0, 5, 0, 65000.0, 0.0008, max_leverage=40),
    Asset("ETH", False, 1, 4, 1, 3500.0, 0.0010, max_leverage=25),
    Asset("ATOM", False, 2, 2, 4, 4.5, 0.0015, max_leverage=5),
    Asset("DYDX", False, 4, 1, 5, 0.6, 0.0020, max_leverage=5),
    Asset("SOL", False, 5, 2, 2, 150.0, 0.0015, max_leverage=20),
    Asset("xyz:XYZ100", False, 0, 4, 0, 25000.0, 0.0008, max_leverage=25, dex="xyz"),
    Asset("xyz:NVDA", False, 1, 3, 2, 180.0, 0.0010, max_leverage=10, dex="xyz"),
)
"""Every traded perp of every dex, at its mainnet index (SOL is 5 on mainnet, too)."""

DELISTED: tuple[Delisted, ...] = (Delisted("MATIC", 3, 1, 20),)

TOKENS: tuple[Token, ...] = (
    Token("USDC", 0, 8, 8, "0x6d1e7cde53ba9467b783cb7c530ce054"),
    Token("PURR", 1, 0, 5, "0xc1fb593aeffbeb02f85e0308e9956a90"),
    Token("HYPE", 150, 2, 8, "0x0d01dc56dcaaca66ad901c959b4011ec"),
)

SPOTS: tuple[Asset, ...] = (
    Asset("PURR/USDC", True, 0, 0, 5, 0.2, 0.0020, base_token=1, quote_token=0),
    Asset("@107", True, 107, 2, 3, 35.0, 0.0020, base_token=150, quote_token=0),
)
"""Spot pairs with their mainnet names: PURR/USDC is ``@0``, HYPE/USDC is ``@107``."""

ALL_ASSETS: tuple[Asset, ...] = PERPS + SPOTS
ASSETS_BY_COIN: dict[str, Asset] = {asset.coin: asset for asset in ALL_ASSETS}
ASSETS_BY_ID: dict[int, Asset] = {asset.asset_id: asset for asset in ALL_ASSETS}


def dex_perps(dex: str) -> tuple[Asset, ...]:
    """The traded perps of one dex, in universe order."""
    return tuple(asset for asset in PERPS if asset.dex == dex)


def mid_coins(dex: str) -> tuple[Asset, ...]:
    """The coins in an ``allMids`` map: a dex's perps; spot pairs come with the first dex."""
    return dex_perps(dex) + (SPOTS if dex == "" else ())


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
