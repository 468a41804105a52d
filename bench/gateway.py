"""The Redis Streams gateway's figures: ``python -m bench.gateway [--repeats 3] [--seconds 4]``.

A script, not a test. Per run: a real ``redis-server`` (``hyperliquid_ws.testing.redis_server``),
the frame blaster (``bench/blaster.py``) pacing freshly stamped BTC trades at ``--rate``
frames a second to every connection, the gateway in its own process (the
``hyperliquid-ws gateway`` command), and in their own processes one direct
``HyperliquidWS`` and K ``GatewayClient``\\ s (K in ``--consumers``, default 1, 10, 50).
Each process records, for every frame that arrives in the measured window, the time from
the blaster's send stamp to its callback. The window opens ``WARM_UP`` (0.5 s) after every
consumer is subscribed and has a first message, and lasts ``--seconds``: a consumer that
subscribed before the gateway held the feed starts at the holding's first entry, so its
first messages are as old as its subscribe took (~0.1 s) and it catches up in a few ms,
as the main benchmark's latency section drops its first 0.5 s. With ``--named`` the
consumers are durable (``name=``): each records its position in Redis after every
callback, the path the issue's redelivery guarantee rides on.

Printed: per K, the direct client's and the gateway consumers' p50/p99 latency (µs),
delivered frames a second, and the gateway process's CPU time over the window (% of one
core, from ``/proc``), as the median over repeats with the min-max spread. Progress
goes to stderr, the Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.blaster import Blaster
from bench.plan import Plan

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["bench.gateway", "hyperliquid_ws.gateway"])
SUBSCRIPTION = {"type": "trades", "coin": "BTC"}
WARM_UP = 0.5  # s between every consumer's first message and the window: the catch-up is not measured


def consume(kind: str, redis_url: str, base_url: str, name: str | None, ready: Any, go: Any, stop: Any,
            results: Any) -> None:
    """A measuring consumer (child process): ``kind`` is ``direct`` or ``gateway``."""
    logging.basicConfig(level=logging.CRITICAL)
    from hyperliquid_ws import HyperliquidWS
    from hyperliquid_ws.gateway import GatewayClient

    latencies: list[int] = []
    first = threading.Event()

    def callback(message: Any) -> None:
        first.set()
        if go.is_set() and not stop.is_set():
            latencies.append(time.time_ns() - message["data"][0]["time"])

    client: Any = (HyperliquidWS(base_url, trust_env=False) if kind == "direct"
                   else GatewayClient(redis_url, base_url=base_url, name=name))
    client.subscribe(SUBSCRIPTION, callback).wait(60)
    if first.wait(60):
        ready.release()
    stop.wait()
    client.close()
    results.put({"kind": kind, "latencies_us": [n // 1000 for n in latencies]})


def _gateway(redis_url: str, base_url: str, probe: str | None = None) -> subprocess.Popen[bytes]:
    """The ``hyperliquid-ws gateway`` command; with ``probe``, run as ``python PROBE gateway ...``
    (``bench/gateway_probe.py``: timing hooks), its stderr shown."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    launch = [probe] if probe else ["-m", "hyperliquid_ws"]
    return subprocess.Popen([sys.executable, *launch, "gateway", "--redis", redis_url,
                             "--base-url", base_url, "--grace", "1"], env=env,
                            stderr=None if probe else subprocess.DEVNULL)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(consumers: int, rate: float, seconds: float, redis_url: str, blaster: Blaster,
            named: bool = False, probe: str | None = None) -> dict[str, Any]:
    import redis

    with redis.Redis.from_url(redis_url) as fresh:  # each run from empty streams: no takeover backfill
        fresh.flushall()
    blaster.arm(Plan("latency", mode="paced", frames=int(rate * (seconds + 120)), rate=rate))
    gateway = _gateway(redis_url, blaster.base_url, probe)
    ready, go, stop, results = _context.Semaphore(0), _context.Event(), _context.Event(), _context.Queue()
    kinds = ["direct"] + ["gateway"] * consumers
    processes = [_context.Process(target=consume, name=f"bench-{kind}-{i}",
                                  args=(kind, redis_url, blaster.base_url, f"bench{i}" if named else None,
                                        ready, go, stop, results))
                 for i, kind in enumerate(kinds)]
    try:
        for process in processes:
            process.start()
        for _ in processes:
            if not ready.acquire(timeout=120):
                raise RuntimeError("a consumer did not get ready within 120 s")
        time.sleep(WARM_UP)
        go.set()
        cpu_before = _cpu_seconds(gateway.pid)
        stop.wait(seconds)
        cpu_after = _cpu_seconds(gateway.pid)
        stop.set()
        found = [results.get(timeout=60) for _ in processes]
    finally:
        stop.set()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
        gateway.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            gateway.wait(10)
    direct = next(r["latencies_us"] for r in found if r["kind"] == "direct")
    through = [r["latencies_us"] for r in found if r["kind"] == "gateway"]
    merged = [x for run in through for x in run]
    cpu = None if cpu_before is None or cpu_after is None else 100 * (cpu_after - cpu_before) / seconds
    return {"direct": _summary(direct, seconds), "gateway": _summary(merged, seconds, per=len(through)),
            "per_consumer_rate": statistics.median(len(run) / seconds for run in through), "gateway_cpu": cpu}


