"""Every script in examples/ runs against the local server and exits by itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hyperliquid_ws.testing import LocalServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def ticking_server():
    with LocalServer(tick_interval=0.05) as srv:
        yield srv


@pytest.mark.parametrize(
    ("script", "extra"),
    [
        ("trades.py", ["--coin", "BTC", "--count", "3"]),
        ("order_book.py", ["--coin", "ETH", "--count", "2"]),
        ("user_fills.py", ["USER", "--count", "1"]),
        ("notebook.py", ["--seconds", "0.5"]),
    ],
)
def test_example_runs_against_the_local_server(ticking_server, script, extra):
    extra = [ticking_server.market.users[0] if a == "USER" else a for a in extra]
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--base-url", ticking_server.base_url, *extra],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the example printed nothing"
    assert "Traceback" not in done.stderr
