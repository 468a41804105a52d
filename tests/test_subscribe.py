"""Subscribing: one server subscription per feed however many callbacks, acks matched by
meaning, every server refusal surfaced, and bad input refused before anything is sent."""

from __future__ import annotations

import logging
import socket

import pytest

from hyperliquid_ws import HyperliquidTimeoutError, HyperliquidWSError, ServerError, SubscriptionError

from .conftest import Collector, wait_until


def sent(server, method):
    return [m for _, m in server.received() if isinstance(m, dict) and m.get("method") == method]


def test_several_callbacks_share_one_server_subscription(server, client):
    first, second = Collector(), Collector()
    one = client.subscribe({"type": "trades", "coin": "ETH"}, first)
    two = client.subscribe({"type": "trades", "coin": "ETH"}, second)
    one.wait()
    two.wait()
    assert len(sent(server, "subscribe")) == 1

    frame = server.emit({"type": "trades", "coin": "ETH"})
    first.wait_for(1)
    second.wait_for(1)

    one.unsubscribe()
    assert sent(server, "unsubscribe") == []
    frame = server.emit({"type": "trades", "coin": "ETH"})
    wait_until(lambda: frame in second.messages)
    assert frame not in first.messages

    two.unsubscribe()
    wait_until(lambda: sent(server, "unsubscribe"), what="the unsubscribe")
    assert sent(server, "unsubscribe") == [{"method": "unsubscribe", "subscription": {"type": "trades", "coin": "ETH"}}]
    wait_until(lambda: server.subscriptions() == [], what="the server to drop it")
    two.unsubscribe()  # idempotent
    client.unsubscribe(one)
    assert len(sent(server, "unsubscribe")) == 1


def test_wait_returns_on_the_normalised_ack(server, client):
    sub = client.subscribe({"type": "candle", "coin": "BTC", "interval": "1m"}, Collector())
    assert sub.wait(timeout=10) is sub
    assert sub.active
    book = client.subscribe({"type": "l2Book", "coin": "BTC"}, Collector()).wait()
    assert book.active


def test_a_refused_subscription_raises_with_the_servers_text_and_reaches_the_hook(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors)
    bad = client.subscribe({"type": "trades", "coin": "NOPE"}, Collector())
    good = client.subscribe({"type": "trades", "coin": "BTC"}, Collector())
    with pytest.raises(SubscriptionError) as caught:
        bad.wait()
    assert caught.value.server_text.startswith('Invalid subscription {"type":"trades","coin":"NOPE"}')
    assert not bad.active and bad.error is caught.value
    assert good.wait().active
    assert errors.wait_for(1)[0] is caught.value


def test_server_limit_errors_are_attributed_and_not_swallowed(make_client):
    from hyperliquid_ws.testing import LocalServer

    with LocalServer(tick_interval=None, max_subscriptions=2) as small:
        client = make_client(base_url=small.base_url)
        subs = [client.subscribe({"type": "trades", "coin": c}, Collector()) for c in ("BTC", "ETH", "SOL")]
        subs[0].wait()
        subs[1].wait()
        with pytest.raises(SubscriptionError, match="Cannot subscribe to more than 2 channels"):
            subs[2].wait()


def test_unattributable_server_errors_reach_the_hook(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors)
    client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait()
    server.push({"channel": "error", "data": "Something new went wrong"})
    (error,) = errors.wait_for(1)
    assert isinstance(error, ServerError) and error.server_text == "Something new went wrong"


@pytest.mark.parametrize(
    ("subscription", "words"),
    [
        ({"type": "trades"}, "needs 'coin'"),
        ({"type": "candle", "coin": "BTC", "interval": "7m"}, "interval"),
        ({"type": "userFills", "user": "0xabc"}, "40 hex digits"),
        ({"type": "bogus"}, "unknown subscription type"),
        ({"type": "trades", "coin": ["BTC"]}, "non-empty string"),
        (["trades", "BTC"], "is a dict"),
    ],
)
def test_bad_input_raises_value_error_and_sends_nothing(server, client, subscription, words):
    with pytest.raises(ValueError, match=words):
        client.subscribe(subscription, Collector())
    client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait()
    assert sent(server, "subscribe") == [{"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}}]


def test_a_callback_that_is_not_callable_is_refused(client):
    with pytest.raises(ValueError, match="callable"):
        client.subscribe({"type": "trades", "coin": "BTC"}, "print")


def test_a_newer_type_can_be_used_deliberately(server, client):
    with pytest.raises(ValueError):
        client.subscribe({"type": "futureFeed"}, Collector())
    got = Collector()
    sub = client.subscribe({"type": "futureFeed", "x": 1}, got, allow_unknown=True)
    with pytest.raises(SubscriptionError, match="Invalid subscription"):
        sub.wait()  # the local server does not know it either, and says so


def test_subscribing_before_connecting_is_sent_once_connected(server, client):
    got = Collector()
    subs = [client.subscribe({"type": "trades", "coin": c}, got) for c in ("BTC", "ETH", "SOL")]
    for sub in subs:
        sub.wait()
    assert len(sent(server, "subscribe")) == 3


def test_a_closed_client_refuses_new_subscriptions(client):
    client.close()
    with pytest.raises(HyperliquidWSError, match="closed"):
        client.subscribe({"type": "trades", "coin": "BTC"}, Collector())


def test_offline_wait_says_the_link_is_down_and_names_the_host_not_a_server(make_client, caplog):
    caplog.set_level(logging.INFO, logger="hyperliquid_ws")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens: every connect is refused
    client = make_client(base_url=f"http://bot:s3cret@127.0.0.1:{port}")
    handle = client.subscribe({"type": "trades", "coin": "SOL"}, print)
    wait_until(lambda: client.stats()["last_disconnect_reason"], what="a refused connect")
    with pytest.raises(HyperliquidTimeoutError) as raised:
        handle.wait(timeout=0.2)
    text = str(raised.value)
    assert f"not connected to ws://***@127.0.0.1:{port}/ws" in text and "Connection refused" in text, text
    assert "from the server" not in text and "s3cret" not in text, text
    wait_until(lambda: len([r for r in caplog.records if "cannot connect" in r.getMessage()]) >= 3,
               what="three refused connects")
    failures = [r for r in caplog.records if "cannot connect" in r.getMessage()]
    assert all(f"ws://***@127.0.0.1:{port}/ws" in r.getMessage() for r in failures), failures
    # The same reason again and again is one WARNING, the retries INFO: an offline bot's log stays short.
    assert [r.levelno for r in failures].count(logging.WARNING) == 1, [r.getMessage() for r in failures]
