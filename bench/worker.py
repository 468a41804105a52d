"""One client, one plan, in a fresh process: ``python -m bench.worker JOB_JSON``.

Prints one JSON line with the measurements on stdout. For ``reconnect`` plans it stays
subscribed until its stdin is closed (the parent does that once the blaster has timed
the resubscribe), since only the server can see the drop.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from bench import accelerators, drivers, probes
from bench.payloads import stamp_of_raw, subscriptions
from bench.plan import Plan


def _probe(client: str, plan: Plan, warmup: int) -> probes.Throughput | probes.Latency:
    if plan.mode == "paced":
        stamp_of = stamp_of_raw if client == "wsclient" else probes.message_stamp
        return probes.Latency(plan.frames, warmup, stamp_of)
    return probes.Throughput(max(plan.frames, warmup + 1), warmup)


def run(job: dict[str, Any]) -> dict[str, Any]:
    client, plan = job["client"], Plan.from_json(job["plan"])
    driver = drivers.make(client, plan.workload)
    driver.load()
    result: dict[str, Any] = {"client": client, "rss_idle": probes.rss_bytes()}
    probe = _probe(client, plan, int(job.get("warmup", 0)))
    setup_started = time.perf_counter()
    driver.start(job["base_url"], subscriptions(plan.workload), probe)
    result["setup_seconds"] = time.perf_counter() - setup_started
    result["rss_subscribed"] = probes.rss_bytes()
    try:
        if plan.mode == "reconnect":
            sys.stdin.read()  # until the parent closes it
        else:
            measured = driver.deliver(probe, plan.frames, float(job["seconds"]))
            result.update(measured if measured is not None else probe.result())
    finally:
        driver.close()
    return result


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # a benchmark must not pay for log output
    job = json.loads(sys.argv[1])
    missing = accelerators.missing(job["client"])
    if missing:
        result = {"client": job["client"], "error": f"needs pip install {' '.join(missing)}"}
    else:
        accelerators.restrict(job["client"])  # before anything imports a client library
        result = run(job)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
