"""The info answers that describe the local universe: ``meta``, ``spotMeta``, ``perpDexs``.

They list exactly what the market trades (plus delisted entries that keep mainnet's
indexes), so a client that maps names to asset ids from them gets mainnet's numbers:
BTC 0, SOL 5, ``@107`` = asset 10107, ``xyz:XYZ100`` = asset 110000. Pure functions of
immutable module data; any thread.
"""

from __future__ import annotations

from typing import Any

from hyperliquid_ws.testing.assets import DELISTED, PERP_DEXES, SPOTS, TOKENS, dex_perps

_XYZ_DEPLOYER = "0x000000000000000000000000000000000000d3c0"
"""A stand-in address: the real deployer is not needed to trade the dex."""


def perp_meta(dex: str = "") -> dict[str, Any]:
    """The ``meta`` info answer of one perp dex."""
    entries: list[tuple[int, dict[str, Any]]] = [
        (asset.index, {"szDecimals": asset.sz_decimals, "name": asset.coin,
                       "maxLeverage": asset.max_leverage, "marginTableId": asset.max_leverage})
        for asset in dex_perps(dex)]
    if dex == "":
        entries += [(gone.index, {"szDecimals": gone.sz_decimals, "name": gone.coin,
                                  "maxLeverage": gone.max_leverage, "marginTableId": gone.max_leverage,
                                  "isDelisted": True}) for gone in DELISTED]
    universe = [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]
    leverages = sorted({entry["maxLeverage"] for entry in universe})
    return {
        "universe": universe,
        "marginTables": [[leverage, {"description": "", "marginTiers": [
            {"lowerBound": "0.0", "maxLeverage": leverage}]}] for leverage in leverages],
        "collateralToken": 0,
    }


def spot_meta() -> dict[str, Any]:
    """The ``spotMeta`` info answer: the traded pairs (``index`` is the N of ``@N``)."""
    return {
        "universe": [
            {"tokens": [asset.base_token, asset.quote_token], "name": asset.coin,
             "index": asset.index, "isCanonical": asset.coin == "PURR/USDC"}
            for asset in SPOTS
        ],
        "tokens": _tokens(),
    }


def _tokens() -> list[dict[str, Any]]:
    """spotMeta's tokens, where position ``i`` is token index ``i`` as on live (the official
    SDK looks tokens up by position): the market's tokens at their mainnet indexes, the
    indexes between held by tokens the market does not trade."""
    known = {token.index: token for token in TOKENS}
    listed = []
    for index in range(max(known) + 1):
        token = known.get(index)
        name = token.name if token else f"TKN{index}"
        listed.append({
            "name": name, "szDecimals": token.sz_decimals if token else 2,
            "weiDecimals": token.wei_decimals if token else 8, "index": index,
            "tokenId": token.token_id if token else "0x" + f"{index:032x}",
            "isCanonical": index < 2, "evmContract": None, "fullName": None,
        })
    return listed


def perp_dexs() -> list[dict[str, Any] | None]:
    """The ``perpDexs`` info answer: the default dex is listed as ``null``, then each HIP-3 dex."""
    listed: list[dict[str, Any] | None] = [None]
    for dex in PERP_DEXES[1:]:
        listed.append({
            "name": dex, "fullName": dex.upper(), "deployer": _XYZ_DEPLOYER, "oracleUpdater": None,
            "feeRecipient": _XYZ_DEPLOYER,
            "assetToStreamingOiCap": [[asset.coin, "1000000.0"] for asset in dex_perps(dex)],
        })
    return listed
