"""Every feed, routed exactly: a frame reaches the callbacks of its own subscription and
no other. Real client, real local server, real sockets."""

from __future__ import annotations

import pytest

from .conftest import Collector, wait_until

A, B = "userA", "userB"  # stand-ins, replaced by the market's two users


def _sub(template: dict, users: tuple[str, str]) -> dict:
    return {k: (users[0] if v == A else users[1] if v == B else v) for k, v in template.items()}


PAIRS = [
    ({"type": "trades", "coin": "BTC"}, {"type": "trades", "coin": "ETH"}),
    ({"type": "candle", "coin": "BTC", "interval": "1m"}, {"type": "candle", "coin": "BTC", "interval": "5m"}),
    ({"type": "candle", "coin": "BTC", "interval": "1m"}, {"type": "candle", "coin": "ETH", "interval": "1m"}),
    ({"type": "l2Book", "coin": "BTC"}, {"type": "l2Book", "coin": "ETH"}),
    ({"type": "l2Book", "coin": "BTC"}, {"type": "l2Book", "coin": "BTC", "fast": True}),
    ({"type": "bbo", "coin": "BTC"}, {"type": "bbo", "coin": "SOL"}),
    ({"type": "activeAssetCtx", "coin": "BTC"}, {"type": "activeAssetCtx", "coin": "PURR/USDC"}),
    ({"type": "activeAssetData", "user": A, "coin": "BTC"}, {"type": "activeAssetData", "user": B, "coin": "BTC"}),
    ({"type": "activeAssetData", "user": A, "coin": "BTC"}, {"type": "activeAssetData", "user": A, "coin": "ETH"}),
    ({"type": "userFills", "user": A}, {"type": "userFills", "user": B}),
    ({"type": "userFundings", "user": A}, {"type": "userFundings", "user": B}),
    ({"type": "userNonFundingLedgerUpdates", "user": A}, {"type": "userNonFundingLedgerUpdates", "user": B}),
    ({"type": "userTwapSliceFills", "user": A}, {"type": "userTwapSliceFills", "user": B}),
    ({"type": "userTwapHistory", "user": A}, {"type": "userTwapHistory", "user": B}),
    ({"type": "userHistoricalOrders", "user": A}, {"type": "userHistoricalOrders", "user": B}),
    ({"type": "webData2", "user": A}, {"type": "webData2", "user": B}),
    ({"type": "webData3", "user": A}, {"type": "webData3", "user": B}),
    ({"type": "clearinghouseState", "user": A}, {"type": "clearinghouseState", "user": B}),
    ({"type": "openOrders", "user": A}, {"type": "openOrders", "user": B}),
    ({"type": "twapStates", "user": A}, {"type": "twapStates", "user": B}),
    ({"type": "spotState", "user": A}, {"type": "spotState", "user": B}),
    ({"type": "allDexsClearinghouseState", "user": A}, {"type": "allDexsClearinghouseState", "user": B}),
]

SINGLES = [
    {"type": "allMids"},
    {"type": "orderUpdates", "user": A},
    {"type": "userEvents", "user": A},
    {"type": "notification", "user": A},
    {"type": "allDexsAssetCtxs"},
    {"type": "assetCtxs"},
    {"type": "spotAssetCtxs"},
    {"type": "fastAssetCtxs"},
    {"type": "outcomeMetaUpdates"},
]


def _ids(params):
    return ["-".join(str(v) for v in (a | {"vs": "|".join(map(str, b.values()))}).values()) for a, b in params]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=_ids(PAIRS))
def test_each_frame_reaches_only_its_own_subscription(server, client, first, second):
    users = server.market.users
    first, second = _sub(first, users), _sub(second, users)
    got_first, got_second = Collector(), Collector()
    client.subscribe(first, got_first).wait()
    client.subscribe(second, got_second).wait()

    frame_first = server.emit(first)
    wait_until(lambda: frame_first in got_first.messages, what=f"{first} frame")
    frame_second = server.emit(second)
    wait_until(lambda: frame_second in got_second.messages, what=f"{second} frame")

    assert frame_first != frame_second
    assert frame_second not in got_first.messages
    assert frame_first not in got_second.messages


@pytest.mark.parametrize("subscription", SINGLES, ids=[s["type"] for s in SINGLES])
def test_every_other_feed_delivers_its_frames(server, client, subscription):
    subscription = _sub(subscription, server.market.users)
    got = Collector()
    client.subscribe(subscription, got).wait()
    frame = server.emit(subscription)
    wait_until(lambda: frame in got.messages, what=f"{subscription} frame")


@pytest.mark.hyperliquid_server(trades_replay=0)  # the test scripts every trades frame
def test_callbacks_get_the_frame_exactly_as_the_server_sent_it(server, client):
    got = Collector()
    client.subscribe({"type": "trades", "coin": "SOL"}, got).wait()
    frame = {"channel": "trades", "data": [{"coin": "SOL", "side": "B", "px": "101.5", "sz": "2",
                                            "time": 1, "hash": "0x" + "0" * 64, "tid": 7,
                                            "users": ["0x" + "1" * 40, "0x" + "2" * 40]}]}
    server.push(frame)
    assert got.wait_for(1)[-1] == frame


def test_user_events_arrive_on_channel_user_and_spot_contexts_on_their_own_channel(server, client):
    user = server.market.users[0]
    events, spot = Collector(), Collector()
    client.subscribe({"type": "userEvents", "user": user}, events).wait()
    client.subscribe({"type": "activeAssetCtx", "coin": "PURR/USDC"}, spot).wait()
    wait_until(lambda: server.emit({"type": "userEvents", "user": user}) and events.messages)
    assert events.messages[-1]["channel"] == "user"
    frame = server.emit({"type": "activeAssetCtx", "coin": "PURR/USDC"})
    wait_until(lambda: frame in spot.messages)
    assert frame["channel"] == "activeSpotAssetCtx"


@pytest.mark.hyperliquid_server(trades_replay=0)  # the test scripts every trades frame
def test_frames_for_feeds_the_client_does_not_hold_are_dropped(server, client):
    got = Collector()
    client.subscribe({"type": "trades", "coin": "BTC"}, got).wait()
    server.push({"channel": "trades", "data": [{"coin": "DOGE", "tid": 1}]})
    server.push({"channel": "trades", "data": []})
    server.push({"channel": "bbo", "data": {"coin": "BTC", "time": 1, "bbo": [None, None]}})
    server.push("Websocket connection established.")
    marker = {"channel": "trades", "data": [{"coin": "BTC", "tid": 2}]}
    server.push(marker)
    assert got.wait_for(1) == [marker]
