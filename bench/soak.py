"""The soak benchmark: ``python -m bench.soak`` [--seconds S] [--only A|B|B-bounded] [--json FILE].

Long runs at a steady load, watching the client's memory. Each scenario is a fresh
client process (``soak_worker.py``) fed by the soak server (``soak_server.py``, its own
process, over loopback); this process samples the client's RSS from outside.

  A          1,000 feeds (250 coins x trades/l2Book/bbo/candle), as fast as the client
             reads them, callbacks doing a little work; default client settings.
  B          10 trades feeds at a combined 16,000 frames/s, every callback sleeping 5 ms,
             ``callback_threads=2``: consumers that can never keep up (400 messages/s).
             Only the per-feed ``lane_limit`` bounds the backlog (a ``max_backlog``, where
             the client has one, is set out of reach).
  B-bounded  B with ``max_backlog`` (the client-wide bound on messages waiting for
             callbacks; default: the client's default), if ``HyperliquidWS`` has it.

Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench.report import ROOT, machine, mb, num, table
from bench.runner import child_env
from bench.soak_plan import SLOW_FEEDS, SoakPlan
from bench.soak_server import SoakServer

SCENARIOS = ("A", "B", "B-bounded")


@dataclass(frozen=True)
class Scenario:
    key: str
    plan: SoakPlan
    settings: dict[str, Any]
    sleep_ms: float
    about: str  # what the settings are, in words


@dataclass
class Outcome:
    scenario: Scenario
    worker: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    samples: list[tuple[float, int]] = field(default_factory=list)
    server_cpu_seconds: float = 0.0
    blast_started: float = 0.0  # on the sampler's clock
    error: str = ""

    def rss_at(self, fraction: float) -> int | None:
        """The sampled RSS nearest ``fraction`` of the way through the server's writing."""
        if not self.samples:
            return None
        when = self.blast_started + fraction * self.scenario.plan.seconds
        return min(self.samples, key=lambda sample: abs(sample[0] - when))[1]


def client_defaults() -> dict[str, Any]:
    """``HyperliquidWS``'s defaults for the knobs B is about; ``max_backlog`` is absent
    from versions that do not have it."""
    from hyperliquid_ws import HyperliquidWS

    parameters = inspect.signature(HyperliquidWS).parameters
    return {name: parameters[name].default for name in ("lane_limit", "max_backlog") if name in parameters}


class Sampler:
    """Samples a process's RSS every ``interval`` seconds on a thread of this process;
    kills the process if it passes ``limit`` bytes (the machine is shared)."""

    def __init__(self, pid: int, interval: float, limit: int) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.limit = limit
        self.samples: list[tuple[float, int]] = []
        self.killed = False
        self._stop = threading.Event()
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="soak-rss-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join(5)
        return self.samples

    def _run(self) -> None:
        while True:
            try:
                rss = int(self.process.memory_info().rss)
            except psutil.Error:
                return  # the process has exited
            self.samples.append((time.monotonic() - self.started, rss))
            if rss > self.limit and not self.killed:
                self.killed = True
                self.process.kill()
            if self._stop.wait(self.interval):
                return


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)
    into.put("")


