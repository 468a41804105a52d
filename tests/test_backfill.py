"""Nothing lost, nothing twice: the market moves while the client is away, and after the
reconnect the client recovers the gap over HTTP /info and dedupes the snapshots."""

from __future__ import annotations

import pytest
import requests

from hyperliquid_ws import BackfillError, Limits

from .conftest import Collector, wait_until


def info(server, body):
    response = requests.post(server.base_url + "/info", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def go_away_and_come_back(server, client, ticks=15):
    """Drop the link, move the market while the client cannot connect, then let it in."""
    backfilled = client._backfiller.gaps_backfilled + client._backfiller.gaps_unrecovered
    server.refuse_handshakes(1_000_000)
    server.drop_connections()
    wait_until(lambda: not client.connected, what="the drop")
    server.advance(ticks)
    server.refuse_handshakes(0)
    return backfilled


def fills_of(messages, key="fills"):
    return [f for m in messages for f in (m["data"].get(key) or [])]


def test_user_fills_missed_while_away_are_recovered_once_in_order(server, client):
    user = server.market.users[0]
    got = Collector()
    client.subscribe({"type": "userFills", "user": user}, got).wait()
    got.wait_for(1)  # the first snapshot, as it is
    assert got.messages[0]["data"]["isSnapshot"] is True
    server.advance(5)
    before = go_away_and_come_back(server, client, ticks=30)
    wait_until(lambda: client._backfiller.gaps_backfilled > before, what="the backfill")
    server.advance(3)
    expected = {f["tid"] for f in info(server, {"type": "userFills", "user": user})}
    wait_until(lambda: expected <= {f["tid"] for f in fills_of(got.messages)}, what="every fill delivered")
    delivered = fills_of(got.messages)
    assert len(delivered) == len({f["tid"] for f in delivered}), "a fill was delivered twice"
    ((_, entry),) = client._pool.entries()
    assert entry.tracker.duplicates > 0  # the resubscribe snapshot repeated history: filtered
    recovered = [m for m in got.messages if m.get("backfill")]
    if recovered:  # the resubscribe snapshot may already have carried everything
        assert all(m["channel"] == "userFills" and m["data"]["user"] == user for m in recovered)
    times = [f["time"] for m in got.messages[1:] for f in m["data"]["fills"]]
    assert times == sorted(times), "fills after the first snapshot arrived out of time order"


def test_events_without_snapshots_are_backfilled(server, client):
    user = server.market.users[0]
    orders, events, trades = Collector(), Collector(), Collector()
    client.subscribe({"type": "orderUpdates", "user": user}, orders).wait()
    client.subscribe({"type": "userEvents", "user": user}, events).wait()
    client.subscribe({"type": "trades", "coin": "BTC"}, trades).wait()
    server.advance(2)
    orders.wait_for(1)
    trades.wait_for(1)
    gone_at = max(m["data"][-1]["time"] for m in trades.messages)
    before = go_away_and_come_back(server, client, ticks=20)
    wait_until(lambda: client._backfiller.gaps_backfilled >= before + 3, what="three backfills")

    missed_trades = [t for t in info(server, {"type": "recentTrades", "coin": "BTC"}) if t["time"] > gone_at]
    assert missed_trades, "the scripted market made no BTC trade while the client was away"
    delivered = [t for m in trades.messages for t in m["data"]]
    assert {t["tid"] for t in missed_trades} <= {t["tid"] for t in delivered}
    assert len(delivered) == len({t["tid"] for t in delivered})
    assert any(m.get("backfill") for m in trades.messages)

    history = info(server, {"type": "historicalOrders", "user": user})
    since = orders.messages[0]["data"][0]["statusTimestamp"]
    wanted = {(o["order"]["oid"], o["status"]) for o in history if o["statusTimestamp"] >= since}
    got = {(u["order"]["oid"], u["status"]) for m in orders.messages for u in m["data"]}
    assert wanted <= got
    event_fills = [f for m in events.messages for f in m["data"].get("fills", [])]
    assert len(event_fills) == len({f["tid"] for f in event_fills})
    assert all(m["channel"] == "user" for m in events.messages)


def test_candles_resume_with_the_closed_and_current_candles(server, client):
    got = Collector()
    client.subscribe({"type": "candle", "coin": "ETH", "interval": "1m"}, got).wait()
    server.advance(1)
    got.wait_for(1)
    before = go_away_and_come_back(server, client, ticks=10)
    wait_until(lambda: client._backfiller.gaps_backfilled > before, what="the backfill")
    latest = info(server, {"type": "candleSnapshot", "req": {
        "coin": "ETH", "interval": "1m", "startTime": 0, "endTime": 2**62}})[-1]
    wait_until(lambda: got.messages[-1]["data"] == latest or any(m["data"] == latest for m in got.messages),
               what="the latest candle")
    backfilled = [m for m in got.messages if m.get("backfill")]
    assert all(m["channel"] == "candle" and m["data"]["s"] == "ETH" for m in backfilled)


def test_transient_http_failures_are_retried(server, client):
    got = Collector()
    client.subscribe({"type": "trades", "coin": "SOL"}, got).wait()
    server.advance(1)
    got.wait_for(1)
    server.fail_info(2, status=503)
    before = go_away_and_come_back(server, client)
    wait_until(lambda: client._backfiller.gaps_backfilled > before, what="the backfill after retries")
    assert client._backfiller.gaps_unrecovered == 0


def test_an_unrecoverable_gap_is_reported_with_its_time_range(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors)
    got = Collector()
    client.subscribe({"type": "trades", "coin": "SOL"}, got).wait()
    server.advance(1)
    got.wait_for(1)
    server.fail_info(1_000, status=500)
    client._backfiller._retry_backoff = type(client._backfiller._retry_backoff)(initial=0.01, maximum=0.02)
    go_away_and_come_back(server, client)
    (error,) = errors.wait_for(1)
    assert isinstance(error, BackfillError)
    assert error.subscription == {"type": "trades", "coin": "SOL"}
    assert error.start_ms <= error.end_ms
    server.fail_info(0)
    frame = server.emit({"type": "trades", "coin": "SOL"})
    wait_until(lambda: frame in got.messages, what="live frames after a failed backfill")


def test_backfill_can_be_switched_off(server, make_client):
    client = make_client(backfill=False)
    got = Collector()
    trades = client.subscribe({"type": "trades", "coin": "BTC"}, got)
    trades.wait()
    go_away_and_come_back(server, client)
    # Subscribed again on the new connection, not only connected: a trade emitted before the
    # server has the new subscribe goes to nobody (and with no backfill nothing brings it).
    wait_until(lambda: trades.active and client._pool.primary.connection.connects >= 2, what="the resubscribe")
    frame = server.emit({"type": "trades", "coin": "BTC"})
    wait_until(lambda: frame in got.messages)
    assert not any(m.get("backfill") for m in got.messages)
    assert client._backfiller.gaps_backfilled == 0


COINS = ["BTC", "ETH", "ATOM", "DYDX", "SOL", "xyz:XYZ100", "xyz:NVDA", "PURR/USDC", "@107"]


@pytest.mark.parametrize("client_budget, refused", [(50, False), (5000, True)], ids=["paced", "unpaced"])
@pytest.mark.hyperliquid_server(info_weight_per_window=50, rate_window=0.5)
def test_a_reconnect_that_backfills_many_feeds_keeps_to_the_rest_weight_budget(server, make_client,
                                                                               client_budget, refused):
    """Nine trades feeds need nine recentTrades (25 weight each) after a drop: 225 weight
    against a server that allows 50 per 0.5 s. Paced by the same budget, the client gets
    no 429 and recovers every gap; with a budget the server does not have, the server
    refuses (the proof that it counts)."""
    client = make_client(limits=Limits(info_weight_per_window=client_budget, info_window=0.5))
    got = Collector()
    for coin in COINS:
        client.subscribe({"type": "trades", "coin": coin}, got).wait()
    server.advance(1)
    before = go_away_and_come_back(server, client)
    backfiller = client._backfiller
    wait_until(lambda: backfiller.gaps_backfilled + backfiller.gaps_unrecovered >= before + len(COINS),
               what="every feed's backfill")
    if refused:
        assert server.info_refused > 0
        return
    assert server.info_refused == 0 and backfiller.gaps_unrecovered == 0
    budget = client.stats()["limits"]["info_weight_in_window"]
    assert budget["waited"] > 0 and budget["max"] == 50


def test_info_over_the_socket_is_counted_in_the_rest_weight_budget_and_paced_when_asked(server, make_client):
    """Whether the exchange counts socket posts in the REST budget is UNCONFIRMED: the
    client counts them (so its own backfill leaves room for them) and, with
    ``paced=True``, waits for room first: twelve allMids (weight 2) against 10 per 0.5 s
    all come back, some after a wait; unpaced ones are sent at once and only counted."""
    client = make_client(limits=Limits(info_weight_per_window=10, info_window=0.5))
    budget = lambda: client.stats()["limits"]["info_weight_in_window"]  # noqa: E731
    assert isinstance(client.info({"type": "allMids"}), dict)
    assert budget()["used"] >= 2 and budget()["waited"] == 0
    for _ in range(12):
        assert isinstance(client.info({"type": "allMids"}, paced=True), dict)
    assert budget()["waited"] > 0


def test_a_trades_gap_longer_than_recent_trades_is_reported_never_silent(server, make_client):
    """recentTrades holds the latest trades only (100 in the local server). A gap with more
    trades than that: the latest ones are delivered (once, in order), and the rest of the
    gap reaches on_error as a BackfillError naming the range that may be missing."""
    errors = Collector()
    client = make_client(on_error=errors)
    got = Collector()
    client.subscribe({"type": "trades", "coin": "BTC"}, got).wait()
    server.advance(1)
    wait_until(lambda: got.messages, what="a trade before the drop")
    last_seen = max(t["time"] for m in list(got.messages) for t in m["data"])
    before = go_away_and_come_back(server, client, ticks=600)
    recent = requests.post(server.base_url + "/info", json={"type": "recentTrades", "coin": "BTC"}, timeout=10).json()
    assert min(t["time"] for t in recent) > last_seen, "precondition: more trades in the gap than recentTrades holds"
    wait_until(lambda: client._backfiller.gaps_backfilled + client._backfiller.gaps_unrecovered > before,
               what="the backfill")
    (error,) = wait_until(lambda: [e for e in errors.messages if isinstance(e, BackfillError)], what="the report")
    assert error.end_ms == min(t["time"] for t in recent) and error.start_ms < error.end_ms
    backfilled = [t["tid"] for m in got.messages if m.get("backfill") for t in m["data"]]
    assert backfilled == [t["tid"] for t in sorted(recent, key=lambda t: t["time"])]
    tids = [t["tid"] for m in got.messages for t in m["data"]]
    assert len(tids) == len(set(tids)), "a trade was delivered twice"
