"""Survive every disconnect: reconnect with backoff, resubscribe from the registry, and
tell the bot about it. Fault injection against the real local server."""

from __future__ import annotations

import threading
import time

import pytest

from hyperliquid_ws import Backoff, HyperliquidWS, Limits
from hyperliquid_ws.testing import LocalServer

from .conftest import DEADLINE, Collector, client_threads, wait_until

FEEDS = [{"type": "trades", "coin": "BTC"}, {"type": "l2Book", "coin": "ETH"}, {"type": "allMids"}]


def subscribe_all(client, feeds=FEEDS):
    got = {i: Collector() for i in range(len(feeds))}
    subs = [client.subscribe(feed, got[i]) for i, feed in enumerate(feeds)]
    for sub in subs:
        sub.wait()
    return subs, got


def all_restored(server, client, subs, connects):
    return (
        client._pool.primary.connection.connects >= connects
        and all(sub.active for sub in subs)
        and len(server.subscriptions()) == len(subs)
    )


def assert_streaming(server, got, feed_index=0, feed=FEEDS[0]):
    """A new trade reaches the callback: live, or inside a backfill message if the
    backfill fetched it first (the held live frame is then rightly dropped as a duplicate)."""
    (trade,) = server.emit(feed)["data"]
    wait_until(lambda: any(trade in m["data"] for m in got[feed_index].messages), what="a trade after the reconnect")


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda server: server.drop_connections(), id="tcp-reset"),
        pytest.param(lambda server: server.close_connections(code=4000, reason="bye"), id="close-frame"),
        pytest.param(lambda server: server.close_connections(code=1000), id="normal-close"),
    ],
)
def test_reconnects_and_resubscribes_after_a_drop(server, make_client, fault):
    events = Collector()
    client = make_client(
        on_connect=lambda url: events(("connect", url)),
        on_disconnect=lambda reason: events(("disconnect", reason)),
        on_reconnect=lambda downtime: events(("reconnect", downtime)),
    )
    subs, got = subscribe_all(client)
    fault(server)
    wait_until(lambda: all_restored(server, client, subs, 2), what="all subscriptions restored")
    assert_streaming(server, got)
    kinds = [kind for kind, _ in events.wait_for(4)]
    assert kinds == ["connect", "disconnect", "connect", "reconnect"]
    assert events.messages[3][1] > 0  # the downtime, in seconds
    resubscribes = [m for _, m in server.received() if isinstance(m, dict) and m.get("method") == "subscribe"]
    assert len(resubscribes) == 2 * len(FEEDS)


def test_close_frame_reason_is_reported(server, make_client):
    reasons = Collector()
    client = make_client(on_disconnect=reasons)
    subscribe_all(client)
    server.close_connections(code=4000, reason="maintenance")
    (reason,) = reasons.wait_for(1)
    assert "4000" in reason and "maintenance" in reason


def test_survives_a_server_stop_and_restart_on_the_same_port(make_client):
    first = LocalServer(tick_interval=None).start()
    port = first.port
    client = make_client(base_url=first.base_url)
    subs, got = subscribe_all(client)
    first.stop()
    wait_until(lambda: not client.connected, what="the client to notice")
    with LocalServer(port=port, tick_interval=None) as second:
        wait_until(lambda: all_restored(second, client, subs, 2), what="restored on the new server")
        assert_streaming(second, got)


def test_a_half_open_silent_server_is_detected_and_left(server, make_client):
    client = make_client(ping_interval=0.1, pong_timeout=0.3)
    subs, got = subscribe_all(client)
    server.silence(True)
    wait_until(lambda: client._pool.primary.keepalive.dead_links >= 1, what="dead-link detection")
    server.silence(False)
    wait_until(lambda: all_restored(server, client, subs, 2), what="restored after the silence")
    assert_streaming(server, got)
    assert "nothing received" in client._pool.primary.connection.last_disconnect_reason


def test_handshakes_that_fail_several_times_in_a_row(server, make_client):
    client = make_client()
    subs, got = subscribe_all(client)
    server.refuse_handshakes(4)
    server.drop_connections()
    wait_until(lambda: all_restored(server, client, subs, 2), what="restored after refused handshakes")
    connection = client._pool.primary.connection
    assert "503" in connection.last_disconnect_reason or connection.connects == 2
    assert_streaming(server, got)


def test_changes_made_while_disconnected_are_honoured(server, make_client):
    client = make_client(backoff=Backoff(initial=0.05, maximum=0.2, reset_after=1))
    subs, _got = subscribe_all(client)
    server.refuse_handshakes(1_000_000)
    server.drop_connections()
    wait_until(lambda: not client.connected, what="the drop")
    subs[1].unsubscribe()
    added = Collector()
    new = client.subscribe({"type": "bbo", "coin": "SOL"}, added)
    server.refuse_handshakes(0)
    new.wait()
    wanted = [FEEDS[0], FEEDS[2], {"type": "bbo", "coin": "SOL"}]
    wait_until(lambda: len(server.subscriptions()) == 3, what="three subscriptions on the server")
    held = server.subscriptions()
    assert {s["type"] for s in held} == {s["type"] for s in wanted}
    assert not any(s["type"] == "l2Book" for s in held)


