"""HTTP /info, WebSocket post requests and backfill consistency of the local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket

from hyperliquid_ws.testing import LocalServer

SIGNATURE = {"r": "0x" + "1" * 64, "s": "0x" + "2" * 64, "v": 27}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(tick_interval=None, seed=3) as srv:
        yield srv


@pytest.fixture
def ws(server: LocalServer) -> Iterator[websocket.WebSocket]:
    conn = websocket.create_connection(server.ws_url, timeout=5)
    yield conn
    conn.close()


def _info(server: LocalServer, body: Any) -> Any:
    response = requests.post(f"{server.base_url}/info", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def _post(ws: websocket.WebSocket, post_id: int, request: dict[str, Any]) -> Any:
    ws.send(json.dumps({"method": "post", "id": post_id, "request": request}))
    while True:
        message = json.loads(ws.recv())
        if message["channel"] == "post" and message["data"]["id"] == post_id:
            return message["data"]["response"]


def _bodies(user: str) -> list[dict[str, Any]]:
    return [
        {"type": "allMids"}, {"type": "l2Book", "coin": "ETH"},
        {"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 2},
        {"type": "meta"}, {"type": "spotMeta"}, {"type": "perpDexs"},
        {"type": "metaAndAssetCtxs"}, {"type": "spotMetaAndAssetCtxs"},
        {"type": "recentTrades", "coin": "SOL"}, {"type": "userFills", "user": user},
        {"type": "userFillsByTime", "user": user, "startTime": 0},
        {"type": "userFunding", "user": user, "startTime": 0},
        {"type": "userNonFundingLedgerUpdates", "user": user, "startTime": 0},
        {"type": "historicalOrders", "user": user}, {"type": "openOrders", "user": user},
        {"type": "frontendOpenOrders", "user": user}, {"type": "twapHistory", "user": user},
        {"type": "userTwapSliceFills", "user": user},
        {"type": "spotClearinghouseState", "user": user},
        {"type": "activeAssetData", "user": user, "coin": "BTC"},
        {"type": "fundingHistory", "coin": "BTC", "startTime": 0},
        {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "15m", "startTime": 0,
                                           "endTime": 2**50}},
    ]


def test_post_info_equals_http_info(server: LocalServer, ws: websocket.WebSocket) -> None:
    for post_id, body in enumerate(_bodies(server.market.users[0])):
        http = _info(server, body)
        response = _post(ws, post_id, {"type": "info", "payload": body})
        assert response == {"type": "info", "payload": {"type": body["type"], "data": http}}


def test_user_state_answers(server: LocalServer) -> None:
    user = server.market.users[0]
    state = _info(server, {"type": "clearinghouseState", "user": user.upper().replace("0X", "0x")})
    assert set(state) >= {"marginSummary", "crossMarginSummary", "assetPositions", "withdrawable"}
    assert isinstance(state["marginSummary"]["accountValue"], str)
    assert isinstance(state["time"], int)
    order = _info(server, {"type": "historicalOrders", "user": user})[0]
    status = _info(server, {"type": "orderStatus", "user": user, "oid": order["order"]["oid"]})
    assert status["status"] == "order" and status["order"]["order"]["oid"] == order["order"]["oid"]
    assert _info(server, {"type": "orderStatus", "user": user, "oid": 1}) == {
        "status": "unknownOid"}
    stranger = _info(server, {"type": "userFills", "user": "0x" + "9" * 40})
    assert stranger == []


@pytest.mark.parametrize("body", [
    "{not json", json.dumps({"type": "nope"}), json.dumps({"type": "userFills", "user": "x"}),
    json.dumps({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "2m",
                                                  "startTime": 0}}), json.dumps([1])])
def test_bad_info_bodies_get_422(server: LocalServer, body: str) -> None:
    response = requests.post(f"{server.base_url}/info", data=body, timeout=5,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.text == "Failed to deserialize the JSON body into the target type"


def test_post_errors_are_strings(ws: websocket.WebSocket) -> None:
    response = _post(ws, 1, {"type": "info", "payload": {"type": "nope"}})
    assert response["type"] == "error" and isinstance(response["payload"], str)
    assert response["payload"].startswith("422")


def test_post_actions(server: LocalServer, ws: websocket.WebSocket) -> None:
    mid = float(_info(server, {"type": "allMids"})["ETH"])

    def order(px: float, tif: str = "Gtc", asset: int = 1) -> dict[str, Any]:
        return {"type": "action", "payload": {
            "action": {"type": "order", "grouping": "na", "orders": [
                {"a": asset, "b": True, "p": f"{px:.1f}", "s": "0.1", "r": False,
                 "t": {"limit": {"tif": tif}}}]},
            "nonce": 1, "signature": SIGNATURE}}

    resting = _post(ws, 1, order(mid * 0.9))
    assert resting["type"] == "action" and resting["payload"]["status"] == "ok"
    oid = resting["payload"]["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert isinstance(oid, int)
    filled = _post(ws, 2, order(mid * 1.1, "Ioc"))
    assert set(filled["payload"]["response"]["data"]["statuses"][0]) == {"filled"}
    cancel = _post(ws, 3, {"type": "action", "payload": {
        "action": {"type": "cancel", "cancels": [{"a": 1, "o": oid}]}, "nonce": 2,
        "signature": SIGNATURE}})
    assert cancel["payload"] == {"status": "ok", "response": {"type": "cancel", "data": {
        "statuses": ["success"]}}}
    unknown = _post(ws, 4, order(1.0, asset=999))
    assert unknown["payload"]["status"] == "err" and isinstance(unknown["payload"]["response"], str)
    unsigned = _post(ws, 5, {"type": "action", "payload": {"action": {"type": "order"},
                                                           "nonce": 3}})
    assert unsigned["type"] == "error"
    http = requests.post(f"{server.base_url}/exchange", timeout=5, json={
        "action": {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 5},
        "nonce": 4, "signature": SIGNATURE})
    assert http.json() == {"status": "ok", "response": {"type": "default"}}


def test_streamed_data_can_be_backfilled(server: LocalServer, ws: websocket.WebSocket) -> None:
    user = server.market.users[1]
    for sub in ({"type": "userFills", "user": user}, {"type": "trades", "coin": "ETH"},
                {"type": "candle", "coin": "ETH", "interval": "1m"}):
        ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
    fills: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    candles: list[dict[str, Any]] = []
    for _ in range(15):
        server.advance()
        ws.send('{"method":"ping"}')
        while (message := json.loads(ws.recv()))["channel"] != "pong":
            data = message["data"]
            if message["channel"] == "userFills" and "isSnapshot" not in data:
                fills.extend(data["fills"])
            elif message["channel"] == "trades":
                trades.extend(data)
            elif message["channel"] == "candle":
                candles.append(data)
    assert fills and trades and candles
    start = min(f["time"] for f in fills)
    backfill = _info(server, {"type": "userFillsByTime", "user": user, "startTime": start})
    assert {f["tid"] for f in fills} <= {f["tid"] for f in backfill}
    assert [f["time"] for f in backfill] == sorted(f["time"] for f in backfill)
    recent = _info(server, {"type": "recentTrades", "coin": "ETH"})
    assert {t["tid"] for t in trades} <= {t["tid"] for t in recent}
    snapshot = _info(server, {"type": "candleSnapshot", "req": {
        "coin": "ETH", "interval": "1m", "startTime": candles[-1]["t"]}})
    assert candles[-1] in snapshot
    newest = _info(server, {"type": "userFills", "user": user})
    assert newest[0] == backfill[-1]
