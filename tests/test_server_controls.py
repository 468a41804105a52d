"""The local server's test controls: disconnects, silence, refusals, pushes, lifecycle."""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from hyperliquid_ws.testing import LocalServer


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hlws-local-server"]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(tick_interval=None) as srv:
        yield srv
    assert not _server_threads()


def _connect(server: LocalServer, timeout: float = 5.0) -> websocket.WebSocket:
    return websocket.create_connection(server.ws_url, timeout=timeout)


def _recv(ws: websocket.WebSocket) -> Any:
    return json.loads(ws.recv())


def test_urls_and_ephemeral_port(server: LocalServer) -> None:
    assert server.port > 0
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert server.ws_url == f"ws://127.0.0.1:{server.port}/ws"
    assert len(server.market.users) == 2


def test_drop_connections_aborts_without_close_frame(server: LocalServer) -> None:
    ws = _connect(server)
    assert server.wait_for_connections(1)
    assert server.drop_connections() == 1
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        ws.recv()
    assert server.wait_for_connections(0)
    ws.close()


def test_close_connections_sends_the_code(server: LocalServer) -> None:
    ws = _connect(server)
    assert server.wait_for_connections(1)
    assert server.close_connections(4000, "bye") == 1
    opcode, payload = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert struct.unpack("!H", payload[:2])[0] == 4000 and payload[2:] == b"bye"
    assert server.wait_for_connections(0)
    ws.close()


def test_silence_keeps_the_socket_but_answers_nothing(server: LocalServer) -> None:
    ws = _connect(server)
    assert server.wait_for_connections(1)
    server.silence()
    ws.send('{"method":"ping"}')
    assert server.wait_for_received(1)
    ws.settimeout(0.3)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    assert server.push({"channel": "pong"}) == 0
    assert server.connection_ids() == [1]
    assert server.received() == [(1, {"method": "ping"})]
    server.silence(False)
    ws.settimeout(5)
    ws.send('{"method":"ping"}')
    assert _recv(ws) == {"channel": "pong"}
    ws.close()


def test_refuse_handshakes_then_accept(server: LocalServer) -> None:
    server.refuse_handshakes(2)
    for _ in range(2):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            _connect(server)
        assert refused.value.status_code == 503
    ws = _connect(server)
    assert server.wait_for_connections(1)
    ws.close()


def test_idle_connections_are_closed() -> None:
    with LocalServer(tick_interval=None, idle_timeout=0.3) as srv:
        ws = _connect(srv)
        opcode, _ = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert srv.wait_for_connections(0)
        ws.close()


def test_push_publish_and_received_per_connection(server: LocalServer) -> None:
    first, second = _connect(server), _connect(server)
    assert server.wait_for_connections(2)
    first.send(json.dumps({"method": "subscribe", "subscription": {"type": "trades",
                                                                   "coin": "SOL"}}))
    assert _recv(first)["channel"] == "subscriptionResponse"
    assert _recv(first)["channel"] == "trades"  # the replay that follows the ack
    assert server.push("hello", conn=2) == 1
    assert second.recv() == "hello"
    assert server.push({"channel": "pong"}) == 2
    assert _recv(first) == _recv(second) == {"channel": "pong"}
    trade = [{"coin": "SOL", "side": "B", "px": "1.0", "sz": "1.0", "time": 1, "hash": "0x0",
              "tid": 1, "users": ["0x1", "0x2"]}]
    assert server.publish({"coin": "SOL", "type": "trades"}, trade) == 1
    assert _recv(first) == {"channel": "trades", "data": trade}
    assert server.publish({"type": "userEvents", "user": "0x" + "a" * 40}, {"fills": []}) == 0
    assert [conn for conn, _ in server.received()] == [1]
    assert server.received(conn=2) == []
    with pytest.raises(ValueError):
        server.publish({"type": "trades", "coin": "NOPE"}, [])
    first.close()
    second.close()


def test_subscriptions_do_not_survive_a_reconnect(server: LocalServer) -> None:
    ws = _connect(server)
    ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "allMids"}}))
    assert _recv(ws)["channel"] == "subscriptionResponse"
    assert server.wait_for_subscriptions(1)
    server.drop_connections()
    assert server.wait_for_subscriptions(0) and server.wait_for_connections(0)
    again = _connect(server)
    assert server.wait_for_connections(1)
    assert server.subscriptions() == []
    ws.close()
    again.close()


def test_hold_posts_leaves_posts_unanswered(server: LocalServer) -> None:
    ws = _connect(server)
    server.hold_posts()
    ws.send(json.dumps({"method": "post", "id": 9,
                        "request": {"type": "info", "payload": {"type": "meta"}}}))
    ws.send('{"method":"ping"}')
    assert _recv(ws) == {"channel": "pong"}
    server.hold_posts(False)
    answer = _recv(ws)
    assert answer["channel"] == "post" and answer["data"]["id"] == 9
    ws.close()


def test_ticking_market_streams_on_its_own() -> None:
    with LocalServer(tick_interval=0.02) as srv:
        ws = _connect(srv)
        ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "allMids"}}))
        assert _recv(ws)["channel"] == "subscriptionResponse"
        mids = [_recv(ws)["data"]["mids"] for _ in range(4)]
        assert all(set(m) >= {"BTC", "ETH", "SOL", "PURR/USDC", "@107"} for m in mids)
        ws.close()
    assert not _server_threads()


def test_lifecycle_is_idempotent_and_clean() -> None:
    srv = LocalServer(tick_interval=None).start()
    ws = _connect(srv)
    assert srv.wait_for_connections(1)
    srv.stop()
    srv.stop()
    assert not _server_threads()
    with pytest.raises(RuntimeError):
        srv.connection_ids()
    ws.close()


def test_constructor_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        LocalServer(tick_interval=0)
    with pytest.raises(ValueError):
        LocalServer(max_users=0)
    with pytest.raises(ValueError):
        LocalServer(port=70000)
