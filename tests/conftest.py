"""Fixtures: a real local Hyperliquid server on an ephemeral loopback port, and clients
that are closed (and checked for leftover threads) after each test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from hyperliquid_ws import Backoff, HyperliquidWS
from hyperliquid_ws.testing import LocalServer

DEADLINE = 10.0  # seconds; generous for a loaded 2-core CI machine, never a timing assertion


def wait_until(predicate: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail at the deadline."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.01)


class Collector:
    """A callback that records messages and lets a test wait for them."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.threads: set[str] = set()
        self._changed = threading.Condition()

    def __call__(self, message: Any) -> None:
        with self._changed:
            self.messages.append(message)
            self.threads.add(threading.current_thread().name)
            self._changed.notify_all()

    def wait_for(self, count: int = 1, timeout: float = DEADLINE) -> list[Any]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"got {len(self.messages)} messages, expected {count}")
            return list(self.messages)


def client_threads() -> set[threading.Thread]:
    """Threads of hyperliquid_ws clients (the local server's own thread is not one)."""
    return {t for t in threading.enumerate() if t.name.startswith("hlws-") and t.name != "hlws-local-server"}


@pytest.fixture
def server():
    with LocalServer(tick_interval=None) as srv:
        yield srv


@pytest.fixture
def make_client(server):
    """``make_client(**kwargs)`` -> a HyperliquidWS on the local server with quick timings."""
    before = client_threads()
    clients: list[HyperliquidWS] = []

    def make(**kwargs: Any) -> HyperliquidWS:
        kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.5, reset_after=1))
        client = HyperliquidWS(kwargs.pop("base_url", server.base_url), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    leftover = client_threads() - before
    assert not leftover, f"threads outlived close(): {leftover}"


@pytest.fixture
def client(make_client):
    return make_client()
