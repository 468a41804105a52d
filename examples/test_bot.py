"""Testing examples/bot.py the way a bot author would: with nothing but the fixtures of
the hyperliquid_ws pytest plugin, which ``pip install "hyperliquid-ws[testing]"`` turns
on by itself. No network, no sleeps: every wait has a deadline.

    python -m pytest examples/test_bot.py

- ``hyperliquid_server``: a local exchange whose market moves only on ``advance()``.
- ``hyperliquid_client``: a HyperliquidWS connected to it, closed after the test (which
  fails if any client thread outlives ``close()``).
- ``hyperliquid_wait(predicate, timeout=10.0, what=...)``: poll until truthy, or fail.
"""

from __future__ import annotations

import time
from typing import Any

from bot import PositionBot  # pytest puts examples/ on sys.path for this file

USER = "0x" + "5e" * 20  # an account of our own: the local market never trades it
ACCOUNT_FILLS = {"type": "userFills", "user": USER}


def fill(tid: int, side: str, sz: str, start: str, coin: str = "BTC", px: str = "97000.0") -> dict[str, Any]:
    """One fill as the userFills feed sends it."""
    buying, held = side == "B", float(start)
    if held == 0 or (held > 0) == buying:
        direction = "Open Long" if buying else "Open Short"
    else:
        direction = "Close Short" if buying else "Close Long"
    return {"coin": coin, "px": px, "sz": sz, "side": side, "time": int(time.time() * 1000),
            "startPosition": start, "dir": direction, "closedPnl": "0.0", "hash": f"0x{tid:064x}",
            "oid": 1_000 + tid, "crossed": True, "fee": "0.5", "tid": tid, "feeToken": "USDC"}


def push_fills(server: Any, *fills: dict[str, Any]) -> None:
    delivered_to = server.publish(ACCOUNT_FILLS, {"user": USER, "fills": list(fills)})
    assert delivered_to == 1, "the bot's userFills subscription is not held by the server"


def server_btc_mid(client: Any) -> float:
    return float(client.info({"type": "allMids"})["BTC"])


def test_the_bot_follows_the_btc_mid(hyperliquid_server, hyperliquid_client, hyperliquid_wait):
    bot = PositionBot(hyperliquid_client, USER).start()
    first = hyperliquid_wait(lambda: bot.state().mid, what="the first allMids message")

    hyperliquid_server.advance(5)  # five market ticks, each pushed to the subscribers

    moved = server_btc_mid(hyperliquid_client)
    assert moved != first
    hyperliquid_wait(lambda: bot.state().mid == moved, what=f"the bot's mid to reach {moved}")
    sent = [message for _, message in hyperliquid_server.received()
            if isinstance(message, dict) and message.get("method") == "subscribe"]
    assert [m["subscription"]["type"] for m in sent] == ["allMids", "userFills"]


def test_the_bot_keeps_its_position_from_fills(hyperliquid_server, hyperliquid_client, hyperliquid_wait):
    bot = PositionBot(hyperliquid_client, USER).start()
    assert bot.state().position == 0 and bot.state().fills == 0  # a new account: empty snapshot

    push_fills(hyperliquid_server, fill(1, "B", "0.5", "0.0"))
    hyperliquid_wait(lambda: bot.state().position == 0.5, what="a long position of 0.5")

    push_fills(hyperliquid_server, fill(2, "A", "0.2", "0.5"), fill(3, "B", "1.0", "0.0", coin="ETH"))
    state = hyperliquid_wait(lambda: bot.state().fills == 2 and bot.state(), what="the second BTC fill")
    assert state.position == 0.3
    assert state.last_fill_tid == 2  # the ETH fill is not the bot's business


def test_the_bot_recovers_when_the_connection_drops(hyperliquid_server, hyperliquid_client, hyperliquid_wait):
    bot = PositionBot(hyperliquid_client, USER).start()
    push_fills(hyperliquid_server, fill(1, "B", "0.5", "0.0"))
    hyperliquid_wait(lambda: bot.state().position == 0.5, what="the first fill")
    before = hyperliquid_server.connection_ids()

    assert hyperliquid_server.drop_connections() == 1  # a TCP reset, no close frame

    # The client reconnects and resubscribes both feeds by itself; the bot does nothing.
    hyperliquid_wait(lambda: hyperliquid_client.stats()["reconnects"] >= 1, what="a reconnect")
    hyperliquid_wait(lambda: (ids := hyperliquid_server.connection_ids()) and ids != before
                     and len(hyperliquid_server.subscriptions()) == 2, what="both feeds held again")

    hyperliquid_server.advance(3)
    moved = server_btc_mid(hyperliquid_client)
    hyperliquid_wait(lambda: bot.state().mid == moved, what="mids flowing after the reconnect")

    push_fills(hyperliquid_server, fill(2, "B", "0.25", "0.5"))
    state = hyperliquid_wait(lambda: bot.state().position == 0.75 and bot.state(), what="a fill after the reconnect")
    assert state.fills == 2 and state.connected


def test_a_silent_server_is_noticed_and_left(hyperliquid_server, hyperliquid_make_client, hyperliquid_wait):
    # A half-open link: the server keeps the socket but answers nothing, not even pings.
    client = hyperliquid_make_client(ping_interval=0.2, pong_timeout=0.3)
    bot = PositionBot(client, USER).start()
    hyperliquid_server.silence()
    hyperliquid_wait(lambda: client.stats()["connections"][0]["dead_links"] >= 1, what="the dead link noticed")
    hyperliquid_server.silence(False)
    hyperliquid_wait(lambda: client.stats()["reconnects"] >= 1 and bot.state().connected, what="a fresh link")
    hyperliquid_wait(lambda: len(hyperliquid_server.connection_ids()) == 1
                     and len(hyperliquid_server.subscriptions()) == 2, what="both feeds held again")
    push_fills(hyperliquid_server, fill(1, "A", "0.1", "0.0"))
    hyperliquid_wait(lambda: bot.state().position == -0.1, what="a short position of 0.1")
