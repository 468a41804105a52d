"""The local server speaks like the live exchange: every captured frame in tests/fixtures/
(real frames from wss://api.hyperliquid.xyz/ws and /info, see its README) is compared,
key by key and type by type, with what hyperliquid_ws.testing emits for the same request.

The real client subscribes against the real local server on loopback; each case waits
for a frame of the captured kind with a deadline, provoking it (a tick, a rare event)
when the market has not made one yet. A new shape difference fails here.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from hyperliquid_ws import HyperliquidWS
from hyperliquid_ws.testing import LocalServer
from tests.conftest import DEADLINE
from tests.frame_shapes import Hints, differences, hints

FIXTURES = Path(__file__).parent / "fixtures"
Frame = dict[str, Any]

NO_HINTS = Hints()
FILL = "cloid liquidation builderFee"
"""WsFill keys live sends only sometimes."""


def _fill_hints(prefix: str, **more: str) -> Hints:
    optional = " ".join(f"{prefix}.{key}" for key in FILL.split())
    return hints(optional=f"{optional} {more.pop('optional', '')}",
                 nullable=f"{prefix}.twapId {more.pop('nullable', '')}", **more)


@dataclass(frozen=True)
class Case:
    """How to get the local counterpart of one captured frame."""

    subscription: Callable[[LocalServer], dict[str, Any]]
    rules: Hints = NO_HINTS
    accept: Callable[[Any], bool] = lambda data: True
    provoke: Callable[[LocalServer], object] = lambda server: server.advance()


def _user(kind: str, **extra: Any) -> Callable[[LocalServer], dict[str, Any]]:
    return lambda server: {"type": kind, "user": server.market.users[0], **extra}


def _plain(kind: str, **extra: Any) -> Callable[[LocalServer], dict[str, Any]]:
    return lambda server: {"type": kind, **extra}


def _event(name: str, **options: Any) -> Callable[[LocalServer], object]:
    return lambda server: server.trigger(name, **options)


POSITION = "data.clearinghouseState.assetPositions[].position"
ALL_DEXS_POSITION = "data.clearinghouseStates[][].assetPositions[].position"
WS_CASES: dict[str, Case] = {
    "allMids": Case(_plain("allMids"), hints(maps="data.mids")),
    "allMids_dex": Case(_plain("allMids", dex="xyz"), hints(maps="data.mids")),
    "notification": Case(_user("notification"), provoke=lambda server: server.emit(_user("notification")(server))),
    "webData3": Case(_user("webData3"), hints(
        optional="data.userState.optOutOfSpotDusting data.perpDexStates[].perpsAtOpenInterestCap "
                 "data.perpDexStates[].leadingVaults",
        nullable="data.userState.agentAddress data.userState.agentValidUntil",
        omitted_when_empty="data.perpDexStates[].leadingVaults data.perpDexStates[].perpsAtOpenInterestCap")),
    "twapStates": Case(_user("twapStates"), hints(nullable="data.states[][].trigger data.states[][].stopPx"),
                       accept=lambda data: bool(data["states"]), provoke=_event("twapSliceFill")),
    "clearinghouseState": Case(_user("clearinghouseState"), hints(
        optional=f"{POSITION}.leverage.rawUsd", nullable=f"{POSITION}.liquidationPx"),
        accept=lambda data: bool(data["clearinghouseState"]["assetPositions"])),
    "openOrders": Case(_user("openOrders"), hints(may_be_empty="data.orders[].children",
                                                 nullable="data.orders[].cloid data.orders[].tif"),
                       accept=lambda data: bool(data["orders"])),
    "candle": Case(_plain("candle", coin="BTC", interval="1d")),
    "l2Book": Case(_plain("l2Book", coin="BTC")),
    "l2Book_fast": Case(_plain("l2Book", coin="SOL", fast=True)),
    "l2Book_aggregated": Case(_plain("l2Book", coin="BTC", nSigFigs=5)),
    "trades": Case(_plain("trades", coin="BTC")),
    "orderUpdates": Case(_user("orderUpdates"), hints(optional="data[].order.cloid data[].order.reduceOnly")),
    "userEvents_fills": Case(_user("userEvents"), _fill_hints("data.fills[]"), accept=lambda data: "fills" in data),
    "userEvents_funding": Case(_user("userEvents"), hints(nullable="data.funding.nSamples"),
                               accept=lambda data: "funding" in data),
    "userEvents_liquidation": Case(_user("userEvents"), accept=lambda data: "liquidation" in data,
                                   provoke=_event("liquidation")),
    "userEvents_nonUserCancel": Case(_user("userEvents"), accept=lambda data: "nonUserCancel" in data,
                                     provoke=_event("nonUserCancel")),
    "userEvents_twapSliceFills": Case(_user("userEvents"), _fill_hints("data.twapSliceFills[].fill"),
                                      accept=lambda data: "twapSliceFills" in data, provoke=_event("twapSliceFill")),
    "userFills": Case(_user("userFills"), _fill_hints("data.fills[]", optional="data.isSnapshot"),
                      accept=lambda data: bool(data["fills"])),
    "userFundings": Case(_user("userFundings"), hints(nullable="data.fundings[].nSamples", optional="data.isSnapshot"),
                         accept=lambda data: bool(data["fundings"])),
    "userNonFundingLedgerUpdates": Case(
        _user("userNonFundingLedgerUpdates"), hints(optional="data.isSnapshot"),
        accept=lambda data: any(u["delta"]["type"] == "liquidation" for u in data["nonFundingLedgerUpdates"]),
        provoke=_event("liquidation")),
    "activeAssetCtx": Case(_plain("activeAssetCtx", coin="BTC")),
    "activeSpotAssetCtx": Case(_plain("activeAssetCtx", coin="@107")),
    "activeAssetData": Case(_user("activeAssetData", coin="BTC"), hints(optional="data.leverage.rawUsd")),
    "userTwapSliceFills": Case(_user("userTwapSliceFills"),
                               _fill_hints("data.twapSliceFills[].fill", optional="data.isSnapshot"),
                               accept=lambda data: bool(data["twapSliceFills"]), provoke=_event("twapSliceFill")),
    "userTwapHistory": Case(_user("userTwapHistory"), hints(
        optional="data.isSnapshot", nullable="data.history[].state.trigger data.history[].state.stopPx"),
        accept=lambda data: bool(data["history"]), provoke=_event("twapSliceFill")),
    "bbo": Case(_plain("bbo", coin="BTC")),
    "bbo_one_sided": Case(_plain("bbo", coin="ETH"), accept=lambda data: data["bbo"][0] is None,
                          provoke=_event("oneSidedBook", coin="ETH")),
    "spotState": Case(_user("spotState")),
    "allDexsClearinghouseState": Case(_user("allDexsClearinghouseState"), hints(
        optional=f"{ALL_DEXS_POSITION}.leverage.rawUsd", nullable=f"{ALL_DEXS_POSITION}.liquidationPx")),
    "allDexsAssetCtxs": Case(_plain("allDexsAssetCtxs")),
    "fastAssetCtxs": Case(_plain("fastAssetCtxs"), hints(maps="<root>", nullable="[].midPx")),
    "fastAssetCtxs_update": Case(_plain("fastAssetCtxs"), hints(maps="<root>", optional="[].markPx [].midPx",
                                                               nullable="[].midPx"),
                                 accept=lambda data: len(data) < 9),
    "outcomeMetaUpdates": Case(_plain("outcomeMetaUpdates"), provoke=_event("outcomeSettled", outcome=7)),
}
"""Per ``ws_<name>.json``: the local subscription, and how to get the captured kind of frame."""

NOT_MADE_LOCALLY: dict[str, str] = {}
"""Fixtures of frames the local server cannot make, with the reason."""

INFO_CASES: dict[str, tuple[str, Callable[[LocalServer], dict[str, Any]], Hints]] = {
    "candleSnapshot": ("info_candleSnapshot", lambda server: {
        "type": "candleSnapshot", "req": {"coin": "@107", "interval": "1d", "startTime": 0, "endTime": 2**62}},
        Hints()),
    "l2Book": ("info_l2Book", _plain("l2Book", coin="@107"), Hints()),
    "recentTrades": ("ws_trades", _plain("recentTrades", coin="BTC"), Hints()),
    "userFills": ("info_userFills", _user("userFills"), _fill_hints("[]")),
    "userFillsByTime": ("info_userFills", _user("userFillsByTime", startTime=0), _fill_hints("[]")),
    "userFunding": ("info_userFunding", _user("userFunding", startTime=0), hints(nullable="[].delta.nSamples")),
    "userNonFundingLedgerUpdates": ("info_userNonFundingLedgerUpdates",
                                    _user("userNonFundingLedgerUpdates", startTime=0), Hints()),
    "historicalOrders": ("info_historicalOrders", _user("historicalOrders"), hints(
        may_be_empty="[].order.children", nullable="[].order.cloid [].order.tif")),
    "userTwapSliceFillsByTime": ("ws_userTwapSliceFills", _user("userTwapSliceFillsByTime", startTime=0),
                                 _fill_hints("[].fill")),
}
"""Per backfill ``/info`` endpoint: the fixture it is compared with (frames of the same
items where no answer of its own was captured) and the local request."""


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _captured_items(name: str) -> Any:
    """What an /info answer is compared with: the fixture's response, or the items of a frame."""
    fixture = _fixture(name)
    if "response" in fixture:
        return fixture["response"]
    data = fixture["frame"]["data"]
    return data["twapSliceFills"] if isinstance(data, dict) else data


