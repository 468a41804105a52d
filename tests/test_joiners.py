"""Late joiners get what a fresh subscribe gives: a subscribe or ``stream()`` that joins
a feed the client already holds gets the latest state (state feeds) or an
``isSnapshot`` message (history feeds) before any later message; the handles already
there see nothing new; and each handle's dedupe is its own across reconnects."""

from __future__ import annotations

import gc
import types

import pytest
import requests

from .conftest import DEADLINE, Collector, wait_until


def info(server, body):
    response = requests.post(server.base_url + "/info", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def tids(messages):
    return [f["tid"] for m in messages for f in m["data"].get("fills") or []]


@pytest.mark.parametrize("threads", [0, 2], ids=["connection-threads", "dispatcher-threads"])
def test_a_second_user_fills_subscriber_and_a_stream_get_the_snapshot(server, make_client, threads):
    client = make_client(callback_threads=threads)
    fills = {"type": "userFills", "user": server.market.users[0]}
    first, second = Collector(), Collector()
    client.subscribe(fills, first).wait()
    (snapshot,) = first.wait_for(1)
    assert snapshot["data"]["isSnapshot"] is True
    assert len(snapshot["data"]["fills"]) == len(server.market.account(fills["user"]).fills)
    client.subscribe(fills, second).wait()
    stream = client.stream(fills, timeout=DEADLINE)
    (joined,) = second.wait_for(1)
    streamed = next(stream)
    for message in (joined, streamed):
        assert message["channel"] == "userFills" and message["data"]["isSnapshot"] is True
        assert message["data"]["user"] == fills["user"]
        assert tids([message]) == tids([snapshot])
    frame = server.emit(fills)  # later messages reach every handle, once
    wait_until(lambda: frame in first.messages and frame in second.messages, what="the next fill")
    assert next(stream) == frame
    assert first.messages == [snapshot, frame], "a handle already there saw something new"
    stream.close()


def test_a_late_callback_and_stream_on_a_held_state_feed_get_the_state(server, make_client):
    client = make_client()
    state = {"type": "clearinghouseState", "user": server.market.users[0]}
    first, second = Collector(), Collector()
    client.subscribe(state, first).wait()
    (current,) = first.wait_for(1)  # the market is frozen: no push comes until it moves
    client.subscribe(state, second).wait()
    assert second.wait_for(1) == [current]
    with client.stream(state, timeout=DEADLINE) as stream:
        assert next(stream) == current
        server.advance(1)
        pushed = next(stream)
    assert pushed["data"]["clearinghouseState"]["time"] > current["data"]["clearinghouseState"]["time"]
    wait_until(lambda: first.messages[-1] == pushed == second.messages[-1], what="the push to every handle")
    assert len(first.messages) == 2 and len(second.messages) == 2


def go_away_and_come_back(server, client, ticks):
    before = client._backfiller.gaps_backfilled
    server.refuse_handshakes(1_000_000)
    server.drop_connections()
    wait_until(lambda: not client.connected, what="the drop")
    server.advance(ticks)
    server.refuse_handshakes(0)
    wait_until(lambda: client._backfiller.gaps_backfilled > before, what="the backfill")


def test_two_callbacks_one_joining_late_each_see_every_fill_once_across_two_reconnects(server, make_client):
    client = make_client()
    user = server.market.users[0]
    fills = {"type": "userFills", "user": user}
    early, late = Collector(), Collector()
    client.subscribe(fills, early).wait()
    early.wait_for(1)
    server.advance(5)
    client.subscribe(fills, late).wait()
    late.wait_for(1)
    server.advance(5)
    go_away_and_come_back(server, client, ticks=20)
    server.advance(3)
    go_away_and_come_back(server, client, ticks=20)
    server.advance(3)
    expected = {f["tid"] for f in info(server, {"type": "userFills", "user": user})}
    for got in (early, late):
        wait_until(lambda got=got: expected <= set(tids(got.messages)), what="every fill delivered")
    for got in (early, late):
        delivered = tids(got.messages)
        assert len(delivered) == len(set(delivered)), "a fill was delivered twice to one callback"
    assert late.messages[0]["data"]["isSnapshot"] is True


@pytest.mark.parametrize("threads", [0, 2], ids=["connection-threads", "dispatcher-threads"])
def test_only_a_state_feed_keeps_its_last_message_after_the_callbacks(server, make_client, threads):
    """A state feed's latest frame is kept for its late joiners; a trade (or any frame a
    joiner is not given) is the user's alone once its callbacks have run: with a
    thousand feeds, a last frame held per feed cost ~1 us of a trade's ~6."""
    client = make_client(callback_threads=threads)
    trades, book = Collector(), Collector()
    client.subscribe({"type": "trades", "coin": "BTC"}, trades).wait()
    client.subscribe({"type": "l2Book", "coin": "BTC"}, book).wait()
    trades.wait_for(1)
    book.wait_for(1)

    def held_by_the_client(message):
        return [r for r in gc.get_referrers(message)  # but the test's own references: its lists, closures
                if r is not trades.messages and r is not book.messages and not isinstance(r, types.CellType)]

    def held(messages):  # a loop, not a list or a generator of them: those would be referrers too
        gc.collect()
        for message in messages:  # noqa: SIM110
            if held_by_the_client(message):
                return True
        return False

    server.emit({"type": "trades", "coin": "BTC"})
    wait_until(lambda: len(trades.messages) > 1 and not held(trades.messages),
               what="every trade released by the client")
    assert held(book.messages), "the book's state is kept for a late joiner"
