"""The local server speaks the protocol of protocol.md: acks, errors, feeds, limits."""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from hyperliquid_ws.testing import LocalServer, Market
from hyperliquid_ws.testing.subscriptions import SUBSCRIPTION_FIELDS


class RawClient:
    """A bare websocket-client connection that speaks JSON; every wait has a deadline."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=5)

    def send(self, message: Any) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def recv_text(self) -> str:
        text = self.ws.recv()
        assert isinstance(text, str)
        return text

    def recv(self) -> Any:
        return json.loads(self.recv_text())

    def recv_until(self, accept: Callable[[Any], bool], limit: int = 200) -> Any:
        for _ in range(limit):
            message = self.recv()
            if accept(message):
                return message
        raise AssertionError("expected frame never arrived")

    def subscribe(self, subscription: dict[str, Any]) -> Any:
        self.send({"method": "subscribe", "subscription": subscription})
        return self.recv()

    def barrier(self) -> list[Any]:
        """Ping and return every frame that arrived before the pong."""
        self.send({"method": "ping"})
        before: list[Any] = []
        while True:
            message = self.recv()
            if message == {"channel": "pong"}:
                return before
            before.append(message)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(tick_interval=None) as srv:
        yield srv
    assert not [t for t in threading.enumerate() if t.name == "hlws-local-server"]


@pytest.fixture
def client(server: LocalServer) -> Iterator[RawClient]:
    raw = RawClient(server.ws_url)
    yield raw
    raw.close()


def test_l2book_ack_is_normalised_and_followed_by_the_book(client: RawClient) -> None:
    client.send({"method": "subscribe", "subscription": {"coin": "BTC", "type": "l2Book",
                                                         "bogus": 1}})
    assert client.recv_text() == (
        '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":'
        '{"type":"l2Book","coin":"BTC","nSigFigs":null,"mantissa":null,"fast":false}}}')
    book = client.recv()
    assert book["channel"] == "l2Book"
    bids, asks = book["data"]["levels"]
    assert len(bids) == len(asks) == 20
    assert [float(b["px"]) for b in bids] == sorted((float(b["px"]) for b in bids), reverse=True)
    assert [float(a["px"]) for a in asks] == sorted(float(a["px"]) for a in asks)
    assert float(bids[0]["px"]) < float(asks[0]["px"])
    assert all(isinstance(level["sz"], str) and isinstance(level["n"], int) for level in bids)


def test_candle_and_user_fills_echo_in_server_form(server: LocalServer, client: RawClient) -> None:
    client.send({"method": "subscribe", "subscription": {"coin": "ETH", "interval": "1m",
                                                         "type": "candle"}})
    assert client.recv_text() == (
        '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":'
        '{"type":"candle","interval":"1m","coin":"ETH"}}}')
    user = server.market.users[0]
    ack = client.subscribe({"type": "userFills", "user": "0x" + user[2:].upper()})
    assert ack["data"]["subscription"] == {"type": "userFills", "user": user,
                                           "aggregateByTime": False}
    assert server.subscriptions()[1]["user"] == user


@pytest.mark.parametrize("subscription, echoed", [
    ({"type": "candle", "coin": "TST2", "interval": "1d"},
     '{"type":"candle","interval":"1d","coin":"TST2"}'),
    ({"type": "candle", "coin": "BTC", "interval": "7m"},
     '{"type":"candle","interval":"7m","coin":"BTC"}'),
    ({"type": "nope", "coin": "BTC"}, '{"type":"nope","coin":"BTC"}'),
    ({"type": "trades"}, '{"type":"trades"}'),
    ({"type": "userFills", "user": "0x123"}, '{"type":"userFills","user":"0x123",'
                                             '"aggregateByTime":false}'),
    ({"type": "l2Book", "coin": "BTC", "mantissa": 2},
     '{"type":"l2Book","coin":"BTC","nSigFigs":null,"mantissa":2,"fast":false}'),
    ({"type": "activeAssetData", "user": "0x" + "a" * 40, "coin": "PURR/USDC"},
     '{"type":"activeAssetData","user":"0x' + "a" * 40 + '","coin":"PURR/USDC"}'),
])
def test_invalid_subscriptions_are_refused_verbatim(
    client: RawClient, subscription: dict[str, Any], echoed: str,
) -> None:
    assert client.subscribe(subscription) == {"channel": "error",
                                              "data": f"Invalid subscription {echoed}"}


def test_duplicates_and_unsubscribe(client: RawClient) -> None:
    sub = {"type": "candle", "coin": "ETH", "interval": "30m"}
    client.subscribe(sub)
    assert client.subscribe(dict(reversed(list(sub.items())))) == {
        "channel": "error",
        "data": 'Already subscribed: {"type":"candle","interval":"30m","coin":"ETH"}'}
    client.send({"method": "unsubscribe", "subscription": sub})
    assert client.recv() == {"channel": "subscriptionResponse", "data": {
        "method": "unsubscribe", "subscription": {"type": "candle", "interval": "30m",
                                                  "coin": "ETH"}}}
    client.send({"method": "unsubscribe", "subscription": sub})
    assert client.recv()["data"] == (
        'Already unsubscribed: {"type":"candle","interval":"30m","coin":"ETH"}')


@pytest.mark.parametrize("raw", [
    '{ "type": "allMids" }', "not json", '{"method":"subscribe"}', '{"method":"dance"}',
    '{"method":"post","id":"x","request":{"type":"info","payload":{}}}', "[1,2]"])
def test_bad_envelopes_echo_the_raw_text(client: RawClient, raw: str) -> None:
    client.send(raw)
    assert client.recv() == {"channel": "error",
                             "data": f"Error parsing JSON into valid websocket request: {raw}"}


def test_ping_pong(client: RawClient) -> None:
    assert client.barrier() == []


def test_snapshot_feed_sends_history_then_updates_without_flag(
    server: LocalServer, client: RawClient,
) -> None:
    user = server.market.users[0]
    client.subscribe({"type": "userFills", "user": user})
    snapshot = client.recv()
    assert snapshot["channel"] == "userFills"
    assert snapshot["data"]["isSnapshot"] is True and snapshot["data"]["user"] == user
    assert snapshot["data"]["fills"], "the warmed-up market has history"
    update = None
    for _ in range(30):
        server.advance()
        frames = client.barrier()
        if frames:
            update = frames[0]
            break
    assert update is not None and update["channel"] == "userFills"
    assert "isSnapshot" not in update["data"]
    tids = [f["tid"] for f in snapshot["data"]["fills"] + update["data"]["fills"]]
    assert len(tids) == len(set(tids))
    fill = update["data"]["fills"][0]
    assert isinstance(fill["px"], str) and isinstance(fill["oid"], int)
    assert fill["hash"].startswith("0x") and len(fill["hash"]) == 66


def test_user_events_arrive_on_channel_user_without_user(
    server: LocalServer, client: RawClient,
) -> None:
    user = server.market.users[0]
    client.subscribe({"type": "userEvents", "user": user})
    client.subscribe({"type": "orderUpdates", "user": user})
    assert client.barrier() == [], "event feeds send nothing until something happens"
    seen: dict[str, Any] = {}
    for _ in range(40):
        server.advance()
        for message in client.barrier():
            seen.setdefault(message["channel"], message)
        if "user" in seen and "orderUpdates" in seen:
            break
    assert "userEvents" not in seen
    assert set(seen["user"]["data"]) <= {"fills", "funding"}
    assert isinstance(seen["orderUpdates"]["data"], list)
    assert "user" not in seen["orderUpdates"]["data"][0]


def test_active_asset_ctx_channel_depends_on_spot(client: RawClient) -> None:
    client.subscribe({"type": "activeAssetCtx", "coin": "PURR/USDC"})
    spot = client.recv()
    client.subscribe({"type": "activeAssetCtx", "coin": "BTC"})
    perp = client.recv()
    assert spot["channel"] == "activeSpotAssetCtx" and spot["data"]["coin"] == "PURR/USDC"
    assert perp["channel"] == "activeAssetCtx" and "funding" in perp["data"]["ctx"]


def test_trades_and_candles_stream_after_advance(server: LocalServer, client: RawClient) -> None:
    client.subscribe({"type": "trades", "coin": "BTC"})
    replay = client.recv()  # live replays the latest trades right after the ack
    assert replay["channel"] == "trades" and replay["data"]
    assert all(t["coin"] == "BTC" for t in replay["data"])
    client.subscribe({"type": "candle", "coin": "BTC", "interval": "1h"})
    assert client.barrier() == []
    candles: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    for _ in range(20):
        server.advance()
        for message in client.barrier():
            if message["channel"] == "candle":
                candles.append(message["data"])
            else:
                trades.extend(message["data"])
        if len(candles) >= 2:
            break
    assert len(candles) >= 2 and candles[0]["t"] == candles[-1]["t"]
    assert candles[-1]["n"] > candles[0]["n"] and candles[0]["T"] == candles[0]["t"] + 3599999
    assert all(t["coin"] == "BTC" and isinstance(t["tid"], int) for t in trades)
    assert len({t["tid"] for t in trades}) == len(trades)


def test_every_subscription_type_is_accepted_and_emits(server: LocalServer) -> None:
    user = server.market.users[1]
    values = {"user": user, "coin": "ETH", "interval": "5m"}
    raw = RawClient(server.ws_url)
    try:
        for kind, fields in SUBSCRIPTION_FIELDS.items():
            sub = {"type": kind, **{f.name: values[f.name] for f in fields if f.required}}
            ack = raw.subscribe(sub)
            assert ack["channel"] == "subscriptionResponse", ack
            raw.barrier()
            frame = server.emit(sub)
            assert frame is not None, kind
            assert raw.recv() == frame
    finally:
        raw.close()
    assert len(SUBSCRIPTION_FIELDS) >= 28


def test_fast_asset_ctxs_is_raw_deflate_base64(client: RawClient) -> None:
    client.subscribe({"type": "fastAssetCtxs"})
    data = client.recv()["data"]
    decoded = json.loads(zlib.decompress(base64.b64decode(data), -15))
    assert set(decoded) >= {"BTC", "ETH", "SOL"} and isinstance(decoded["BTC"]["markPx"], str)


def test_greeting_is_sent_first() -> None:
    with LocalServer(tick_interval=None, greeting=True) as srv:
        raw = RawClient(srv.ws_url)
        assert raw.recv_text() == "Websocket connection established."
        raw.close()


def test_limits_are_enforced_per_server() -> None:
    with LocalServer(tick_interval=None, max_subscriptions=3, max_users=1,
                     max_messages_per_minute=12) as srv:
        users = ("0x" + "1" * 40, "0x" + "2" * 40)
        first, second = RawClient(srv.ws_url), RawClient(srv.ws_url)
        assert first.subscribe({"type": "orderUpdates", "user": users[0]})["channel"] == (
            "subscriptionResponse")
        assert second.subscribe({"type": "userEvents", "user": users[1]}) == {
            "channel": "error", "data": "Cannot track more than 1 total users."}
        second.subscribe({"type": "trades", "coin": "BTC"})
        assert second.recv()["channel"] == "trades"  # the replay that follows the ack
        first.subscribe({"type": "trades", "coin": "ETH"})
        assert first.recv()["channel"] == "trades"
        assert second.subscribe({"type": "trades", "coin": "SOL"}) == {
            "channel": "error", "data": "Cannot subscribe to more than 3 channels."}
        replies = []
        for _ in range(8):
            second.send({"method": "ping"})
            replies.append(second.recv())
        assert replies[-1] == {"channel": "error",
                               "data": "Cannot send more than 12 messages per minute."}
        first.close()
        second.close()


def test_too_many_pending_posts() -> None:
    with LocalServer(tick_interval=None, max_inflight_posts=2) as srv:
        raw = RawClient(srv.ws_url)
        srv.hold_posts()
        for post_id in (1, 2, 3):
            raw.send({"method": "post", "id": post_id,
                      "request": {"type": "info", "payload": {"type": "allMids"}}})
        assert raw.recv() == {"channel": "error", "data": "too many pending post requests id=3"}
        srv.hold_posts(False)
        answered = [raw.recv()["data"]["id"], raw.recv()["data"]["id"]]
        assert answered == [1, 2]
        raw.close()


def test_same_seed_same_market() -> None:
    first, second, other = Market(7), Market(7), Market(8)
    assert first.users == second.users != other.users
    assert all(u == u.lower() for u in first.users)
    first_tick, second_tick = first.step(), second.step()

    def strip(trades: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        return [{k: v for k, v in t.items() if k != "time"} for t in (trades or [])]

    assert strip(first_tick.trades.get("BTC")) == strip(second_tick.trades.get("BTC"))
    assert first.all_mids() == second.all_mids()


def test_emit_makes_fresh_events_that_http_info_knows(server: LocalServer,
                                                      client: RawClient) -> None:
    client.subscribe({"type": "trades", "coin": "SOL"})
    assert client.recv()["channel"] == "trades"  # the replay that follows the ack
    user = server.market.users[0]
    client.subscribe({"type": "userEvents", "user": user})
    first = server.emit({"type": "trades", "coin": "SOL"})
    second = server.emit({"type": "trades", "coin": "SOL"})
    assert first is not None and second is not None
    assert first["data"][0]["tid"] != second["data"][0]["tid"]
    event = server.emit({"type": "userEvents", "user": user})
    assert event is not None and event["channel"] == "user"
    assert [client.recv() for _ in range(3)] == [first, second, event]
    post = {"method": "post", "id": 1, "request": {"type": "info", "payload": {
        "type": "userFills", "user": user}}}
    client.send(post)
    newest = client.recv()["data"]["response"]["payload"]["data"][0]
    assert newest == event["data"]["fills"][0]
