"""The receive path in stages, in-process: ``python -m bench.hotpath``.

No socket and no threads: the client's own ``Router``, ``Registry`` and ``Dispatcher``
(wired as ``link.py`` wires them, callbacks on the calling thread) take batches of 800
pre-built frames, one batch per socket read as the connection hands them over. Each
stage adds one step to the one before:

``parse``  the parser the client uses (orjson with the ``fast`` extra, else the stdlib)
``route``  + ``Router.handle_all``: find the entry, stamp it, dedupe (trades) and batch
``serve``  + ``Router.flush`` and ``Dispatcher.serve``: queue on the lanes, run the callback

The cost of a stage is its total minus the one before it. ``--instructions`` counts
them with callgrind (deterministic on a busy machine: two runs of different lengths, the
difference per frame); the default times them (median of ``--repeats`` batches, in us,
and the spread). Workloads: ``trades:N`` (one trade a frame, round robin over N coins)
and ``l2Book:N`` (20 levels a side).

    python -m bench.hotpath --workload trades:1 --workload trades:1000 --instructions
    python -m bench.hotpath --read-bytes 16384 --instructions   # in reads as the client makes them

``--read-bytes N`` cuts each batch into socket reads of at most N bytes (the client reads
``frames.CHUNK``, 16 KiB: about 50 trades or 10 books), each routed, queued and served
in turn, so the per-read costs are shared as in the client; by default a batch is one
read, which shares them over 800 frames and flatters them.

``--record`` measures what recording adds to the ``serve`` stage instead: a second
plain callback on each feed (``second``: the shared entry's fan-out, for comparison), a
``Recorder``'s ``FrameTap`` queueing each message (``queue``: called inline by the
router, lines never written), and the whole recorder with its lines built and written
on the same thread (``none``, ``gzip``, ``gzip-zlib``: the flush thread's work, done inline after each
batch; ``gzip`` deflates through ISA-L when the ``isal`` extra is installed,
``gzip-zlib`` always through stdlib zlib, as a default install does).

    python -m bench.hotpath --workload trades:1 --record --instructions
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.payloads import l2book_frame

STAGES = ("gen", "parse", "route", "serve")  # gen: building the frames alone, subtracted
RECORD = ("serve", "second", "queue", "none", "gzip", "gzip-zlib")  # --record: serve plus each of these
BATCH = 800  # frames a batch: one socket read unless ``READ_BYTES`` cuts it into several
READ_BYTES = 0  # bytes a socket read brings at most (``--read-bytes``; 0: the whole batch is one read)
_TOTAL = re.compile(rb"^summary:\s*(\d+)", re.MULTILINE)


class _Owner:
    def unsubscribe(self, subscription: Any) -> None:
        pass

    def _link_problem(self, entry: Any) -> None:
        return None


_INSTALLED_DEFLATE: Any = None  # codec.deflate as installed (ISA-L with the isal extra), before any row changed it


def _use_deflate(extra: str) -> None:
    """``gzip-zlib``: stdlib zlib, as a default install writes, even with the isal extra
    installed; every other row: the deflate the codec picked (rows run one after another
    in one process when timed)."""
    import zlib

    from hyperliquid_ws.recording import codec

    global _INSTALLED_DEFLATE
    if _INSTALLED_DEFLATE is None:
        _INSTALLED_DEFLATE = codec.deflate
    codec.deflate = zlib if extra == "gzip-zlib" else _INSTALLED_DEFLATE


class Path:
    """One connection's receive side with N feeds subscribed and acknowledged; ``extra``:
    what else listens on each feed (one of ``RECORD``)."""

    def __init__(self, workload: str, extra: str = "serve") -> None:
        from hyperliquid_ws.dispatch import Dispatcher, Ready
        from hyperliquid_ws.feeds import canonical
        from hyperliquid_ws.guard import FrameGuard
        from hyperliquid_ws.registry import Registry
        from hyperliquid_ws.router import Router, loads

        kind, _, feeds = workload.partition(":")
        self.kind, self.loads = kind, loads
        self.dispatcher = Dispatcher("hotpath", None, threads=0)
        self.ready = Ready()
        registry = Registry()
        self.router = Router(registry, self.dispatcher, None, FrameGuard("hotpath"), self.ready)
        self.coins = [f"C{n}" for n in range(int(feeds or 1))]
        self.delivered = 0
        for coin in self.coins:
            feed, form = canonical({"type": kind, "coin": coin})
            registry.add(_Owner(), feed, form, {"type": kind, "coin": coin}, self._callback)
        self.recorder: Any = None
        self._add_listeners(registry, extra)
        registry.claim_all(1)
        for entry in registry.entries():
            entry.acknowledged()
        self._tids = itertools.count(10**14)
        self._books: list[bytes] = []

    def _callback(self, message: Any) -> None:
        self.delivered += 1

    def _add_listeners(self, registry: Any, extra: str) -> None:
        from hyperliquid_ws.feeds import canonical
        from hyperliquid_ws.recording import recorder

        class Client:  # what a Recorder needs of a client, on this registry
            def subscribe(self, sub: dict[str, Any], callback: Any, allow_unknown: bool = False) -> Any:
                feed, form = canonical(sub)
                return registry.add(_Owner(), feed, form, dict(sub), callback)[0]

            def unsubscribe(self, handle: Any) -> None:
                pass

        subs = [{"type": self.kind, "coin": coin} for coin in self.coins]
        if extra == "second":
            for sub in subs:
                Client().subscribe(sub, self._callback)
        elif extra in ("queue", "none", "gzip", "gzip-zlib"):
            _use_deflate(extra)
            recorder.DRAIN_EVERY = 10**6  # the flush thread never looks: run() drains, on this thread
            self.recorder = recorder.Recorder(tempfile.mkdtemp(), client=Client(),  # type: ignore[arg-type]
                                              compression="none" if extra == "queue" else extra.removesuffix("-zlib"),
                                              flush_interval=10**6)
            if extra == "queue":
                self.recorder._drain = self.recorder._pending.clear
            for sub in subs:
                self.recorder.record(sub)

    def frames(self) -> list[bytes]:
        coins = self.coins
        if self.kind == "l2Book":
            if not self._books:
                rng = random.Random(1)
                self._books = [json.dumps(l2book_frame(rng, coin), separators=(",", ":")).encode() for coin in coins]
            return [self._books[n % len(coins)] for n in range(BATCH)]
        out = []
        for n in range(BATCH):
            tid = next(self._tids)
            out.append(b'{"channel":"trades","data":[{"coin":"%s","side":"B","px":"97000.5","sz":"0.01",'
                       b'"time":%d,"hash":"0x%064x","tid":%d,"users":["0x%040x","0x%040x"]}]}'
                       % (coins[n % len(coins)].encode(), 1_700_000_000_000 + tid, tid, tid, 1, 2))
        return out

    def run(self, stage: str, reads: list[list[bytes]]) -> None:
        """``reads``: the batch as socket reads (``split``)."""
        if stage == "parse":
            loads = self.loads
            for frames in reads:
                for frame in frames:
                    loads(frame)
        elif stage == "route":
            for frames in reads:
                self.router.handle_all(frames)
                self.router._batch.clear()
        elif stage == "serve":
            for frames in reads:
                self.router.handle_all(frames)
                self.router.flush()
                self.dispatcher.serve(self.ready)
            if self.recorder is not None:
                self.recorder._drain()


def split(frames: list[bytes]) -> list[list[bytes]]:
    """The batch as the socket reads that would bring it: each at most ``READ_BYTES``
    (at least one frame), or one read of all (``READ_BYTES`` 0)."""
    if not READ_BYTES:
        return [frames]
    reads: list[list[bytes]] = [[]]
    size = 0
    for frame in frames:
        if reads[-1] and size + len(frame) > READ_BYTES:
            reads.append([])
            size = 0
        reads[-1].append(frame)
        size += len(frame)
    return reads


def timed(workload: str, stage: str, repeats: int) -> list[float]:
    """us per frame of each of ``repeats`` batches (frames built outside the timing);
    ``stage``: one of ``STAGES``, or ``serve+<extra>`` (``RECORD``)."""
    stage, _, extra = stage.partition("+")
    path = Path(workload, extra or "serve")
    out = []
    for _ in range(repeats):
        reads = split(path.frames())
        started = time.perf_counter()
        path.run(stage, reads)
        out.append((time.perf_counter() - started) / BATCH * 1e6)
    return out


def _instructions(workload: str, stage: str, batches: int) -> int:
    with tempfile.TemporaryDirectory() as out:
        profile = os.path.join(out, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", sys.executable,
                        "-m", "bench.hotpath", "--run", f"{workload},{stage},{batches},{READ_BYTES}"],
                       check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        with open(profile, "rb") as file:
            match = _TOTAL.search(file.read())
    if match is None:
        raise RuntimeError("callgrind wrote no total")
    return int(match.group(1))


def counted(workload: str, stage: str) -> float:
    """Instructions per frame: (a run of 25 batches - a run of 5) / 20 batches."""
    return (_instructions(workload, stage, 25) - _instructions(workload, stage, 5)) / (20 * BATCH)


def _run_batches(spec: str) -> None:
    global READ_BYTES
    workload, stage, batches, read_bytes = spec.split(",")
    READ_BYTES = int(read_bytes)
    stage, _, extra = stage.partition("+")
    path = Path(workload, extra or "serve")
    for _ in range(int(batches)):
        reads = split(path.frames())
        if stage != "gen":
            path.run(stage, reads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", action="append", help="trades:N or l2Book:N (default trades:1, trades:1000)")
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument("--repeats", type=int, default=200, help="timed batches per stage")
    parser.add_argument("--record", action="store_true", help="what recording adds to serve (see above)")
    parser.add_argument("--read-bytes", type=int, default=0,
                        help="cut each batch into socket reads of at most this many bytes, as the client "
                             "reads (hyperliquid_ws.frames.CHUNK: 16384); 0: the whole batch as one read")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # one callgrind child
    args = parser.parse_args(argv)
    global READ_BYTES
    READ_BYTES = args.read_bytes
    if args.run:
        _run_batches(args.run)
        return 0
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    unit = "instructions" if args.instructions else "us (median [min-max of the middle 80%])"
    if args.record:
        return _record_table(args.workload or ["trades:1", "l2Book:1"], args.instructions, args.repeats, unit)
    print(f"| workload | parse | + route and dedupe | + queue and callback | all, {unit} per frame |")
    print("|---|---|---|---|---|")
    for workload in args.workload or ["trades:1", "trades:1000"]:
        if args.instructions:
            totals = {stage: counted(workload, stage) for stage in STAGES}
            cells = [totals["parse"] - totals["gen"], totals["route"] - totals["parse"],
                     totals["serve"] - totals["route"], totals["serve"] - totals["gen"]]
            print(f"| {workload} | " + " | ".join(f"{c:,.0f}" for c in cells) + " |", flush=True)
            continue
        runs = {stage: sorted(timed(workload, stage, args.repeats)) for stage in STAGES[1:]}
        medians = {stage: statistics.median(values) for stage, values in runs.items()}
        cells = [medians["parse"], medians["route"] - medians["parse"], medians["serve"] - medians["route"]]
        whole = runs["serve"][len(runs["serve"]) // 10 : -len(runs["serve"]) // 10 or None]
        print(f"| {workload} | " + " | ".join(f"{c:.2f}" for c in cells)
              + f" | {medians['serve']:.2f} [{whole[0]:.2f}-{whole[-1]:.2f}] |", flush=True)
    reads = f"in socket reads of at most {READ_BYTES:,} bytes" if READ_BYTES else "as one socket read"
    print(f"\n{BATCH} frames a batch, {reads}; the client's own router and dispatcher, "
          "callbacks on the same thread; frames built outside the measurement.")
    return 0


def _record_table(workloads: list[str], instructions: bool, repeats: int, unit: str) -> int:
    from hyperliquid_ws.recording import codec

    deflate = codec.deflate.__name__  # before the gzip-zlib rows point it at zlib
    print(f"| workload | serve, {unit} per frame | + a second callback | + Recorder, queue only "
          "| + Recorder, lines (none) | + Recorder, lines (gzip) | + Recorder, lines (gzip, stdlib zlib) |")
    print("|---|---|---|---|---|---|---|")
    for workload in workloads:
        if instructions:
            gen = counted(workload, "gen")
            cost = {extra: counted(workload, f"serve+{extra}") - gen for extra in RECORD}
        else:
            cost = {extra: statistics.median(timed(workload, f"serve+{extra}", repeats)) for extra in RECORD}
        serve = cost["serve"]
        cells = [f"{cost[e]:,.0f} (+{100 * (cost[e] / serve - 1):.0f}%)" if instructions
                 else f"{cost[e]:.2f} (+{100 * (cost[e] / serve - 1):.0f}%)" for e in RECORD[1:]]
        print(f"| {workload} | {serve:,.{0 if instructions else 2}f} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{BATCH} frames a batch; the recorder's lines built and written on the same thread after "
          f"each batch (its flush thread's work, done inline); gzip through {deflate}, "
          "then through stdlib zlib.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
