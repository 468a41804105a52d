"""Slow callbacks: they hold up only their own subscription, never the link, and a drop
is never silent."""

from __future__ import annotations

import json
import threading
import time

import pytest

from hyperliquid_ws import SlowConsumerError

from .conftest import DEADLINE, Collector, wait_until

# These tests script every trades frame themselves: the replay after a trades ack would be noise.
pytestmark = pytest.mark.hyperliquid_server(trades_replay=0)

SLOW = {"type": "trades", "coin": "BTC"}
FAST = {"type": "trades", "coin": "ETH"}


class Gate:
    """A callback that blocks on its first message until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()
        self.messages: list = []

    def __call__(self, message) -> None:
        self.messages.append(message)
        self.entered.set()
        self.open.wait(DEADLINE * 3)


# Both ways of running callbacks: on the connection's threads (reader + relay, the
# default) and on dispatcher threads.
both_modes = pytest.mark.parametrize("callback_threads", [0, 2], ids=["connection-threads", "dispatch-threads"])


def pings(server):
    return sum(1 for _, m in server.received() if m == {"method": "ping"})


@both_modes
def test_a_long_blocked_callback_stalls_neither_the_link_nor_other_feeds(server, make_client, callback_threads):
    client = make_client(ping_interval=0.1, pong_timeout=0.3, callback_threads=callback_threads)
    gate, fast = Gate(), Collector()
    client.subscribe(SLOW, gate).wait()
    client.subscribe(FAST, fast).wait()
    first = server.emit(SLOW)
    assert gate.entered.wait(DEADLINE)
    queued = [server.emit(SLOW) for _ in range(5)]
    pings_before = pings(server)
    for _ in range(3):  # the other feed flows while the slow callback is stuck
        frame = server.emit(FAST)
        wait_until(lambda f=frame: f in fast.messages, what="the other feed's frame")
    wait_until(lambda: pings(server) >= pings_before + 5, what="pings while a callback blocks")
    assert client.stats()["reconnects"] == 0  # no false dead link
    gate.open.set()
    wait_until(lambda: len(gate.messages) == 6, what="the slow feed's backlog")
    assert gate.messages == [first, *queued]  # nothing lost, in order


@both_modes
def test_a_callback_that_is_slow_on_every_message_gets_all_of_them_in_order(server, make_client, callback_threads):
    client = make_client(callback_threads=callback_threads)
    received, fast = [], Collector()
    pause = threading.Event()

    def slow(message):
        pause.wait(0.1)
        received.append(message)

    client.subscribe(SLOW, slow).wait()
    client.subscribe(FAST, fast).wait()
    frames = [server.emit(SLOW) for _ in range(8)]
    other = server.emit(FAST)
    wait_until(lambda: other in fast.messages, what="the other feed, not behind the slow one")
    assert len(received) < len(frames)  # it really was overtaken
    wait_until(lambda: len(received) == 8, what="every slow message")
    assert received == frames


@both_modes
def test_overflow_of_a_stuck_subscription_is_counted_and_reported(server, make_client, callback_threads):
    errors = Collector()
    client = make_client(lane_limit=5, on_error=errors, callback_threads=callback_threads)
    gate = Gate()
    client.subscribe(SLOW, gate).wait()
    server.emit(SLOW)
    assert gate.entered.wait(DEADLINE)
    frames = [server.emit(SLOW) for _ in range(19)]
    wait_until(lambda: client.stats()["subscriptions"][0]["dropped_slow_consumer"] == 14,
               what="fourteen drops counted")
    (error,) = [e for e in errors.wait_for(1) if isinstance(e, SlowConsumerError)]
    assert error.dropped == 1 and "BTC" in str(error)
    gate.open.set()
    wait_until(lambda: len(gate.messages) == 6, what="the first and the five newest")
    assert gate.messages[1:] == frames[-5:]


def test_one_callback_thread_keeps_global_arrival_order(server, make_client):
    client = make_client(callback_threads=1)
    order = []
    client.subscribe(SLOW, lambda m: order.append(("btc", m["data"][0]["tid"]))).wait()
    client.subscribe(FAST, lambda m: order.append(("eth", m["data"][0]["tid"]))).wait()
    sent = []
    for n in range(10):
        feed, name = (SLOW, "btc") if n % 3 else (FAST, "eth")
        sent.append((name, server.emit(feed)["data"][0]["tid"]))
    wait_until(lambda: len(order) == 10, what="all ten")
    assert order == sent


def test_one_callback_thread_keeps_global_arrival_order_across_a_backlog(server, make_client):
    """Messages of two feeds pile up behind a blocked callback, interleaved; once it
    returns they come out as they arrived, not one feed's backlog before the other's."""
    client = make_client(callback_threads=1)
    gate = Gate()
    client.subscribe({"type": "trades", "coin": "SOL"}, gate).wait()
    order = []
    client.subscribe(SLOW, lambda m: order.append(("btc", m["data"][0]["tid"]))).wait()
    client.subscribe(FAST, lambda m: order.append(("eth", m["data"][0]["tid"]))).wait()
    server.emit({"type": "trades", "coin": "SOL"})
    assert gate.entered.wait(DEADLINE)
    sent = []
    for n in range(12):
        feed, name = (SLOW, "btc") if n % 3 else (FAST, "eth")
        sent.append((name, server.emit(feed)["data"][0]["tid"]))
    wait_until(lambda: client.stats()["queues"]["dispatch"] == 12, what="the backlog queued")
    gate.open.set()
    wait_until(lambda: len(order) == 12, what="all twelve")
    assert order == sent


def test_a_callback_blocking_the_reader_hands_the_socket_to_the_relay(server, make_client):
    client = make_client(ping_interval=0.1, pong_timeout=0.3)
    gate = Gate()
    threads = Collector()
    client.subscribe(FAST, lambda m: threads(threading.current_thread().name)).wait()
    client.subscribe(SLOW, gate).wait()
    server.emit(FAST)
    assert threads.wait_for(1) == [f"{client.name}-reader"]  # no hand-off: on the thread that read it
    server.emit(SLOW)
    assert gate.entered.wait(DEADLINE)
    server.emit(FAST)
    assert threads.wait_for(2)[1] == f"{client.name}-relay"  # the relay read on and delivered it
    assert client.stats()["connections"][0]["relays"] == 1
    pings_before = pings(server)
    wait_until(lambda: pings(server) >= pings_before + 8, what="pings while the reader is busy")
    assert client.stats()["reconnects"] == 0  # busy is not dead
    gate.open.set()
    server.emit(FAST)
    threads.wait_for(3)
    assert client.stats()["reconnects"] == 0


def test_with_both_connection_threads_blocked_the_link_is_busy_not_dead(server, make_client):
    client = make_client(ping_interval=0.1, pong_timeout=0.3)
    first, second, fast = Gate(), Gate(), Collector()
    client.subscribe(SLOW, first).wait()
    client.subscribe({"type": "trades", "coin": "SOL"}, second).wait()
    client.subscribe(FAST, fast).wait()
    server.emit(SLOW)
    assert first.entered.wait(DEADLINE)
    server.emit({"type": "trades", "coin": "SOL"})
    assert second.entered.wait(DEADLINE)  # the relay took over, and is stuck too
    frames = [server.emit(FAST) for _ in range(3)]
    pings_before = pings(server)
    wait_until(lambda: pings(server) >= pings_before + 8, what="pings while nobody reads")
    assert not fast.messages and client.stats()["reconnects"] == 0  # waiting, not dead
    first.open.set()
    second.open.set()
    assert fast.wait_for(3) == frames  # read once a thread came back: nothing lost, in order
    assert client.stats()["reconnects"] == 0


def _trade_frame(coin: str, tid: int) -> dict:
    trade = {"coin": coin, "side": "B", "px": "100.0", "sz": "1.0", "time": 1_700_000_000_000 + tid,
             "hash": "0x" + "0" * 64, "tid": tid, "users": ["0x" + "1" * 40, "0x" + "2" * 40]}
    return {"channel": "trades", "data": [trade]}


@both_modes
def test_every_subscription_that_drops_is_reported_however_many_drop_at_once(server, make_client,
                                                                             callback_threads):
    """Thirty subscriptions overflow in one read: each gets its SlowConsumerError. (The
    reports wait on on_error's own lane, which used to obey the same lane_limit: two of
    the thirty arrived, the rest were dropped as if on_error were a slow feed.)"""
    from hyperliquid_ws.testing.wire import encode_frame

    errors, opened = Collector(), threading.Event()
    client = make_client(lane_limit=2, on_error=errors, callback_threads=callback_threads)
    handles = [client.subscribe(SLOW, lambda message: opened.wait(DEADLINE * 3)) for _ in range(30)]
    for handle in handles:
        handle.wait()
    frames = [_trade_frame("BTC", tid) for tid in range(1, 6)]
    server.send_raw(b"".join(encode_frame(json.dumps(f, separators=(",", ":"))) for f in frames))  # one read
    wait_until(lambda: client.stats()["subscriptions"][0]["dropped_slow_consumer"] == 30 * 3,
               what="three drops on each of the thirty")
    opened.set()
    wait_until(lambda: len([e for e in errors.messages if isinstance(e, SlowConsumerError)]) >= 30,
               what="thirty reports")
    wait_until(lambda: client.stats()["queues"]["dispatch"] == 0, what="every lane served")
    reports = [e for e in errors.messages if isinstance(e, SlowConsumerError)]
    assert len(reports) == 30 and all(e.dropped == 1 and e.setting == "lane_limit" for e in reports)


@both_modes
def test_close_stops_after_the_callback_in_progress_however_long_the_backlog(server, make_client,
                                                                             callback_threads):
    """Two hundred messages wait behind a callback that takes 20 ms each. ``close()``
    lets the one in progress finish and begins no other (on the connection's threads it
    used to go on serving the backlog until ``close_timeout``, then warn that the reader
    did not stop)."""
    from hyperliquid_ws.testing.wire import encode_frame

    client = make_client(callback_threads=callback_threads)
    began, gate = [], threading.Event()

    def slow(message) -> None:
        began.append(client.closed)  # began after close() was called?
        gate.wait(DEADLINE)  # the first blocks until the test lets it finish; the rest return at once

    client.subscribe(SLOW, slow).wait()
    frames = [_trade_frame("BTC", tid) for tid in range(1, 201)]
    server.send_raw(b"".join(encode_frame(json.dumps(f, separators=(",", ":"))) for f in frames))
    wait_until(lambda: began, what="the first callback of the backlog")
    closer = threading.Thread(target=client.close, name="test-closer")
    closer.start()
    wait_until(lambda: client.closed, what="close() under way")
    # close() tells the dispatcher to stop at once; give it up to half a second to, then let the
    # callback in progress finish either way (with the bug, the other 199 then ran during close()).
    poll, until = threading.Event(), time.monotonic() + 0.5
    while not client._dispatcher._stopping and time.monotonic() < until:
        poll.wait(0.01)
    gate.set()
    closer.join(DEADLINE)
    assert not closer.is_alive()
    assert began == [False], f"{len(began) - 1} callbacks began after close()"


@pytest.mark.parametrize("order", ["slow-first", "fast-first"])
def test_a_callback_blocked_in_a_group_of_lanes_holds_only_its_own(server, make_client, order):
    """The reader serves the lanes of one read as a group (one lock for all). Frames of
    two feeds come in one TCP write, so in one read: the slow feed's callback blocks.
    Slow first, the fast lane is taken but not begun: the relay serves it. Fast first, it
    was served but not handed back: the relay hands it back, so its next frame flows."""
    from hyperliquid_ws.testing.wire import encode_frame

    client = make_client()
    gate, fast, threads = Gate(), Collector(), Collector()

    def on_fast(message) -> None:
        threads(threading.current_thread().name)
        fast(message)

    client.subscribe(SLOW, gate).wait()
    client.subscribe(FAST, on_fast).wait()
    slow_frame, first, second = _trade_frame("BTC", 1), _trade_frame("ETH", 2), _trade_frame("ETH", 3)
    pair = [slow_frame, first] if order == "slow-first" else [first, slow_frame]
    server.send_raw(b"".join(encode_frame(json.dumps(f, separators=(",", ":"))) for f in pair))
    assert gate.entered.wait(DEADLINE)
    assert fast.wait_for(1) == [first]
    server.push(second)
    assert fast.wait_for(2) == [first, second]  # while the slow callback still blocks
    assert not gate.open.is_set() and threads.messages[-1] == f"{client.name}-relay"
    gate.open.set()
    wait_until(lambda: len(gate.messages) == 1, what="the slow frame delivered")


def test_two_threads_serving_one_ready_keep_each_lane_in_order_and_alone():
    """The reader and the relay serve the same ``Ready``: claimed groups, begun by
    whichever thread comes first, handed back by either. 40 lanes, 20,000 messages from a
    reader thread that serves after each batch, a relay that serves whenever it can, and
    callbacks that now and then sleep: each lane gets every message once, in order, and
    never runs on two threads at once."""
    import random

    from hyperliquid_ws.dispatch import Dispatcher, Lane, Ready

    dispatcher = Dispatcher("groups", None, threads=0)
    ready = Ready()
    got: dict[int, list[int]] = {n: [] for n in range(40)}
    inside: dict[int, int] = dict.fromkeys(range(40), 0)
    overlaps: list[int] = []
    rng = random.Random(7)
    naps = {(rng.randrange(40), rng.randrange(500)) for _ in range(60)}  # (lane, message number) that sleep

    def callback_of(n: int):
        def callback(message: int) -> None:
            inside[n] += 1
            if inside[n] > 1:
                overlaps.append(n)
            if (n, message) in naps:
                done.wait(0.002)  # a slow message: the other thread may take the group's next lanes
            got[n].append(message)
            inside[n] -= 1
        return callback

    lanes = [Lane((callback_of(n),), f"lane-{n}") for n in range(40)]
    numbers = dict.fromkeys(range(40), 0)  # the next message number of each lane
    done = threading.Event()

    def relay() -> None:
        while not done.is_set():
            dispatcher.serve(ready)
            done.wait(0.0005)

    helper = threading.Thread(target=relay, name="groups-relay")
    helper.start()
    try:
        for _ in range(200):
            items = []
            for _ in range(100):
                n = rng.randrange(40)
                items.append((lanes[n], numbers[n]))
                numbers[n] += 1
            dispatcher.submit_many(items, ready)
            dispatcher.serve(ready)
        wait_until(lambda: sum(map(len, got.values())) == 20_000, DEADLINE, "every message served")
    finally:
        done.set()
        helper.join(DEADLINE)
    assert not overlaps
    for n, messages in got.items():
        assert messages == list(range(len(messages))), f"lane {n} out of order or repeated"
    assert dispatcher.delivered == 20_000 and dispatcher.depth == 0
