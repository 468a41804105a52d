"""No frame can kill, stall or bloat a connection: the real client against the local server
acting as a hostile one (``LocalServer.push`` for odd text, ``send_raw`` for odd bytes).

Every test asserts what a bot author would check: no client thread died, ``connected``
tells the truth, the bad frame was counted and reported to ``on_error``, and the next
good frame was delivered, with nothing lost or repeated on the other feeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from hyperliquid_ws import HyperliquidWSError, ServerError
from hyperliquid_ws.errors import BadFrameError, ReaderError, SlowConsumerError
from hyperliquid_ws.testing import LocalServer, wire

from .conftest import DEADLINE, Collector, wait_until

# The harness counts every trade it scripts: the replay after a trades ack would be noise.
pytestmark = pytest.mark.hyperliquid_server(trades_replay=0)

TRADES = {"type": "trades", "coin": "BTC"}
BOOK = {"type": "l2Book", "coin": "ETH"}
CANDLE = {"type": "candle", "coin": "BTC", "interval": "1m"}


class Bot:
    """A client with a trades and a book feed, and every hook recorded."""

    def __init__(self, make_client, server, **settings) -> None:
        self.server = server
        self.errors = Collector()
        self.disconnects = Collector()
        settings.setdefault("on_error", self.errors)
        self.client = make_client(on_disconnect=self.disconnects, **settings)
        self.trades, self.books = Collector(), Collector()
        self.client.subscribe(TRADES, self.trades).wait()
        self.client.subscribe(BOOK, self.books).wait()
        self.link = self.client._pool.primary
        self.sent_trades: list[dict] = []
        self.sent_books = 0
        self.assert_streaming()

    def assert_streaming(self) -> None:
        """One more trade and one more book reach their callbacks, each exactly once."""
        (trade,) = self.server.emit(TRADES)["data"]
        self.sent_trades.append(trade)
        self.server.emit(BOOK)
        self.sent_books += 1
        self.books.wait_for(self.sent_books)

        def delivered() -> list[dict]:
            return [t for m in self.trades.messages for t in m["data"]]

        wait_until(lambda: trade in delivered(), what="the next trade")
        got = delivered()
        assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, self.sent_trades)), "trades lost or repeated"

    def assert_alive(self, connects: int) -> None:
        wait_until(lambda: self.client.connected, what="connected again")
        assert self.link.connection.connects == connects
        dead = [t.name for t in self.link.threads() if not t.is_alive()]
        assert not dead, f"threads died: {dead}"

    def bad_frames(self) -> list[BadFrameError]:
        return [e for e in self.errors.messages if isinstance(e, BadFrameError)]


@pytest.fixture
def bot(make_client, server):
    return Bot(make_client, server)


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


# -- one odd frame on a live link: dropped, counted, reported; the link goes on ------------

ODD_TEXT = [
    pytest.param('{"channel":[]}', "not_an_envelope", id="channel-list"),
    pytest.param('{"channel":{},"data":1}', "not_an_envelope", id="channel-object"),
    pytest.param("[" * 100_000, "too_deep", id="100k-brackets"),
    pytest.param(nested(3000), "too_deep", id="3000-deep-array"),
    pytest.param('{"channel":"trades","data":' + nested(5000) + "}", "too_deep", id="5000-deep-trades"),
    pytest.param('{"channel":"trades","data":[{"coin":["BTC"],"side":"B","px":"1","sz":"1","time":1,'
                 '"tid":1,"hash":"0x0","users":["0x0","0x0"]}]}', "bad_route", id="coin-is-a-list"),
    pytest.param('{"channel":"l2Book","data":{"coin":{"a":1},"time":1,"levels":[[],[]]}}', "bad_route",
                 id="book-coin-is-an-object"),
    pytest.param('{"channel":"trades"}', "bad_route", id="no-data"),
    pytest.param('{"channel":"pong"} trailing', "invalid_json", id="trailing-garbage"),
    pytest.param('{"channel":"pong"}\x0c', "invalid_json", id="trailing-form-feed"),  # not JSON whitespace
    pytest.param('{"channel":"pong"}\u00a0', "invalid_json", id="trailing-no-break-space"),
    pytest.param("not json at all", "invalid_json", id="not-json"),
    pytest.param("42", "not_an_envelope", id="a-number"),
]


@pytest.mark.parametrize(("text", "reason"), ODD_TEXT)
def test_an_odd_text_frame_is_dropped_and_the_link_goes_on(bot, text, reason):
    bot.server.push(text)
    (error,) = bot.errors.wait_for(1)
    assert isinstance(error, BadFrameError) and error.reason == reason
    assert len(error.excerpt) <= BadFrameError.EXCERPT and len(str(error)) < 600  # never the whole frame
    assert "StopIteration" not in error.detail  # says what is wrong, with or without orjson
    bot.assert_streaming()
    bot.assert_alive(connects=1)
    assert bot.client.stats()["bad_frames"] == {reason: 1}


@pytest.mark.parametrize("space", [" ", "\n\t ", "\r\n"])
def test_json_with_leading_whitespace_is_delivered_as_json_loads_would(bot, space):
    trade = {**bot.sent_trades[0], "tid": 4242}
    bot.server.push(space + json.dumps({"channel": "trades", "data": [trade]}) + space)
    wait_until(lambda: any(trade in m["data"] for m in bot.trades.messages), what="the trade")
    bot.sent_trades.append(trade)
    bot.assert_streaming()
    assert bot.errors.messages == [] and bot.client.stats()["bad_frames"] == {}


def test_invalid_utf8_in_a_text_frame_is_a_bad_frame_not_a_dead_link(bot):
    bot.server.send_raw(wire.encode_frame(b'{"channel":"pong","x":"\xff\xfe"}'))
    (error,) = bot.errors.wait_for(1)
    assert error.reason == "invalid_utf8"
    bot.assert_streaming()
    bot.assert_alive(connects=1)


def test_a_binary_frame_is_counted_and_reported(bot):
    bot.server.send_raw(wire.encode_frame(b"\x00\x01", opcode=wire.BINARY))
    (error,) = bot.errors.wait_for(1)
    assert error.reason == "binary_frame"
    bot.assert_streaming()
    bot.assert_alive(connects=1)


def test_a_frame_for_no_subscription_or_an_unknown_channel_is_counted_not_reported(bot):
    bot.server.push({"channel": "somethingNew", "data": {"x": 1}})
    bot.server.push({"channel": "trades", "data": [{**bot.sent_trades[0], "coin": "DOGE", "tid": 7}]})
    bot.assert_streaming()
    connection = bot.client.stats()["connections"][0]
    assert connection["unrecognised_frames"] == {"unknown_channel": 1, "unrouted": 1}
    assert connection["unrouted_frames"] == 1
    assert bot.errors.messages == []


def test_the_text_greeting_some_servers_send_is_expected_not_an_error(make_client):
    """protocol.md §1: 'Websocket connection established.' may open a connection."""
    with LocalServer(tick_interval=None, greeting=True) as greeting_server:
        errors, trades = Collector(), Collector()
        client = make_client(base_url=greeting_server.base_url, on_error=errors)
        client.subscribe(TRADES, trades).wait()
        greeting_server.emit(TRADES)
        trades.wait_for(1)
        stats = client.stats()
        assert stats["connections"][0]["unrecognised_frames"] == {"greeting": 1}
        assert stats["bad_frames"] == {} and errors.messages == []
        client.close()


def test_a_trade_whose_time_is_a_string_after_an_integer_one_is_delivered(bot):
    odd = {**bot.sent_trades[0], "tid": 99, "time": "yesterday"}
    bot.server.publish(TRADES, [odd])
    wait_until(lambda: any(odd in m["data"] for m in bot.trades.messages), what="the odd trade")
    bot.sent_trades.append(odd)
    bot.assert_streaming()
    assert bot.errors.messages == []


@pytest.mark.parametrize("t", [None, "1700000000000", [1]], ids=["null", "string", "list"])
def test_a_candle_whose_t_is_odd_is_delivered_and_the_next_one_too(make_client, server, t):
    errors, candles = Collector(), Collector()
    client = make_client(on_error=errors)
    client.subscribe(CANDLE, candles).wait()
    good = server.emit(CANDLE)["data"]
    candles.wait_for(1)
    server.publish(CANDLE, {**good, "t": t})
    server.publish(CANDLE, {**good, "t": good["t"] + 60_000})
    got = candles.wait_for(3)
    assert [m["data"]["t"] for m in got] == [good["t"], t, good["t"] + 60_000]
    assert errors.messages == [] and client.connected


def test_an_error_naming_a_5000_digit_post_id_is_reported_not_fatal(bot):
    bot.server.push({"channel": "error", "data": "too many pending post requests id=" + "9" * 5000})
    (error,) = bot.errors.wait_for(1)
    assert isinstance(error, ServerError)
    bot.assert_streaming()
    bot.assert_alive(connects=1)
    assert bot.client.info({"type": "allMids"})  # posts still work


# -- breaches of RFC 6455: the link is failed with the close code, and reconnects ------------

BREACHES = [
    pytest.param(wire.encode_frame(b'{"channel":"pong"}', mask=b"\x01\x02\x03\x04"), "masked_frame", 1002,
                 id="masked"),
    pytest.param(wire.encode_frame(b'{"channel":"pong"}', rsv=4), "reserved_bits", 1002, id="rsv1"),
    pytest.param(wire.encode_frame(b"p" * 126, opcode=wire.PING), "bad_control_frame", 1002, id="ping-126"),
    pytest.param(wire.encode_frame(b"p", opcode=wire.PING, fin=False), "bad_control_frame", 1002,
                 id="ping-fragmented"),
    pytest.param(wire.encode_frame(b"x", opcode=0x3), "unknown_opcode", 1002, id="opcode-3"),
    pytest.param(wire.encode_frame(b"x", opcode=0xC), "unknown_opcode", 1002, id="opcode-C"),
    pytest.param(wire.encode_frame(b"orphan", opcode=wire.CONTINUATION), "bad_continuation", 1002,
                 id="continuation-without-start"),
    pytest.param(wire.encode_frame(wire.close_payload(1005), opcode=wire.CLOSE), "bad_close_code", 1002,
                 id="close-code-1005"),
    pytest.param(wire.encode_frame(wire.close_payload(2000, "x"), opcode=wire.CLOSE), "bad_close_code", 1002,
                 id="close-code-unassigned"),
    pytest.param(wire.encode_frame(wire.close_payload(1000, b"\xff"), opcode=wire.CLOSE), "bad_close_reason", 1007,
                 id="close-reason-not-utf8"),
    pytest.param(wire.encode_frame(b"", length=2**40) + b"x" * 1_000_000, "message_too_big", 1009,
                 id="2**40-header-and-a-flood"),
]


@pytest.mark.parametrize(("data", "reason", "code"), BREACHES)
def test_a_breach_of_rfc_6455_fails_the_link_with_its_code_and_it_reconnects(bot, data, reason, code):
    bot.server.send_raw(data)
    (error,) = bot.errors.wait_for(1)
    assert isinstance(error, BadFrameError)
    assert (error.reason, error.close_code) == (reason, code)
    (why,) = bot.disconnects.wait_for(1)
    assert f"code {code}" in why
    wait_until(lambda: all(s["active"] for s in bot.client.stats()["subscriptions"]), what="resubscribed")
    bot.assert_alive(connects=2)
    bot.assert_streaming()
    assert bot.client.stats()["bad_frames"] == {reason: 1}


def test_a_frame_that_never_completes_is_a_dead_link(make_client, server):
    """A header announcing 10 MB, then 1 KB every 0.2 s: bytes keep coming, no frame ever
    ends. Liveness counts whole frames, so the ping goes unanswered and the link is dropped."""
    bot = Bot(make_client, server, ping_interval=0.5, pong_timeout=1.0)
    (conn,) = server.connection_ids()
    server.send_raw(wire.encode_frame(b"", length=10_000_000), conn)
    server.send_raw(b"x" * 1024, conn, repeat=None, interval=0.2)
    (why,) = bot.disconnects.wait_for(1)
    assert "nothing received within 1 s of a ping" in why
    wait_until(lambda: all(s["active"] for s in bot.client.stats()["subscriptions"]), what="resubscribed")
    bot.assert_alive(connects=2)
    bot.assert_streaming()
    assert server.raw_pending(conn) == 0  # the trickle ended with its connection


# -- a thread of the client never dies silently -----------------------------------------------


@pytest.mark.parametrize("hook", ["on_frames", "on_batch_end"])
def test_an_unforeseen_exception_in_the_read_loop_reconnects_and_is_reported(bot, hook):
    connection = bot.link.connection
    original = getattr(connection, hook)
    armed = threading.Event()
    armed.set()

    def broken(*args):
        if armed.is_set():
            armed.clear()
            raise RuntimeError("injected")
        return original(*args)

    setattr(connection, hook, broken)
    # any frame runs the read loop (a read already waiting took the old hook: send until one fails)
    wait_until(lambda: bot.server.emit(BOOK) and not armed.is_set(), what="the injected failure")
    (why,) = bot.disconnects.wait_for(1)
    assert "internal error" in why and "injected" in why
    reader_errors = [e for e in bot.errors.wait_for(1) if isinstance(e, ReaderError)]
    assert reader_errors and isinstance(reader_errors[0].original, RuntimeError)
    wait_until(lambda: all(s["active"] for s in bot.client.stats()["subscriptions"]), what="resubscribed")
    bot.assert_alive(connects=2)
    setattr(connection, hook, original)
    bot.sent_books = len(bot.books.messages)  # the book frame read by the broken loop may be lost: it is a state feed
    bot.assert_streaming()


# -- a client-wide bound on messages waiting for callbacks ----------------------------------


def blocked_until(release: threading.Event, collector: Collector):
    def callback(message):
        release.wait(DEADLINE)
        collector(message)
    return callback


def book_or_bbo(feed, n):
    levels = {"levels": [[], []]} if feed["type"] == "l2Book" else {"bbo": [None, None]}
    return {"coin": feed["coin"], "time": n, **levels}


def test_max_backlog_bounds_the_whole_client_however_many_feeds_are_slow(make_client, server):
    release = threading.Event()
    errors = Collector()
    client = make_client(callback_threads=2, max_backlog=100, on_error=errors)
    coins = ["BTC", "ETH", "SOL", "ATOM", "PURR/USDC", "@107"]
    feeds = [{"type": "l2Book", "coin": c} for c in coins] + [{"type": "bbo", "coin": c} for c in coins[1:5]]
    slow = {json.dumps(feed): Collector() for feed in feeds}  # ten feeds whose callbacks block
    for feed in feeds:
        client.subscribe(feed, blocked_until(release, slow[json.dumps(feed)])).wait()

    def both_threads_blocked() -> bool:  # each on one snapshot: the eight others wait in their lanes
        subscriptions = client.stats()["subscriptions"]
        return sum(s["received"] for s in subscriptions) == 10 and sum(
            s["waiting_for_callbacks"] for s in subscriptions) == 8

    # (before publishing: a thread that came late to a lane would take several frames at once,
    # and hold more than the one the accounting below allows for)
    wait_until(both_threads_blocked, what="both dispatcher threads blocked on a snapshot")
    per_feed = 40  # and the snapshot each feed sends on subscribe
    for n in range(per_feed):
        for feed in feeds:
            server.publish(feed, book_or_bbo(feed, n))

    def accounted() -> int:
        subscriptions = client.stats()["subscriptions"]
        assert sum(s["waiting_for_callbacks"] for s in subscriptions) <= 100
        return sum(s["dropped_slow_consumer"] + s["waiting_for_callbacks"] for s in subscriptions)

    wait_until(lambda: accounted() >= 10 * (per_feed + 1) - 2,  # two callbacks hold one message each
               what="every frame queued or dropped")
    release.set()

    def settled() -> bool:
        subscriptions = client.stats()["subscriptions"]
        delivered = sum(len(c.messages) for c in slow.values())
        received = sum(s["received"] for s in subscriptions)
        return received == 10 * (per_feed + 1) and delivered + sum(
            s["dropped_slow_consumer"] for s in subscriptions) == received

    wait_until(settled, what="every frame delivered or counted as dropped")
    for feed, collector in slow.items():
        times = [m["data"]["time"] for m in collector.messages if m["data"]["time"] < per_feed]
        assert times == sorted(times) and times[-1] == per_feed - 1, feed  # in order, the newest kept
    reported = [e for e in errors.messages if isinstance(e, SlowConsumerError)]
    assert reported and reported[0].setting == "max_backlog" and reported[0].limit == 100


def test_a_feed_that_keeps_up_loses_nothing_to_another_feeds_backlog(make_client, server):
    release = threading.Event()
    client = make_client(callback_threads=2, max_backlog=50)
    slow, fast = Collector(), Collector()
    slow_feed, fast_feed = {"type": "l2Book", "coin": "ETH"}, {"type": "bbo", "coin": "BTC"}
    client.subscribe(slow_feed, blocked_until(release, slow)).wait()
    client.subscribe(fast_feed, fast).wait()
    try:
        for n in range(200):
            server.publish(slow_feed, book_or_bbo(slow_feed, n))
            server.publish(fast_feed, book_or_bbo(fast_feed, n))
            if n % 10 == 9:  # a feed that keeps up: on a loaded machine, let its callbacks take what came
                fast.wait_for(n + 2)
        assert [m["data"]["time"] for m in fast.wait_for(201)[1:]] == list(range(200))  # after the snapshot
    finally:
        release.set()  # a failure above must not also leave the blocked callback's thread behind
    wait_until(lambda: client.stats()["queues"]["dispatch"] == 0, what="the backlog served")
    (stats,) = [s for s in client.stats()["subscriptions"] if s["subscription"] == slow_feed]
    assert stats["dropped_slow_consumer"] >= 201 - 50 - 1
    assert len(slow.messages) + stats["dropped_slow_consumer"] == 201


# -- fork safety ----------------------------------------------------------------------------

FORK_SCRIPT = textwrap.dedent("""
    import json, os, sys, threading
    from hyperliquid_ws import HyperliquidWS, HyperliquidWSError
    from hyperliquid_ws.testing import LocalServer

    server = LocalServer(tick_interval=None, trades_replay=0).start()
    disconnects, trades, arrived = [], [], threading.Event()
    ws = HyperliquidWS(server.base_url, on_disconnect=disconnects.append)
    ws.subscribe({"type": "trades", "coin": "BTC"}, lambda m: (trades.append(m), arrived.set())).wait()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child uses the inherited client, then exits normally (atexit runs)
        os.close(read_end)
        try:
            ws.subscribe({"type": "trades", "coin": "ETH"}, print)
            said = "no error"
        except HyperliquidWSError as exc:
            said = str(exc)
        said += f" connected={ws.connected}"
        ws.close()  # quietly marks it closed; the parent's sockets are left alone
        os.write(write_end, said.encode())
        os.close(write_end)
        sys.exit(0)
    os.close(write_end)
    said = os.read(read_end, 4096).decode()
    _, status = os.waitpid(pid, 0)
    server.emit({"type": "trades", "coin": "BTC"})
    got = arrived.wait(10)
    print(json.dumps({"child": said, "status": status, "got": got, "disconnects": disconnects,
                      "connects": ws.stats()["connections"][0]["connects"], "connected": ws.connected}))
    ws.close()
    server.stop()
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_touches_the_parents_connection():
    result = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True,
                            timeout=60, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "forked child" in report["child"] and "Create a new HyperliquidWS" in report["child"]
    assert report["child"].endswith("connected=False")
    assert report["status"] == 0
    assert report["got"] and report["connected"]
    assert report["disconnects"] == [] and report["connects"] == 1


