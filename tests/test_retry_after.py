"""Retry-After: a handshake refused with 429 or 503 and ``Retry-After`` waits at least that
long (capped by ``max_retry_after``) before the next attempt, visibly in stats(), and
close() ends the wait."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest
import websocket

from hyperliquid_ws import Backoff, HyperliquidWS
from hyperliquid_ws.retry_after import parse_retry_after, reconnect_delay, retry_after_of
from tests.conftest import DEADLINE, Collector, wait_until

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("value", "seconds"), [
    ("30", 30.0), (" 5 ", 5.0), ("0", 0.0),
    (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
    (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),  # a date past: go now
    (None, None), ("soon", None), ("-3", None), ("1.5", None),
])
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_only_a_refusal_with_the_header_counts() -> None:
    def refused(status: int, headers: dict[str, str]) -> websocket.WebSocketBadStatusException:
        return websocket.WebSocketBadStatusException("Handshake status", status, "x", headers)

    assert retry_after_of(refused(429, {"retry-after": "7"})) == 7.0
    assert retry_after_of(refused(503, {"Retry-After": "8"})) == 8.0
    assert retry_after_of(refused(500, {"retry-after": "9"})) is None
    assert retry_after_of(refused(503, {})) is None
    assert retry_after_of(OSError("reset")) is None


def test_the_longer_of_backoff_and_server_wins_up_to_the_cap() -> None:
    assert reconnect_delay(0.5, None, 120.0) == 0.5
    assert reconnect_delay(0.5, 30.0, 120.0) == 30.0
    assert reconnect_delay(40.0, 30.0, 120.0) == 40.0
    assert reconnect_delay(0.5, 3600.0, 120.0) == 120.0


@pytest.mark.parametrize("status", [429, 503])
def test_a_refused_handshake_waits_as_asked_and_close_ends_the_wait(
        status: int, server: Any, make_client: Any) -> None:
    server.refuse_handshakes(1, status=status, retry_after=30)
    client: HyperliquidWS = make_client(backoff=Backoff(initial=0.05, maximum=0.1), close_timeout=5.0)
    client.subscribe({"type": "allMids"}, Collector())
    connection = wait_until(lambda: (lambda c: c if c["next_attempt_in"] is not None else None)(
        client.stats()["connections"][0]), what="the wait after the refusal")
    assert connection["retry_after"] == 30.0
    assert connection["next_attempt_in"] > 10.0  # far beyond the backoff's 0.1 s
    assert f"HTTP {status}" in connection["last_disconnect_reason"]
    assert server.connection_ids() == []
    client.close()  # interrupts the 30 s wait; the fixture fails the test if a thread outlived it
    assert connection["next_attempt_in"] is not None and client.stats()["connections"][0]["connects"] == 0


def test_max_retry_after_caps_the_wait(server: Any, make_client: Any) -> None:
    server.refuse_handshakes(1, status=503, retry_after=3600)
    client: HyperliquidWS = make_client(max_retry_after=0.2)
    client.subscribe({"type": "allMids"}, Collector()).wait(timeout=DEADLINE)
    assert client.connected
    assert client.stats()["connections"][0]["retry_after"] == 3600.0


def test_max_retry_after_is_checked() -> None:
    with pytest.raises(ValueError, match="max_retry_after"):
        HyperliquidWS(max_retry_after=0)


@pytest.mark.parametrize("value", ["²", "٣", "\uff11\uff12"])  # str.isdigit() says yes; not RFC 9110 delay-seconds
def test_a_non_ascii_digit_is_ignored(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_a_garbage_retry_after_falls_back_to_the_backoff(server: Any, make_client: Any) -> None:
    errors: list[BaseException] = []
    server.refuse_handshakes(1, status=503, retry_after="²")
    client: HyperliquidWS = make_client(backoff=Backoff(initial=0.05, maximum=0.1), on_error=errors.append)
    client.subscribe({"type": "allMids"}, Collector()).wait(timeout=DEADLINE)
    assert client.stats()["connections"][0]["retry_after"] is None
    assert errors == []  # no internal error


def test_refused_handshakes_warn_once_however_often_they_are_retried(server: Any, make_client: Any,
                                                                       caplog: Any) -> None:
    """Three upgrades answered HTTP 503, a second and more apart, so each answer carries
    its own ``Date`` header: one WARNING, the later attempts at INFO (the text used to
    carry the headers, so no two were the same and each attempt warned)."""
    import logging

    server.refuse_handshakes(3, status=503)
    client: HyperliquidWS = make_client(backoff=Backoff(initial=1.05, maximum=1.05, jitter=0.0))
    with caplog.at_level(logging.INFO, logger="hyperliquid_ws"):
        client.subscribe({"type": "allMids"}, Collector()).wait(10)
    failures = [r for r in caplog.records if "cannot connect" in r.getMessage()]
    assert len(failures) == 3 and [r.levelno for r in failures].count(logging.WARNING) == 1
    assert "Date" not in failures[0].getMessage()
