"""The server's idempotent answers are successes, and acks match whatever defaults the
server echoes (protocol.md §3.1, §3.3): no subscribe or unsubscribe is left waiting, no
slot is wasted, nothing reaches ``on_error``."""

from __future__ import annotations

from hyperliquid_ws.feeds import FEEDS, lenient_canonical

from .conftest import Collector, wait_until


def sent(server, method):
    return [m["subscription"] for _, m in server.received() if isinstance(m, dict) and m.get("method") == method]


def connection_stats(client):
    (connection,) = client.stats()["connections"]
    return connection


def test_already_subscribed_completes_the_subscription_and_its_frames_flow(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors)
    client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait()
    (conn,) = server.connection_ids()
    fills = {"type": "userFills", "user": server.market.users[0]}
    server.add_subscription(fills, conn)  # the server already holds it: a subscribe whose ack was lost
    got = Collector()
    sub = client.subscribe(fills, got).wait()
    assert sub.active and sub.error is None
    assert connection_stats(client)["already_answers"] == {"subscribed": 1, "unsubscribed": 0}
    frame = server.emit(fills)
    wait_until(lambda: frame in got.messages, what="the feed's frames after 'Already subscribed'")
    sub.unsubscribe()  # and the slot is given back: the client knows it holds it
    wait_until(lambda: len(server.subscriptions()) == 1, what="the server to drop it")
    assert errors.messages == []


def test_already_unsubscribed_completes_the_unsubscribe_quietly(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors)
    trades = {"type": "trades", "coin": "ETH"}
    sub = client.subscribe(trades, Collector()).wait()
    server.remove_subscription(trades)  # the server lost it without saying so
    sub.unsubscribe()
    wait_until(lambda: connection_stats(client)["already_answers"]["unsubscribed"] == 1,
               what="the 'Already unsubscribed' answer")
    link = client._pool.primary
    assert not link.registry._unanswered, "the unsubscribe was left waiting"
    # a round trip after it: had it been reported, the report would have come first
    got = Collector()
    client.subscribe({"type": "trades", "coin": "SOL"}, got).wait()
    frame = server.emit({"type": "trades", "coin": "SOL"})
    wait_until(lambda: frame in got.messages)
    assert errors.messages == []


def test_acks_that_echo_defaults_the_client_left_out_are_matched(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors)
    user = server.market.users[0]
    subscriptions = [
        {"type": "l2Book", "coin": "BTC"},  # echoed with "nSigFigs": null, "mantissa": null, "fast": false
        {"type": "clearinghouseState", "user": user},  # "dex": ""
        {"type": "openOrders", "user": user},
        {"type": "twapStates", "user": user},
        {"type": "spotState", "user": user, "isPortfolioMargin": True},  # echoed as "ignorePortfolioMargin": false
    ]
    subs = [client.subscribe(subscription, Collector()) for subscription in subscriptions]
    for sub in subs:
        assert sub.wait(timeout=3).active
    echoed = {s["type"]: s for s in server.subscriptions()}
    assert echoed["l2Book"]["fast"] is False and echoed["clearinghouseState"]["dex"] == ""
    assert echoed["spotState"] == {"type": "spotState", "user": user, "ignorePortfolioMargin": False}
    assert not client._pool.primary.registry._unanswered
    assert errors.messages == []


def test_an_echo_matches_by_the_fields_the_request_set():
    from hyperliquid_ws.registry import agreement

    book = FEEDS["l2Book"]
    asked = {"type": "l2Book", "coin": "BTC", "nSigFigs": 5}
    assert agreement(book, asked, lenient_canonical({**asked, "mantissa": None, "fast": False})) == 2
    assert agreement(book, asked, lenient_canonical({**asked, "fast": True})) is None  # not a default
    assert agreement(book, asked, lenient_canonical({"type": "l2Book", "coin": "ETH", "nSigFigs": 5})) is None
    assert agreement(book, asked, lenient_canonical({**asked, "newField": 1})) == 2  # added by a newer server
    spot = FEEDS["spotState"]
    user = "0x" + "ab" * 20
    asked = {"type": "spotState", "user": user, "isPortfolioMargin": True}
    assert agreement(spot, asked, lenient_canonical({"type": "spotState", "user": user,
                                                     "ignorePortfolioMargin": False})) == 1
    assert agreement(spot, asked, lenient_canonical({"type": "spotState", "user": "0x" + "cd" * 20})) is None
