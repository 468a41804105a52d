"""Recording and replay throughput (issue 18): ``python -m bench.recording``.

Three measurements, each repeated (``--repeats``, default 5), reported as the median and
the min-max spread, as Markdown on stdout (progress on stderr):

1. **Client receive rate with and without a recorder**, trades and l2Book, from the
   blaster (``bench/blaster.py``, its own process) in ``blast`` mode: one client, a
   counting probe on the feed; the recording row adds a ``Recorder`` on the same client
   (gzip, default settings), so its callback runs on the same reader thread. The cost
   is ``1 - recording / plain``.
2. **The writer alone**: microseconds and bytes (line, and on disk) per message for
   gzip, zstd and none, in-process, on the blaster's own frames.
3. **Replay rate with ``speed=None``**: a recording of trades served by ``LocalServer``
   to one client, messages per second from the first to the last.

Runs take ~3 min on 2 cores at the defaults. ``--quick``: 2 repeats, fewer frames.
``--install fast`` lets the client and the recorder use orjson (the ``fast`` extra);
the default hides it, as on a plain ``pip install hyperliquid-ws``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import accelerators, probes
from bench.blaster import Blaster
from bench.payloads import l2book_frame, subscriptions, trades_frame
from bench.plan import Plan

WORKLOADS = ("trades", "l2Book")


def _progress(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def receive_rate(blaster: Blaster, workload: str, frames: int, record: str | None) -> float:
    """Messages/s one client delivers (probe-timed, after a 10% warm-up)."""
    from hyperliquid_ws import HyperliquidWS
    from hyperliquid_ws.recording import Recorder

    blaster.arm(Plan(workload, "blast", frames=frames))
    probe = probes.Throughput(frames, frames // 10)
    with tempfile.TemporaryDirectory() as out, HyperliquidWS(blaster.base_url, name="bench", proxy=None) as ws:
        recorder = Recorder(out, client=ws, compression=record) if record else None
        handles = [ws.subscribe(sub, probe) for sub in subscriptions(workload)]
        if recorder is not None:
            handles += [recorder.record(sub) for sub in subscriptions(workload)]
        for handle in handles:
            handle.wait(60)
        if not probe.done.wait(120):
            probe.stop()
        if recorder is not None:
            recorder.close()
    result = probe.result()
    if "error" in result:
        raise RuntimeError(f"{workload}: {result}")
    return float(result["rate"])


def sample_messages(workload: str, n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    if workload == "trades":
        return [trades_frame(rng, "BTC", 1764842873555 + i, 100_000_000 + i) for i in range(n)]  # type: ignore[misc]
    return [l2book_frame(rng, "BTC", 1764842873555 + i) for i in range(n)]  # type: ignore[misc]


def writer_cost(workload: str, compression: str, messages: list[dict[str, Any]]) -> dict[str, float]:
    from hyperliquid_ws.recording import RecordingWriter
    from hyperliquid_ws.recording.codec import encode_subscription
    from hyperliquid_ws.recording.recorder import BATCH

    encoded = encode_subscription(subscriptions(workload)[0])
    with tempfile.TemporaryDirectory() as out:
        writer = RecordingWriter(out, compression=compression)
        now = time.time()
        items: list[tuple[float, bytes | dict[str, Any], Any]] = [(now, encoded, m) for m in messages]
        started = time.perf_counter()
        for first in range(0, len(items), BATCH):  # as the recorder's flush thread writes
            writer.write_many(items[first:first + BATCH])
        writer.flush()
        seconds = time.perf_counter() - started
        writer.close()
        disk = writer.disk_bytes
    return {"us": seconds / len(messages) * 1e6, "line": writer.bytes / len(messages), "disk": disk / len(messages)}


def replay_rate(messages: int) -> float:
    from hyperliquid_ws import HyperliquidWS
    from hyperliquid_ws.recording import RecordingWriter, Replay
    from hyperliquid_ws.testing import LocalServer

    rng = random.Random(7)
    sub = {"type": "trades", "coin": "BTC"}
    with tempfile.TemporaryDirectory() as out:
        writer = RecordingWriter(out)
        start = time.time()
        for i in range(messages):
            writer.write(sub, trades_frame(rng, "BTC", 1764842873555 + i, 100_000_000 + i), t=start + i * 0.01)
        writer.close()
        replay = Replay(out, speed=None, autoplay=False)
        done = threading.Event()
        count = [0]

        def on_message(message: Any) -> None:
            count[0] += 1
            if count[0] == messages:
                done.set()

        with LocalServer(replay=replay) as server, HyperliquidWS(server.base_url, proxy=None) as ws:
            ws.subscribe(sub, on_message).wait(30)
            began = time.perf_counter()
            replay.play()
            if not done.wait(300):
                raise RuntimeError(f"replay delivered {count[0]} of {messages}")
            return messages / (time.perf_counter() - began)


def summary(values: list[float], digits: int = 0) -> str:
    med = statistics.median(values)
    return f"{med:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recording")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="also write the raw figures here")
    parser.add_argument("--install", choices=("default", "fast"), default="default",
                        help="default: orjson hidden (pip install hyperliquid-ws); fast: with orjson ([fast] extra)")
    args = parser.parse_args(argv)
    accelerators.restrict("ours_fast" if args.install == "fast" else "ours")  # before hyperliquid_ws is imported
    logging.basicConfig(level=logging.CRITICAL)
    repeats = 2 if args.quick else args.repeats
    frames = {"trades": 40_000 if args.quick else 150_000, "l2Book": 10_000 if args.quick else 40_000}
    raw: dict[str, list[float]] = {}
    blaster = Blaster().start()
    try:
        for r in range(repeats):
            for workload in WORKLOADS:
                modes = [None, "gzip", "zstd"]
                modes = modes[r % 3:] + modes[:r % 3]  # rotate the order
                for mode in modes:
                    rate = receive_rate(blaster, workload, frames[workload], mode)
                    raw.setdefault(f"receive/{workload}/{mode or 'plain'}", []).append(rate)
                    _progress(f"repeat {r + 1}: {workload} {mode or 'plain'}: {rate:,.0f} msg/s")
    finally:
        blaster.stop()
    for workload in WORKLOADS:
        messages = sample_messages(workload, 20_000 if workload == "trades" else 5_000)
        for compression in ("gzip", "zstd", "none"):
            for _ in range(repeats):
                cost = writer_cost(workload, compression, messages)
                for key, value in cost.items():
                    raw.setdefault(f"writer/{workload}/{compression}/{key}", []).append(value)
        _progress(f"writer {workload} done")
    for _ in range(repeats):
        raw.setdefault("replay/trades", []).append(replay_rate(5_000 if args.quick else 20_000))
        _progress(f"replay: {raw['replay/trades'][-1]:,.0f} msg/s")
    print(f"Install: {args.install} ({'orjson' if args.install == 'fast' else 'stdlib json'}). " + report(raw, repeats))
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    return 0


def report(raw: dict[str, list[float]], repeats: int) -> str:
    lines = [f"Median (min-max) of {repeats} runs.", "",
             "| feed | client alone, msg/s | + Recorder (gzip), msg/s | cost | + Recorder (zstd), msg/s | cost |",
             "|---|---|---|---|---|---|"]
    for workload in WORKLOADS:
        plain = raw[f"receive/{workload}/plain"]
        cells = [summary(plain)]
        for compression in ("gzip", "zstd"):
            rec = raw[f"receive/{workload}/{compression}"]
            costs = [100 * (1 - b / a) for a, b in zip(plain, rec, strict=True)]
            cells += [summary(rec), f"{summary(costs, 1)} %"]
        lines.append(f"| {workload} | {' | '.join(cells)} |")
    lines += ["", "Cost: 1 - with/without, per repeat (the runs of one repeat are back to back).", "",
              "| feed | compression | writer us/msg | line bytes/msg | disk bytes/msg |", "|---|---|---|---|---|"]
    for workload in WORKLOADS:
        for compression in ("gzip", "zstd", "none"):
            key = f"writer/{workload}/{compression}"
            lines.append(f"| {workload} | {compression} | {summary(raw[key + '/us'], 1)} | "
                         f"{summary(raw[key + '/line'])} | {summary(raw[key + '/disk'])} |")
    lines += ["", f"Replay, speed=None, trades to one client: {summary(raw['replay/trades'])} msg/s"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
