"""Asset contexts line up with ``meta.universe`` (protocol.md §9.2 metaAndAssetCtxs, §7.23):
context ``i`` is universe entry ``i``'s on every dex, delisted entries included, in every
answer and feed that carries them. A bot that zips the two must price each coin right."""

from __future__ import annotations

import threading
from typing import Any

import requests

from hyperliquid_ws import HyperliquidWS
from hyperliquid_ws.testing import LocalServer

DEXES = ("", "xyz")


def _info(server: LocalServer, body: dict[str, Any]) -> Any:
    return requests.post(f"{server.base_url}/info", json=body, timeout=10).json()


def _check(universe: list[dict[str, Any]], ctxs: list[dict[str, Any]], mids: dict[str, str]) -> None:
    assert len(ctxs) == len(universe)
    for entry, ctx in zip(universe, ctxs, strict=True):
        if entry.get("isDelisted"):
            assert ctx["midPx"] is None
        else:
            assert abs(float(ctx["markPx"]) / float(mids[entry["name"]]) - 1) < 0.05, (entry["name"], ctx)


def test_meta_and_asset_ctxs_align_on_every_dex() -> None:
    with LocalServer() as server:
        for dex in DEXES:
            mids = _info(server, {"type": "allMids", "dex": dex} if dex else {"type": "allMids"})
            meta, ctxs = _info(server, {"type": "metaAndAssetCtxs", "dex": dex} if dex
                               else {"type": "metaAndAssetCtxs"})
            assert any(entry.get("isDelisted") for entry in meta["universe"]) or dex
            _check(meta["universe"], ctxs, mids)


def test_feeds_carrying_contexts_align_with_the_universe() -> None:
    with LocalServer() as server, HyperliquidWS(server.base_url) as ws:
        universes = {dex: _info(server, {"type": "meta", "dex": dex})["universe"] for dex in DEXES}
        mids = {dex: _info(server, {"type": "allMids", "dex": dex}) for dex in DEXES}
        got: dict[str, Any] = {}
        done = threading.Event()

        def keep(name: str) -> Any:
            def callback(message: dict[str, Any]) -> None:
                got.setdefault(name, message["data"])
                if len(got) == 3:
                    done.set()
            return callback

        ws.subscribe({"type": "assetCtxs"}, keep("assetCtxs")).wait()
        ws.subscribe({"type": "allDexsAssetCtxs"}, keep("allDexsAssetCtxs")).wait()
        ws.subscribe({"type": "webData2", "user": "0x" + "0" * 40}, keep("webData2")).wait()
        assert done.wait(15), sorted(got)
        _check(universes[""], got["assetCtxs"]["ctxs"], mids[""])
        for dex, ctxs in got["allDexsAssetCtxs"]["ctxs"]:
            _check(universes[dex], ctxs, mids[dex])
        _check(universes[""], got["webData2"]["assetCtxs"], mids[""])


def test_spot_tokens_sit_at_their_index_and_every_pair_resolves_by_position() -> None:
    """Live lists token ``i`` at position ``i``; the official SDK relies on it."""
    with LocalServer() as server:
        spot = _info(server, {"type": "spotMeta"})
    tokens = spot["tokens"]
    assert [token["index"] for token in tokens] == list(range(len(tokens)))
    names = {pair["name"]: [tokens[i]["name"] for i in pair["tokens"]] for pair in spot["universe"]}
    assert names["PURR/USDC"] == ["PURR", "USDC"]
    assert names["@107"] == ["HYPE", "USDC"]