def _next_event(lines: queue.Queue[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return {"error": f"no answer from the worker within {timeout:g} s"}
        if not line:
            return {"error": "the worker exited"}
        if line.startswith("{"):
            event: dict[str, Any] = json.loads(line)
            return event


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def run_scenario(server: SoakServer, scenario: Scenario, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(scenario)
    server.arm_soak(scenario.plan)
    job = {"base_url": server.base_url, "workload": scenario.plan.workload, "settings": scenario.settings,
           "sleep_ms": scenario.sleep_ms}
    server_process = psutil.Process(server.pid)
    with tempfile.TemporaryFile("w+") as stderr:
        worker = subprocess.Popen([sys.executable, "-m", "bench.soak_worker", json.dumps(job)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=stderr, text=True, env=child_env(), cwd=ROOT)
        assert worker.stdout is not None and worker.stdin is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(worker.stdout, lines), name="soak-worker-stdout", daemon=True).start()
        sampler = Sampler(worker.pid, args.sample_interval, args.rss_limit_mib << 20).start()
        try:
            subscribed = _next_event(lines, 180)
            outcome.worker.update(subscribed)
            outcome.blast_started = time.monotonic() - sampler.started + scenario.plan.start_delay
            if "error" not in subscribed:
                cpu0 = _cpu(server_process)
                plan = scenario.plan
                outcome.server = server.wait_result(plan.start_delay + plan.seconds + 60)
                outcome.server_cpu_seconds = _cpu(server_process) - cpu0
                try:
                    worker.stdin.write("stop\n")
                    worker.stdin.flush()
                except OSError:
                    pass  # it is already gone; the next event says so
                outcome.worker.update(_next_event(lines, 180))
            worker.wait(60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            outcome.samples = sampler.stop()
            stderr.seek(0)
            tail = stderr.read().strip().splitlines()[-1:]
        if sampler.killed:
            outcome.error = f"killed at RSS > {args.rss_limit_mib} MiB"
        elif "error" in outcome.worker:
            outcome.error = outcome.worker["error"] + (f": {tail[0][:160]}" if tail else "")
        elif "error" in outcome.server:
            outcome.error = str(outcome.server["error"])
    return outcome


def scenarios(args: argparse.Namespace) -> tuple[list[Scenario], list[str]]:
    """The scenarios to run, and notes for those that cannot be.

    B is the case ``max_backlog`` was made for: only the per-feed ``lane_limit`` bounds
    it. Where the client has ``max_backlog``, B passes one that cannot bind (ten lanes'
    worth of ``lane_limit``), so B still shows the unbounded case; B-bounded passes
    ``--max-backlog``, by default the client's own default, i.e. B as installed.
    """
    wanted = args.only or list(SCENARIOS)
    defaults = client_defaults()
    out, notes = [], []
    for key in SCENARIOS:
        if key not in wanted:
            continue
        if key == "A":
            out.append(Scenario("A", SoakPlan("mix", args.seconds, args.rate_a), {}, 0.0, "defaults"))
            continue
        plan = SoakPlan("slow10", args.seconds, args.rate_b)
        settings: dict[str, Any] = {"callback_threads": 2}
        if key == "B":
            text = "lane_limit only"
            if "max_backlog" in defaults:
                settings["max_backlog"] = SLOW_FEEDS * int(defaults.get("lane_limit", 100_000))
                text += ": max_backlog = 10 x lane_limit, never reached"
            out.append(Scenario("B", plan, settings, args.sleep_ms, text))
        elif "max_backlog" not in defaults:
            notes.append("B-bounded: not available (this HyperliquidWS has no max_backlog keyword)")
        else:
            settings["max_backlog"] = args.max_backlog or defaults["max_backlog"]
            text = "the default" if settings["max_backlog"] == defaults["max_backlog"] else "not the default"
            out.append(Scenario("B-bounded", plan, settings, args.sleep_ms, text))
    return out, notes


def _settings_text(scenario: Scenario) -> str:
    parts = [f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in scenario.settings.items()]
    return ", ".join(parts) + f" ({scenario.about})" if parts else scenario.about


def _describe(scenario: Scenario) -> str:
    plan = scenario.plan
    feeds = {"mix": "1,000 feeds (250 coins x trades/l2Book/bbo/candle 1m), callbacks do a little work",
             "slow10": "10 trades feeds, callbacks sleep"}[plan.workload]
    if scenario.sleep_ms:
        feeds += f" {scenario.sleep_ms:g} ms"
    return f"{feeds}; {_settings_text(scenario)}"


def _limited_by(outcome: Outcome) -> str:
    """Who set the rate: the server's schedule, the client reading (the server waited
    on it), or the server's own CPU."""
    server, plan = outcome.server, outcome.scenario.plan
    elapsed, rate = server.get("send_seconds"), server.get("rate")
    if not elapsed or rate is None:
        return "n/a"
    waited = server.get("drain_seconds", 0.0) / elapsed
    busy = outcome.server_cpu_seconds / elapsed
    if plan.rate and rate >= 0.98 * plan.rate:
        return f"on schedule (server CPU {busy:.0%})"
    if waited > 0.1:
        return f"client (server waited {waited:.0%} of the time, CPU {busy:.0%})"
    return f"server? (waited {waited:.0%}, CPU {busy:.0%})"


def figures(o: Outcome) -> dict[str, Any]:
    """The derived numbers of one run (``None`` where a part of it failed)."""
    w, s = o.worker, o.server
    elapsed = s.get("send_seconds") or o.scenario.plan.seconds
    sent, delivered, received = s.get("frames"), w.get("delivered"), w.get("received")
    dropped = sum(w["drop_counters"].values()) if "drop_counters" in w else None
    backlog = unread = None
    if sent is not None and delivered is not None and received is not None and dropped is not None:
        backlog = received - delivered - dropped  # parsed, neither delivered nor dropped
        unread = sent - received  # in socket buffers, or still being parsed
    half, end = o.rss_at(0.5), w.get("rss_end")
    return {
        "seconds": elapsed,
        "sent": sent,
        "sent_per_s": sent / elapsed if sent is not None else None,
        "delivered": delivered,
        "delivered_per_s": delivered / elapsed if delivered is not None else None,
        "dropped": dropped,
        "backlog": backlog,
        "unread": unread,
        "client_cpu": w["cpu_seconds"] / elapsed if "cpu_seconds" in w else None,
        "rss_start": w.get("rss_start"),
        "rss_peak": max([rss for _, rss in o.samples] + [end or 0]) if o.samples else end,
        "rss_end": end,
        "rss_growth_second_half": end - half if half and end else None,
        "rss_after_close": w.get("rss_after_close"),
        "rss_after_trim": w.get("rss_after_trim"),
        "close_seconds": w.get("close_seconds"),
    }


def render(outcomes: list[Outcome], notes: list[str], seconds: float) -> list[str]:
    traffic, memory, remarks = [], [], []
    for o in outcomes:
        f, w, key = figures(o), o.worker, o.scenario.key
        target = f"{o.scenario.plan.rate:,.0f}/s" if o.scenario.plan.rate else "max"
        cpu = num(f["client_cpu"] * 100 if f["client_cpu"] is not None else None, ".0f", "%")
        traffic.append([key, num(f["seconds"], ".1f"), target, num(f["sent"]),
                        num(f["sent_per_s"]), num(f["delivered"]), num(f["delivered_per_s"]), num(f["dropped"]),
                        num(f["backlog"]), num(f["unread"]), cpu, _limited_by(o)])
        memory.append([key, *(mb(f[k]) for k in ("rss_start", "rss_peak", "rss_end", "rss_growth_second_half",
                                                   "rss_after_close", "rss_after_trim")),
                       num(f["close_seconds"], ".2f", " s"), o.error])
        nonzero = {k: v for k, v in w.get("drop_counters", {}).items() if v}
        if nonzero:
            remarks.append(f"- {key} drops by counter: " + ", ".join(f"{k} {v:,}" for k, v in nonzero.items()))
        if (f["backlog"] or 0) > 1000 and f["rss_end"] and f["rss_start"]:
            size, per = w.get("message_deep_bytes"), (f["rss_end"] - f["rss_start"]) / f["backlog"]
            remarks.append(f"- {key}: (RSS end - start) / backlog = {per:,.0f} B per message"
                           + (f" (one parsed message, deep sizeof: {size:,} B)" if size else "")
                           + f"; stats() said {(w.get('queues') or {}).get('dispatch', 0):,} waiting and "
                           f"{w.get('client_delivered', 0):,} delivered")
        if w.get("clients_alive_after_close"):
            remarks.append(f"- {key}: the client was still reachable after close(); 'after close()' includes what "
                           "it held")
    legend = [f"- {o.scenario.key}: {_describe(o.scenario)}" for o in outcomes]
    return [f"## Soak: {seconds:g} s per scenario", *legend, "",
            *table(["scenario", "seconds", "target", "sent", "sent/s", "delivered", "delivered/s",
                    "dropped", "backlog", "unread", "client CPU", "rate set by"], traffic), "",
            *table(["scenario", "RSS start", "RSS peak", "RSS end", "end - half-time", "after close()",
                    "after malloc_trim", "close()", "note"], memory),
            *remarks, *(f"- {note}" for note in notes)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the server writes, per scenario")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these scenarios (repeatable)")
    parser.add_argument("--rate-a", type=float, default=0.0, help="A's frames/s (0: as fast as the client reads)")
    parser.add_argument("--rate-b", type=float, default=16_000.0, help="B's combined frames/s over its 10 feeds")
    parser.add_argument("--sleep-ms", type=float, default=5.0, help="B's callbacks sleep this long per message")
    parser.add_argument("--max-backlog", type=int, default=None,
                        help="B-bounded's max_backlog (default: the client's default)")
    parser.add_argument("--sample-interval", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--rss-limit-mib", type=int, default=4096, help="kill a client that grows past this")
    parser.add_argument("--json", type=Path, help="also write the raw results (with RSS timelines) here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    chosen, notes = scenarios(args)
    defaults = client_defaults()
    bound_text = (f"available, default {defaults['max_backlog']!r}" if "max_backlog" in defaults
                  else "not available")
    command = "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    report = ["# hyperliquid_ws soak", "", "```", *machine(), f"max_backlog    {bound_text}", "```", "",
              f"Command: `{command.strip()}`", ""]
    load_before = os.getloadavg()
    outcomes = []
    with SoakServer() as server:
        for scenario in chosen:
            print(f"  .. soak {scenario.key}: {_settings_text(scenario)}, {args.seconds:g} s", file=sys.stderr,
                  flush=True)
            outcomes.append(run_scenario(server, scenario, args))
    load = f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after (this run's processes included)"
    report += [*render(outcomes, notes, args.seconds), "", f"Load average (1 min): {load}",
               f"Total wall time: {time.monotonic() - started:.0f} s"]
    print("\n".join(report))
    if args.json:
        raw = {"machine": machine(), "load": load, "max_backlog": bound_text,
               "args": {k: str(v) for k, v in vars(args).items()},
               "scenarios": [{"key": o.scenario.key, "plan": json.loads(o.scenario.plan.to_json()),
                              "settings": o.scenario.settings, "sleep_ms": o.scenario.sleep_ms,
                              "figures": figures(o), "server": o.server, "server_cpu_seconds": o.server_cpu_seconds,
                              "worker": o.worker,
                              "rss_samples": [(round(t, 2), rss) for t, rss in o.samples], "error": o.error}
                             for o in outcomes],
               "notes": notes}
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
