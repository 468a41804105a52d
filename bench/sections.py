"""The report's sections: each measures through the ``Runner`` and renders its table.

Client order is rotated on every repeat so no client always runs first (or last, with
the blaster's caches warmest).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from typing import Any

from bench.blaster import mean_frame_bytes
from bench.plan import Plan
from bench.report import LABELS, RAW_LIMIT, ROOT, mb, num, pick, ratio, spread, table
from bench.runner import Runner, child_env

WORKLOADS = {
    "trades": "trades, ~300 B frames, 1 feed",
    "l2Book": "l2Book, ~1.6 KB frames (20 levels a side), 1 feed",
    "mix": "mix of trades/bbo/l2Book/candle over 1,000 feeds (250 coins)",
}
BLAST_FRAMES = 20_000_000  # more than any client takes in a time box; the client hangs up first
WARMUP_FRAMES = 2_000
SCALING_FEEDS = ("trades:1", "trades:10", "trades:100", "trades:1000",
                 "l2Book:1", "l2Book:10", "l2Book:100", "l2Book:1000")
SCALING_SIZES = {"trades": "0.3 KB", "l2Book": "1.6 KB", "l2Book+200": "16 KB", "l2Book+2000": "160 KB"}
LATENCY_CLIENTS = ("ours", "pooled", "sdk", "sdk_wsaccel", "wsclient", "raw")
SOAK_CLIENTS = ("ours", "ours_fast", "sdk_wsaccel", "wsclient")  # the SDK as shipped takes ~2 min per 1M frames
SCALING_CLIENTS = {"feeds": ("ours", "ours_fast", "sdk_wsaccel"),
                   "sizes": ("ours", "ours_fast", "sdk_wsaccel", "raw", "raw_fast")}
Runs = dict[str, dict[str, list[dict[str, Any]]]]


def _rotated(clients: tuple[str, ...], turn: int) -> list[str]:
    k = turn % len(clients)
    return list(clients[k:] + clients[:k])


def _progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# -- the blaster's own rate ---------------------------------------------------------------

def blaster_check(runner: Runner) -> dict[str, dict[str, Any]]:
    seconds = min(runner.settings.box_seconds, 1.0)
    _progress("blaster self-check")
    return {w: runner.worker("wire", Plan(w, "blast", frames=BLAST_FRAMES // 4), seconds) for w in WORKLOADS}


def render_blaster(check: dict[str, dict[str, Any]], runs: Runs) -> list[str]:
    rows = []
    for workload, result in check.items():
        fastest = max((pick(r, "rate") or 0.0 for r in runs[workload].values()), default=0.0) or None
        rows.append([workload, num(result.get("rate")), num(result.get("mbytes_per_s"), ",.0f", " MB/s"),
                     num(fastest), ratio(result.get("rate"), fastest)])
    return ["## The blaster (server) alone: raw recv_into, no WebSocket parsing",
            *table(["workload", "frames/s", "bytes", "fastest client frames/s", "blaster / fastest"], rows)]


# -- throughput, CPU, RSS with 1,000 feeds ----------------------------------------------

def throughput(runner: Runner) -> Runs:
    runs: Runs = defaultdict(lambda: defaultdict(list))
    settings = runner.settings
    for repeat in range(settings.repeats):
        for workload in WORKLOADS:
            for client in _rotated(settings.clients, repeat):
                _progress(f"throughput {workload} {client} (repeat {repeat + 1}/{settings.repeats})")
                plan = Plan(workload, "blast", frames=BLAST_FRAMES)
                runs[workload][client].append(runner.worker(client, plan, settings.box_seconds, WARMUP_FRAMES))
    return runs


def render_throughput(runs: Runs, repeats: int) -> list[str]:
    rows = []
    for workload, by_client in runs.items():
        sdk, sdk_wsaccel = pick(by_client.get("sdk", []), "rate"), pick(by_client.get("sdk_wsaccel", []), "rate")
        for client, client_runs in by_client.items():
            rate = pick(client_runs, "rate")
            raw = pick(by_client.get(RAW_LIMIT.get(client, "raw"), []), "rate")
            errors = [r["error"] for r in client_runs if "error" in r]
            rows.append([workload, LABELS[client], num(rate), spread(client_runs, "rate"),
                         num(pick(client_runs, "cpu_us_per_frame"), ".1f"), ratio(rate, sdk),
                         ratio(rate, sdk_wsaccel), ratio(rate, raw), errors[0] if errors else ""])
    lines = [f"## Throughput to the callback (median of {repeats}, spread min-max)"]
    lines += [f"- {name}: {text}" for name, text in WORKLOADS.items()]
    lines += ["- vs raw limit: against our frame reader + the same parser (stdlib json, or orjson for the "
              "fast rows) with no routing, dedupe or lanes"]
    lines += ["", *table(["workload", "client", "frames/s", "spread", "CPU us/frame", "vs SDK", "vs SDK+wsaccel",
                          "vs raw limit", "note"], rows)]
    return lines


# -- scaling: cost per frame by feed count and by frame size ----------------------------

def _warmup(workload: str) -> int:
    """2,000 frames, or fewer for big frames (about 3 MB of warm-up, at least 20)."""
    return max(20, min(WARMUP_FRAMES, int(3e6 / mean_frame_bytes(workload))))


def scaling(runner: Runner) -> dict[str, Runs]:
    settings = runner.settings
    groups = {"feeds": SCALING_FEEDS, "sizes": tuple(SCALING_SIZES)}
    out: dict[str, Runs] = {}
    for group, workloads in groups.items():
        clients = tuple(c for c in SCALING_CLIENTS[group] if c in settings.clients)
        runs: Runs = defaultdict(lambda: defaultdict(list))
        for repeat in range(settings.repeats):
            for workload in workloads:
                for client in _rotated(clients, repeat):
                    _progress(f"scaling {workload} {client} (repeat {repeat + 1}/{settings.repeats})")
                    plan = Plan(workload, "blast", frames=BLAST_FRAMES)
                    runs[workload][client].append(runner.worker(client, plan, settings.box_seconds,
                                                                _warmup(workload)))
        out[group] = runs
    return out


def _us_per_frame(client_runs: list[dict[str, Any]]) -> float | None:
    rate = pick(client_runs, "rate")
    return 1e6 / rate if rate else None


def render_scaling(result: dict[str, Runs], repeats: int) -> list[str]:
    lines = [f"## Scaling: wall-clock us per frame (1e6 / frames per second; median of {repeats})"]
    for group, runs in result.items():
        clients = list(dict.fromkeys(c for by_client in runs.values() for c in by_client))
        rows = []
        for workload, by_client in runs.items():
            label = SCALING_SIZES.get(workload, workload) if group == "sizes" else workload
            rows.append([label, *(num(_us_per_frame(by_client.get(c, [])), ".2f") for c in clients)])
        if group == "feeds":
            for kind in ("trades", "l2Book"):
                one, many = runs.get(f"{kind}:1", {}), runs.get(f"{kind}:1000", {})
                rows.append([f"{kind} 1,000 feeds / 1 feed",
                             *(ratio(_us_per_frame(many.get(c, [])), _us_per_frame(one.get(c, []))) for c in clients)])
        title = "by feed count (frames spread evenly over the feeds)" if group == "feeds" else "by frame size"
        lines += ["", f"### {title}", *table([group, *(LABELS[c] for c in clients)], rows)]
    return lines


# -- latency ------------------------------------------------------------------------------

def latency(runner: Runner) -> dict[str, list[dict[str, Any]]]:
    settings = runner.settings
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    plan = Plan("latency", "paced", frames=settings.latency_frames, rate=settings.latency_rate)
    warmup = int(settings.latency_rate * 0.5)
    clients = tuple(c for c in LATENCY_CLIENTS if c in settings.clients)
    for repeat in range(settings.repeats):
        for client in _rotated(clients, repeat):
            _progress(f"latency {client} (repeat {repeat + 1}/{settings.repeats})")
            seconds = settings.latency_frames / settings.latency_rate + 10
            runs[client].append(runner.worker(client, plan, seconds, warmup))
    return runs


def render_latency(runs: dict[str, list[dict[str, Any]]], settings: Any) -> list[str]:
    rows = []
    for client, client_runs in runs.items():
        rows.append([LABELS[client], num(pick(client_runs, "p50_us")), num(pick(client_runs, "p99_us")),
                     num(pick(client_runs, "p999_us")), num(pick(client_runs, "max_us"))])
    seconds = settings.latency_frames / settings.latency_rate
    return [f"## Latency, server send stamp to callback, at {settings.latency_rate:,.0f} trades frames/s "
            f"for {seconds:.0f} s (first 0.5 s dropped; median of {settings.repeats})",
            *table(["client", "p50 us", "p99 us", "p99.9 us", "max us"], rows)]


# -- memory -------------------------------------------------------------------------------

def soak(runner: Runner) -> dict[str, dict[str, Any]]:
    frames = runner.settings.soak_frames
    plan = Plan("soak", "blast", frames=frames)
    out = {}
    for client in (c for c in SOAK_CLIENTS if c in runner.settings.clients):
        _progress(f"soak {client} ({frames:,} frames)")
        out[client] = runner.worker(client, plan, seconds=900, warmup=min(10_000, frames // 10))
    return out


def render_memory(runs: Runs, soaked: dict[str, dict[str, Any]], frames: int) -> list[str]:
    rows = []
    for client, result in soaked.items():
        mix = runs["mix"].get(client, [])
        rows.append([LABELS[client], mb(pick(mix, "rss_idle")), mb(pick(mix, "rss_first")),
                     mb(result.get("rss_growth")), num(result.get("rate")), result.get("error", "")])
    return [f"## Memory (RSS). Growth: after a {frames:,}-frame trades soak, from frame 10,000 (or 10%) to the last",
            *table(["client", "idle (imported)", "1,000 feeds subscribed", f"growth over {frames:,} frames",
                    "soak frames/s", "note"], rows)]


# -- reconnect ----------------------------------------------------------------------------

def reconnect(runner: Runner) -> dict[str, list[dict[str, Any]]]:
    plan = Plan("reconnect", "reconnect")
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for client in ("ours", "sdk"):
        if client not in runner.settings.clients:
            continue
        # The SDK never reconnects, so one run (which waits out the whole timeout) is enough.
        for repeat in range(runner.settings.repeats if client == "ours" else 1):
            _progress(f"reconnect {client} (repeat {repeat + 1})")
            runs[client].append(runner.reconnect(client, plan))
    return runs


def render_reconnect(runs: dict[str, list[dict[str, Any]]], timeout: float) -> list[str]:
    rows = []
    for client, client_runs in runs.items():
        restored = [r.get("restore_seconds") for r in client_runs]
        value = pick(client_runs, "restore_seconds")
        shown = f"{value * 1e3:,.0f} ms" if value is not None else f"never (waited {timeout:g} s)"
        if value is not None and None in restored:
            shown += f" ({restored.count(None)} of {len(restored)} never)"
        rows.append([LABELS[client], shown, str(len(client_runs))])
    return ["## Reconnect: server drops the link; time until all 100 subscriptions are re-acknowledged",
            *table(["client", "median restore time", "runs"], rows)]


# -- info round trip ----------------------------------------------------------------------

def info(runner: Runner) -> dict[str, Any]:
    _progress("info round trip (LocalServer)")
    server = subprocess.Popen([sys.executable, "-m", "bench.info_rtt", "serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        done = subprocess.run([sys.executable, "-m", "bench.info_rtt", "measure", f"http://127.0.0.1:{port}",
                               str(runner.settings.info_requests)], capture_output=True, text=True,
                              env=child_env(), cwd=ROOT, timeout=300)
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    except (ValueError, IndexError, subprocess.SubprocessError) as exc:
        return {"error": repr(exc)}
    finally:
        server.communicate("", timeout=30)


def render_info(result: dict[str, Any]) -> list[str]:
    names = {"ws_info": "ws.info (post over the socket)", "requests_post": "requests.post /info (new connection)",
             "session_post": "requests.Session().post /info (keep-alive)"}
    rows = []
    for key, name in names.items():
        row = result.get(key, {"skipped": result.get("error", "n/a")})
        if "skipped" in row:
            rows.append([name, row["skipped"], ""])
        else:
            rows.append([name, num(row["p50_ms"], ".2f", " ms"), num(row["p99_ms"], ".2f", " ms")])
    ws, post = result.get("ws_info", {}), result.get("requests_post", {})
    lines = ["## Info round trip, l2Book BTC, against hyperliquid_ws.testing.LocalServer",
             *table(["method", "p50", "p99"], rows)]
    if "p50_ms" in ws and "p50_ms" in post:
        lines.append(f"requests.post p50 / ws.info p50 = {ratio(post['p50_ms'], ws['p50_ms'])}")
    return lines
