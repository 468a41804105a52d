"""Turning raw run results into the printed report: machine header, medians, ratios."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LABELS = {"ours": "hyperliquid_ws (default install)",
          "ours_fast": "hyperliquid_ws + orjson (fast extra)",
          "pooled": "hyperliquid_ws, callback_threads=2",
          "sdk": "official SDK as shipped", "sdk_wsaccel": "official SDK + wsaccel",
          "wsclient": "websocket-client recv loop",
          "raw": "raw limit: our frame reader + stdlib json", "raw_fast": "raw limit: our frame reader + orjson",
          "wire": "blaster (raw recv_into)"}
RAW_LIMIT = {"ours_fast": "raw_fast", "raw_fast": "raw_fast"}
"""The raw limit each client is held against: the one with the same parser (default ``raw``)."""


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hyperliquid_ws"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in hyperliquid_ws/' if dirty else ''}"


def machine() -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"CPU            {_cpu_model()}, {os.cpu_count()} cores ({usable} usable)",
        f"OS             {platform.system()} {platform.release()}",
        f"Python         {platform.python_version()} ({platform.python_implementation()})",
        f"websocket-client {_version('websocket-client')}, "
        f"hyperliquid-python-sdk {_version('hyperliquid-python-sdk')}, requests {_version('requests')}",
        "accelerators   " + ", ".join(f"{name} {_version(name)}" for name in ("orjson", "msgspec", "wsaccel"))
        + " (each worker hides those its client must run without: bench/accelerators.py)",
        f"hyperliquid_ws {_version('hyperliquid-ws')} at {_git_state()}",
    ]


def median(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def num(value: float | None, fmt: str = ",.0f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{suffix}"


def mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MiB"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)) + " |"

    return [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]


def pick(runs: list[dict[str, Any]], key: str) -> float | None:
    return median(run.get(key) for run in runs if "error" not in run)


def spread(runs: list[dict[str, Any]], key: str, fmt: str = ",.0f") -> str:
    """``min-max`` of ``key`` over the runs that have it (the noise behind a median)."""
    values = [run[key] for run in runs if "error" not in run and run.get(key) is not None]
    if len(values) < 2:
        return ""
    return f"{min(values):{fmt}}-{max(values):{fmt}}"
