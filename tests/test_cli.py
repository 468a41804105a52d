"""The hyperliquid-ws command: JSON lines from a live (local) server, demo mode, Ctrl-C,
what it says when the server cannot be reached, and how it reads its command line."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from hyperliquid_ws.cli import INTERRUPTED
from hyperliquid_ws.cli.command import build_request, build_subscription, feed_type, main, shown_url
from hyperliquid_ws.testing import LocalServer

COMMAND = [sys.executable, "-m", "hyperliquid_ws"]


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
    with pytest.raises(ValueError, match="takes coin in that order"):
        build_subscription("trades", ["BTC", "ETH"])
    with pytest.raises(ValueError, match="takes no positional values"):
        build_subscription("allMids", ["BTC"])
    assert build_request(["l2Book", "coin=ETH", "nSigFigs=5"]) == {"type": "l2Book", "coin": "ETH", "nSigFigs": 5}


def test_feed_types_match_whatever_their_case_and_a_typo_gets_a_suggestion():
    assert feed_type("l2book") == "l2Book" and feed_type("Trades") == "trades" and feed_type("ALLMIDS") == "allMids"
    assert build_subscription("L2BOOK", ["BTC"]) == {"type": "l2Book", "coin": "BTC"}
    with pytest.raises(ValueError, match="did you mean trades"):
        feed_type("trdaes")
    with pytest.raises(ValueError, match="did you mean userFills"):
        feed_type("userfils")
    with pytest.raises(ValueError, match=r"feed types: activeAssetCtx, .*trades"):
        feed_type("foo")
    assert build_subscription("brandNew", ["x=1"], allow_unknown=True) == {"type": "brandNew", "x": 1}


def test_a_typo_or_a_bad_count_is_a_usage_error(capsys):
    for argv, says in ((["trdes", "SOL"], "did you mean trades?"), (["foo", "SOL"], "unknown feed type 'foo'"),
                       (["trades", "SOL", "--count", "-1"], "--count: must be a whole number of messages >= 1"),
                       (["trades", "SOL", "--count", "0"], ">= 1"), ([], "give a feed type"),
                       (["candle", "BTC"], "candle needs 'interval'"), (["demo", "trades"], "trades needs 'coin'"),
                       (["candle", "BTC", "2m"], "'interval' as one of 1m")):
        try:
            code = main(argv)
        except SystemExit as exited:  # argparse's own errors exit; ours return the status
            code = exited.code
        assert code == 2, argv
        err = capsys.readouterr().err
        assert says in err and err.startswith("usage: hyperliquid-ws"), err
        assert "required: type, values" not in err


def test_urls_are_shown_without_credentials():
    assert shown_url("wss://user:secret@node.example:8443/ws") == "wss://node.example:8443/ws"
    assert shown_url("wss://node.example/KEY123/ws") == "wss://node.example/…/ws"


def test_info_prints_the_answer_and_the_table_format_is_for_people(ticking_server):
    out = io.StringIO()
    assert main(["info", "meta", "--base-url", ticking_server.base_url], out=out) == 0
    assert [asset["name"] for asset in json.loads(out.getvalue())["universe"]][:2] == ["BTC", "ETH"]
    out = io.StringIO()
    assert main(["INFO", "spotMeta", "--base-url", ticking_server.base_url, "--format", "table"], out=out) == 0
    assert "universe (" in out.getvalue() and "PURR/USDC" in out.getvalue()
    out = io.StringIO()
    assert main(["l2Book", "ETH", "--base-url", ticking_server.base_url, "-n", "2", "--format", "table"],
                out=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(" ETH " in line and "bid " in line and "ask " in line for line in lines)


def test_a_refused_subscription_exits_with_the_servers_text_once(ticking_server, capsys):
    assert main(["--base-url", ticking_server.base_url, "trades", "NOPE"]) == 1
    err = capsys.readouterr().err
    assert err.count("Invalid subscription") == 1, err  # once: not also logged, not also from on_error


def test_demo_streams_from_the_embedded_server_without_internet():
    done = subprocess.run(
        [sys.executable, "-m", "hyperliquid_ws", "demo", "--count", "4"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(messages) == 4
    assert {m["channel"] for m in messages} <= {"trades", "allMids"}


def test_ctrl_c_while_streaming_exits_130_without_a_traceback():
    process = subprocess.Popen([*COMMAND, "demo", "l2Book", "ETH"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith('{"channel":"l2Book"')
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=90)
    finally:
        process.kill()
    assert process.returncode == INTERRUPTED
    assert "Traceback" not in err


def test_ctrl_c_handling_is_in_place_before_anything_heavy_is_imported():
    # Until console() installs its handler, a Ctrl-C is Python's own (a traceback): what the
    # entry point imports first must be next to nothing, whatever the machine's load.
    probe = ("import sys, hyperliquid_ws.cli; "
             "print(' '.join(sorted(m for m in sys.modules if m.startswith(('hyperliquid_ws', 'typing', "
             "'argparse', 'logging', 'json', 'requests', 'websocket')))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["hyperliquid_ws", "hyperliquid_ws.cli"], done.stdout + done.stderr


@pytest.fixture
def closed_port():
    """The base URL of a loopback port nobody listens on: every connect is refused."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://user:secret@127.0.0.1:{port}"


def test_offline_the_command_gives_up_within_the_connect_timeout_naming_the_host(closed_port):
    started = time.monotonic()
    done = subprocess.run([*COMMAND, "trades", "SOL", "--count", "1", "--base-url", closed_port,
                           "--connect-timeout", "1.5"], capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert took < 1.5 + 10, took  # the timeout, plus a loaded machine's start-up
    host = closed_port.replace("http://user:secret@", "ws://") + "/ws"
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"hyperliquid-ws: could not connect to {host} within 1.5 s"), done.stderr
    assert "Connection refused" in last
    assert all(host in line for line in done.stderr.splitlines()), done.stderr  # every line names it
    assert "secret" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("after", [0.2, 3.0])
def test_ctrl_c_at_any_moment_exits_130_without_a_traceback(closed_port, after):
    process = subprocess.Popen([*COMMAND, "trades", "SOL", "--base-url", closed_port],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        threading.Event().wait(after)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == INTERRUPTED, err
    assert "Traceback" not in err, err


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
