"""One feed's backfill never costs another feed, nor a feed its own live frames: a slow or
failing /info for one feed, an ``on_error`` hook that blocks, and a burst of live frames
held while a backfill runs (issue 11, findings 2 to 4)."""

from __future__ import annotations

import json
import threading

from hyperliquid_ws import BackfillError, Backoff, SlowConsumerError
from hyperliquid_ws.testing import wire

from .conftest import DEADLINE, Collector, wait_until

SOL = {"type": "trades", "coin": "SOL"}
ETH = {"type": "trades", "coin": "ETH"}
CANDLE = {"type": "candle", "coin": "ETH", "interval": "1m"}


def _slow_retries(client, seconds):
    client._backfiller._retry_backoff = Backoff(initial=seconds, maximum=seconds, jitter=0.0)


def _reconnect(server, client, *subscriptions):
    """Drop the link and wait until it is back with ``subscriptions`` acknowledged again
    (so a frame the server emits then reaches the client)."""
    connects = client._pool.primary.connection.connects
    server.drop_connections()
    wait_until(lambda: client._pool.primary.connection.connects > connects
               and all(s.active for s in subscriptions), what="the reconnect and the resubscribes")


def _live(server, subscription, got):
    """Whether the trade of a live frame of ``subscription``, emitted now, reached ``got``
    (live, or recovered by the backfill, which then dedupes the live frame)."""
    (trade,) = server.emit(subscription)["data"]
    return lambda: any(t["tid"] == trade["tid"] for m in list(got.messages) for t in m["data"])


def test_a_blocking_error_hook_does_not_stall_the_other_feeds_backfills(server, make_client):
    entered, release = threading.Event(), threading.Event()
    reported: list[BaseException] = []

    hook_threads: set[str] = set()

    def on_error(error):
        reported.append(error)
        hook_threads.add(threading.current_thread().name)
        entered.set()
        release.wait(3 * DEADLINE)  # a hook that blocks far longer than the test waits

    client = make_client(on_error=on_error)  # callback_threads=0: hooks run on the client's threads
    _slow_retries(client, 0.01)
    sol, eth = Collector(), Collector()
    subscriptions = client.subscribe(SOL, sol).wait(), client.subscribe(ETH, eth).wait()
    try:
        server.fail_info(1_000_000)  # every backfill fails: each feed reports a BackfillError
        _reconnect(server, client, *subscriptions)
        assert entered.wait(DEADLINE), "no BackfillError reached the hook"
        assert isinstance(reported[0], BackfillError)
        # the hook is blocked on the first report; the other feed's backfill ends all the same
        # and its live frames flow
        wait_until(_live(server, SOL, sol), what="SOL's live frame while the hook blocks")
        wait_until(_live(server, ETH, eth), what="ETH's live frame while the hook blocks")
        assert hook_threads == {f"{client.name}-backfill-hooks"}  # never a thread that serves backfills
    finally:
        release.set()
        server.fail_info(0)


def test_a_feed_whose_backfill_retries_does_not_hold_another_feeds_frames(server, make_client):
    client = make_client()
    _slow_retries(client, 3 * DEADLINE)  # a failed attempt waits longer than the test does
    sol, eth = Collector(), Collector()
    subscriptions = client.subscribe(SOL, sol).wait(), client.subscribe(ETH, eth).wait()
    server.fail_info(1)  # the first /info request fails: that feed's backfill waits to retry
    _reconnect(server, client, *subscriptions)
    got_sol, got_eth = _live(server, SOL, sol), _live(server, ETH, eth)
    wait_until(lambda: got_sol() or got_eth(), what="the live frames of the feed whose backfill succeeded")
    assert client._backfiller.gaps_backfilled >= 1
    held = {s["subscription"]["coin"]: s["held_for_backfill"] for s in client.stats()["subscriptions"]}
    assert sorted(count > 0 for count in held.values()) == [False, True], held  # the other waits to retry


def test_frames_held_past_the_backlog_are_delivered_not_dropped(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors, max_backlog=1000)
    _slow_retries(client, 1.0)
    got = Collector()
    subscription = client.subscribe(CANDLE, got).wait()
    frame = server.emit(CANDLE)
    got.wait_for(1)
    server.fail_info(1_000_000)  # the backfill keeps retrying: live frames are held meanwhile
    _reconnect(server, client, subscription)
    ((_, entry),) = client._pool.entries()
    wait_until(lambda: entry.held is not None, what="the hold")
    burst = 5000  # five times max_backlog, each one a live candle (delivered, never deduped)
    (conn,) = server.connection_ids()
    server.send_raw(wire.encode_frame(json.dumps(frame, separators=(",", ":"))), conn, repeat=burst)
    wait_until(lambda: sum(m == frame for m in got.messages) >= burst + 1, what="every live frame of the burst")
    server.fail_info(0)
    assert not [e for e in errors.messages if isinstance(e, SlowConsumerError)], "held frames were dropped"
    overflow = [e for e in errors.messages if isinstance(e, BackfillError)]
    assert overflow and "held" in str(overflow[0]), errors.messages
    stats = client.stats()
    assert stats["subscriptions"][0]["dropped_slow_consumer"] == 0
    wait_until(lambda: client.stats()["queues"]["held_for_backfill"] == 0, what="the held count back to zero")
