"""Truthful close reasons: a close the user asked for is recorded as such, not as the
server's close frame or a reset that followed it."""

from __future__ import annotations

from typing import Any

from hyperliquid_ws import HyperliquidWS
from tests.conftest import DEADLINE, Collector, wait_until


def test_a_clean_close_is_recorded_as_closed_by_the_user(server: Any, make_client: Any) -> None:
    disconnects: list[str] = []
    client: HyperliquidWS = make_client(on_disconnect=disconnects.append)
    client.subscribe({"type": "allMids"}, Collector()).wait(timeout=DEADLINE)
    client.close()
    stats = client.stats()
    assert stats["last_disconnect_reason"] == "closed by the user"
    assert stats["connections"][0]["last_disconnect_reason"] == "closed by the user"
    assert disconnects == []  # on_disconnect is for links lost, not closed


def test_a_lost_link_before_the_close_keeps_its_own_reason(server: Any, make_client: Any) -> None:
    client: HyperliquidWS = make_client()
    client.subscribe({"type": "allMids"}, Collector()).wait(timeout=DEADLINE)
    server.close_connections(4000, "maintenance")
    wait_until(lambda: "4000" in (client.stats()["last_disconnect_reason"] or ""), what="the server's close")
    wait_until(lambda: client.connected, what="the reconnect")
    client.close()
    assert client.stats()["last_disconnect_reason"] == "closed by the user"


def test_a_link_retired_by_the_pool_says_why(server: Any, make_client: Any) -> None:
    client: HyperliquidWS = make_client()
    client.subscribe({"type": "l2Book", "coin": "BTC"}, Collector()).wait(timeout=DEADLINE)
    other = client.subscribe({"type": "l2Book", "coin": "BTC", "nSigFigs": 2}, Collector())  # a connection of its own
    other.wait(timeout=DEADLINE)
    links = list(client._pool.links)
    assert len(links) == 2
    client.unsubscribe(other)
    retired = wait_until(lambda: [link for link in client._pool.retired + links
                                  if link.connection.last_disconnect_reason and link.connection.closing],
                         what="the retired link")
    assert retired[0].connection.last_disconnect_reason == "closed: no subscription left on it"
