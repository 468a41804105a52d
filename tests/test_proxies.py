"""Proxies: the socket and the HTTP /info calls alike go through a real proxy (pproxy, HTTP
CONNECT and SOCKS5, with and without authentication), from ``proxy=`` or the
environment; NO_PROXY bypasses it; a reconnect goes through it again; close() ends a
connect stuck at a silent proxy."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from hyperliquid_ws import HyperliquidWS
from hyperliquid_ws.proxy import FROM_ENVIRONMENT, resolve
from tests.conftest import DEADLINE, Collector, wait_until
from tests.proxy_server import PProxy

pytest.importorskip("pproxy")
pytest.importorskip("python_socks")

AUTH = ("hlproxyuser", "pr0xy-pa55word")
WS, INFO = "ws://127.0.0.1:8765/ws", "http://127.0.0.1:8765/info"


def _proxy(kind: str, auth: tuple[str, str] | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PProxy]:
    proxy = PProxy(kind, tmp_path_factory.mktemp("pproxy"), auth)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PProxy]:
    yield from _proxy("http", None, tmp_path_factory)


@pytest.fixture(scope="module")
def http_proxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PProxy]:
    yield from _proxy("http", AUTH, tmp_path_factory)


@pytest.fixture(scope="module")
def socks_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PProxy]:
    yield from _proxy("socks5", None, tmp_path_factory)


@pytest.fixture(scope="module")
def socks_proxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PProxy]:
    yield from _proxy("socks5", AUTH, tmp_path_factory)


@pytest.fixture(params=["http_proxy", "http_proxy_auth", "socks_proxy", "socks_proxy_auth"])
def any_proxy(request: pytest.FixtureRequest) -> PProxy:
    proxy: PProxy = request.getfixturevalue(request.param)
    return proxy


def socket_port(client: HyperliquidWS) -> int | None:
    """The local port of the client's live WebSocket (what the proxy logs as its client)."""
    connection = client._pool.primary.connection
    raw = connection._raw
    if not connection.connected or raw is None:
        return None
    try:
        return int(raw.getsockname()[1])
    except OSError:
        return None


def reconnect_with_backfill(client: HyperliquidWS, server: Any) -> tuple[int, int]:
    """Subscribe to trades, drop the link, wait for the reconnect and its HTTP backfill;
    return the local ports of the first and the second socket."""
    client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait(timeout=DEADLINE)
    first = wait_until(lambda: socket_port(client), what="the first connection")
    server.drop_connections()
    wait_until(lambda: client.stats()["backfill"]["gaps_backfilled"] >= 1, what="the backfill after the reconnect")
    second = wait_until(lambda: socket_port(client) not in (None, first) and socket_port(client),
                        what="the second connection")
    return first, second


def assert_both_halves_went_through(proxy: PProxy, server: Any, before: list[int], first: int, second: int) -> None:
    def seen() -> set[int]:
        return set(proxy.tunnels(server.port)) - set(before)

    wait_until(lambda: {first, second} <= seen(), what=f"both sockets in the proxy's log:\n{proxy.output()}")
    assert seen() - {first, second}, f"no /info connection in the proxy's log:\n{proxy.output()}"


def test_socket_and_info_go_through_an_explicit_proxy_and_so_does_a_reconnect(
        any_proxy: PProxy, server: Any, make_client: Any) -> None:
    before = any_proxy.tunnels(server.port)
    client = make_client(proxy=any_proxy.url())
    first, second = reconnect_with_backfill(client, server)
    assert_both_halves_went_through(any_proxy, server, before, first, second)
    assert client.stats()["proxy"] == any_proxy.url().replace(f"{AUTH[0]}:{AUTH[1]}@", "***@")


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_the_environment_proxy_is_used_for_both_halves(
        variable: str, http_proxy_auth: PProxy, server: Any, make_client: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, http_proxy_auth.url())
    before = http_proxy_auth.tunnels(server.port)
    client = make_client(trust_env=True)
    first, second = reconnect_with_backfill(client, server)
    assert_both_halves_went_through(http_proxy_auth, server, before, first, second)


@pytest.mark.parametrize("arguments", [{"trust_env": True, "env": {"NO_PROXY": "127.0.0.1"}},
                                       {"trust_env": True, "env": {"no_proxy": "localhost,127.0.0.1"}},
                                       {"trust_env": False, "env": {}},
                                       {"trust_env": True, "proxy": None, "env": {}}],
                         ids=["NO_PROXY", "no_proxy-list", "trust_env=False", "proxy=None"])
def test_no_proxy_and_the_switches_bypass_the_environment_proxy(
        arguments: dict[str, Any], http_proxy: PProxy, server: Any, make_client: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url())
    for name, value in arguments.pop("env").items():
        monkeypatch.setenv(name, value)
    before = http_proxy.tunnels()
    client = make_client(**arguments)
    assert client.proxy is None
    reconnect_with_backfill(client, server)
    assert http_proxy.tunnels() == before, http_proxy.output()


