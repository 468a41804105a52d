"""Per-user isolation through a pool of connections, and the client-side limits."""

from __future__ import annotations

import pytest

from hyperliquid_ws import LimitError, Limits
from hyperliquid_ws.testing import LocalServer

from .conftest import Collector, client_threads, wait_until

USERS = [f"0x{n:040x}" for n in range(1, 11)]


def sent(server, method="subscribe"):
    return [m for _, m in server.received() if isinstance(m, dict) and m.get("method") == method]


def test_ten_accounts_order_updates_and_user_events_each_reach_only_their_own(make_client):
    with LocalServer(tick_interval=None) as server:
        client = make_client(base_url=server.base_url)
        got = {}
        for user in USERS:
            for kind in ("orderUpdates", "userEvents"):
                got[kind, user] = Collector()
                client.subscribe({"type": kind, "user": user}, got[kind, user])
        wait_until(lambda: len(server.subscriptions()) == 20, what="twenty subscriptions")
        assert len(client._pool.links) == 10 and len(server.connection_ids()) == 10
        frames = {}
        for (kind, user), collector in got.items():
            frames[kind, user] = server.emit({"type": kind, "user": user})
            wait_until(lambda c=collector, f=frames[kind, user]: f in c.messages, what=f"{kind} of {user}")
        for key, collector in got.items():
            for other, frame in frames.items():
                if other != key:
                    assert frame not in collector.messages, f"{other} reached {key}'s callback"


def test_l2book_precision_variants_of_one_coin_are_kept_apart(server, client):
    variants = [{"type": "l2Book", "coin": "ETH"}, {"type": "l2Book", "coin": "ETH", "nSigFigs": 5},
                {"type": "l2Book", "coin": "ETH", "nSigFigs": 3}]
    got = [Collector() for _ in variants]
    for variant, collector in zip(variants, got, strict=True):
        client.subscribe(variant, collector).wait()
    assert len(client._pool.links) == 3
    frames = [server.emit(variant) for variant in variants]
    for frame, collector in zip(frames, got, strict=True):
        wait_until(lambda f=frame, c=collector: f in c.messages, what="each variant's book")
    for i, collector in enumerate(got):
        assert all(frames[j] not in collector.messages for j in range(3) if j != i)


def test_everything_unambiguous_shares_one_connection(server, client):
    for coin in ("BTC", "ETH", "SOL"):
        for kind in ("trades", "l2Book", "bbo"):
            client.subscribe({"type": kind, "coin": coin}, Collector())
    client.subscribe({"type": "userFills", "user": USERS[0]}, Collector()).wait()
    assert len(client._pool.links) == 1


def test_a_connection_left_empty_is_closed(server, client):
    first = client.subscribe({"type": "orderUpdates", "user": USERS[0]}, Collector())
    second = client.subscribe({"type": "orderUpdates", "user": USERS[1]}, Collector())
    first.wait()
    second.wait()
    extra = client._pool.links[1]
    second.unsubscribe()
    assert client._pool.links == [client._pool.primary]
    assert not any(t.is_alive() for t in extra.threads())
    wait_until(lambda: len(server.connection_ids()) == 1, what="the server to see it close")


def test_the_subscription_limit_is_enforced_before_anything_is_sent(server, make_client):
    client = make_client(limits=Limits(max_subscriptions=2))
    client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait()
    client.subscribe({"type": "trades", "coin": "ETH"}, Collector()).wait()
    client.subscribe({"type": "trades", "coin": "ETH"}, Collector())  # a second callback is no new subscription
    with pytest.raises(LimitError, match="max_subscriptions") as caught:
        client.subscribe({"type": "trades", "coin": "SOL"}, Collector())
    assert (caught.value.limit, caught.value.value) == ("max_subscriptions", 2)
    assert len(sent(server)) == 2


