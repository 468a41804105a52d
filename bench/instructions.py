"""Instructions per frame, counted by callgrind: ``python -m bench.instructions``.

Wall-clock figures on a shared 2-core machine move by 10-30 % from run to run;
instruction counts do not (callgrind counts the same for the same binary and input,
whatever else the machine is doing). Each client runs twice in a fresh worker under
``valgrind --tool=callgrind`` against the blaster, once for ``small`` and once for
``large`` frames; the difference of the totals divided by the difference of the frames
is the cost of one more frame, with start-up, connect and subscribe cancelled out.

Only the busiest thread is counted (callgrind's ``--separate-threads``): the thread that
reads and parses. Under callgrind a run takes ~50x longer, so threads that wake on a timer
(keepalive, the relay's poll) would otherwise add per-frame counts that do not exist at
full speed.

Counts miss what instructions do not show (cache misses, lock contention between
threads), so they complement the wall-clock rows of ``python -m bench``; they are the
figure to compare two versions of the receive path by.

    python -m bench.instructions --workload trades:1 --workload trades:1000 --client ours
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.blaster import Blaster
from bench.plan import Plan
from bench.runner import ROOT, child_env

_TOTAL = re.compile(rb"^summary:\s*(\d+)", re.MULTILINE)


def count(blaster: Blaster, client: str, workload: str, frames: int) -> dict[str, int]:
    """Instructions per thread (callgrind's thread number) of one worker that takes
    exactly ``frames`` frames."""
    plan = Plan(workload, "blast", frames=frames)
    blaster.arm(plan)
    job = {"client": client, "plan": plan.to_json(), "base_url": blaster.base_url, "seconds": 600, "warmup": 0}
    with tempfile.TemporaryDirectory() as out:
        profile = os.path.join(out, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", "--trace-children=no",
                        "--separate-threads=yes",
                        sys.executable, "-m", "bench.worker", json.dumps(job)],
                       check=True, capture_output=True, env={**child_env(), "PYTHONHASHSEED": "0"}, cwd=ROOT,
                       timeout=900)
        totals = {path.name.rpartition("-")[2]: int(m) for path in Path(out).glob("callgrind.out*")
                  for m in _TOTAL.findall(path.read_bytes())}
    if not totals:
        raise RuntimeError("callgrind wrote no totals")
    return totals


def per_frame(blaster: Blaster, client: str, workload: str, small: int, large: int) -> float:
    """The growth of the thread that grew most (the one reading), per extra frame."""
    few, many = count(blaster, client, workload, small), count(blaster, client, workload, large)
    return max(many[thread] - few.get(thread, 0) for thread in many) / (large - small)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", action="append", help="clients (default: ours)")
    parser.add_argument("--workload", action="append", help="workloads (default: trades:1 and trades:1000)")
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--large", type=int, default=25_000)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    clients, workloads = args.client or ["ours"], args.workload or ["trades:1", "trades:1000"]
    print(f"| workload | {' | '.join(clients)} |")
    print("|" + "---|" * (len(clients) + 1))
    with Blaster() as blaster:
        for workload in workloads:
            cells = [f"{per_frame(blaster, c, workload, args.small, args.large):,.0f}" for c in clients]
            print(f"| {workload} | {' | '.join(cells)} |", flush=True)
    print(f"\ninstructions per frame: (count at {args.large:,} frames - count at {args.small:,}) / "
          f"{args.large - args.small:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
