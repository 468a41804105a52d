"""Threads, keepalive and shutdown: callbacks cannot hurt the client, pings go out,
close() is prompt and leaves no thread behind, from anywhere."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from hyperliquid_ws import CallbackError, HyperliquidWS

from .conftest import Collector, client_threads, wait_until


@pytest.mark.hyperliquid_server(trades_replay=0)  # the test scripts every trades frame
def test_a_raising_callback_is_isolated(server, make_client):
    errors = Collector()
    client = make_client(on_error=errors)
    good = Collector()

    def bad(message):
        raise RuntimeError("boom")

    client.subscribe({"type": "trades", "coin": "BTC"}, bad)
    client.subscribe({"type": "trades", "coin": "BTC"}, good).wait()
    first = server.emit({"type": "trades", "coin": "BTC"})
    second = server.emit({"type": "trades", "coin": "BTC"})
    assert good.wait_for(2) == [first, second]
    failures = errors.wait_for(2)
    assert all(isinstance(e, CallbackError) for e in failures)
    assert isinstance(failures[0].original, RuntimeError) and failures[0].message == first


@pytest.mark.hyperliquid_server(trades_replay=0)
@pytest.mark.parametrize("callback_threads", [0, 2])
def test_a_callback_whose_error_cannot_be_shown_is_still_reported(server, make_client, callback_threads):
    """An exception whose ``repr()`` raises, from a callable whose ``repr()`` raises too:
    the ``CallbackError`` still reaches ``on_error`` (building its text used to fail, and
    the report was lost as if the hook had raised)."""

    class Unshowable(Exception):
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    class Callback:
        def __call__(self, message):
            raise Unshowable("x")

        def __repr__(self) -> str:
            raise RuntimeError("no repr either")

    errors = Collector()
    client = make_client(on_error=errors, callback_threads=callback_threads)
    client.subscribe({"type": "trades", "coin": "BTC"}, Callback()).wait()
    frame = server.emit({"type": "trades", "coin": "BTC"})
    [failure] = errors.wait_for(1)
    assert isinstance(failure, CallbackError) and isinstance(failure.original, Unshowable)
    assert failure.message == frame and "its repr raised" in str(failure)


def test_callbacks_run_on_the_reader_by_default_and_on_dispatcher_threads_when_asked(server, make_client):
    default, pooled = make_client(), make_client(callback_threads=2)
    got, got_pooled = Collector(), Collector()
    default.subscribe({"type": "allMids"}, got).wait()
    pooled.subscribe({"type": "allMids"}, got_pooled).wait()
    server.emit({"type": "allMids"})
    got.wait_for(1)
    got_pooled.wait_for(1)
    assert got.threads == {f"{default.name}-reader"}
    assert got_pooled.threads and all(name.startswith(f"{pooled.name}-dispatch-") for name in got_pooled.threads)


def test_keepalive_pings_and_a_live_server_keeps_the_link(server, make_client):
    client = make_client(ping_interval=0.1, pong_timeout=1.0)
    client.subscribe({"type": "allMids"}, Collector()).wait()
    wait_until(lambda: sum(1 for _, m in server.received() if m == {"method": "ping"}) >= 5,
               what="five pings")
    assert client._pool.primary.connection.connects == 1


def test_a_silent_server_is_detected_by_the_missing_pong(server, make_client):
    client = make_client(ping_interval=0.1, pong_timeout=0.3)
    sub = client.subscribe({"type": "allMids"}, Collector()).wait()
    server.silence(True)
    wait_until(lambda: client._pool.primary.keepalive.dead_links >= 1, what="dead-link detection")
    server.silence(False)
    wait_until(lambda: client._pool.primary.connection.connects >= 2 and sub.active, what="reconnect")


def test_close_joins_every_thread_and_is_idempotent(server):
    before = client_threads()
    client = HyperliquidWS(server.base_url)
    assert client_threads() == before  # no thread before the first subscribe
    client.subscribe({"type": "allMids"}, Collector()).wait()
    assert {t.name for t in client_threads() - before} == {
        f"{client.name}-{role}"
        for role in ("reader", "relay", "keepalive", "writer", "backfill")
    }
    client.close()
    client.close()
    assert client_threads() == before
    assert client.closed


def test_close_from_inside_a_callback(server):
    client = HyperliquidWS(server.base_url)
    closed = threading.Event()

    def close_me(message):
        client.close()
        closed.set()

    client.subscribe({"type": "trades", "coin": "BTC"}, close_me).wait()
    server.emit({"type": "trades", "coin": "BTC"})
    assert closed.wait(10)
    wait_until(lambda: not client_threads(), what="the dispatcher to exit")


def test_run_forever_returns_when_a_callback_closes(server):
    client = HyperliquidWS(server.base_url)
    sub = client.subscribe({"type": "trades", "coin": "BTC"}, lambda message: client.close())

    def emit_once_subscribed():
        sub.wait()
        server.emit({"type": "trades", "coin": "BTC"})

    emitter = threading.Thread(target=emit_once_subscribed, name="test-emitter")
    emitter.start()
    client.run_forever()
    emitter.join()
    assert client.closed and not client_threads()


def test_close_mid_handshake_returns_promptly(black_hole):
    client = HyperliquidWS(black_hole, open_timeout=30)
    client.subscribe({"type": "allMids"}, Collector())
    wait_until(lambda: client._pool.primary.connection._raw is not None, what="the connect to start")
    started = time.monotonic()
    client.close()
    elapsed = time.monotonic() - started
    assert not client_threads(), f"threads left after close() took {elapsed:.2f} s"


def test_a_script_that_never_calls_close_still_exits(server):
    script = textwrap.dedent(f"""
        from hyperliquid_ws import HyperliquidWS
        ws = HyperliquidWS({server.base_url!r})
        ws.subscribe({{"type": "allMids"}}, lambda m: None).wait()
        print("subscribed")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "subscribed"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"ping_interval": 0}, "ping_interval"),
        ({"ping_interval": 90}, "idle limit"),
        ({"pong_timeout": "10"}, "pong_timeout"),
        ({"backoff": 3}, "Backoff"),
        ({"base_url": "api.hyperliquid.xyz"}, "http:// or https://"),
        ({"on_error": "log"}, "callable"),
    ],
)
def test_bad_settings_fail_in_the_constructor(kwargs, words):
    base_url = kwargs.pop("base_url", "http://127.0.0.1:1")
    with pytest.raises(ValueError, match=words):
        HyperliquidWS(base_url, **kwargs)