def test_a_forked_client_refuses_every_use_with_a_clear_error(make_client, server, monkeypatch):
    client = make_client()
    client.subscribe(TRADES, lambda m: None).wait()
    monkeypatch.setattr(client, "_pid", client._pid + 1)  # as seen from a child: not its process
    for use in (lambda: client.subscribe(BOOK, print), lambda: client.info({"type": "allMids"}),
                lambda: client.run_forever(), client.stats):
        with pytest.raises(HyperliquidWSError, match="forked child"):
            use()
    assert client.connected is False  # the links are the parent's, not this process's
    assert "forked child" in repr(client) and "connected" not in repr(client)


@pytest.mark.hyperliquid_server(trades_replay=0)
@pytest.mark.parametrize("threads", [0, 2], ids=["connection-threads", "dispatcher-threads"])
def test_integers_beyond_64_bits_and_a_double_lose_no_trade(server, make_client, threads):
    """A server sending ids beyond 64 bits, and a time beyond a double's range: every
    trade reaches the callback (the fast extra's orjson reads the ids as floats, which
    are then never taken for duplicates; it refuses the huge time, which the stdlib then
    parses). The default install delivers them exact."""
    client = make_client(callback_threads=threads)
    got = Collector()
    client.subscribe({"type": "trades", "coin": "BTC"}, got).wait()
    now = int(time.time() * 1000)
    base = {"coin": "BTC", "side": "B", "px": "1", "sz": "1", "hash": "0x0", "users": ["0xa", "0xb"], "time": now}
    for trade in ({"tid": 2**64}, {"tid": 2**64 + 1}, {"tid": 3, "time": 10**400}, {"tid": 7, "time": now + 1}):
        server.publish({"type": "trades", "coin": "BTC"}, [{**base, **trade}])
    wait_until(lambda: any(t["tid"] == 7 for m in got.messages for t in m["data"]), what="the last trade")
    tids = [t["tid"] for m in got.messages for t in m["data"]]
    assert len(tids) == 4 and tids[2:] == [3, 7], tids
    assert got.messages[2]["data"][0]["time"] == 10**400
    assert tids[:2] in ([2**64, 2**64 + 1], [float(2**64)] * 2), tids
