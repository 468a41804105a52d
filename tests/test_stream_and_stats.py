"""The blocking stream iterator, live stats, and the silent-feed resubscribe."""

from __future__ import annotations

import gc
import threading

import pytest

from .conftest import Collector, wait_until

# These tests script every trades frame themselves: the replay after a trades ack would be noise.
pytestmark = pytest.mark.hyperliquid_server(trades_replay=0)

TRADES = {"type": "trades", "coin": "BTC"}


def unsubscribes(server):
    return [m for _, m in server.received() if isinstance(m, dict) and m.get("method") == "unsubscribe"]


def emit_later(server, subscription, count):
    thread = threading.Thread(target=lambda: [server.emit(subscription) for _ in range(count)],
                              name="test-emitter")
    thread.start()
    return thread


def test_iterating_a_stream_and_breaking_out_unsubscribes(server, client):
    stream = client.stream(TRADES, timeout=10).wait()
    emitter = emit_later(server, TRADES, 3)
    seen = []
    for message in stream:
        seen.append(message)
        if len(seen) == 3:
            break
    emitter.join()
    assert [m["channel"] for m in seen] == ["trades"] * 3
    del stream
    gc.collect()
    wait_until(lambda: unsubscribes(server), what="the unsubscribe")


def test_a_stream_ends_when_nothing_arrives_within_its_timeout(server, client):
    stream = client.stream(TRADES, timeout=0.2).wait()
    assert list(stream) == []
    wait_until(lambda: unsubscribes(server), what="the unsubscribe")


@pytest.mark.parametrize(("overflow", "kept"), [("drop_oldest", [7, 8, 9]), ("drop_newest", [0, 1, 2])])
def test_overflow_is_explicit_counted_and_reported(server, client, overflow, kept):
    with client.stream(TRADES, maxsize=3, overflow=overflow, timeout=5) as stream:
        stream.wait()
        frames = [server.emit(TRADES) for _ in range(10)]
        wait_until(lambda: stream.received == 10, what="ten messages")
        assert stream.dropped == 7
        assert client.stats()["streams"][0]["dropped"] == 7
        got = [next(stream) for _ in range(3)]
        assert got == [frames[i] for i in kept]
    wait_until(lambda: unsubscribes(server), what="the unsubscribe at the end of the with block")


def test_an_exception_in_the_loop_unsubscribes(server, client):
    def consume(stream):
        for _ in stream:
            raise KeyError("bot bug")

    stream = client.stream(TRADES, timeout=10).wait()
    emitter = emit_later(server, TRADES, 1)
    with pytest.raises(KeyError):
        consume(stream)
    emitter.join()
    del stream
    gc.collect()
    wait_until(lambda: unsubscribes(server), what="the unsubscribe")


def test_closing_the_client_ends_a_loop_that_has_no_timeout(server, make_client):
    client = make_client()
    stream = client.stream(TRADES).wait()
    ended = threading.Event()
    seen = []

    def consume():
        seen.extend(stream)
        ended.set()

    loop = threading.Thread(target=consume, name="test-stream-loop")
    loop.start()
    frame = server.emit(TRADES)
    wait_until(lambda: seen == [frame], what="the first message")
    client.close()
    assert ended.wait(5), "the loop still waits after close()"
    loop.join(5)


def test_bad_stream_arguments_are_refused(client):
    for kwargs in ({"maxsize": 0}, {"overflow": "block"}, {"timeout": -1}):
        with pytest.raises(ValueError):
            client.stream(TRADES, **kwargs)


def test_stats_match_what_was_sent(server, make_client):
    client = make_client(on_error=lambda error: None)
    trades, book = Collector(), Collector()
    client.subscribe(TRADES, trades).wait()
    client.subscribe(TRADES, lambda message: 1 / 0).wait()
    client.subscribe({"type": "l2Book", "coin": "ETH"}, book).wait()
    for _ in range(4):
        server.emit(TRADES)
    trades.wait_for(4)
    wait_until(lambda: client.stats()["callback_errors"] == 4, what="four callback errors counted")
    stats = client.stats()
    by_type = {s["subscription"]["type"]: s for s in stats["subscriptions"]}
    assert by_type["trades"]["received"] == by_type["trades"]["delivered"] == 4
    assert by_type["trades"]["callbacks"] == 2 and by_type["trades"]["active"]
    assert by_type["trades"]["seconds_since_last_message"] >= 0
    assert stats["limits"]["subscriptions"] == {"used": 2, "max": 1000}
    assert stats["limits"]["connections"]["used"] == 1
    assert stats["connections"][0]["connected"] and stats["reconnects"] == 0

    server.drop_connections()
    wait_until(lambda: client.stats()["reconnects"] == 1 and client.connected, what="a reconnect")
    assert client.stats()["last_disconnect_reason"]
    assert "1/1 connected" in repr(client) and "subscriptions=2" in repr(client)


def test_a_silent_feed_on_a_live_link_gets_a_targeted_resubscribe(server, make_client):
    client = make_client(ping_interval=0.2, pong_timeout=1.0, silent_feed_factor=3, silent_feed_minimum=0.3)
    got = Collector()
    client.subscribe(TRADES, got).wait()
    busy = client.subscribe({"type": "allMids"}, Collector())
    busy.wait()
    for _ in range(6):
        server.emit(TRADES)
    got.wait_for(6)
    wait_until(lambda: client.stats()["connections"][0]["silent_feed_resubscribes"] >= 1,
               what="the silent-feed resubscribe")
    # counted when queued; the writer thread sends it a moment later
    wait_until(lambda: {"method": "unsubscribe", "subscription": TRADES} in unsubscribes(server),
               what="the unsubscribe on the wire")
    assert client.stats()["reconnects"] == 0  # targeted, not a reconnect
