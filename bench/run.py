"""The benchmark suite: ``python -m bench`` or ``python bench/run.py`` [--quick] [--repeats N].

Starts the blaster in its own process, runs every client in a fresh process per run,
and prints the report (progress goes to stderr, the report to stdout).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sections
from bench.blaster import Blaster
from bench.report import machine, pick, ratio
from bench.runner import Runner, Settings

SECTIONS = ("throughput", "latency", "memory", "reconnect", "info")


def settings_from(args: argparse.Namespace) -> Settings:
    clients = (("ours", "pooled", "sdk", "ceiling") if importlib.util.find_spec("hyperliquid")
               else ("ours", "pooled", "ceiling"))
    if args.quick:
        return Settings(repeats=args.repeats or 1, box_seconds=1.5, latency_frames=10_000, latency_rate=5_000,
                        soak_frames=args.soak_frames or 100_000, reconnect_timeout=3.0, info_requests=100,
                        clients=clients)
    return Settings(repeats=args.repeats or 3, box_seconds=2.5, latency_frames=25_000, latency_rate=5_000,
                    soak_frames=args.soak_frames or 1_000_000, reconnect_timeout=5.0, info_requests=300,
                    clients=clients)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, one repeat, 100k-frame soak (~1 min)")
    parser.add_argument("--repeats", type=int, default=0, help="repeats per measurement (default 3, quick 1)")
    parser.add_argument("--soak-frames", type=int, default=0, help="frames in the memory soak (default 1,000,000)")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    return parser.parse_args(argv)


def ratios(runs: sections.Runs, lat: dict[str, list[dict[str, object]]]) -> list[str]:
    lines = ["## Ratios (medians)"]
    for workload, by_client in runs.items():
        ours = pick(by_client.get("ours", []), "rate")
        lines.append(f"- throughput {workload}: ours/SDK {ratio(ours, pick(by_client.get('sdk', []), 'rate'))}, "
                     f"ours/ceiling {ratio(ours, pick(by_client.get('ceiling', []), 'rate'))}")
    if lat:
        ours_p99, sdk_p99 = pick(lat.get("ours", []), "p99_us"), pick(lat.get("sdk", []), "p99_us")
        ours_p50, sdk_p50 = pick(lat.get("ours", []), "p50_us"), pick(lat.get("sdk", []), "p50_us")
        lines.append(f"- latency: SDK p99 / our p99 = {ratio(sdk_p99, ours_p99)}; "
                     f"SDK p50 / our p50 = {ratio(sdk_p50, ours_p50)} (above 1: ours is faster)")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    wanted = set(args.only or SECTIONS)
    started = time.monotonic()
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    report = ["# hyperliquid_ws benchmark", "", "```", *machine(), "```", "", f"Command: `{command.strip()}`", ""]
    raw: dict[str, object] = {"settings": settings.__dict__}
    runs: sections.Runs = {}
    lat: dict[str, list[dict[str, object]]] = {}
    with Blaster() as blaster:
        runner = Runner(blaster, settings)
        if wanted & {"throughput", "memory"}:
            check = sections.blaster_check(runner)
            runs = sections.throughput(runner)
            raw.update(blaster=check, throughput=runs)
            report += [*sections.render_blaster(check, runs), ""]
            if "throughput" in wanted:
                report += [*sections.render_throughput(runs, settings.repeats), ""]
        if "latency" in wanted:
            lat = sections.latency(runner)
            raw["latency"] = lat
            report += [*sections.render_latency(lat, settings), ""]
        if "memory" in wanted:
            soaked = sections.soak(runner)
            raw["soak"] = soaked
            report += [*sections.render_memory(runs, soaked, settings.soak_frames), ""]
        if "reconnect" in wanted:
            rec = sections.reconnect(runner)
            raw["reconnect"] = rec
            report += [*sections.render_reconnect(rec, settings.reconnect_timeout), ""]
    if "info" in wanted:
        info = sections.info(runner)
        raw["info"] = info
        report += [*sections.render_info(info), ""]
    report += [*ratios(runs, lat), "", f"Total wall time: {time.monotonic() - started:.0f} s"]
    print("\n".join(report))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