def _decoded(frame: Frame) -> Any:
    """fastAssetCtxs data is base64 of raw DEFLATE of JSON: compare what it holds."""
    return json.loads(zlib.decompress(base64.b64decode(frame["data"]), -15))


class Frames:
    """Every frame the client delivered, per subscription; waits with a deadline."""

    def __init__(self) -> None:
        self._frames: dict[str, list[Frame]] = {}
        self._changed = threading.Condition()

    def collector(self, key: str) -> Callable[[Frame], None]:
        def collect(frame: Frame) -> None:
            with self._changed:
                self._frames.setdefault(key, []).append(frame)
                self._changed.notify_all()
        with self._changed:
            self._frames.setdefault(key, [])
        return collect

    def find(self, key: str, accept: Callable[[Any], bool], timeout: float) -> Frame | None:
        def found() -> Frame | None:
            return next((f for f in self._frames[key] if accept(_data_of(f))), None)
        with self._changed:
            self._changed.wait_for(lambda: found() is not None, timeout)
            return found()


def _data_of(frame: Frame) -> Any:
    return _decoded(frame) if frame["channel"] == "fastAssetCtxs" else frame["data"]


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[LocalServer, HyperliquidWS, Frames, dict[str, Any]]]:
    with LocalServer(tick_interval=None) as server:
        client = HyperliquidWS(server.base_url, backfill=False, trust_env=False)
        try:
            yield server, client, Frames(), {}
        finally:
            client.close()