def test_a_drop_during_the_resubscribe_replay(make_client):
    feeds = [{"type": "candle", "coin": coin, "interval": interval}
             for coin in ("BTC", "ETH", "SOL", "ATOM") for interval in ("1m", "5m", "15m", "1h", "4h")]
    # 20 feeds against a budget of 10 a second: the replay takes two windows
    errors = Collector()
    with LocalServer(tick_interval=None, max_messages_per_minute=12, rate_window=1.0) as server:
        client = make_client(base_url=server.base_url, on_error=errors,
                             limits=Limits(messages_per_window=10, message_window=1.0))
        subs, _ = subscribe_all(client, feeds)
        server.drop_connections()
        wait_until(lambda: 0 < len(server.subscriptions()) < len(feeds), what="a replay under way")
        server.drop_connections()
        wait_until(lambda: all_restored(server, client, subs, 3), what="all restored after two drops")
        assert not errors.messages  # no "Already subscribed", no rate-limit error


def test_five_hundred_subscriptions_are_restored_within_the_pacing(make_client):
    kinds = ["userFills", "userFundings", "userNonFundingLedgerUpdates", "userTwapSliceFills",
             "userTwapHistory", "userHistoricalOrders", "clearinghouseState", "openOrders",
             "spotState", "allDexsClearinghouseState"]
    users = [f"0x{n:040x}" for n in range(1, 51)]
    feeds = [{"type": kind, "user": user} for user in users for kind in kinds]
    assert len(feeds) == 500
    budget = 400  # a replay of 500 needs more than one window of the budget
    errors = Collector()
    with LocalServer(tick_interval=None, max_users=50, max_messages_per_minute=budget,
                     rate_window=1.0) as server:
        # The client's window is twice the server's: the server counts a message when it reads
        # it, and on two loaded cores it may read the first 400 over more than the client's
        # 250 ms margin (on the live 60 s window the margin is 3 s).
        client = make_client(base_url=server.base_url, on_error=errors,
                             limits=Limits(max_users=50, messages_per_window=budget, message_window=2.0))
        subs = [client.subscribe(feed, Collector()) for feed in feeds]
        for sub in subs:
            sub.wait()
        waited_before = client._limiter.waited
        server.drop_connections()
        wait_until(lambda: all_restored(server, client, subs, 2), timeout=30, what="all restored")
        assert client._limiter.waited > waited_before  # the replay was paced, not dropped
        assert not errors.messages  # and the server never had to refuse anything


def test_close_during_backoff_returns_promptly_and_stops_reconnecting(server):
    client = HyperliquidWS(server.base_url, backoff=Backoff(initial=30, maximum=60, jitter=0))
    subscribe_all(client)
    server.refuse_handshakes(1_000_000)
    server.drop_connections()
    wait_until(lambda: not client.connected, what="the drop")
    wait_until(lambda: client._pool.primary.connection.last_disconnect_reason and not client.connected)
    started = time.monotonic()
    client.close()
    # no reader thread is left, so nothing can reconnect: a 30 s backoff did not hold close() up
    assert not client_threads(), f"threads left after close() took {time.monotonic() - started:.2f} s"


def test_subscribes_the_server_drops_over_its_budget_are_sent_again(make_client):
    """Another process on the same IP spent the budget: the server drops some of our
    subscribes with only 'Cannot send more than … messages per minute.'"""
    errors = Collector()
    coins = ["BTC", "ETH", "SOL", "ATOM"]
    feeds = [{"type": kind, "coin": coin} for kind in ("trades", "bbo") for coin in coins]
    with LocalServer(tick_interval=None, max_messages_per_minute=5, rate_window=1.0) as server:
        client = make_client(base_url=server.base_url, on_error=errors)
        subs = [client.subscribe(feed, Collector()) for feed in feeds]
        wait_until(lambda: all(sub.active for sub in subs), timeout=20, what="every subscription live")
        assert len(server.subscriptions()) == len(feeds)
        assert client.stats()["connections"][0]["rate_limit_resends"] >= 1
        assert any("messages per minute" in str(e) for e in errors.messages)
        assert not any(sub.error for sub in subs)


def test_a_slow_disconnect_hook_does_not_hold_up_the_reconnect(server, make_client):
    release, entered = threading.Event(), threading.Event()

    def slow_hook(reason):
        entered.set()
        release.wait(DEADLINE)

    client = make_client(on_disconnect=slow_hook)
    subs, got = subscribe_all(client)
    server.drop_connections()
    assert entered.wait(DEADLINE)
    wait_until(lambda: all_restored(server, client, subs, 2), what="all subscriptions restored, hook still running")
    assert_streaming(server, got)  # and the feeds flow while the hook blocks
    release.set()
