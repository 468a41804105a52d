"""The benchmark suite: ``python -m bench`` or ``python bench/run.py`` [--quick] [--repeats N].

Starts the blaster in its own process, runs every client in a fresh process per run,
and prints the report (progress goes to stderr, the report to stdout).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import accelerators, parsers, sections
from bench.blaster import Blaster
from bench.report import machine, pick, ratio
from bench.runner import Runner, Settings

SECTIONS = ("throughput", "latency", "memory", "reconnect", "info", "scaling", "parsers")
ALL_CLIENTS = ("ours", "ours_fast", "pooled", "sdk", "sdk_wsaccel", "wsclient", "raw", "raw_fast")


def available_clients() -> tuple[str, ...]:
    """Every client this venv can run: the SDK rows need hyperliquid-python-sdk, the
    accelerated rows their accelerator (see ``bench.accelerators``)."""
    sdk = accelerators.installed("hyperliquid")
    return tuple(c for c in ALL_CLIENTS
                 if (sdk or not c.startswith("sdk")) and not accelerators.missing(c))


def settings_from(args: argparse.Namespace) -> Settings:
    clients = available_clients()
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
    lines = ["## Ratios (medians, this run)"]
    for workload, by_client in runs.items():
        rate = {client: pick(client_runs, "rate") for client, client_runs in by_client.items()}
        lines.append(f"- throughput {workload}: ours/SDK {ratio(rate.get('ours'), rate.get('sdk'))}, "
                     f"ours/SDK+wsaccel {ratio(rate.get('ours'), rate.get('sdk_wsaccel'))}, "
                     f"ours/raw limit {ratio(rate.get('ours'), rate.get('raw'))}; "
                     f"fast/SDK+wsaccel {ratio(rate.get('ours_fast'), rate.get('sdk_wsaccel'))}, "
                     f"fast/raw limit (orjson) {ratio(rate.get('ours_fast'), rate.get('raw_fast'))}")
    if lat:
        p99 = {client: pick(client_runs, "p99_us") for client, client_runs in lat.items()}
        p50 = {client: pick(client_runs, "p50_us") for client, client_runs in lat.items()}
        lines.append(f"- latency: SDK p99 / our p99 = {ratio(p99.get('sdk'), p99.get('ours'))}, "
                     f"SDK+wsaccel p99 / our p99 = {ratio(p99.get('sdk_wsaccel'), p99.get('ours'))}; "
                     f"SDK p50 / our p50 = {ratio(p50.get('sdk'), p50.get('ours'))} (above 1: ours is faster)")
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
        if "scaling" in wanted:
            scaled = sections.scaling(runner)
            raw["scaling"] = scaled
            report += [*sections.render_scaling(scaled, settings.repeats), ""]
    if "parsers" in wanted:
        sections._progress("parsers")
        parsed = parsers.measure()
        raw["parsers"] = parsed
        report += [*parsers.render(parsed, 7), ""]
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
