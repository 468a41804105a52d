"""info() and action() over the socket's post: ids, timeouts, and order safety."""

from __future__ import annotations

import threading

import pytest
import requests

from hyperliquid_ws import (
    ConnectionLostError,
    HyperliquidTimeoutError,
    HyperliquidWS,
    HyperliquidWSError,
    Limits,
    RequestError,
)
from hyperliquid_ws.testing import LocalServer

from .conftest import wait_until

SIGNATURE = {"r": "0x" + "1" * 64, "s": "0x" + "2" * 64, "v": 27}


def signed(action, nonce=1_700_000_000_000):
    return {"action": action, "nonce": nonce, "signature": SIGNATURE}


def order(asset=0, is_buy=True, px="1", sz="0.01", tif="Gtc"):
    return {"type": "order", "orders": [{"a": asset, "b": is_buy, "p": px, "s": sz, "r": False,
                                         "t": {"limit": {"tif": tif}}}], "grouping": "na"}


def http_info(server, body):
    return requests.post(server.base_url + "/info", json=body, timeout=10).json()


def posts_sent(server):
    return [m for _, m in server.received() if isinstance(m, dict) and m.get("method") == "post"]


@pytest.mark.parametrize(
    "request_body",
    [
        {"type": "allMids"},
        {"type": "l2Book", "coin": "ETH"},
        {"type": "meta"},
        {"type": "clearinghouseState", "user": "USER"},
        {"type": "userFills", "user": "USER"},
    ],
    ids=lambda body: body["type"],
)
def test_info_over_the_socket_equals_http(server, client, request_body):
    body = {k: server.market.users[0] if v == "USER" else v for k, v in request_body.items()}
    over_socket, over_http = client.info(body), http_info(server, body)
    if isinstance(over_http, dict) and "time" in over_http and body["type"] == "clearinghouseState":
        over_socket.pop("time"), over_http.pop("time")  # "now", a few ms apart
    assert over_socket == over_http


def test_an_action_succeeds_and_an_action_is_rejected_without_raising(server, client):
    resting = client.action(signed(order(px="1000")))  # $10, the least an order may be worth
    assert resting["status"] == "ok"
    assert "resting" in resting["response"]["data"]["statuses"][0]
    refused = client.action(signed(order(asset=9999)))
    assert refused == {"status": "err", "response": "Asset 9999 is out of range."}


def test_a_malformed_request_raises_request_error_with_the_servers_text(server, client):
    with pytest.raises(RequestError) as caught:
        client.info({"type": "noSuchInfo"})
    assert caught.value.server_text
    bad_signature = {"action": order(), "nonce": 1, "signature": {"r": 1}}
    with pytest.raises(RequestError):
        client.action(bad_signature)


def test_bad_arguments_are_refused_before_anything_is_sent(server, client):
    for bad in (["allMids"], {"coin": "BTC"}):
        with pytest.raises(ValueError):
            client.info(bad)
    with pytest.raises(ValueError, match="signature"):
        client.action({"action": order(), "nonce": 1})
    with pytest.raises(ValueError, match="timeout"):
        client.info({"type": "allMids"}, timeout=0)
    assert posts_sent(server) == []


def test_a_server_that_never_answers_gives_a_timeout(server, client):
    server.hold_posts(True)
    with pytest.raises(TimeoutError) as caught:
        client.info({"type": "allMids"}, timeout=0.3)
    assert isinstance(caught.value, HyperliquidTimeoutError) and caught.value.sent


def test_a_drop_fails_requests_in_flight_at_once_and_never_resends_them(server, client):
    client.info({"type": "allMids"})  # connected
    server.hold_posts(True)
    outcomes: list[BaseException] = []
    lock = threading.Lock()

    def place(n):
        try:
            client.action(signed(order(px="1"), nonce=n), timeout=60)
        except BaseException as exc:
            with lock:
                outcomes.append(exc)

    threads = [threading.Thread(target=place, args=(n,), name=f"test-place-{n}") for n in range(5)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(posts_sent(server)) == 6, what="five actions on the wire")
    server.drop_connections()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 5
    assert all(isinstance(e, ConnectionLostError) and e.sent for e in outcomes), outcomes
    server.hold_posts(False)
    assert client.info({"type": "allMids"})  # reconnected, and working
    nonces = [m["request"]["payload"].get("nonce") for m in posts_sent(server) if m["request"]["type"] == "action"]
    assert sorted(nonces) == list(range(5)), "an action was sent again after the reconnect"


def test_a_request_made_while_disconnected_waits_for_the_connection(server, client):
    client.info({"type": "allMids"})
    server.refuse_handshakes(1_000_000)
    server.drop_connections()
    wait_until(lambda: not client.connected, what="the drop")
    result: list = []
    waiter = threading.Thread(target=lambda: result.append(client.info({"type": "meta"}, timeout=30)),
                              name="test-waiting-request")
    waiter.start()
    server.refuse_handshakes(0)
    waiter.join(30)
    assert result and result[0] == http_info(server, {"type": "meta"})


def test_a_request_times_out_unsent_when_no_connection_comes(black_hole):
    with HyperliquidWS(black_hole) as client:
        with pytest.raises(HyperliquidTimeoutError) as caught:
            client.info({"type": "allMids"}, timeout=0.3)
        assert not caught.value.sent


def test_five_hundred_concurrent_requests_from_eight_threads(server, client):
    coins = ["BTC", "ETH", "SOL", "ATOM"]
    expected = {coin: http_info(server, {"type": "l2Book", "coin": coin})["coin"] for coin in coins}
    failures: list = []
    answered = [0]
    lock = threading.Lock()

    def work(worker):
        for n in range(500 // 8 + (1 if worker < 500 % 8 else 0)):
            coin = coins[(worker + n) % 4]
            try:
                book = client.info({"type": "l2Book", "coin": coin}, timeout=60)
                ok = book["coin"] == expected[coin] and len(book["levels"]) == 2
            except HyperliquidWSError as exc:
                ok = exc
            with lock:
                answered[0] += 1
                if ok is not True:
                    failures.append((coin, ok))

    threads = [threading.Thread(target=work, args=(w,), name=f"test-worker-{w}") for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert answered[0] == 500 and not failures
    ids = [m["id"] for m in posts_sent(server)]
    assert len(ids) == len(set(ids)) == 500


def test_requests_beyond_the_in_flight_cap_wait_their_turn(make_client):
    with LocalServer(tick_interval=None, max_inflight_posts=3) as server:
        client = make_client(base_url=server.base_url, limits=Limits(inflight_posts=3))
        client.info({"type": "allMids"})
        server.hold_posts(True)
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(client.info({"type": "meta"}, timeout=60)),
                                    name=f"test-capped-{n}") for n in range(6)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(posts_sent(server)) == 4, what="three held requests")
        assert client._pool.primary.posts.in_flight == 3
        server.hold_posts(False)
        for thread in threads:
            thread.join(30)
        assert len(results) == 6  # none tripped "too many pending post requests"


def test_the_servers_too_many_pending_error_fails_the_request_it_names(make_client):
    with LocalServer(tick_interval=None, max_inflight_posts=1) as server:
        client = make_client(base_url=server.base_url)
        client.info({"type": "allMids"})
        server.hold_posts(True)
        first = threading.Thread(target=lambda: client.info({"type": "meta"}, timeout=60), name="test-held")
        first.start()
        wait_until(lambda: len(posts_sent(server)) == 2, what="the held request")
        with pytest.raises(RequestError, match="too many pending post requests"):
            client.info({"type": "allMids"}, timeout=30)
        server.hold_posts(False)
        first.join(30)