@pytest.mark.parametrize("name", sorted(WS_CASES))
def test_frame_has_the_captured_shape(name: str, live: Any) -> None:
    server, client, frames, held = live
    case = WS_CASES[name]
    fixture = _fixture(f"ws_{name}")
    subscription = case.subscription(server)
    key = json.dumps(subscription, sort_keys=True)
    if key not in held:
        held[key] = client.subscribe(subscription, frames.collector(key))
    deadline = time.monotonic() + DEADLINE
    frame = frames.find(key, case.accept, 0.2)
    while frame is None and time.monotonic() < deadline:
        case.provoke(server)
        frame = frames.find(key, case.accept, 0.5)
    assert frame is not None, f"the local server sent no {name} frame of the captured kind"
    assert frame["channel"] == fixture["frame"]["channel"]
    captured, local = fixture["frame"], frame
    if frame["channel"] == "fastAssetCtxs":  # compare the payload: its paths have no "data." prefix
        captured, local = _decoded(captured), _decoded(local)
    assert differences(captured, local, case.rules) == []


INFO_PROVOKE = {"userTwapSliceFillsByTime": "twapSliceFill"}
"""Info answers empty until an event happens: made here, not left to whichever frame test
ran first in the same worker (the server is shared)."""


@pytest.mark.parametrize("name", sorted(INFO_CASES))
def test_info_answer_has_the_captured_shape(name: str, live: Any) -> None:
    server = live[0]
    fixture_name, request, rules = INFO_CASES[name]
    if name in INFO_PROVOKE:
        server.trigger(INFO_PROVOKE[name])
    answer = requests.post(f"{server.base_url}/info", json=request(server), timeout=DEADLINE).json()
    assert answer, f"the local {name} answer is empty, so nothing of it is checked"
    assert differences(_captured_items(fixture_name), answer, rules) == []


@pytest.mark.parametrize("kind", ["trades", "l2Book", "candle"])
def test_ack_has_the_captured_shape(kind: str, live: Any) -> None:
    server = live[0]
    captured = _fixture(f"ack_{kind}")["frame"]
    sent = dict(captured["data"]["subscription"], coin="BTC")
    ws = websocket.create_connection(server.ws_url, timeout=DEADLINE)
    try:
        ws.send(json.dumps({"method": "subscribe", "subscription": sent}))
        ack = json.loads(ws.recv())
    finally:
        ws.close()
    # the capture predates l2Book's "fast" flag, which live now echoes as false
    assert differences(captured, ack, hints(optional="data.subscription.fast")) == []
    assert list(ack["data"]["subscription"])[:len(sent)] == list(captured["data"]["subscription"])


def test_every_fixture_is_compared() -> None:
    covered = {f"ws_{name}" for name in WS_CASES} | {f"ws_{name}" for name in NOT_MADE_LOCALLY}
    covered |= {fixture for fixture, _, _ in INFO_CASES.values()} | {"ack_trades", "ack_l2Book", "ack_candle"}
    assert {path.stem for path in FIXTURES.glob("*.json")} == covered
