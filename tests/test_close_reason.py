"""Truthful close reasons: a close the user asked for is recorded as such, not as the
server's close frame or a reset that followed it, and whatever close() interrupted: a
live link, a stalled TCP connect or proxy, a Retry-After wait, a backoff."""

from __future__ import annotations

import socket
from typing import Any

from hyperliquid_ws import Backoff, HyperliquidWS
from tests.conftest import DEADLINE, Collector, wait_until
from tests.proxy_server import SilentServer


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


def _closed_by_the_user(client: HyperliquidWS) -> None:
    client.close()
    assert not any(t.is_alive() for t in client._threads())
    assert client.stats()["connections"][0]["last_disconnect_reason"] == "closed by the user"
    assert client.stats()["last_disconnect_reason"] == "closed by the user"


def _dialling(client: HyperliquidWS) -> bool:
    """The reader holds a socket but the link is not up: it is inside a connect."""
    connection = client._pool.primary.connection
    return connection._raw is not None and not connection.connected


def test_a_close_during_a_stalled_tcp_connect_is_closed_by_the_user(make_client: Any) -> None:
    # A listener whose accept queue is full: the kernel drops the client's SYN, so the
    # connect stays in progress until close().
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = [socket.create_connection(address, timeout=DEADLINE)]
    try:
        client: HyperliquidWS = make_client(base_url=f"http://127.0.0.1:{address[1]}", open_timeout=60.0,
                                            close_timeout=5.0, backfill=False)
        client.subscribe({"type": "allMids"}, Collector())
        wait_until(lambda: _dialling(client), what="the connect in progress")
        _closed_by_the_user(client)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_close_during_a_stalled_proxy_is_closed_by_the_user(make_client: Any) -> None:
    silent = SilentServer()
    try:
        client: HyperliquidWS = make_client(proxy=f"http://{silent.address}", open_timeout=60.0, close_timeout=5.0,
                                            backfill=False)
        client.subscribe({"type": "allMids"}, Collector())
        assert silent.wait_for_bytes().startswith(b"CONNECT ")
        _closed_by_the_user(client)
    finally:
        silent.close()


def test_a_close_during_a_retry_after_wait_is_closed_by_the_user(server: Any, make_client: Any) -> None:
    server.refuse_handshakes(1, status=503, retry_after=60)
    client: HyperliquidWS = make_client(close_timeout=5.0)
    client.subscribe({"type": "allMids"}, Collector())
    wait_until(lambda: client.stats()["connections"][0]["next_attempt_in"] is not None, what="the Retry-After wait")
    assert "503" in client.stats()["connections"][0]["last_disconnect_reason"]
    _closed_by_the_user(client)


def test_a_close_during_the_backoff_after_a_drop_is_closed_by_the_user(server: Any, make_client: Any) -> None:
    client: HyperliquidWS = make_client(backoff=Backoff(initial=60.0, maximum=60.0), close_timeout=5.0)
    client.subscribe({"type": "allMids"}, Collector()).wait(timeout=DEADLINE)
    server.drop_connections()
    wait_until(lambda: client.stats()["connections"][0]["next_attempt_in"] is not None, what="the backoff")
    assert client.stats()["connections"][0]["last_disconnect_reason"] != "closed by the user"
    _closed_by_the_user(client)
