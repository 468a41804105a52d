"""No server can stall the client: a server that never reads, a message that never ends,
a flood of bad frames. The real client against the local server over loopback; every
wait has a deadline.
"""

from __future__ import annotations

import threading
import time

from hyperliquid_ws.testing import wire

from .conftest import DEADLINE, wait_until
from .test_hostile_server import Bot

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
    (why,) = bot.disconnects.wait_for(1)
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