def test_urls_follow_the_official_sdks_base_url_convention():
    from hyperliquid_ws import MAINNET_API_URL, TESTNET_API_URL

    assert HyperliquidWS().ws_url == "wss://api.hyperliquid.xyz/ws"
    assert HyperliquidWS(MAINNET_API_URL).info_url == "https://api.hyperliquid.xyz/info"
    assert HyperliquidWS(TESTNET_API_URL).ws_url == "wss://api.hyperliquid-testnet.xyz/ws"
    local = HyperliquidWS(base_url="http://127.0.0.1:8765/")
    assert (local.ws_url, local.info_url) == ("ws://127.0.0.1:8765/ws", "http://127.0.0.1:8765/info")


@pytest.mark.parametrize("endpoint", ["/ws", "/info", "/ws/"])
def test_a_base_url_of_one_endpoint_is_refused_with_the_root_to_use(endpoint):
    """``http://host:port/ws`` (the socket's own URL) used to be taken for a root: the
    client then dialled ``/ws/ws`` and retried 404s for good."""
    with pytest.raises(ValueError, match=r"API root .* use 'http://127.0.0.1:8765'"):
        HyperliquidWS(f"http://127.0.0.1:8765{endpoint}")
    assert HyperliquidWS("http://127.0.0.1:8765/proxy/hl").ws_url == "ws://127.0.0.1:8765/proxy/hl/ws"


def test_a_stream_of_a_refused_subscription_ends_with_the_servers_error(server, make_client):
    """No ``wait()``: the loop used to wait for good on a feed the server had refused."""
    from hyperliquid_ws import SubscriptionError

    client = make_client()
    with pytest.raises(SubscriptionError, match="Invalid subscription"):
        for _ in client.stream({"type": "trades", "coin": "eth"}):
            pass


def test_many_open_clients_are_pointed_out(server, make_client, caplog):
    clients = [make_client() for _ in range(5)]
    for client in clients:
        client.subscribe({"type": "allMids"}, Collector())
    assert any("clients are open" in record.message for record in caplog.records)
