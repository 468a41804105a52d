"""No server can stall the client: a server that never reads, a message that never ends,
a flood of bad frames. The real client against the local server over loopback; every
wait has a deadline.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from hyperliquid_ws.errors import BadFrameError
from hyperliquid_ws.guard import Throttle
from hyperliquid_ws.testing import wire

from .conftest import DEADLINE, wait_until
from .test_hostile_server import Bot

# Bot counts every trade it scripts: the replay after a trades ack would be noise.
pytestmark = pytest.mark.hyperliquid_server(trades_replay=0)

PING_125 = wire.encode_frame(b"p" * 125, opcode=wire.PING)


def closed_within_deadline(client) -> bool:
    """close() on another thread; True if it returned within the deadline."""
    done = threading.Event()
    closer = threading.Thread(target=lambda: (client.close(), done.set()), name="test-closer", daemon=True)
    closer.start()
    returned = done.wait(DEADLINE)
    closer.join(DEADLINE)
    return returned


def wedge(bot: Bot) -> int:
    """The server stops reading and floods pings: the client's pongs fill the buffers
    until its send blocks. Returns the connection id."""
    (conn,) = bot.server.connection_ids()
    assert bot.server.stop_reading(conn) == 1
    bot.server.send_raw(PING_125, conn, repeat=None)
    return conn


def test_a_server_that_floods_pings_and_never_reads_is_a_dead_link(make_client, server):
    bot = Bot(make_client, server, ping_interval=5.0, pong_timeout=1.0)  # no ping to time out meanwhile
    wedge(bot)
    # Filling the loopback buffers with pongs takes megabytes of pings first: seconds on a
    # loaded machine, before the 1 s send deadline even starts. The deadline below bounds that.
    (why,) = bot.disconnects.wait_for(1, timeout=3 * DEADLINE)
    assert "send" in why and "1 s" in why, why
    wait_until(lambda: all(s["active"] for s in bot.client.stats()["subscriptions"]), what="resubscribed")
    bot.assert_alive(connects=2)
    bot.assert_streaming()
    assert closed_within_deadline(bot.client)


def test_close_returns_while_a_send_is_blocked(make_client, server):
    """With a send deadline far away, close() still returns: it never waits on the send
    lock for long, and shutting the socket down ends the blocked send."""
    bot = Bot(make_client, server, ping_interval=5.0, pong_timeout=30.0)
    wedge(bot)
    connection = bot.link.connection
    wait_until(lambda: connection.sending_since is not None and time.monotonic() - connection.sending_since > 0.5,
               what="a send blocked")
    assert closed_within_deadline(bot.client)
    dead = [t.name for t in bot.link.threads() if t.is_alive()]
    assert not dead, f"threads outlived close(): {dead}"


def test_a_flood_of_bad_frames_with_a_slow_on_error_does_not_stall_the_other_feeds(make_client, server):
    """5,000 bad frames and an ``on_error`` that takes 1 ms: one report (the rest are
    counted in it), not 5 s of reports ahead of the next trade."""
    reports = []
    pause = threading.Event()

    def slow_on_error(error):
        pause.wait(0.001)  # a slow hook is the scenario, not a wait of the test
        reports.append(error)

    bot = Bot(make_client, server, on_error=slow_on_error)
    bot.server.send_raw(wire.encode_frame(b"not json") * 5000)
    wait_until(lambda: bot.client.stats()["bad_frames"].get("invalid_json") == 5000, what="the flood counted")
    bot.assert_streaming()
    bad = [e for e in reports if isinstance(e, BadFrameError)]
    assert len(bad) == 1 and bad[0].reason == "invalid_json"


def test_an_on_error_that_raises_is_logged_once_per_interval(make_client, server, caplog):
    def raising_on_error(error):
        raise RuntimeError("the hook is broken")

    def raising_callback(message):
        raise ValueError("the callback is broken")

    client = make_client(on_error=raising_on_error)
    client.subscribe({"type": "trades", "coin": "BTC"}, raising_callback).wait()
    with caplog.at_level(logging.ERROR, logger="hyperliquid_ws.dispatch"):
        for _ in range(50):
            server.emit({"type": "trades", "coin": "BTC"})
        wait_until(lambda: client._dispatcher.callback_errors >= 50, what="every callback run")
    hook_lines = [r for r in caplog.records if "on_error hook" in r.getMessage()]
    assert len(hook_lines) <= 1, [r.getMessage() for r in hook_lines]  # not one per call (50)
    assert client.connected


def test_throttle_counts_what_it_holds_back():
    throttle = Throttle(every=3600.0)
    assert throttle.allow("a") == 0 and throttle.allow("b") == 0
    assert [throttle.allow("a") for _ in range(3)] == [None, None, None]
    throttle._at["a"] -= 3600.0  # as if the interval had passed
    assert throttle.allow("a") == 3 and throttle.allow("a") is None


def test_a_message_that_never_ends_is_not_a_sign_of_life(make_client, server):
    """A fragmented message, one byte every 50 ms, never finished: whole frames keep
    coming, but a message begun over ``pong_timeout`` ago is not life: the link is dropped."""
    bot = Bot(make_client, server, ping_interval=0.5, pong_timeout=1.0)
    (conn,) = server.connection_ids()
    server.silence()  # no reply of the server may land inside the message (that would be a breach)
    server.send_raw(wire.encode_frame(b"[", fin=False), conn)
    server.send_raw(wire.encode_frame(b" ", opcode=wire.CONTINUATION, fin=False), conn, repeat=None, interval=0.05)
    (why,) = bot.disconnects.wait_for(1)
    assert "nothing received within 1 s of a ping" in why, why
    server.silence(False)
    connection = bot.link.connection
    wait_until(lambda: connection.connects == 2 and connection.connected, what="the second link")
    server.drop_connections()  # a link opened while the server was silenced may have lost its subscribes
    wait_until(lambda: connection.connects == 3 and all(s["active"] for s in bot.client.stats()["subscriptions"]),
               what="resubscribed")
    bot.assert_streaming()
    assert bot.bad_frames() == []
