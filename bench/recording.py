"""Recording and replay throughput (issue 18): ``python -m bench.recording``.

Three measurements, each repeated (``--repeats``, default 5), reported as the median and
the min-max spread, as Markdown on stdout (progress on stderr):

1. **Client receive rate with and without a recorder**, trades and l2Book, from the
   blaster (``bench/blaster.py``, its own process) in ``blast`` mode: one client, a
   counting probe on the feed; each recording row adds a ``Recorder`` on the same
   client and feed (so the entry fans out to two handles), in the modes of ``MODES``:
   gzip through stdlib zlib, gzip through ISA-L (the ``isal`` extra; skipped when not
   installed), zstd. The rows of one repeat run back to back, in a rotated order; the
   cost is ``1 - recording / plain`` per repeat.
2. **The writer alone**, in-process on the blaster's own frames: microseconds and bytes
   (line, and on disk) per message for each mode and ``none``, for lines built from the
   frame's bytes (``frame``: what the recorder does for a message that is its frame
   unchanged, via ``FrameTap``) and from the parsed message (``encode``: backfilled or
   deduped messages).
3. **Replay rate with ``speed=None``**: a recording of trades served by ``LocalServer``
   to one client, messages per second from the first to the last.

Runs take ~4 min on 2 cores at the defaults. ``--quick``: 2 repeats, fewer frames.
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
MODES = ("gzip", "gzip-isal", "zstd")  # recorder modes: compression, and -isal for ISA-L's deflate


def use_mode(mode: str) -> str:
    """Point the codec at stdlib zlib or ISA-L for ``mode``; return its compression."""
    import zlib

    from hyperliquid_ws.recording import codec

    if mode.endswith("-isal"):
        from isal import isal_zlib
        codec.deflate = isal_zlib
    else:
        codec.deflate = zlib
    return mode.removesuffix("-isal")


def modes_available() -> list[str]:
    return [m for m in MODES if not m.endswith("-isal") or accelerators.installed("isal")]


def _progress(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def receive_rate(blaster: Blaster, workload: str, frames: int, record: str | None) -> tuple[float, float]:
    """Messages/s one client delivers (probe-timed, after a 10% warm-up), and the CPU
    time this process spent per message meanwhile (us; every thread: the reader, the
    recorder's flush thread and its compression)."""
    from hyperliquid_ws import HyperliquidWS
    from hyperliquid_ws.recording import Recorder

    blaster.arm(Plan(workload, "blast", frames=frames))
    probe = probes.Throughput(frames, frames // 10)
    with tempfile.TemporaryDirectory() as out, HyperliquidWS(blaster.base_url, name="bench", proxy=None) as ws:
        recorder = Recorder(out, client=ws, compression=use_mode(record)) if record else None
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
    return float(result["rate"]), float(result["cpu_us_per_frame"])


def sample_messages(workload: str, n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    if workload == "trades":
        return [trades_frame(rng, "BTC", 1764842873555 + i, 100_000_000 + i) for i in range(n)]  # type: ignore[misc]
    return [l2book_frame(rng, "BTC", 1764842873555 + i) for i in range(n)]  # type: ignore[misc]


def writer_cost(workload: str, mode: str, messages: list[dict[str, Any]],
                frames: list[bytes] | None) -> dict[str, float]:
    """The writer alone: lines from ``frames`` (the FrameTap path) or encoded from ``messages``."""
    from hyperliquid_ws.recording import RecordingWriter
    from hyperliquid_ws.recording.codec import encode_subscription
    from hyperliquid_ws.recording.recorder import BATCH
    from hyperliquid_ws.recording.writer import Line

    encoded = encode_subscription(subscriptions(workload)[0])
    with tempfile.TemporaryDirectory() as out:
        writer = RecordingWriter(out, compression=use_mode(mode))
        now = time.time()
        items: list[Line] = [(now, encoded, m, f) for m, f in zip(messages, frames or [None] * len(messages),
                                                                    strict=True)]
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
    frames = {"trades": 40_000 if args.quick else 500_000, "l2Book": 10_000 if args.quick else 120_000}  # ~4 s a run
    raw: dict[str, list[float]] = {}
    modes = modes_available()
    blaster = Blaster().start()
    try:
        for r in range(repeats):
            for workload in WORKLOADS:
                order: list[str | None] = [None, *modes]
                order = order[r % len(order):] + order[:r % len(order)]  # rotate the order
                for mode in order:
                    rate, cpu = receive_rate(blaster, workload, frames[workload], mode)
                    raw.setdefault(f"receive/{workload}/{mode or 'plain'}", []).append(rate)
                    raw.setdefault(f"cpu/{workload}/{mode or 'plain'}", []).append(cpu)
                    _progress(f"repeat {r + 1}: {workload} {mode or 'plain'}: {rate:,.0f} msg/s, {cpu:.2f} us CPU/msg")
    finally:
        blaster.stop()
    from hyperliquid_ws.router import loads

    for workload in WORKLOADS:
        messages = sample_messages(workload, 20_000 if workload == "trades" else 5_000)
        payloads = [json.dumps(m, separators=(",", ":")).encode() for m in messages]  # as the blaster sends
        messages = [loads(p) for p in payloads]  # as the client delivers
        for mode in [*modes, "none"]:
            for form, frames_given in (("frame", payloads), ("encode", None)):
                for _ in range(repeats):
                    cost = writer_cost(workload, mode, messages, frames_given)
                    for key, value in cost.items():
                        raw.setdefault(f"writer/{workload}/{mode}/{form}/{key}", []).append(value)
        _progress(f"writer {workload} done")
    for _ in range(repeats):
        raw.setdefault("replay/trades", []).append(replay_rate(5_000 if args.quick else 20_000))
        _progress(f"replay: {raw['replay/trades'][-1]:,.0f} msg/s")
    print(f"Install: {args.install} ({'orjson' if args.install == 'fast' else 'stdlib json'}). "
          + report(raw, repeats, modes))
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    return 0


def report(raw: dict[str, list[float]], repeats: int, modes: list[str]) -> str:
    head = "".join(f" + Recorder ({mode}), msg/s | cost |" for mode in modes)
    lines = [f"Median (min-max) of {repeats} runs. gzip-isal: gzip written through ISA-L (the isal extra).", "",
             f"| feed | client alone, msg/s |{head}", "|---|---|" + "---|---|" * len(modes)]
    for workload in WORKLOADS:
        plain = raw[f"receive/{workload}/plain"]
        cells = [summary(plain)]
        for mode in modes:
            rec = raw[f"receive/{workload}/{mode}"]
            costs = [100 * (1 - b / a) for a, b in zip(plain, rec, strict=True)]
            cells += [summary(rec), f"{summary(costs, 1)} %"]
        lines.append(f"| {workload} | {' | '.join(cells)} |")
    lines += ["", "Cost: 1 - with/without, per repeat (the runs of one repeat are back to back).", "",
              "CPU time of the client's process per message in the same runs (every thread: reader, "
              "callbacks, the recorder's flush thread and its compression; the blaster is another process), "
              "us, and what recording adds to it:", "",
              "| feed | client alone |" + "".join(f" + Recorder ({mode}) | added |" for mode in modes),
              "|---|---|" + "---|---|" * len(modes)]
    for workload in WORKLOADS:
        plain = raw[f"cpu/{workload}/plain"]
        cells = [summary(plain, 2)]
        for mode in modes:
            rec = raw[f"cpu/{workload}/{mode}"]
            added = [100 * (b / a - 1) for a, b in zip(plain, rec, strict=True)]
            cells += [summary(rec, 2), f"{summary(added, 1)} %"]
        lines.append(f"| {workload} | {' | '.join(cells)} |")
    lines += ["",
              "Writer alone (one thread, in-process): lines from the frame's bytes (frame) or encoded from the "
              "parsed message (encode).", "",
              "| feed | compression | frame us/msg | encode us/msg | line bytes/msg | disk bytes/msg |",
              "|---|---|---|---|---|---|"]
    for workload in WORKLOADS:
        for mode in [*modes, "none"]:
            key = f"writer/{workload}/{mode}"
            lines.append(f"| {workload} | {mode} | {summary(raw[key + '/frame/us'], 1)} | "
                         f"{summary(raw[key + '/encode/us'], 1)} | {summary(raw[key + '/frame/line'])} | "
                         f"{summary(raw[key + '/frame/disk'])} |")
    lines += ["", f"Replay, speed=None, trades to one client: {summary(raw['replay/trades'])} msg/s"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
