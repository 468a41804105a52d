"""The hyperliquid-ws command: JSON lines from a live (local) server, demo mode, Ctrl-C."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys

import pytest

from hyperliquid_ws.cli import build_subscription, main
from hyperliquid_ws.testing import LocalServer


@pytest.fixture
def ticking_server():
    with LocalServer(tick_interval=0.05) as srv:
        yield srv


def test_streams_one_json_message_per_line(ticking_server):
    out = io.StringIO()
    code = main(["--base-url", ticking_server.base_url, "trades", "BTC", "--count", "3"], out=out)
    lines = out.getvalue().splitlines()
    assert code == 0 and len(lines) == 3
    for line in lines:
        message = json.loads(line)
        assert message["channel"] == "trades"
        assert {trade["coin"] for trade in message["data"]} == {"BTC"}


def test_named_fields_and_positional_fields_build_the_subscription():
    assert build_subscription("candle", ["ETH", "1m"]) == {"type": "candle", "coin": "ETH", "interval": "1m"}
    assert build_subscription("l2Book", ["BTC", "nSigFigs=5", "fast=true"]) == {
        "type": "l2Book", "coin": "BTC", "nSigFigs": 5, "fast": True}
    with pytest.raises(ValueError, match="positional"):
        build_subscription("trades", ["BTC", "ETH"])


def test_a_bad_subscription_exits_with_a_message(ticking_server, capsys):
    assert main(["--base-url", ticking_server.base_url, "candle", "BTC", "2m"]) == 1
    assert "interval" in capsys.readouterr().err
    assert main(["--base-url", ticking_server.base_url, "trades", "NOPE"]) == 1
    assert "Invalid subscription" in capsys.readouterr().err


def test_demo_streams_from_the_embedded_server_without_internet():
    done = subprocess.run(
        [sys.executable, "-m", "hyperliquid_ws", "demo", "--count", "4"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(messages) == 4
    assert {m["channel"] for m in messages} <= {"trades", "allMids"}


def test_ctrl_c_exits_cleanly():
    process = subprocess.Popen(
        [sys.executable, "-m", "hyperliquid_ws", "demo", "l2Book", "ETH"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout.readline().startswith('{"channel":"l2Book"')
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=90)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "Traceback" not in err


@pytest.mark.parametrize(("values", "channel", "check"), [
    (["trades", "@107"], "trades", lambda data: data[0]["coin"] == "@107"),  # HYPE/USDC, as on mainnet
    (["l2Book", "xyz:XYZ100"], "l2Book", lambda data: data["coin"] == "xyz:XYZ100"),  # a HIP-3 dex's perp
    (["allMids", "dex=xyz"], "allMids", lambda data: data["dex"] == "xyz" and "xyz:XYZ100" in data["mids"]),
], ids=["spot-id", "hip3-coin", "dex-mids"])
def test_demo_streams_mainnet_names(values, channel, check):
    out = io.StringIO()
    assert main(["demo", *values, "--count", "1"], out=out) == 0
    message = json.loads(out.getvalue())
    assert message["channel"] == channel and check(message["data"])
