"""Where hyperliquid_ws spends its time per frame (trades workload by default; --workload l2Book).

``python -m bench.profile_recv [--frames N] [--top K] [--py-spy]``

Default: cProfile, one profiler per thread (reader, dispatcher, ...), installed through
``threading.setprofile`` so it starts inside every thread the client creates, merged
at the end. cProfile's own per-call cost inflates small functions, so ``--py-spy``
also samples a separate worker process with ``py-spy --gil`` (if installed): only the
thread holding the GIL is sampled, which for a GIL-bound client is where time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.blaster import Blaster
from bench.payloads import subscriptions
from bench.plan import Plan
from bench.probes import Throughput
from bench.runner import child_env

AREAS = (  # (label, substring of the code's file path), first match wins
    ("websocket-client framing/socket", "/websocket/"),
    ("hyperliquid_ws", "/hyperliquid_ws/"),
    ("json", "/json/"),
    ("threading/locks", "threading.py"),
    ("bench probe (the callback)", "/bench/"),
)


def _area(filename: str) -> str:
    if filename == "~":
        return "builtins (recv, loads, lock, ...)"
    for label, marker in AREAS:
        if marker in filename:
            return label
    return "other Python"


class ThreadProfiles:
    """One cProfile.Profile per thread started while installed."""

    def __init__(self) -> None:
        self.profiles: list[tuple[str, cProfile.Profile]] = []
        self._lock = threading.Lock()

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append((threading.current_thread().name, profile))
        profile.enable()  # replaces this hook for the rest of the thread's life

    def install(self) -> None:
        threading.setprofile(self._hook)

    def uninstall(self) -> None:
        threading.setprofile(None)


def profile_ours(frames: int, workload: str = "trades") -> tuple[pstats.Stats, int, float, list[str]]:
    from hyperliquid_ws import HyperliquidWS

    with Blaster() as blaster:
        blaster.arm(Plan(workload, "blast", frames=frames))
        probe = Throughput(frames, warmup=1)
        profiles = ThreadProfiles()
        profiles.install()
        try:
            ws = HyperliquidWS(blaster.base_url, name="profile")
            for subscription in subscriptions(workload):
                ws.subscribe(subscription, probe)
            started = time.perf_counter()
            probe.done.wait(600)
            elapsed = time.perf_counter() - started
            ws.close()
        finally:
            profiles.uninstall()
    busy = [(name, p) for name, p in profiles.profiles if name.endswith(("-reader", "-dispatch"))]
    stats = pstats.Stats(busy[0][1])
    for _, profile in busy[1:]:
        stats.add(profile)
    return stats, probe.count, elapsed, [name for name, _ in busy]


def summarise(stats: pstats.Stats, frames: int, top: int) -> list[str]:
    every: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    # Blocking in Condition.wait is idle time, not work: leave it out of the shares.
    raw = {k: v for k, v in every.items() if k[2] != "<method 'acquire' of '_thread.lock' objects>"}
    waited = sum(v[2] for k, v in every.items() if k not in raw)
    total = sum(entry[2] for entry in raw.values())  # tottime: time inside the function itself
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)
    lines = [f"busy time {total:.2f} s = {total / frames * 1e6:.1f} us per frame over the reader and "
             f"dispatcher threads (cProfile overhead included; {waited:.2f} s blocked in lock waits left out)",
             "", "self time by area:"]
    areas: Counter[str] = Counter()
    for (filename, _, _), entry in raw.items():
        areas[_area(filename)] += entry[2]
    lines += [f"  {share / total:6.1%}  {share / frames * 1e6:5.2f} us/frame  {label}"
              for label, share in areas.most_common()]
    lines += ["", f"top {top} functions by self time (calls per frame, self %, cumulative % of all threads):"]
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in rows[:top]:
        where = "builtin" if filename == "~" else f"{Path(filename).parent.name}/{Path(filename).name}:{line}"
        lines.append(f"  {tottime / total:6.1%} self {cumtime / total:6.1%} cum  "
                     f"{ncalls / frames:5.2f}/frame  {name}  ({where})")
    return lines


def py_spy(frames: int, top: int, workload: str = "trades") -> list[str]:
    """Sample a fresh worker process (hyperliquid_ws, trades) with py-spy, all threads."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.path.exists(exe):
        return ["py-spy not installed (pip install py-spy)"]
    with Blaster() as blaster, tempfile.TemporaryDirectory() as tmp:
        plan = Plan(workload, "blast", frames=frames)
        blaster.arm(plan)
        job = json.dumps({"client": "ours", "plan": plan.to_json(), "base_url": blaster.base_url,
                          "seconds": 600, "warmup": 1000})
        out = Path(tmp) / "stacks.txt"
        done = subprocess.run([exe, "record", "--format", "raw", "--rate", "1000", "--gil", "-o", str(out),
                               "--", sys.executable, "-m", "bench.worker", job],
                              capture_output=True, text=True, env=child_env())
        if done.returncode != 0 or not out.exists():
            return [f"py-spy failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"]
        return _collapse(out.read_text(), top)


def _collapse(text: str, top: int) -> list[str]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if "Connection._read" not in stack and "Dispatcher._run" not in stack:
            continue  # start-up, subscribing and the main thread: not the receive path
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return ["py-spy: no samples on the receive path"]
    lines = [f"py-spy --gil samples on the receive path (reader + dispatcher, GIL held): {total}",
             "top by self samples:"]
    for name, n in own.most_common(top):
        lines.append(f"  {n / total:6.1%} self {inclusive[name] / total:6.1%} incl  {name}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_recv", description=__doc__)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--py-spy", action="store_true", help="also sample a worker with py-spy")
    parser.add_argument("--workload", default="trades", help="trades, l2Book or mix")
    args = parser.parse_args()
    stats, frames, elapsed, threads = profile_ours(args.frames, args.workload)
    print(f"# cProfile of hyperliquid_ws, {args.workload} workload: {frames:,} frames in {elapsed:.2f} s "
          f"({frames / elapsed:,.0f} frames/s under the profiler); threads: {', '.join(threads)}\n")
    print("\n".join(summarise(stats, frames, args.top)))
    if args.py_spy:
        print("\n# py-spy (sampling, no instrumentation overhead)\n")
        print("\n".join(py_spy(args.frames * 3, args.top, args.workload)))


if __name__ == "__main__":
    main()
