"""The soak server: the blaster's protocol, writing frames for a time, not a count.

Same wire behaviour as ``blaster.py`` (upgrade at ``/ws``, acks, pongs, unmasked
pre-encoded frames built by its ``FrameSource``), but a ``SoakPlan`` runs for
``seconds``: paced at ``rate`` frames/s in 5 ms ticks, or unpaced (``rate == 0``), where
every 256 KB chunk is written as soon as the client has read enough that fewer than 4 MB
wait in the server's buffer. It counts what it wrote and how long it waited for the
client (``drain_seconds``), so a run can tell a slow client from a slow server.

Control is plain HTTP on the same port: ``POST /arm`` (a ``SoakPlan`` as JSON),
``GET /result?wait=S``, ``POST /stop``. After the plan's time the connection stays open
and quiet (pongs only) until the client closes it.

Threads: none; one event loop (``select``, so 5 ms sleeps are kept to the millisecond).
``SoakServer`` is the parent's handle.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench import blaster, wire
from bench.blaster import CHUNK_BYTES, WRITE_BUFFER_HIGH, Blaster, FrameSource
from bench.payloads import compact, fill
from bench.report import ROOT
from bench.soak_plan import SoakPlan, soak_pool

TICK = 0.005  # seconds between paced writes


class SoakState:
    """The armed plan, its outcome, and one frame source per workload (kept across
    runs, so trade ids never repeat)."""

    def __init__(self) -> None:
        self.plan: SoakPlan | None = None
        self.result: dict[str, Any] = {}
        self.finished = asyncio.Event()
        self.stop = asyncio.Event()
        self.sources: dict[str, tuple[FrameSource, int]] = {}  # and frames per ~256 KB chunk

    def arm(self, plan: SoakPlan) -> None:
        self.plan = plan
        self.result = {"workload": plan.workload, "target_rate": plan.rate, "planned_seconds": plan.seconds}
        self.finished = asyncio.Event()
        if plan.workload not in self.sources:
            pool = soak_pool(plan.workload)
            mean = sum(len(wire.encode(p if isinstance(p, bytes) else fill(p, 0))) for p in pool) / len(pool)
            self.sources[plan.workload] = FrameSource(pool), max(1, int(CHUNK_BYTES / mean))

    def finish(self, **result: Any) -> None:
        self.result.update(result)
        self.finished.set()

    def arm_json(self, body: bytes) -> None:
        self.arm(SoakPlan.from_json(body))

    def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> SoakSession:
        return SoakSession(self, reader, writer)


class SoakSession:
    """One WebSocket connection."""

    def __init__(self, state: SoakState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.state = state
        self.plan = state.plan
        self.reader = reader
        self.writer = writer
        self.acked: set[bytes] = set()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        self.writer.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        frames = wire.ClientFrames()
        try:
            while data := await self.reader.read(65536):
                for opcode, payload in frames.feed(data):
                    if opcode == wire.OP_TEXT:
                        self.on_text(payload)
                    elif opcode == wire.OP_PING:
                        self.writer.write(wire.encode(payload, wire.OP_PONG))
                    elif opcode == wire.OP_CLOSE:
                        self.writer.write(wire.encode(payload[:2], wire.OP_CLOSE))
                        return
        except ConnectionError:
            pass
        finally:
            if self.task is not None and not self.task.done():
                self.task.cancel()
                self.state.finish(error="the client hung up before the end")
            self.writer.close()

    def on_text(self, payload: bytes) -> None:
        message = json.loads(payload)
        method = message.get("method")
        if method == "ping":
            self.writer.write(wire.encode(b'{"channel":"pong"}'))
        elif method in ("subscribe", "unsubscribe"):
            subscription = message.get("subscription")
            ack = {"channel": "subscriptionResponse", "data": {"method": method, "subscription": subscription}}
            self.writer.write(wire.encode(compact(ack)))
            if method == "subscribe":
                self.acked.add(compact(subscription))
                plan = self.plan
                if plan is not None and self.task is None and len(self.acked) == plan.expected_subscriptions:
                    self.task = asyncio.get_running_loop().create_task(self.soak(plan))

    async def soak(self, plan: SoakPlan) -> None:
        await asyncio.sleep(plan.start_delay)
        source, per_chunk = self.state.sources[plan.workload]
        loop = asyncio.get_running_loop()
        writer = self.writer
        sent = sent_bytes = 0
        drained = 0.0
        per_second: list[int] = []  # frames written in each second of the run
        started = loop.time()
        deadline = started + plan.seconds
        try:
            while (now := loop.time()) < deadline:
                n = per_chunk
                if plan.rate:
                    n = min(n, int((now - started) * plan.rate) - sent)
                    if n <= 0:
                        await asyncio.sleep(TICK)
                        continue
                for chunk in source.chunks(n):
                    writer.write(chunk)
                    sent_bytes += len(chunk)
                sent += n
                second = int(now - started)
                while len(per_second) <= second:
                    per_second.append(0)
                per_second[second] += n
                before = loop.time()
                await writer.drain()  # returns at once while less than 4 MB wait
                drained += loop.time() - before
        except ConnectionError:
            self.state.finish(error="the client hung up before the end", frames=sent, bytes=sent_bytes)
            return
        elapsed = loop.time() - started
        self.state.finish(frames=sent, bytes=sent_bytes, send_seconds=elapsed, rate=sent / elapsed,
                          drain_seconds=drained, unsent_buffer=writer.transport.get_write_buffer_size(),
                          per_second=per_second)


def serve() -> None:
    blaster.serve(SoakState)


class SoakServer(Blaster):
    """The parent's handle: ``Blaster``'s start/result/stop, running this module."""

    def start(self) -> SoakServer:
        root = str(ROOT)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen([sys.executable, "-m", "bench.soak_server"], stdout=subprocess.PIPE,
                                         text=True, env=env, cwd=root)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("the soak server process did not start")
        self.port = int(line)
        return self

    def __enter__(self) -> SoakServer:
        return self.start()

    def arm_soak(self, plan: SoakPlan) -> None:
        self._request("POST", "/arm", plan.to_json().encode())

    def wait_result(self, timeout: float) -> dict[str, Any]:
        """Long-poll until the plan has finished (or ``timeout``), in slices the HTTP
        timeout can bear."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.result(wait=min(30.0, max(0.0, deadline - time.monotonic())))
            if result.get("finished") or time.monotonic() >= deadline:
                return result


if __name__ == "__main__":
    serve()
