"""Fixtures: the package's own pytest plugin gives the real local server and clients that
are closed (and checked for leftover threads) after each test; these names alias it."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from hyperliquid_ws.testing.pytest_plugin import wait_until

__all__ = ["DEADLINE", "Collector", "client_threads", "wait_until"]

DEADLINE = 10.0  # seconds; generous for a loaded 2-core CI machine, never a timing assertion


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
def server(hyperliquid_server):
    """The plugin's local server (frozen market, ephemeral loopback port): the repo's tests
    use the same fixtures a bot author gets."""
    return hyperliquid_server


@pytest.fixture
def make_client(hyperliquid_make_client):
    """``make_client(**kwargs)``: the plugin's factory; clients closed and checked at teardown."""
    return hyperliquid_make_client


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def black_hole():
    """The base URL of a TCP listener that never answers the WebSocket handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
