"""What the exchange checks in an order or a cancel without a chain, with its error texts.

An order's price must have at most 5 significant figures (integers always pass) and at
most ``6 - szDecimals`` decimals (``8 - szDecimals`` for spot); its size at most
``szDecimals`` decimals; its value at least $10 (10 USDC for spot). A cancel must name a
resting order of that asset. Each failure is one status of the answer,
``{"error": "<text> asset=<id>"}``, as live answers it (protocol.md §10b; texts from the
exchange's error-responses page and captured answers). Signatures are not checked.

Pure functions, plus ``RestingOrders``, the orders actions left on the book; both run on
the server loop thread, which owns the market.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from hyperliquid_ws.testing.assets import Asset

MIN_ORDER_VALUE = Decimal(10)
TICK_ERROR = "Price must be divisible by tick size."
SIZE_ERROR = "Order has invalid size."
PRICE_ERROR = "Order has invalid price."
MISSING_ORDER_ERROR = "Order was never placed, already canceled, or filled."


def decimal_of(text: object) -> Decimal | None:
    """The number a wire string (``"65000.5"``) holds; None unless it is a finite decimal."""
    if not isinstance(text, str):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def _significant_figures(value: Decimal) -> int:
    return len(value.normalize().as_tuple().digits)


def size_error(asset: Asset, sz: Decimal | None) -> str | None:
    """Why the exchange refuses a size of ``asset`` (more decimals than szDecimals), or None."""
    if sz is None or sz <= 0 or _decimals(sz) > asset.sz_decimals:
        return f"{SIZE_ERROR} asset={asset.asset_id}"
    return None


def order_error(asset: Asset, px: Decimal | None, sz: Decimal | None) -> str | None:
    """Why the exchange refuses an order at ``px`` for ``sz`` (the status's text), or None."""
    suffix = f" asset={asset.asset_id}"
    if px is None or px <= 0:
        return PRICE_ERROR + suffix
    if size_error(asset, sz) is not None or sz is None:
        return size_error(asset, sz)
    max_decimals = (8 if asset.is_spot else 6) - asset.sz_decimals
    integer = px == px.to_integral_value()
    if _decimals(px) > max_decimals or (not integer and _significant_figures(px) > 5):
        return TICK_ERROR + suffix
    if px * sz < MIN_ORDER_VALUE:
        quote = "10 USDC" if asset.is_spot else "$10"
        return f"Order must have minimum value of {quote}.{suffix}"
    return None


def missing_order_error(asset: Asset) -> str:
    return f"{MISSING_ORDER_ERROR} asset={asset.asset_id}"


@dataclass
class RestingOrders:
    """Orders placed through actions that rest on the book, so a cancel can find them."""

    by_oid: dict[int, tuple[int, str | None]] = field(default_factory=dict)  # oid -> (asset id, cloid)

    def add(self, oid: int, asset: Asset, cloid: str | None) -> None:
        self.by_oid[oid] = (asset.asset_id, cloid.lower() if cloid else None)

    def holds(self, asset: Asset, oid: object = None, cloid: object = None) -> bool:
        """Whether a resting order of ``asset`` matches (by oid, or cloid in any case)."""
        return any(asset_id == asset.asset_id and ((oid is not None and known == oid) or (
            isinstance(cloid, str) and known_cloid is not None and known_cloid == cloid.lower()))
            for known, (asset_id, known_cloid) in self.by_oid.items())

    def cancel(self, asset: Asset, oid: object = None, cloid: object = None) -> bool:
        """Take the order off the book; False if no resting order of ``asset`` matches."""
        for known, (asset_id, known_cloid) in self.by_oid.items():
            if asset_id != asset.asset_id:
                continue
            if (oid is not None and known == oid) or (
                    isinstance(cloid, str) and known_cloid is not None and known_cloid == cloid.lower()):
                del self.by_oid[known]
                return True
        return False
