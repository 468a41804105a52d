"""pytest fixtures for testing code built on hyperliquid_ws against a local exchange.

Installing ``hyperliquid-ws[testing]`` registers this module as a pytest plugin (the
``pytest11`` entry point), so these fixtures are available in every test with no
configuration:

``hyperliquid_server``
    A running ``LocalServer`` on an ephemeral loopback port with a frozen market
    (``tick_interval=None``): nothing moves until the test calls ``advance()``. Stopped
    at teardown.
``hyperliquid_client``
    A ``HyperliquidWS`` on that server with quick reconnects (``Backoff(initial=0.05,
    maximum=0.5)``), connecting directly (``trust_env=False``: a proxy set in the
    environment is not used; pass ``trust_env=True`` or ``proxy=`` to test through one).
    Like any client it connects at its first ``subscribe``/``info``.
    Closed at teardown, which then fails the test if any of the client's threads
    outlived ``close()``.
``hyperliquid_make_client``
    ``hyperliquid_make_client(**kwargs)`` makes more such clients (keyword arguments
    of ``HyperliquidWS`` override the defaults); each is closed and checked likewise.
``hyperliquid_wait``
    ``hyperliquid_wait(predicate, timeout=10.0, what="...")`` polls ``predicate`` until
    it returns something truthy and returns that, or fails at the deadline. Tests wait
    on conditions, never sleep.

Two markers adjust the fixtures for one test (or a class, or a module)::

    @pytest.mark.hyperliquid_server(tick_interval=0.05, seed=7)  # LocalServer keywords
    @pytest.mark.hyperliquid_client(callback_threads=0)         # HyperliquidWS keywords

Importing this module imports nothing beyond pytest and the standard library, so a
missing ``testing`` extra (aiohttp) cannot break a pytest run; a test that asks for the
server fixture then fails with a message saying what to install. Every fixture runs on
the test's own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from hyperliquid_ws import HyperliquidWS
    from hyperliquid_ws.testing.server import LocalServer

__all__ = [
    "DEFAULT_TIMEOUT",
    "hyperliquid_client",
    "hyperliquid_make_client",
    "hyperliquid_server",
    "hyperliquid_wait",
    "wait_until",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a wait may take: generous for a loaded CI machine, never a timing assertion."""

POLL_INTERVAL = 0.01

SERVER_MARKER = "hyperliquid_server"
CLIENT_MARKER = "hyperliquid_client"

INSTALL_HINT = "pip install 'hyperliquid-ws[testing]'"

T = TypeVar("T")
MakeClient = Callable[..., "HyperliquidWS"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{SERVER_MARKER}(**kwargs): keyword arguments for the hyperliquid_server LocalServer")
    config.addinivalue_line(
        "markers", f"{CLIENT_MARKER}(**kwargs): keyword arguments for the hyperliquid_client HyperliquidWS")


def wait_until(predicate: Callable[[], T], timeout: float = DEFAULT_TIMEOUT, what: str | None = None) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises ``AssertionError`` (a test failure) when ``timeout`` seconds pass first.
    Runs ``predicate`` on the calling thread.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    pause = threading.Event()  # never set: an interruptible, named pause, not a sleep
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or _describe(predicate)}")
        pause.wait(POLL_INTERVAL)


@pytest.fixture
def hyperliquid_wait() -> Callable[..., Any]:
    """``hyperliquid_wait(predicate, timeout=10.0, what=None)``: see ``wait_until``."""
    return wait_until


@pytest.fixture
def hyperliquid_server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    """A running local Hyperliquid server with a frozen market; stopped at teardown."""
    local_server = _import_local_server()
    settings: dict[str, Any] = {"tick_interval": None}
    settings.update(_marker_kwargs(request, SERVER_MARKER))
    with local_server(**settings) as server:
        yield server


@pytest.fixture
def hyperliquid_make_client(hyperliquid_server: LocalServer) -> Iterator[MakeClient]:
    """A factory of clients on ``hyperliquid_server``; all closed and checked at teardown."""
    from hyperliquid_ws import Backoff, HyperliquidWS

    clients: list[HyperliquidWS] = []

    def make(**kwargs: Any) -> HyperliquidWS:
        kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.5, reset_after=1.0))
        kwargs.setdefault("trust_env", False)  # straight to the loopback server, whatever HTTP(S)_PROXY says
        client = HyperliquidWS(kwargs.pop("base_url", hyperliquid_server.base_url), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    leftover = sorted(t.name for client in clients for t in _threads_of(client))
    if leftover:
        pytest.fail(f"hyperliquid_ws client threads outlived close(): {', '.join(leftover)}", pytrace=False)


@pytest.fixture
def hyperliquid_client(request: pytest.FixtureRequest, hyperliquid_make_client: MakeClient) -> HyperliquidWS:
    """A client on ``hyperliquid_server`` with quick reconnects; closed and checked at teardown."""
    return hyperliquid_make_client(**_marker_kwargs(request, CLIENT_MARKER))


# -- internals --------------------------------------------------------------------------


def _import_local_server() -> type[LocalServer]:
    """Import the server only when a test needs it: it depends on the optional aiohttp."""
    try:
        from hyperliquid_ws.testing.server import LocalServer
    except ImportError as error:
        missing = str(error)
    else:
        return LocalServer
    # Outside the except block, so the report is this one line and not a chained traceback.
    pytest.fail(f"the hyperliquid_server fixture needs the 'testing' extra: {INSTALL_HINT} ({missing})",
                pytrace=False)


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(f"@pytest.mark.{name} takes keyword arguments only, got {marker.args!r}")
    return dict(marker.kwargs)


def _threads_of(client: HyperliquidWS) -> list[threading.Thread]:
    """Live threads named after ``client``: ``<name>-reader``, ``<name>.2-writer``, ..."""
    prefixes = (f"{client.name}-", f"{client.name}.")
    return [t for t in threading.enumerate() if t.name.startswith(prefixes) and t.is_alive()]


def _describe(predicate: Callable[..., Any]) -> str:
    return getattr(predicate, "__qualname__", None) or repr(predicate)
