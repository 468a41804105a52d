"""Launching client workers: every client, every run, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from bench.blaster import Blaster
from bench.plan import Plan
from bench.report import ROOT

_STARTUP_ALLOWANCE = 5.0  # seconds for a worker to start, connect and subscribe


def child_env() -> dict[str, str]:
    """The environment of every child: ``bench`` importable, output unbuffered."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Settings:
    repeats: int
    box_seconds: float  # time box of one throughput run
    latency_frames: int
    latency_rate: float
    soak_frames: int
    reconnect_timeout: float
    info_requests: int
    clients: tuple[str, ...]


class Runner:
    def __init__(self, blaster: Blaster, settings: Settings) -> None:
        self.blaster = blaster
        self.settings = settings

    def worker(self, client: str, plan: Plan, seconds: float, warmup: int = 0) -> dict[str, Any]:
        """Arm ``plan``, run ``client`` against it to completion, return its JSON."""
        self.blaster.arm(plan)
        job = {"client": client, "plan": plan.to_json(), "base_url": self.blaster.base_url,
               "seconds": seconds, "warmup": warmup}
        done = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(job)], capture_output=True,
                              text=True, env=child_env(), cwd=ROOT, timeout=seconds + 120)
        return _parse(client, done.stdout, done.stderr)

    def reconnect(self, client: str, plan: Plan) -> dict[str, Any]:
        """Run ``client`` subscribed to ``plan``; the blaster drops it and times the comeback."""
        self.blaster.arm(plan)
        job = {"client": client, "plan": plan.to_json(), "base_url": self.blaster.base_url}
        process = subprocess.Popen([sys.executable, "-m", "bench.worker", json.dumps(job)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                                   cwd=ROOT)
        try:
            # Long-polls until the blaster saw everything re-acknowledged, or gives up:
            # worker start-up + the wait before the drop + the allowed restore time.
            server = self.blaster.result(wait=_STARTUP_ALLOWANCE + plan.drop_after + self.settings.reconnect_timeout)
            restore = server.get("restore_seconds")
            if restore is not None and restore > self.settings.reconnect_timeout:
                restore = None
            stdout, stderr = process.communicate("", timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        result = _parse(client, stdout, stderr)
        result["restore_seconds"] = restore
        return result


def _parse(client: str, stdout: str, stderr: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
        return result
    except (IndexError, ValueError):
        tail = stderr.strip().splitlines()[-1:] or ["no output"]
        return {"client": client, "error": tail[0][:200]}