def _summary(values: list[int], seconds: float, per: int = 1) -> dict[str, float]:
    if len(values) < 100:
        return {"p50": float("nan"), "p99": float("nan"), "rate": len(values) / seconds / per}
    cuts = statistics.quantiles(values, n=100)
    return {"p50": cuts[49], "p99": cuts[98], "rate": len(values) / seconds / per}


def _spread(values: list[float], digits: int = 0) -> str:
    middle = statistics.median(values)
    return f"{middle:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="frames a second per upstream connection")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured window per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--consumers", default="1,10,50", help="comma-separated consumer counts")
    parser.add_argument("--named", action="store_true", help="durable consumers (positions recorded in Redis)")
    parser.add_argument("--probe", metavar="SCRIPT", help="run the gateway through SCRIPT (bench/gateway_probe.py: "
                        "where the time goes inside it, printed to stderr)")
    args = parser.parse_args()
    from hyperliquid_ws.testing.redis_server import RedisServer

    rows = []
    with RedisServer() as redis_server, Blaster() as blaster:
        for consumers in (int(c) for c in args.consumers.split(",")):
            runs = []
            for repeat in range(args.repeats):
                print(f"bench.gateway: {consumers} consumer(s), run {repeat + 1}/{args.repeats}", file=sys.stderr)
                runs.append(one_run(consumers, args.rate, args.seconds, redis_server.url, blaster, args.named,
                                    args.probe))
            rows.append((consumers, runs))
    print(f"Offered: {args.rate:,.0f} stamped trades frames/s per upstream connection; window {args.seconds:g} s; "
          f"{args.repeats} runs; {'named' if args.named else 'unnamed'} consumers; median (min-max). "
          "Latency: blaster send stamp to callback, µs.\n")
    print("| consumers | direct p50 | direct p99 | gateway p50 | gateway p99 | p99 gateway - direct "
          "| frames/s per consumer | frames/s all consumers | gateway CPU, % of a core |")
    print("|---|---|---|---|---|---|---|---|---|")
    for consumers, runs in rows:
        d50 = [r["direct"]["p50"] for r in runs]
        d99 = [r["direct"]["p99"] for r in runs]
        g50 = [r["gateway"]["p50"] for r in runs]
        g99 = [r["gateway"]["p99"] for r in runs]
        extra = [g - d for g, d in zip(g99, d99, strict=True)]
        per = [r["per_consumer_rate"] for r in runs]
        cpu = [r["gateway_cpu"] for r in runs if r["gateway_cpu"] is not None]
        print(f"| {consumers} | {_spread(d50)} | {_spread(d99)} | {_spread(g50)} | {_spread(g99)} | {_spread(extra)} "
              f"| {_spread(per)} | {_spread([p * consumers for p in per])} | {_spread(cpu, 1) if cpu else '-'} |")


if __name__ == "__main__":
    main()
