"""The local exchange behaves like mainnet where tests of bots meet it: the trades replay,
the rare events on demand, mainnet's asset ids, and the exchange's action errors.
The real client against the real local server on loopback; every wait has a deadline."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import requests

from hyperliquid_ws.testing import LocalServer
from tests.conftest import DEADLINE, Collector, wait_until


def _info(server: LocalServer, body: dict[str, Any]) -> Any:
    return requests.post(f"{server.base_url}/info", json=body, timeout=DEADLINE).json()


def _trade_ids(collector: Collector) -> list[int]:
    return [trade["tid"] for message in collector.messages for trade in message["data"]]


def test_trades_replay_is_delivered_once_and_not_again_after_a_resubscribe(
        server: LocalServer, make_client: Any) -> None:
    client = make_client()
    trades = Collector()
    client.subscribe({"type": "trades", "coin": "SOL"}, trades)
    replay = trades.wait_for(1)[0]["data"]
    assert replay and [t["tid"] for t in replay] == [t["tid"] for t in _info(
        server, {"type": "recentTrades", "coin": "SOL"})[-len(replay):]]
    server.drop_connections()  # the client reconnects and subscribes again: the server replays again
    def subscribes() -> int:
        return sum(1 for _, m in server.received() if isinstance(m, dict) and m.get("method") == "subscribe")
    wait_until(lambda: subscribes() == 2, DEADLINE, "the resubscribe")
    assert server.wait_for_subscriptions(1)
    fresh = server.emit({"type": "trades", "coin": "SOL"})  # sent after the second replay, so it arrives after it
    assert fresh is not None
    trades.wait_for(2)
    assert _trade_ids(trades) == [t["tid"] for t in replay] + [t["tid"] for t in fresh["data"]]


def test_liquidation_reaches_the_users_feeds(server: LocalServer, make_client: Any) -> None:
    client, user = make_client(), server.market.users[0]
    events, ledger = Collector(), Collector()
    client.subscribe({"type": "userEvents", "user": user}, events)
    client.subscribe({"type": "userNonFundingLedgerUpdates", "user": user}, ledger)
    ledger.wait_for(1)  # the snapshot: both subscriptions are acknowledged
    server.trigger("liquidation", user=user, coin="ETH")
    wait_until(lambda: any("liquidation" in m["data"] for m in events.messages), DEADLINE, "the liquidation")
    [liquidation] = [m["data"]["liquidation"] for m in events.messages if "liquidation" in m["data"]]
    assert liquidation["liquidated_user"] == user and isinstance(liquidation["lid"], int)
    [fill] = [f for m in events.messages if "fills" in m["data"] for f in m["data"]["fills"]]
    assert fill["coin"] == "ETH" and fill["liquidation"]["liquidatedUser"] == user
    delta = ledger.wait_for(2)[1]["data"]["nonFundingLedgerUpdates"][0]["delta"]
    assert delta["type"] == "liquidation" and delta["liquidatedPositions"][0]["coin"] == "ETH"
    assert server.market.account(user).positions["ETH"].szi == 0


def test_non_user_cancel_and_twap_slice_fill(server: LocalServer, make_client: Any) -> None:
    client, user = make_client(), server.market.users[1]
    events, orders = Collector(), Collector()
    client.subscribe({"type": "userEvents", "user": user}, events)
    client.subscribe({"type": "openOrders", "user": user}, orders)
    orders.wait_for(1)
    server.trigger("nonUserCancel", user=user)
    server.trigger("twapSliceFill", user=user)
    wait_until(lambda: {"nonUserCancel", "twapSliceFills"} <= {k for m in events.messages for k in m["data"]},
               DEADLINE, "both events")
    [cancelled] = [c for m in events.messages for c in m["data"].get("nonUserCancel", [])]
    status = _info(server, {"type": "orderStatus", "user": user, "oid": cancelled["oid"]})
    assert status["order"]["status"] == "marginCanceled"
    [piece] = [s for m in events.messages for s in m["data"].get("twapSliceFills", [])]
    assert piece["fill"]["hash"] == "0x" + "0" * 64 and isinstance(piece["twapId"], int)


def test_empty_and_one_sided_books_have_the_live_null_shapes(server: LocalServer, make_client: Any) -> None:
    client = make_client()
    book, bbo, ctx, fast = Collector(), Collector(), Collector(), Collector()
    for subscription, collector in (({"type": "l2Book", "coin": "SOL"}, book), ({"type": "bbo", "coin": "SOL"}, bbo),
                                    ({"type": "activeAssetCtx", "coin": "SOL"}, ctx),
                                    ({"type": "fastAssetCtxs"}, fast)):
        client.subscribe(subscription, collector)
        collector.wait_for(1)
    server.trigger("emptyBook", coin="SOL")
    assert book.wait_for(2)[-1]["data"]["levels"] == [[], []]
    assert bbo.wait_for(2)[-1]["data"]["bbo"] == [None, None]
    empty_ctx = ctx.wait_for(2)[-1]["data"]["ctx"]
    assert empty_ctx["midPx"] is None and empty_ctx["impactPxs"] is None and empty_ctx["premium"] is None
    update = json.loads(zlib.decompress(base64.b64decode(fast.wait_for(2)[-1]["data"]), -15))
    assert update["SOL"] == {"midPx": None}  # only the changed field of the changed coin
    server.trigger("oneSidedBook", coin="SOL", keep="bids")
    bid, ask = bbo.wait_for(3)[-1]["data"]["bbo"]
    assert bid is not None and ask is None
    server.trigger("restoreBook", coin="SOL")
    assert all(side is not None for side in bbo.wait_for(4)[-1]["data"]["bbo"])


def test_universe_has_mainnet_ids_and_names(server: LocalServer, make_client: Any) -> None:
    names = [entry["name"] for entry in _info(server, {"type": "meta"})["universe"]]
    assert names.index("BTC") == 0 and names.index("SOL") == 5  # the asset ids of actions
    spot = _info(server, {"type": "spotMeta"})
    pairs = {pair["name"]: pair for pair in spot["universe"]}
    tokens = {token["index"]: token["name"] for token in spot["tokens"]}
    assert pairs["PURR/USDC"]["index"] == 0 and pairs["@107"]["index"] == 107
    assert [tokens[t] for t in pairs["@107"]["tokens"]] == ["HYPE", "USDC"]
    assert [dex and dex["name"] for dex in _info(server, {"type": "perpDexs"})] == [None, "xyz"]
    assert _info(server, {"type": "meta", "dex": "xyz"})["universe"][0]["name"] == "xyz:XYZ100"
    client = make_client()
    assert client.info({"type": "meta", "dex": "xyz"}) == _info(server, {"type": "meta", "dex": "xyz"})
    mids, book = Collector(), Collector()
    client.subscribe({"type": "allMids", "dex": "xyz"}, mids)
    client.subscribe({"type": "l2Book", "coin": "xyz:XYZ100"}, book)
    assert mids.wait_for(1)[0]["data"]["dex"] == "xyz"
    assert set(mids.messages[0]["data"]["mids"]) == {"xyz:XYZ100", "xyz:NVDA"}
    assert book.wait_for(1)[0]["data"]["coin"] == "xyz:XYZ100"
    default = _info(server, {"type": "allMids"})
    assert {"BTC", "@107", "PURR/USDC"} <= set(default) and "xyz:XYZ100" not in default


SIGNATURE = {"r": "0x" + "1" * 64, "s": "0x" + "2" * 64, "v": 27}  # checked for shape only


def _statuses(client: Any, action: dict[str, Any]) -> list[Any]:
    answer = client.action({"action": action, "nonce": 1_700_000_000_000, "signature": SIGNATURE})
    assert answer["status"] == "ok"
    statuses: list[Any] = answer["response"]["data"]["statuses"]
    return statuses


def _order(asset: int, px: str, sz: str, cloid: str | None = None) -> dict[str, Any]:
    wire: dict[str, Any] = {"a": asset, "b": True, "p": px, "s": sz, "r": False, "t": {"limit": {"tif": "Gtc"}}}
    if cloid is not None:
        wire["c"] = cloid
    return {"type": "order", "orders": [wire], "grouping": "na"}


def test_actions_are_checked_as_the_exchange_checks_them(server: LocalServer, make_client: Any) -> None:
    client = make_client()
    assert _statuses(client, _order(0, "65000.5", "0.001")) == [
        {"error": "Price must be divisible by tick size. asset=0"}]  # 6 significant figures
    assert _statuses(client, _order(0, "30000", "0.000001")) == [
        {"error": "Order has invalid size. asset=0"}]  # BTC sizes have 5 decimals
    assert _statuses(client, _order(0, "30000", "0.0001")) == [
        {"error": "Order must have minimum value of $10. asset=0"}]
    [resting] = _statuses(client, _order(0, "30000", "0.001"))
    oid = resting["resting"]["oid"]
    cancel = {"type": "cancel", "cancels": [{"a": 0, "o": oid}]}
    assert _statuses(client, cancel) == ["success"]
    missing = {"error": "Order was never placed, already canceled, or filled. asset=0"}
    assert _statuses(client, cancel) == [missing]
    assert _statuses(client, {"type": "cancel", "cancels": [{"a": 10107, "o": 1}]}) == [
        {"error": "Order was never placed, already canceled, or filled. asset=10107"}]
    cloid = "0x" + "ab" * 16
    [spot] = _statuses(client, _order(10107, "20.0", "1.0", cloid))  # HYPE/USDC is asset 10000 + 107
    assert spot == {"resting": {"oid": spot["resting"]["oid"], "cloid": cloid}}
    by_cloid = {"type": "cancelByCloid", "cancels": [{"asset": 10107, "cloid": cloid}]}
    assert _statuses(client, by_cloid) == ["success"]
    assert "resting" in _statuses(client, _order(110000, "20000", "0.001"))[0]  # xyz:XYZ100 is asset 110000


def test_hourly_funding_payments_count_one_sample(server: LocalServer) -> None:
    user = server.market.users[0]
    payments = _info(server, {"type": "userFunding", "user": user, "startTime": 0})
    assert payments and {p["delta"]["nSamples"] for p in payments} == {1}


def _answer(client: Any, action: dict[str, Any]) -> Any:
    return client.action({"action": action, "nonce": 1_700_000_000_000, "signature": SIGNATURE})


def test_modifies_twaps_and_settings_are_checked_too(server: LocalServer, make_client: Any) -> None:
    client = make_client()
    wire = _order(0, "30000", "0.001")["orders"][0]
    assert _statuses(client, {"type": "batchModify", "modifies": [{"oid": 42, "order": wire}]}) == [
        {"error": "Cannot modify canceled or filled order. asset=0"}]
    assert _answer(client, {"type": "modify", "oid": 42, "order": wire}) == {
        "status": "err", "response": "Cannot modify canceled or filled order. asset=0"}
    [resting] = _statuses(client, _order(0, "30000", "0.001"))
    oid = resting["resting"]["oid"]
    bad_tick = {**wire, "p": "30000.5"}
    assert _statuses(client, {"type": "batchModify", "modifies": [{"oid": oid, "order": bad_tick}]}) == [
        {"error": "Price must be divisible by tick size. asset=0"}]
    [moved] = _statuses(client, {"type": "batchModify", "modifies": [{"oid": oid, "order": {**wire, "p": "31000"}}]})
    assert "resting" in moved
    cancel = {"type": "cancel", "cancels": [{"a": 0, "o": oid}]}  # the old order is gone, the new one rests
    assert _statuses(client, cancel) == [{"error": "Order was never placed, already canceled, or filled. asset=0"}]

    def twap(sz: str, minutes: Any) -> Any:
        action = {"type": "twapOrder", "twap": {"a": 0, "b": True, "s": sz, "r": False, "m": minutes, "t": False}}
        return _answer(client, action)["response"]["data"]["status"]

    assert twap("0.0001", 10) == {"error": "Order must have minimum value of $10. asset=0"}
    assert "error" in twap("0.01", 0)
    running = twap("0.01", 10)["running"]["twapId"]
    assert _answer(client, {"type": "twapCancel", "a": 0, "t": running})["response"]["data"]["status"] == "success"
    assert _answer(client, {"type": "twapCancel", "a": 0, "t": running})["response"]["data"]["status"] == {
        "error": "TWAP was never placed, already canceled, or filled."}
    assert _answer(client, {"type": "updateLeverage", "asset": 999, "isCross": True, "leverage": 5}) == {
        "status": "err", "response": "Asset 999 is out of range."}
    assert _answer(client, {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 5})["status"] == "ok"