def test_the_environment_rules_are_requests_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy:3128")
    monkeypatch.setenv("HTTP_PROXY", "plain-proxy:3128")  # no scheme: http://, as requests reads it
    # ws:// is read as http://, wss:// as https://; loopback is not bypassed unless NO_PROXY says so
    plain = resolve(WS, INFO, FROM_ENVIRONMENT, True)
    assert (plain.socket, plain.http) == ("http://plain-proxy:3128", "http://plain-proxy:3128")
    secure = resolve("wss://api.example/ws", "https://api.example/info", FROM_ENVIRONMENT, True)
    assert (secure.socket, secure.http) == ("http://secure-proxy:3128", "http://secure-proxy:3128")
    monkeypatch.setenv("NO_PROXY", ".example")
    assert resolve("wss://api.example/ws", "https://api.example/info", FROM_ENVIRONMENT, True).socket is None
    assert resolve(WS, INFO, FROM_ENVIRONMENT, True).socket == "http://plain-proxy:3128"
    # an explicit proxy is used for every host, NO_PROXY or not; None and trust_env=False use none
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert resolve(WS, INFO, "socks5h://p:1080", True).socket == "socks5h://p:1080"
    assert resolve(WS, INFO, None, True).socket is None
    monkeypatch.delenv("NO_PROXY")
    assert resolve(WS, INFO, FROM_ENVIRONMENT, False).socket is None


@pytest.mark.parametrize("proxy", ["ftp://p:21", "socks5://p", "http://", "https://p:3128"])
def test_a_proxy_the_socket_cannot_use_fails_in_the_constructor(proxy: str) -> None:
    with pytest.raises(ValueError, match="proxy"):
        HyperliquidWS("http://127.0.0.1:8765", proxy=proxy)


@pytest.mark.parametrize("kind", ["http_proxy_auth", "socks_proxy_auth"])
def test_wrong_proxy_credentials_are_a_refusal_without_the_password(
        kind: str, request: pytest.FixtureRequest, make_client: Any) -> None:
    proxy: PProxy = request.getfixturevalue(kind)
    client = make_client(proxy=proxy.url(auth=(AUTH[0], "wr0ng-pa55word")))
    client.subscribe({"type": "allMids"}, Collector())
    reason = wait_until(lambda: client.stats()["last_disconnect_reason"], what="a failed connect")
    # pproxy answers bad HTTP credentials with 407, bad SOCKS5 ones by hanging up
    assert "refused" in reason or "closed the connection" in reason, reason
    assert "wr0ng-pa55word" not in reason and AUTH[0] not in reason
    assert not client.connected


class SilentProxy:
    """A proxy that accepts the TCP connection and then never says a word."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.05)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted: list[socket.socket] = []

    def accept_one(self) -> bool:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return False
        self.accepted.append(conn)
        return True

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self._listener.close()


@pytest.fixture
def silent_proxy() -> Iterator[SilentProxy]:
    proxy = SilentProxy()
    yield proxy
    proxy.close()


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_close_interrupts_a_connect_waiting_on_a_silent_proxy(
        scheme: str, silent_proxy: SilentProxy, make_client: Any) -> None:
    client = make_client(proxy=f"{scheme}://{silent_proxy.address}", open_timeout=60.0, close_timeout=5.0)
    client.subscribe({"type": "allMids"}, Collector())
    wait_until(silent_proxy.accept_one, what="the client at the proxy")
    client.close()  # the fixture then fails the test if the reader outlived close()
    assert not any(t.is_alive() for t in client._threads())
    assert client.stats()["last_disconnect_reason"] == "closed by the user"  # interrupted, not a failed connect


def test_the_connect_line_of_an_ipv6_server_brackets_it(silent_proxy_server: Any, make_client: Any) -> None:
    client = make_client(base_url="http://[2001:db8::1]:8765", proxy=f"http://{silent_proxy_server.address}",
                         backfill=False, close_timeout=5.0)
    client.subscribe({"type": "allMids"}, Collector())
    head = silent_proxy_server.wait_for_bytes().decode()
    assert head.startswith("CONNECT [2001:db8::1]:8765 HTTP/1.1\r\n"), head
    assert "\r\nHost: [2001:db8::1]:8765\r\n" in head, head


def test_a_silent_proxy_is_reported_as_a_timeout(silent_proxy_server: Any, make_client: Any) -> None:
    client = make_client(proxy=f"http://{silent_proxy_server.address}", open_timeout=0.5, backfill=False)
    client.subscribe({"type": "allMids"}, Collector())
    silent_proxy_server.wait_for_bytes()
    reason = wait_until(lambda: client.stats()["last_disconnect_reason"], what="the failed connect")
    assert "TimeoutError" in reason and "did not answer the CONNECT" in reason, reason
    assert "refused" not in reason


@pytest.mark.parametrize("proxy", ["   ", "\t", "http://pxuser:Pr0xy Secret@127.0.0.1:3128"])
def test_a_blank_proxy_is_refused_without_the_password(proxy: str) -> None:
    with pytest.raises(ValueError, match="proxy") as refused:
        HyperliquidWS("http://127.0.0.1:8765", proxy=proxy)
    assert "Secret" not in str(refused.value)


@pytest.fixture
def silent_proxy_server() -> Iterator[Any]:
    from tests.proxy_server import SilentServer

    server = SilentServer()
    yield server
    server.close()


def test_close_ends_a_backfill_call_stalled_at_the_proxy(server: Any, make_client: Any) -> None:
    from tests.proxy_server import StallingProxy

    proxy = StallingProxy()
    try:
        client = make_client(proxy=f"http://{proxy.address}", http_timeout=60.0, close_timeout=5.0)
        client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait(timeout=DEADLINE)
        server.drop_connections()  # the reconnect's backfill asks /info through the proxy, which stalls it
        assert proxy.stalled.wait(DEADLINE)
        client.close()
        assert not client._backfiller.thread.is_alive()  # long before http_timeout
    finally:
        proxy.close()
