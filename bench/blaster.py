"""The frame blaster: a minimal Hyperliquid-speaking server in its own process.

It does the WebSocket upgrade at ``/ws``, acknowledges subscribes, answers pings, and
once every subscription of the armed ``Plan`` is acknowledged, writes frames: pre-encoded
and batched (``blast``), stamped and paced (``paced``), or drops the link and times the
resubscribe (``reconnect``). One asyncio loop, raw streams, no framework, so the server
is far faster than any Python client it feeds.

Control is plain HTTP on the same port: ``POST /arm`` (a ``Plan`` as JSON) before a
run, ``GET /result?wait=S`` after it (long-polls until the plan has finished),
``POST /stop``.

Threads: none; the process runs one event loop. ``Blaster`` is the parent's handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench import wire
from bench.payloads import PoolItem, StampedTrades, Template, compact, fill, frame_pool
from bench.plan import Plan

CHUNK_BYTES = 256 * 1024
WRITE_BUFFER_HIGH = 4 * 1024 * 1024


class FrameSource:
    """A pool of frames, cycled, handed out as large contiguous chunks.

    Fixed payloads are encoded once; trade templates get their header once (their
    width never changes) and a fresh ``time``/``tid`` per frame, from a counter that
    keeps running across runs, so no client ever sees the same trade twice.
    """

    def __init__(self, pool: list[PoolItem]) -> None:
        self._items: list[tuple[bytes, ...]] = [
            (wire.encode(item),) if isinstance(item, bytes) else _with_header(item) for item in pool
        ]
        self._fixed = all(len(item) == 1 for item in self._items)
        mean = sum(len(fill(i, 0)) if len(i) == 3 else len(i[0]) for i in self._items) / len(self._items)
        self._batch = max(1, int(CHUNK_BYTES / mean))
        self._pos = 0
        self._seq = 0
        if self._fixed:
            frames = [item[0] for item in self._items] * max(1, self._batch // len(self._items))
            self._blob = b"".join(frames)
            self._blob_frames = len(frames)
            self._offsets = [0]
            for frame in frames:
                self._offsets.append(self._offsets[-1] + len(frame))

    def chunks(self, count: int) -> Iterator[bytes]:
        """Exactly ``count`` frames, as few large byte strings as possible."""
        if self._fixed:
            full, rest = divmod(count, self._blob_frames)
            for _ in range(full):
                yield self._blob
            if rest:
                yield self._blob[: self._offsets[rest]]
            return
        while count > 0:
            n = min(count, self._batch)
            count -= n
            yield self._build(n)

    def _build(self, n: int) -> bytes:
        items, size = self._items, len(self._items)
        pos, seq = self._pos, self._seq
        parts = []
        for _ in range(n):
            item = items[pos]
            pos = pos + 1 if pos + 1 < size else 0
            if len(item) == 1:
                parts.append(item[0])
            else:
                parts.append(fill(item, seq))  # type: ignore[arg-type]
                seq += 1
        self._pos, self._seq = pos, seq
        return b"".join(parts)


def _with_header(template: Template) -> Template:
    length = len(fill(template, 0))
    header = wire.encode(b"x" * length)[:-length]
    return header + template[0], template[1], template[2]


def mean_frame_bytes(workload: str) -> float:
    """Average encoded size (header included) of the frames ``workload`` blasts."""
    frames = [wire.encode(p if isinstance(p, bytes) else fill(p, 0)) for p in frame_pool(workload)]
    return sum(map(len, frames)) / len(frames)


class State:
    """What the loop knows across connections: the armed plan and its outcome."""

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.result: dict[str, Any] = {}
        self.finished = asyncio.Event()
        self.stop = asyncio.Event()
        self.sources: dict[str, FrameSource] = {}
        self.drop_ns: int | None = None
        self.connections = 0

    def arm(self, plan: Plan) -> None:
        self.plan = plan
        self.result = {"mode": plan.mode, "workload": plan.workload}
        self.finished = asyncio.Event()
        self.drop_ns = None
        self.connections = 0
        if plan.mode == "blast" and plan.workload not in self.sources:
            self.sources[plan.workload] = FrameSource(frame_pool(plan.workload))

    def finish(self, **result: Any) -> None:
        self.result.update(result)
        self.finished.set()

    def arm_json(self, body: bytes) -> None:
        self.arm(Plan.from_json(body))

    def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Session:
        return Session(self, reader, writer)


class Session:
    """One WebSocket connection."""

    def __init__(self, state: State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.state = state
        self.plan = state.plan
        self.reader = reader
        self.writer = writer
        self.acked: set[bytes] = set()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        self.state.connections += 1
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
            if self.task is not None:
                self.task.cancel()
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
                    self.task = asyncio.get_running_loop().create_task(self.all_acknowledged(plan))

    async def all_acknowledged(self, plan: Plan) -> None:
        if plan.mode == "blast":
            await self.blast(plan)
        elif plan.mode == "paced":
            await self.paced(plan)
        else:
            await self.reconnect(plan)

    async def blast(self, plan: Plan) -> None:
        started = time.perf_counter()
        sent = 0
        for chunk in self.state.sources[plan.workload].chunks(plan.frames):
            self.writer.write(chunk)
            sent += len(chunk)
            await self.writer.drain()
        elapsed = time.perf_counter() - started
        self.state.finish(frames=plan.frames, bytes=sent, send_seconds=elapsed)

    async def paced(self, plan: Plan) -> None:
        stamped = StampedTrades()
        loop = asyncio.get_running_loop()
        interval = 1.0 / plan.rate
        start = loop.time()
        late = 0
        for i in range(plan.frames):
            if self.writer.transport.is_closing():  # the client went away: stop pacing into nothing
                break
            delay = start + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.001:
                late += 1
            self.writer.write(wire.encode(stamped.build(time.time_ns())))
            if self.writer.transport.get_write_buffer_size() > WRITE_BUFFER_HIGH:
                await self.writer.drain()
        self.state.finish(frames=plan.frames, send_seconds=loop.time() - start, late_sends=late)

    async def reconnect(self, plan: Plan) -> None:
        state = self.state
        if state.drop_ns is None:
            await asyncio.sleep(plan.drop_after)
            state.drop_ns = time.time_ns()
            self.writer.transport.abort()
        else:
            state.finish(restore_seconds=(time.time_ns() - state.drop_ns) / 1e9,
                         connections=state.connections)


async def _respond(writer: asyncio.StreamWriter, status: str, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                 "Connection: close\r\n\r\n".encode() + data)
    await writer.drain()
    writer.close()


async def _control(state: Any, method: str, target: str, body: bytes, writer: asyncio.StreamWriter) -> None:
    """The control endpoints of a ``State`` (or of another server's state with the same
    ``arm_json``, ``result``, ``finished``, ``stop`` and ``session``)."""
    url = urlsplit(target)
    if method == "POST" and url.path == "/arm":
        state.arm_json(body)
        await _respond(writer, "200 OK", {"armed": True})
    elif method == "GET" and url.path == "/result":
        wait = float(parse_qs(url.query).get("wait", ["0"])[0])
        if wait > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(state.finished.wait(), wait)
        await _respond(writer, "200 OK", {"finished": state.finished.is_set(), **state.result})
    elif method == "POST" and url.path == "/stop":
        await _respond(writer, "200 OK", {"stopping": True})
        state.stop.set()
    else:
        await _respond(writer, "404 Not Found", {"error": f"no {method} {url.path}"})


async def _serve_connection(state: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
        return
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
    key = headers.get("sec-websocket-key")
    if key is not None and urlsplit(target).path == "/ws":
        writer.write(wire.handshake_response(key))
        await state.session(reader, writer).run()
        return
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    await _control(state, method, target, body, writer)


async def _main(make_state: Callable[[], Any]) -> None:
    state = make_state()
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(state, r, w), "127.0.0.1", 0, limit=1 << 20)
    print(server.sockets[0].getsockname()[1], flush=True)  # tells the parent the port
    async with server:
        await state.stop.wait()


def serve(make_state: Callable[[], Any] = State) -> None:
    """Process entry point. ``select`` (not epoll) so paced sleeps resolve in microseconds."""
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(_main(make_state))
    finally:
        loop.close()


class Blaster:
    """The parent's handle on a blaster process: start, arm, read results, stop."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Blaster:
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen([sys.executable, "-m", "bench.blaster"], stdout=subprocess.PIPE,
                                         text=True, env=env, cwd=root)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("the blaster process did not start")
        self.port = int(line)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def arm(self, plan: Plan) -> None:
        self._request("POST", "/arm", plan.to_json().encode())

    def result(self, wait: float = 0.0) -> dict[str, Any]:
        return self._request("GET", f"/result?wait={wait}", timeout=wait + 10)

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(OSError):
            self._request("POST", "/stop")
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()
        self._process = None

    def __enter__(self) -> Blaster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _request(self, method: str, path: str, body: bytes | None = None, timeout: float = 10) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            result: dict[str, Any] = json.loads(response.read())
            return result
        finally:
            connection.close()


if __name__ == "__main__":
    serve()
