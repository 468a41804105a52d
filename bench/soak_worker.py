"""One soak scenario's client, in a fresh process: ``python -m bench.soak_worker JOB_JSON``.

Subscribes, prints ``{"event": "subscribed", ...}``, then lets the callbacks run until a
line arrives on stdin (the parent sends it once the server has stopped writing). It then
takes a snapshot (``stats()``, RSS, callback counts), closes the client, and prints one
JSON line with everything. The parent samples this process's RSS from outside.

Threads: the main thread waits on stdin; callbacks run wherever the client runs them
(the connection's threads, or ``callback_threads`` dispatcher threads).
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from bench.probes import rss_bytes
from bench.soak_plan import soak_subscriptions


class Working:
    """A callback that does a little work per message, as a strategy's would: a
    notional for trades, a spread for books and bbo, a close for candles."""

    def __init__(self) -> None:
        self.count = 0
        self.value = 0.0

    def __call__(self, message: dict[str, Any]) -> None:
        channel, data = message["channel"], message["data"]
        if channel == "trades":
            self.value += sum(float(t["px"]) * float(t["sz"]) for t in data)
        elif channel == "l2Book":
            bids, asks = data["levels"]
            if bids and asks:
                self.value += float(asks[0]["px"]) - float(bids[0]["px"])
        elif channel == "bbo":
            bid, ask = data["bbo"]
            if bid and ask:
                self.value += float(ask["px"]) - float(bid["px"])
        elif channel == "candle":
            self.value += float(data["c"])
        self.count += 1


class Sleeping:
    """A slow consumer: blocks ``seconds`` per message (a write to disk, an HTTP call)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.count = 0
        self.sample: Any = None

    def __call__(self, message: Any) -> None:
        if self.sample is None:
            self.sample = message
        time.sleep(self.seconds)
        self.count += 1


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it contains (containers, str, numbers)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        size += sum(deep_size(v, seen) for v in obj)
    return size


def dropped_counters(node: Any, path: str = "") -> Iterable[tuple[str, int]]:
    """Every integer in ``stats()`` whose key says it counts drops, with its path, so a
    new counter (``max_backlog``'s) is picked up without this file knowing its name."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(value, int) and not isinstance(value, bool) and "drop" in str(key).lower():
                yield here, value
            else:
                yield from dropped_counters(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from dropped_counters(item, f"{path}[]")


def snapshot(ws: Any, callbacks: list[Working | Sleeping]) -> dict[str, Any]:
    delivered = sum(c.count for c in callbacks)  # before stats(): then delivered <= received
    stats = ws.stats()
    subs = stats["subscriptions"]
    totals: dict[str, int] = {}
    for key, value in dropped_counters(stats):
        totals[key] = totals.get(key, 0) + value
    return {
        "rss_end": rss_bytes(),
        "delivered": delivered,
        "client_delivered": stats.get("delivered"),
        "received": sum(s.get("received", 0) for s in subs),
        "dropped_slow_consumer": sum(s.get("dropped_slow_consumer", 0) for s in subs),
        "duplicates_dropped": sum(s.get("duplicates_dropped", 0) for s in subs),
        "drop_counters": totals,
        "waiting_for_callbacks": sum(s.get("waiting_for_callbacks", 0) for s in subs),
        "queues": stats.get("queues"),
        "reconnects": stats.get("reconnects"),
        "relays": sum(c.get("relays", 0) for c in stats.get("connections", [])),
        "callback_errors": stats.get("callback_errors"),
    }


def soak(job: dict[str, Any]) -> dict[str, Any]:
    """Subscribe, wait for the parent's word, snapshot, close. Returns plain data only, so
    once it has returned nothing of the client is reachable any more."""
    from hyperliquid_ws import HyperliquidWS

    result: dict[str, Any] = {"rss_imported": rss_bytes()}
    callbacks: list[Working | Sleeping] = []
    ws = HyperliquidWS(job["base_url"], name="soak", **job["settings"])
    started = time.perf_counter()
    handles = []
    for subscription in soak_subscriptions(job["workload"]):
        callback: Working | Sleeping = Sleeping(job["sleep_ms"] / 1e3) if job["sleep_ms"] else Working()
        callbacks.append(callback)
        handles.append(ws.subscribe(subscription, callback))
    for handle in handles:
        handle.wait(timeout=120)
    result["setup_seconds"] = time.perf_counter() - started
    result["rss_start"] = rss_bytes()
    print(json.dumps({"event": "subscribed", **result}), flush=True)
    cpu0 = time.process_time()
    sys.stdin.readline()  # the server has stopped writing
    result["cpu_seconds"] = time.process_time() - cpu0
    result.update(snapshot(ws, callbacks))
    sample = next((c.sample for c in callbacks if isinstance(c, Sleeping) and c.sample is not None), None)
    if sample is not None:
        result["message_deep_bytes"] = deep_size(sample)
    before = time.perf_counter()
    ws.close()
    result["close_seconds"] = time.perf_counter() - before
    return result


def _malloc_trim() -> bool:
    """Ask glibc to give freed heap pages back to the OS (False where there is no glibc)."""
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


def run(job: dict[str, Any]) -> dict[str, Any]:
    from hyperliquid_ws import HyperliquidWS

    result = soak(job)
    gc.collect()
    result["rss_after_close"] = rss_bytes()  # the client and every message it held are garbage now
    result["clients_alive_after_close"] = sum(isinstance(o, HyperliquidWS) for o in gc.get_objects())
    if _malloc_trim():
        result["rss_after_trim"] = rss_bytes()
    return result


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # slow-consumer warnings would cost the run
    result = run(json.loads(sys.argv[1]))
    print(json.dumps({"event": "done", **result}), flush=True)


if __name__ == "__main__":
    main()
