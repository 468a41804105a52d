"""The gateway when things fail, with real processes and real signals: a named consumer
killed (SIGKILL) mid-stream and restarted, a killed consumer's demand expiring, the leader
gateway killed and a standby taking over, Redis stopped and restarted under load, and 20
consumer processes sharing one upstream connection set."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

pytest.importorskip("redis")

import redis

from hyperliquid_ws import BackfillError
from hyperliquid_ws.gateway import RetentionGapError

from ..conftest import DEADLINE, Collector, wait_until
from .conftest import Driver, stream_messages

TRADES = {"type": "trades", "coin": "BTC"}


def _plain(url: str) -> Any:
    return redis.Redis.from_url(url, decode_responses=True)


def _numbered_without_holes(plain: Any, stream: str) -> bool:
    """Every entry of ``stream`` carries its number (field ``n``): 1, 2, 3 ... in order."""
    numbers = [int(fields["n"]) for _, fields in plain.xrange(stream)]
    return bool(numbers) and numbers == list(range(1, len(numbers) + 1))


def _without_mark(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "redelivered"}


@pytest.mark.parametrize("read_by", ["callback", "stream"])
def test_a_named_consumer_killed_mid_stream_loses_nothing_and_repeats_at_most_one(
        make_gateway, children, redis_server, server, read_by) -> None:
    gateway = make_gateway()
    feeds = [TRADES, {"type": "trades", "coin": "ETH"}]
    config = {"redis": redis_server.url, "base_url": server.base_url, "name": "durable", "feeds": feeds,
              "pause": 0.003, "stream": read_by == "stream"}
    driver = Driver(server, 0.01).start()
    try:
        first = children("first", **config, stall_after=60).start()
        first.ready()
        wait_until(lambda: len(first.lines()) >= 60, DEADLINE, "the first run to be mid-stream")
        # Its 60th message stalls it; kill it once the streams hold 40 more it has not seen.
        wait_until(lambda: sum(len(stream_messages(redis_server.url, gateway, f)) for f in feeds)
                   >= len(first.lines()) + 40, DEADLINE, "the first run to fall behind")
        first.kill()  # SIGKILL: no close(), the position is whatever Redis last recorded
        second = children("second", **config).start()
        second.ready()
        wait_until(lambda: len(second.lines()) >= 30, DEADLINE, "the second run to go on")
    finally:
        driver.stop()
    wait_until(lambda: gateway.stats()["buffered"] == 0, DEADLINE)
    for index, feed in enumerate(feeds):
        stored = stream_messages(redis_server.url, gateway, feed)
        wait_until(lambda: [x["m"] for x in second.lines() if x["feed"] == index][-1:] == stored[-1:],  # noqa: B023
                   DEADLINE, "the second run to reach the stream's end")
        before = [x["m"] for x in first.lines() if x["feed"] == index]
        after = [x["m"] for x in second.lines() if x["feed"] == index]
        marked = [m for m in after if m.get("redelivered")]
        assert len(marked) <= 1, marked
        if marked:  # the one whose callback had (or may have) started: it comes first
            assert after[0] is marked[0]
            if _without_mark(after[0]) == before[-1]:  # it had: its line was written, then the kill
                after = after[1:]
            else:
                after[0] = _without_mark(after[0])
        start = stored.index(before[0])
        assert before + after == stored[start:], f"feed {feed}: lost or repeated messages"


def test_a_killed_consumers_demand_expires_and_the_feed_is_unsubscribed(make_gateway, make_consumer, children,
                                                                          redis_server, server) -> None:
    gateway = make_gateway()
    keeper = make_consumer()
    keeper.subscribe(TRADES, Collector()).wait(DEADLINE)
    sol = {"type": "trades", "coin": "SOL"}
    child = children("leaser", redis=redis_server.url, base_url=server.base_url, name=None, feeds=[sol],
                     lease_ttl=1.0).start()
    driver = Driver(server, 0.02).start()
    try:
        child.ready()
        assert sol in server.subscriptions()
        child.kill()
        wait_until(lambda: sol not in server.subscriptions(), DEADLINE, "the upstream unsubscribe of SOL")
    finally:
        driver.stop()
    assert server.subscriptions() == [TRADES] and gateway.held() == [TRADES]


def _gateway_process(redis_url: str, base_url: str, name: str, stderr: Any = subprocess.DEVNULL,
                     ) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "hyperliquid_ws", "gateway", "--redis", redis_url, "--base-url", base_url,
               "--leader-ttl", "1", "--grace", "5", "--name", name]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def test_the_gateway_command_says_whether_it_leads_or_stands_by(redis_server, server, tmp_path) -> None:
    logs = {name: tmp_path / f"{name}.log" for name in ("gw-a", "gw-b")}
    processes = []
    try:
        with logs["gw-a"].open("wb") as err:
            processes.append(_gateway_process(redis_server.url, server.base_url, "gw-a", err))
        wait_until(lambda: "gw-a: leading shard 0/1" in logs["gw-a"].read_text(), DEADLINE, "gw-a to lead")
        with logs["gw-b"].open("wb") as err:
            processes.append(_gateway_process(redis_server.url, server.base_url, "gw-b", err))
        wait_until(lambda: "gw-b: standing by; shard 0/1 is led by " in logs["gw-b"].read_text(), DEADLINE,
                   "gw-b to stand by")
        assert "gw-a/" in logs["gw-b"].read_text()  # names the leader
        assert "standby" not in logs["gw-a"].read_text()
        processes[0].send_signal(signal.SIGINT)  # Ctrl-C: the CLI's exit status for it, and a word on stopping
        assert processes[0].wait(DEADLINE) == 130
        assert "stopped (SIGINT); it led: " in logs["gw-a"].read_text()
        wait_until(lambda: "gw-b: leading shard 0/1" in logs["gw-b"].read_text(), DEADLINE, "gw-b to lead at once")
        processes[1].send_signal(signal.SIGINT)
        assert processes[1].wait(DEADLINE) == 130
        assert "stopped (SIGINT); it led: " in logs["gw-b"].read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(DEADLINE)


def _tids(messages: list[Any], since: int) -> list[Any]:
    return [t["tid"] for m in messages for t in m["data"] if t["time"] >= since]


def _fill_ids(messages: list[Any], since: int) -> list[Any]:
    return [f["tid"] for m in messages for f in m["data"]["fills"] if f["time"] >= since]


def test_the_standby_takes_over_from_a_killed_leader_without_loss_or_duplicates(
        make_consumer, client, redis_server, server) -> None:
    from hyperliquid_ws.gateway.keys import Keys, network_of

    keys = Keys(network_of(server.base_url))
    processes = [_gateway_process(redis_server.url, server.base_url, name) for name in ("gw-a", "gw-b")]
    plain = _plain(redis_server.url)
    try:
        leader = wait_until(lambda: plain.get(keys.leader(0, 1)), DEADLINE * 2, "a leader")
        user = server.market.users[0]
        feeds = [TRADES, {"type": "candle", "coin": "BTC", "interval": "1m"}, {"type": "userFills", "user": user}]
        through = [Collector() for _ in feeds]
        direct = [Collector() for _ in feeds]
        errors = Collector()
        consumer = make_consumer(name="watcher", on_error=errors)
        for feed, got, truth in zip(feeds, through, direct, strict=True):
            consumer.subscribe(feed, got).wait(DEADLINE * 2)
            client.subscribe(feed, truth).wait(DEADLINE)
        # ~14 trades/s: recentTrades (100 trades, as on the real API) covers a takeover of up to ~7 s
        driver = Driver(server, 0.1).start()
        try:
            through[0].wait_for(3)
            pid = int(leader.split(":")[1])
            os.kill(pid, signal.SIGKILL)
            new_leader = wait_until(lambda: (plain.get(keys.leader(0, 1)) or leader) != leader and
                                    plain.get(keys.leader(0, 1)), DEADLINE, "the standby to take over")
            assert new_leader.split(":")[1] != str(pid)
            count = len(through[0].messages)
            through[0].wait_for(count + 3)  # flowing again through the new leader
        finally:
            driver.stop()
        wait_until(lambda: _tids(through[0].messages, 0)[-1:] == _tids(direct[0].messages, 0)[-1:], DEADLINE,
                   "the consumer to see the last trade")
        since = max(through[0].messages[0]["data"][0]["time"], direct[0].messages[0]["data"][0]["time"])
        got, truth = _tids(through[0].messages, since), _tids(direct[0].messages, since)
        assert len(got) == len(set(got)), "a trade came twice"
        assert got == truth, "trades lost in the takeover"
        assert any(m.get("backfill") for m in through[0].messages), "the gap was not backfilled"
        wait_until(lambda: set(_fill_ids(direct[2].messages, since)) <= set(_fill_ids(through[2].messages, since)),
                   DEADLINE, "every fill the direct client saw")
        fills = _fill_ids(through[2].messages, since)
        assert len(fills) == len(set(fills)), "a fill came twice"
        wait_until(lambda: through[1].messages[-1:] == direct[1].messages[-1:], DEADLINE,
                   "the consumer's last candle to be the direct client's")
        candles = [c["data"] for c in through[1].messages]
        assert all(a != b for a, b in itertools.pairwise(candles)), "a candle update came twice"
        for feed in feeds:  # the new leader numbered on from the stream's tail
            assert _numbered_without_holes(plain, keys.stream(json.dumps(feed, sort_keys=True, separators=(",", ":"))))
        assert errors.messages == [], "the consumer saw a gap"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(DEADLINE)
        plain.close()


def _reading_trades(make_consumer: Any, client: Any, **options: Any) -> tuple[Collector, Collector]:
    """A consumer (``options``) and the direct client, both on TRADES: ``(got, truth)``."""
    got, truth = Collector(), Collector()
    make_consumer(**options).subscribe(TRADES, got).wait(DEADLINE)
    client.subscribe(TRADES, truth).wait(DEADLINE)
    return got, truth


def _same_trades_and_stream_whole(got: Any, truth: Any, redis_url: str, gateway: Any) -> None:
    """Once the consumer has the direct client's last trade: the same trades, in the same
    order, none twice; and the stream numbered 1, 2, 3 ... with no hole."""
    wait_until(lambda: _tids(got.messages, 0)[-1:] == _tids(truth.messages, 0)[-1:], DEADLINE,
               "the consumer to see the last trade")
    since = max(got.messages[0]["data"][0]["time"], truth.messages[0]["data"][0]["time"])
    tids, true_tids = _tids(got.messages, since), _tids(truth.messages, since)
    assert len(tids) == len(set(tids)) and tids == true_tids
    plain = _plain(redis_url)
    assert _numbered_without_holes(plain, gateway.keys.stream(json.dumps(TRADES, sort_keys=True,
                                                                        separators=(",", ":"))))
    plain.close()


def test_redis_restarted_under_load_loses_and_repeats_nothing(make_gateway, make_consumer, client,
                                                               redis_server, server) -> None:
    gateway_errors, consumer_errors = Collector(), Collector()
    downs, ups = Collector(), Collector()
    gateway = make_gateway(on_error=gateway_errors)
    got, truth = _reading_trades(make_consumer, client, name="survivor", on_error=consumer_errors,
                                 on_disconnect=downs, on_reconnect=ups)
    driver = Driver(server, 0.02).start()
    try:
        got.wait_for(5)
        redis_server.stop()  # SIGTERM: Redis saves its append-only file and exits
        downs.wait_for(1)
        gateway_errors.wait_for(1)
        ticks = driver.ticks
        wait_until(lambda: driver.ticks >= ticks + 20, DEADLINE, "trades while Redis is down")
        assert gateway.stats()["buffered"] > 0
        redis_server.start()
        ups.wait_for(1)
        count = len(got.messages)
        got.wait_for(count + 5)
    finally:
        driver.stop()
    _same_trades_and_stream_whole(got, truth, redis_server.url, gateway)
    assert "Redis at redis://127.0.0.1" in str(consumer_errors.messages[0])
    assert not [e for e in consumer_errors.messages if isinstance(e, RetentionGapError)]
    assert gateway.stats()["dropped"] == 0


def test_redis_down_longer_than_the_lease_with_a_standby_loses_nothing(make_gateway, make_consumer, client,
                                                                      redis_server, server) -> None:
    """Redis restarts and its copy of the leader lease has expired meanwhile: the leader,
    whose buffer holds the whole outage, takes the lease back under its old value, and the
    standby (which lost Redis too) lets it. Nothing comes from a backfill bounded by
    recentTrades: the outage holds more trades than that."""
    from hyperliquid_ws.testing.info import RECENT_TRADES

    leader = make_gateway(leader_ttl=2.0, demand_poll=0.3)
    wait_until(lambda: leader.leading, DEADLINE, "the first gateway to lead")
    standby = make_gateway(leader_ttl=2.0, demand_poll=0.01)  # it would win any race for the lease
    consumer_errors, ups = Collector(), Collector()
    got, truth = _reading_trades(make_consumer, client, name="patient", on_error=consumer_errors, on_reconnect=ups)
    driver = Driver(server, 0.005).start()
    try:
        got.wait_for(5)
        plain = _plain(redis_server.url)
        expires = time.monotonic() + plain.pttl(leader.keys.leader(0, 1)) / 1000
        plain.close()
        redis_server.stop()
        trades = len(_tids(truth.messages, 0))
        wait_until(lambda: len(_tids(truth.messages, 0)) > trades + RECENT_TRADES * 3 // 2
                   and time.monotonic() > expires, 3 * DEADLINE, "the lease to expire, with many trades")
        redis_server.start()
        ups.wait_for(1)
        got.wait_for(len(got.messages) + 5)
    finally:
        driver.stop()
    _same_trades_and_stream_whole(got, truth, redis_server.url, leader)
    assert not [e for e in consumer_errors.messages if isinstance(e, (RetentionGapError, BackfillError))]
    assert not any(m.get("backfill") for m in got.messages)
    assert leader.leading and not standby.leading and leader.stats()["dropped"] == 0


def _fifty_feeds() -> list[dict[str, Any]]:
    coins = ["BTC", "ETH", "SOL", "ATOM", "PURR/USDC", "@107"]
    feeds: list[dict[str, Any]] = [{"type": "allMids"}, {"type": "assetCtxs"}]
    for kind in ("trades", "bbo", "l2Book", "activeAssetCtx"):
        feeds += [{"type": kind, "coin": coin} for coin in coins]
    feeds += [{"type": "candle", "coin": coin, "interval": interval}
              for coin in coins[:4] for interval in ("1m", "3m", "5m", "15m", "30m", "1h")]
    assert len(feeds) == 50
    return feeds


def test_twenty_consumer_processes_on_fifty_feeds_share_one_upstream(make_gateway, children, redis_server,
                                                                       server) -> None:
    gateway = make_gateway(leader_ttl=15.0)  # twenty processes starting on 2 cores must not cost it the lease
    feeds = _fifty_feeds()
    config = {"redis": redis_server.url, "base_url": server.base_url, "name": None}
    driver = Driver(server, 0.05).start()
    try:
        made = [children(f"c{j}", **config, feeds=[feeds[(j * 5 + k) % 50] for k in range(10)]).start()
                for j in range(20)]
        for child in made:
            child.ready(60)
    finally:
        driver.stop()
    held = server.subscriptions()
    assert len(held) == 50 and len({json.dumps(s, sort_keys=True) for s in held}) == 50
    upstream = gateway.stats()["upstream"]
    assert len(server.connection_ids()) == len(upstream["connections"]) <= 10
