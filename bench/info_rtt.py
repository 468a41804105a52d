"""Round trip of an info request: ``ws.info`` (a post over the socket) vs HTTP ``/info``.

Two processes, neither of them the orchestrator:

``python -m bench.info_rtt serve``           runs ``hyperliquid_ws.testing.LocalServer``
                                              (frozen market), prints its port, and
                                              stops when its stdin closes.
``python -m bench.info_rtt measure URL N``   times N requests each way and prints JSON.

``HyperliquidWS.info`` may not exist yet; then that row reads "n/a (not implemented)".
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

REQUEST: dict[str, Any] = {"type": "l2Book", "coin": "BTC"}


def _timings(call: Callable[[], object], n: int) -> dict[str, Any]:
    for _ in range(min(20, n)):  # warm up connections and caches
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return {"n": n, "p50_ms": samples[n // 2] * 1e3, "p99_ms": samples[min(n - 1, int(n * 0.99))] * 1e3}


def _ws_info(base_url: str, n: int) -> dict[str, Any]:
    from hyperliquid_ws import HyperliquidWS

    if not hasattr(HyperliquidWS, "info"):
        return {"skipped": "n/a (not implemented)"}
    with HyperliquidWS(base_url, name="bench-info") as ws:
        try:
            return _timings(lambda: ws.info(dict(REQUEST)), n)
        except Exception as exc:  # an API still in the making: report, do not crash the suite
            return {"skipped": f"n/a ({type(exc).__name__}: {exc})"}


def measure(base_url: str, n: int) -> dict[str, Any]:
    import requests

    url = base_url + "/info"
    session = requests.Session()
    return {
        "ws_info": _ws_info(base_url, n),
        "requests_post": _timings(lambda: requests.post(url, json=REQUEST, timeout=10).json(), n),
        "session_post": _timings(lambda: session.post(url, json=REQUEST, timeout=10).json(), n),
    }


def serve() -> None:
    from hyperliquid_ws.testing import LocalServer

    with LocalServer(tick_interval=None) as server:
        print(server.port, flush=True)
        sys.stdin.read()


def main() -> None:
    if sys.argv[1] == "serve":
        serve()
    else:
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))), flush=True)


if __name__ == "__main__":
    main()
