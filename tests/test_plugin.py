"""The pytest plugin (``hyperliquid_ws.testing.pytest_plugin``): registered as an entry
point, its fixtures work and clean up, it survives a missing ``testing`` extra, and the
example bot's own test (examples/test_bot.py) passes with nothing but its fixtures."""

from __future__ import annotations

import subprocess
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from hyperliquid_ws import HyperliquidWS
from hyperliquid_ws.testing import LocalServer
from hyperliquid_ws.testing.pytest_plugin import wait_until
from tests.conftest import Collector

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SUBPROCESS_TIMEOUT = 120


def test_the_entry_point_is_registered(request):
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "hyperliquid_ws"]
    assert [ep.value for ep in found] == ["hyperliquid_ws.testing.pytest_plugin"]
    assert request.config.pluginmanager.has_plugin("hyperliquid_ws")  # loaded in this very run


def test_the_server_fixture_runs_a_frozen_market_on_loopback(hyperliquid_server):
    assert isinstance(hyperliquid_server, LocalServer)
    assert hyperliquid_server.host == "127.0.0.1" and hyperliquid_server.port > 0
    assert hyperliquid_server.connection_ids() == []
    assert hyperliquid_server._app.tick_interval is None  # moves only on advance()
    hyperliquid_server.advance(2)


def test_the_client_fixture_is_connected_to_the_server(hyperliquid_server, hyperliquid_client, hyperliquid_wait):
    assert isinstance(hyperliquid_client, HyperliquidWS)
    assert hyperliquid_client.base_url == hyperliquid_server.base_url
    got = Collector()
    hyperliquid_client.subscribe({"type": "trades", "coin": "BTC"}, got).wait(timeout=10)
    assert hyperliquid_server.wait_for_subscriptions(1)
    hyperliquid_server.advance(3)
    assert got.wait_for(1)[0]["channel"] == "trades"
    assert hyperliquid_wait(lambda: hyperliquid_client.connected)


def test_clients_reconnect_quickly(hyperliquid_server, hyperliquid_client, hyperliquid_wait):
    hyperliquid_client.subscribe({"type": "allMids"}, Collector()).wait(timeout=10)
    hyperliquid_server.drop_connections()
    # The default backoff would allow up to a second; the fixture's starts at 50 ms.
    hyperliquid_wait(lambda: hyperliquid_client.stats()["reconnects"] >= 1, timeout=5, what="a reconnect")


@pytest.mark.hyperliquid_server(tick_interval=0.05)
@pytest.mark.hyperliquid_client(name="hlws-marked", callback_threads=1)
def test_markers_configure_the_fixtures(hyperliquid_server, hyperliquid_client):
    assert hyperliquid_server._app.tick_interval == 0.05
    assert hyperliquid_client.name == "hlws-marked"
    got = Collector()
    hyperliquid_client.subscribe({"type": "trades", "coin": "BTC"}, got)
    got.wait_for(2)  # the market moves on its own: no advance()
    assert got.threads == {"hlws-marked-dispatch-1"}


def test_make_client_gives_more_clients_on_the_same_server(hyperliquid_server, hyperliquid_make_client):
    first, second = hyperliquid_make_client(), hyperliquid_make_client(callback_threads=0)
    for client in (first, second):
        client.subscribe({"type": "allMids"}, Collector()).wait(timeout=10)
    assert hyperliquid_server.wait_for_connections(2)
    assert first.name != second.name


def test_wait_until_returns_the_value_or_fails_at_the_deadline():
    assert wait_until(lambda: 42, timeout=1) == 42
    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for nothing at all"):
        wait_until(lambda: None, timeout=0.05, what="nothing at all")
    with pytest.raises(ValueError, match="timeout"):
        wait_until(lambda: True, timeout=0)


def test_the_fixtures_close_the_client_and_find_no_leftover_threads(pytester):
    pytester.makepyfile(test_inner="""
        import threading
        CLIENTS = []

        def test_uses_the_client(hyperliquid_server, hyperliquid_client):
            CLIENTS.append(hyperliquid_client)
            hyperliquid_client.subscribe({"type": "allMids"}, lambda message: None).wait(timeout=10)
            assert any(t.name.startswith(hyperliquid_client.name + "-") for t in threading.enumerate())

        def test_after():
            client = CLIENTS[0]
            assert client.closed
            assert not [t for t in threading.enumerate() if t.name.startswith(client.name + "-")]
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_thread_that_outlives_close_fails_the_test(pytester):
    pytester.makepyfile(test_inner="""
        import threading
        import pytest

        @pytest.mark.hyperliquid_client(name="hlws-stuck", close_timeout=0.1)
        def test_a_callback_still_running_at_teardown(hyperliquid_server, hyperliquid_client):
            entered = threading.Event()

            def stuck(message):
                entered.set()
                threading.Event().wait(3)  # a callback that blocks through close()

            hyperliquid_client.subscribe({"type": "allMids"}, stuck)
            assert entered.wait(10)
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*client threads outlived close(): hlws-stuck-reader*"])
    wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("hlws-stuck-")],
               what="the stuck callback to return")


def test_a_positional_marker_argument_is_a_usage_error(pytester):
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.hyperliquid_server(0.5)
        def test_it(hyperliquid_server):
            pass
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*keyword arguments only*"])
    assert result.ret != 0


WITHOUT_AIOHTTP = """
import sys
sys.modules["aiohttp"] = None  # as if the testing extra were not installed
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_without_aiohttp_pytest_still_runs_and_the_fixture_says_what_to_install(pytester):
    pytester.makepyfile(test_inner="""
        def test_not_using_the_plugin():
            assert True

        def test_using_the_server(hyperliquid_server):
            pass
    """)
    done = subprocess.run([sys.executable, "-c", WITHOUT_AIOHTTP, "-p", "no:cacheprovider", "-q", "-rE"],
                          cwd=pytester.path, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    output = done.stdout + done.stderr
    if "hyperliquid_ws/testing/__init__.py" in output and "aiohttp" in output and "1 passed" not in output:
        pytest.xfail("hyperliquid_ws/testing/__init__.py imports LocalServer (and so aiohttp) eagerly, "
                     "so loading the plugin fails without the testing extra; it must import lazily")
    assert "1 passed, 1 error" in output, output
    assert "pip install 'hyperliquid-ws[testing]'" in output, output


def test_the_example_bot_test_passes_with_only_the_plugin_fixtures():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "examples/test_bot.py", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_the_example_bot_runs_as_a_script(hyperliquid_server):
    hyperliquid_server.advance(1)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "bot.py"), "--base-url", hyperliquid_server.base_url,
         "--every", "0.1", "--seconds", "0.3", hyperliquid_server.market.users[0]],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(line.startswith("BTC mid ") for line in lines), done.stdout
    assert "connected True" in lines[-1]
    assert "Traceback" not in done.stderr