def test_the_user_limit_counts_distinct_users_case_insensitively(server, make_client):
    client = make_client(limits=Limits(max_users=2))
    client.subscribe({"type": "userFills", "user": USERS[0]}, Collector())
    client.subscribe({"type": "userFundings", "user": USERS[0].upper().replace("0X", "0x")}, Collector())
    client.subscribe({"type": "userFills", "user": USERS[1]}, Collector())
    with pytest.raises(LimitError, match="max_users"):
        client.subscribe({"type": "userFills", "user": USERS[2]}, Collector())
    client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait()  # not a user feed


def test_the_connection_limit_is_named_when_isolation_needs_more(server, make_client):
    client = make_client(limits=Limits(max_connections=2))
    client.subscribe({"type": "orderUpdates", "user": USERS[0]}, Collector())
    client.subscribe({"type": "orderUpdates", "user": USERS[1]}, Collector())
    with pytest.raises(LimitError, match="max_connections"):
        client.subscribe({"type": "orderUpdates", "user": USERS[2]}, Collector())


def test_the_server_never_has_to_refuse_when_limits_match(make_client):
    errors = Collector()
    with LocalServer(tick_interval=None, max_subscriptions=5, max_users=2) as server:
        client = make_client(base_url=server.base_url, on_error=errors,
                             limits=Limits(max_subscriptions=5, max_users=2))
        subs = [client.subscribe({"type": "trades", "coin": c}, Collector()) for c in ("BTC", "ETH", "SOL")]
        subs += [client.subscribe({"type": "userFills", "user": u}, Collector()) for u in USERS[:2]]
        for sub in subs:
            sub.wait()
        with pytest.raises(LimitError):
            client.subscribe({"type": "trades", "coin": "ATOM"}, Collector())
        with pytest.raises(LimitError):
            client.subscribe({"type": "userFills", "user": USERS[2]}, Collector())
        assert not errors.messages


def test_every_connection_is_joined_at_close(server):
    from hyperliquid_ws import HyperliquidWS

    before = client_threads()
    client = HyperliquidWS(server.base_url)
    for user in USERS[:3]:
        client.subscribe({"type": "orderUpdates", "user": user}, Collector()).wait()
    assert len(client_threads() - before) == 3 * 4 + 1  # reader, relay, keepalive, writer each; backfill
    client.close()
    assert client_threads() == before


def test_one_connections_trouble_does_not_stall_the_others(make_client):
    with LocalServer(tick_interval=None, max_connections=10) as server:
        client = make_client(base_url=server.base_url)
        first, second = Collector(), Collector()
        client.subscribe({"type": "orderUpdates", "user": USERS[0]}, first).wait()
        client.subscribe({"type": "orderUpdates", "user": USERS[1]}, second).wait()
        primary, extra = client._pool.links
        server.drop_connections(conn=max(server.connection_ids()))
        frame = server.emit({"type": "orderUpdates", "user": USERS[0]})
        wait_until(lambda: frame in first.messages, what="the untouched connection to keep streaming")
        wait_until(lambda: extra.connection.connects == 2 and extra.connection.connected,
                   what="the dropped connection to come back")
        assert primary.connection.connects == 1
        assert server.connections_refused == 0


def test_the_pool_stays_within_the_servers_connection_limit(make_client):
    with LocalServer(tick_interval=None, max_connections=3) as server:
        client = make_client(base_url=server.base_url, limits=Limits(max_connections=3))
        for user in USERS[:3]:
            client.subscribe({"type": "userEvents", "user": user}, Collector()).wait()
        with pytest.raises(LimitError, match="max_connections"):
            client.subscribe({"type": "userEvents", "user": USERS[3]}, Collector())
        assert server.connections_refused == 0


def test_connections_opened_and_emptied_again_and_again_do_not_accumulate(server, client):
    client.subscribe({"type": "orderUpdates", "user": USERS[0]}, Collector()).wait()
    for _ in range(5):
        extra = client.subscribe({"type": "orderUpdates", "user": USERS[1]}, Collector())
        extra.wait()
        extra.unsubscribe()
    assert len(client._pool.links) == 1 and client._pool.retired == []
