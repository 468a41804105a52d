"""The callbacks every client under test is given, and what they measure.

A probe is called once per data frame with whatever the client delivers (a dict for
the two clients, raw bytes for the ceiling loop). Its per-frame work is an increment
and a set lookup (throughput) or a clock read and an append (latency), the same for
every client, so it costs each of them the same.
"""

from __future__ import annotations

import os
import threading
import time
from array import array
from collections.abc import Callable
from typing import Any

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is in the benchmark venv
    psutil = None


def rss_bytes() -> int:
    """Resident set size of this process."""
    if psutil is not None:
        return int(psutil.Process().memory_info().rss)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Throughput:
    """Counts frames; times (wall and process CPU) frames ``warmup`` .. ``total``.

    Records RSS at the first frame (everything subscribed), at ``warmup`` and at the
    end. ``stop()`` ends a run early (time box) from another thread.
    """

    def __init__(self, total: int, warmup: int) -> None:
        self.total = total
        self.warmup = warmup
        self.count = 0
        self.done = threading.Event()
        self._marks = {1, warmup, total}
        self.rss_first = self.rss_warm = self.rss_end = 0
        self.t0 = self.t1 = self.cpu0 = self.cpu1 = 0.0
        self.end_count = 0

    def __call__(self, message: Any) -> None:
        self.count += 1
        if self.count in self._marks:
            self._mark(self.count)

    def _mark(self, count: int) -> None:
        if count == 1:
            self.rss_first = rss_bytes()
        if count == self.warmup:
            self.rss_warm = rss_bytes()
            self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        if count == self.total:
            self._finish(count)

    def _finish(self, count: int) -> None:
        self.t1, self.cpu1 = time.perf_counter(), time.process_time()
        self.end_count = count
        self.rss_end = rss_bytes()
        self.done.set()

    def stop(self) -> None:
        """The time box ran out: close the measurement where it stands."""
        if not self.done.is_set() and self.count > self.warmup:
            self._finish(self.count)

    def result(self) -> dict[str, Any]:
        frames = self.end_count - self.warmup
        if frames <= 0 or self.t1 <= self.t0:
            return {"frames": self.count, "error": "too few frames delivered"}
        return {
            "frames": frames,
            "seconds": self.t1 - self.t0,
            "rate": frames / (self.t1 - self.t0),
            "cpu_us_per_frame": (self.cpu1 - self.cpu0) / frames * 1e6,
            "rss_first": self.rss_first,
            "rss_growth": self.rss_end - self.rss_warm,
        }


class Latency:
    """Send stamp to callback, in ns, for every frame; ``warmup`` first ones dropped."""

    def __init__(self, total: int, warmup: int, stamp_of: Callable[[Any], int]) -> None:
        self.total = total
        self.warmup = warmup
        self.stamp_of = stamp_of
        self.samples = array("q")
        self.done = threading.Event()

    def __call__(self, message: Any) -> None:
        now = time.time_ns()
        self.samples.append(now - self.stamp_of(message))
        if len(self.samples) == self.total:
            self.done.set()

    def stop(self) -> None:
        self.done.set()

    def result(self) -> dict[str, Any]:
        kept = sorted(self.samples[self.warmup :])
        if not kept:
            return {"frames": len(self.samples), "error": "no frames after warm-up"}

        def pct(q: float) -> float:
            return kept[min(len(kept) - 1, int(q * len(kept)))] / 1e3  # microseconds

        return {"frames": len(kept), "p50_us": pct(0.50), "p99_us": pct(0.99), "p999_us": pct(0.999),
                "max_us": kept[-1] / 1e3, "complete": len(self.samples) >= self.total}


def message_stamp(message: Any) -> int:
    """The send stamp of a parsed stamped trades frame."""
    return int(message["data"][0]["time"])
