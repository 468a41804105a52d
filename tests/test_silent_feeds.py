"""Gaps the client makes itself are handled like reconnect gaps: a silent-feed
resubscribe holds and backfills the feed, and feeds for which silence is normal (a
user's events and history) are never resubscribed for it."""

from __future__ import annotations

import requests

from hyperliquid_ws import Limits
from hyperliquid_ws.feeds import FEEDS
from hyperliquid_ws.plans import PLANS

from .conftest import Collector, wait_until


def sent(server, method):
    return [m["subscription"] for _, m in server.received() if isinstance(m, dict) and m.get("method") == method]


def silent_resubscribes(client):
    return client.stats()["connections"][0]["silent_feed_resubscribes"]


def test_a_quiet_order_feed_is_not_resubscribed_and_nothing_is_lost(server, make_client):
    errors = Collector()
    client = make_client(silent_feed_minimum=1, silent_feed_factor=2, on_error=errors,
                         ping_interval=0.2, pong_timeout=1.0)  # the keepalive looks every 50 ms
    orders = {"type": "orderUpdates", "user": server.market.users[0]}
    trades = {"type": "trades", "coin": "BTC"}
    got, market = Collector(), Collector()
    client.subscribe(orders, got).wait()
    client.subscribe(trades, market).wait()
    for n in range(1, 9):  # a bot trading briskly, then stopping for a while
        server.emit(orders)
        got.wait_for(n)
    for n in range(1, 9):
        server.emit(trades)
        market.wait_for(n)
    # the trades feed fell silent later than the orders feed; once it is resubscribed,
    # the orders feed has been silent for longer than its threshold too
    wait_until(lambda: silent_resubscribes(client) >= 1, what="the silent trades feed's resubscribe")
    assert orders not in sent(server, "unsubscribe")
    assert silent_resubscribes(client) == 1
    frame = server.emit(orders)  # the order that fills after the pause reaches the callback
    wait_until(lambda: frame in got.messages, what="the next order update")
    assert errors.messages == []


def test_a_silent_feed_resubscribe_backfills_what_the_stalled_feed_missed(server, make_client):
    errors = Collector()
    client = make_client(silent_feed_minimum=0.3, silent_feed_factor=2, on_error=errors,
                         ping_interval=0.2, pong_timeout=1.0)
    trades = {"type": "trades", "coin": "ETH"}
    got = Collector()
    client.subscribe(trades, got).wait()
    for n in range(1, 9):
        server.emit(trades)
        got.wait_for(n)
    server.stall(trades)  # the feed is stuck: its frames stop, the market goes on
    (missed,) = server.emit(trades)["data"]
    wait_until(lambda: any(missed in m["data"] for m in got.messages), what="the missed trade, backfilled")
    assert trades in sent(server, "unsubscribe") and silent_resubscribes(client) == 1
    (carrier,) = [m for m in got.messages if missed in m["data"]]
    assert carrier.get("backfill") is True
    after = server.emit(trades)  # live again after the resubscribe
    wait_until(lambda: after in got.messages, what="live frames after the resubscribe")
    delivered = [t["tid"] for m in got.messages for t in m["data"]]
    assert len(delivered) == len(set(delivered)), "a trade was delivered twice"
    assert errors.messages == []


def test_every_feed_that_may_be_resubscribed_for_silence_heals_or_is_backfilled():
    """No path opens a gap it cannot fill: a feed is quiet (never resubscribed for
    silence), or a state (the next push is the whole state), or a full state then deltas
    (a new subscription opens with the full state), or it has a backfill plan."""
    for feed in FEEDS.values():
        assert feed.quiet or feed.kind in ("state", "deltas") or feed.type in PLANS, feed.type
    for kind in ("orderUpdates", "userEvents", "notification", "userFills", "userFundings",
                 "userNonFundingLedgerUpdates", "userTwapSliceFills", "userTwapHistory", "userHistoricalOrders"):
        assert FEEDS[kind].quiet, kind


def test_a_reconnect_backfill_reaches_up_to_the_feeds_new_subscription(server, make_client):
    """The replay is paced, so a feed can come back well after the link: a backfill that
    fetched at once would miss what happens before its subscribe is answered."""
    client = make_client(limits=Limits(messages_per_window=2, message_window=0.5))
    orders = {"type": "orderUpdates", "user": server.market.users[0]}
    for coin in ("BTC", "ETH"):  # replayed first, in the first window of the budget
        client.subscribe({"type": "trades", "coin": coin}, Collector()).wait()
    got = Collector()
    client.subscribe(orders, got).wait()
    server.emit(orders)
    got.wait_for(1)
    server.drop_connections()
    wait_until(lambda: len(server.subscriptions()) == 2, what="the first part of the replay")
    assert orders not in server.subscriptions()
    (update,) = server.emit(orders)["data"]  # nobody holds the feed on the server: only /info has it
    wait_until(lambda: any(update in m["data"] for m in got.messages), what="the update, backfilled")
    assert next(m for m in got.messages if update in m["data"]).get("backfill") is True


def test_a_resubscribe_snapshot_that_covers_the_gap_saves_the_http_requests(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors)
    client._backfiller._retry_backoff = type(client._backfiller._retry_backoff)(initial=0.01, maximum=0.02)
    user = server.market.users[0]
    fills = {"type": "userFills", "user": user}
    got = Collector()
    client.subscribe(fills, got).wait()
    got.wait_for(1)
    before = client._backfiller.gaps_backfilled
    server.fail_info(1_000_000)  # any /info request now fails: only the snapshot can recover the gap
    server.refuse_handshakes(1_000_000)
    server.drop_connections()
    wait_until(lambda: not client.connected, what="the drop")
    server.advance(10)
    server.refuse_handshakes(0)
    wait_until(lambda: client._backfiller.gaps_backfilled > before, what="the gap, recovered")
    server.fail_info(0)
    response = requests.post(server.base_url + "/info", json={"type": "userFills", "user": user}, timeout=10)
    expected = {f["tid"] for f in response.json()}  # every fill, those made while away included

    def delivered():
        return [f["tid"] for m in got.messages for f in m["data"]["fills"]]
    wait_until(lambda: expected <= set(delivered()), what="every fill")
    assert len(delivered()) == len(set(delivered())), "a fill was delivered twice"
    assert not any(m.get("backfill") for m in got.messages)  # nothing came over HTTP
    assert errors.messages == [] and client._backfiller.gaps_unrecovered == 0
