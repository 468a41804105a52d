"""The aiohttp application behind ``LocalServer``: ``/ws``, ``/info``, ``/exchange``, ticker.

Every method runs on the server loop thread (``hlws-local-server``); ``LocalServer``
is the only way other threads reach it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from hyperliquid_ws.testing import feeds, scenarios
from hyperliquid_ws.testing.actions import answer_action
from hyperliquid_ws.testing.connection import Connection, Hub
from hyperliquid_ws.testing.dispatch import Dispatcher, Limits
from hyperliquid_ws.testing.events import Tick
from hyperliquid_ws.testing.info import InfoRequestError, answer_info
from hyperliquid_ws.testing.limits import WeightBudget
from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.replay_hook import ReplaySource
from hyperliquid_ws.testing.replies import GREETING, compact_json
from hyperliquid_ws.weights import BUDGET, ITEMS_PER_WEIGHT, request_weight

logger = logging.getLogger(__name__)

MAX_RECEIVED = 100_000
"""The log behind ``received()`` keeps this many client messages, so demos stay bounded."""
STOP_GRACE = 1.0
"""Seconds shutdown waits for clients to answer the close frame before cutting them off."""


class ServerApp:
    """Serves one port until ``request_stop``; holds the connections and the logs."""

    def __init__(
        self, market: Market, limits: Limits, *, host: str, port: int,
        tick_interval: float | None, idle_timeout: float, greeting: bool,
        on_change: Callable[[], None], max_connections: int = 100, ssl_context: ssl.SSLContext | None = None,
        replay: ReplaySource | None = None, info_budget: WeightBudget | None = None,
    ) -> None:
        self.market = market
        self.info_budget = info_budget or WeightBudget(BUDGET)
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.tick_interval = tick_interval
        self.idle_timeout = idle_timeout
        self.greeting = greeting
        self.hub = Hub(on_change)
        self.replay = replay  # plays a recording instead of ticking the market
        self.dispatcher = Dispatcher(self.hub, market, limits, replay)
        self.received: deque[tuple[int, object]] = deque(maxlen=MAX_RECEIVED)
        self.received_total = 0
        self.refusals: tuple[int, int, str | float | None] = (0, 503, None)  # (how many more, status, Retry-After)
        self.ssl_context = ssl_context
        self.max_connections = max_connections  # per IP; the real server allows 10
        self.connections_refused = 0
        self.info_failures: tuple[int, int] = (0, 500)  # (how many more, HTTP status)
        self._stopping: asyncio.Event | None = None

    async def serve(self, on_listening: Callable[[], None]) -> None:
        """Bind, call ``on_listening``, serve until ``request_stop``, then shut down."""
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/ws", self._handle_ws)
        app.router.add_post("/info", self._handle_info)
        app.router.add_post("/exchange", self._handle_exchange)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_GRACE)
        await runner.setup()
        ticker: asyncio.Task[None] | None = None
        try:
            site = web.TCPSite(runner, self.host, self.requested_port, ssl_context=self.ssl_context)
            await site.start()
            self.port = int(runner.addresses[0][1])
            if self.replay is not None:
                ticker = asyncio.ensure_future(self.replay.run(self.hub))
            elif self.tick_interval is not None:
                ticker = asyncio.ensure_future(self._tick_forever(self.tick_interval))
            on_listening()
            await self._stopping.wait()
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            await self.hub.stop_raw()  # first: no trickle may write after the close frames
            closing = self.hub.close_all(1001, "server shutting down")
            if closing:
                await asyncio.wait(closing, timeout=STOP_GRACE)
            self.hub.abort_all()
            await runner.cleanup()
            self.hub.cut_lingering()

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def advance(self, steps: int) -> None:
        """Step the market and push each tick's updates to every subscriber."""
        for _ in range(steps):
            await self.push_tick(self.market.step())

    async def trigger(self, event: str, options: dict[str, Any]) -> None:
        """Make a rare event happen (``scenarios``) and push it like a tick."""
        await self.push_tick(scenarios.trigger(self.market, event, options))

    async def push_tick(self, tick: Tick) -> None:
        for sub in self.hub.distinct_subscriptions().values():
            for data in feeds.tick_data(sub, self.market, tick):
                await self.hub.publish(sub, data)

    async def _tick_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.advance(1)
            except Exception:  # one bad tick must not stop the demo
                logger.exception("market tick failed")

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        remaining, status, retry_after = self.refusals
        if remaining > 0:
            self.refusals = (remaining - 1, status, retry_after)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return web.Response(status=status, text=f"{status} refused by the test", headers=headers)
        if len(self.hub.connections) >= self.max_connections:
            self.connections_refused += 1
            return web.Response(status=429, text="Too many connections")
        ws = web.WebSocketResponse(autoping=False, timeout=STOP_GRACE)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        conn = self.hub.open(ws, request.transport, loop.time())
        logger.debug("connection %d opened", conn.id)
        try:
            if self.greeting:
                await self.hub.send(conn, GREETING)
            await self._read(conn, loop)
        finally:
            self.hub.forget(conn)
            self.dispatcher.forget(conn)
            logger.debug("connection %d closed", conn.id)
        return ws

    async def _read(self, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        """Read one connection until it closes; close it after ``idle_timeout`` of silence."""
        ws = conn.ws
        while not ws.closed:
            remaining = self.idle_timeout - (loop.time() - conn.last_received)
            if remaining <= 0:
                if self.hub.silenced:  # half-open: never close anything
                    conn.last_received = loop.time()
                    continue
                logger.debug("connection %d idle, closing", conn.id)
                conn.closing = True
                await ws.close(code=1000, message=b"idle timeout")
                return
            try:
                message = await ws.receive(timeout=remaining)
            except asyncio.TimeoutError:
                continue
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                conn.last_received = loop.time()
                text = message.data if message.type == WSMsgType.TEXT else message.data.decode(
                    "utf-8", "replace")
                self._record(conn, text)
                if not self.hub.silenced:
                    await self.dispatcher.handle_text(conn, text)
            elif message.type == WSMsgType.PING:
                conn.last_received = loop.time()
                if not self.hub.silenced:
                    await ws.pong(message.data)
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                  WSMsgType.ERROR):
                return

    def _record(self, conn: Connection, text: str) -> None:
        try:
            parsed: object = json.loads(text)
        except ValueError:
            parsed = text
        self.received.append((conn.id, parsed))
        self.received_total += 1
        self.hub.changed()

    async def _handle_info(self, request: web.Request) -> web.Response:
        """``POST /info``, within the REST weight budget of the caller's IP (as live: HTTP
        429 beyond it; its body text is UNCONFIRMED, protocol.md §9.1)."""
        remaining, status = self.info_failures
        if remaining > 0:
            self.info_failures = (remaining - 1, status)
            return web.Response(status=status, text=f"{status} injected failure")
        ip = request.remote or "?"
        try:
            body: Any = json.loads(await request.text())
        except ValueError:
            return web.Response(status=422, text=InfoRequestError().text)
        if not self.info_budget.admit(ip, request_weight(body)):
            return web.Response(status=429, text="Too many requests")
        replay = self.replay
        response, result = self._answer_http(body, answer_info if replay is None else replay.answer_info)
        request_type = body.get("type") if isinstance(body, dict) else None
        per = ITEMS_PER_WEIGHT.get(request_type) if isinstance(request_type, str) else None
        if per is not None and isinstance(result, list):
            self.info_budget.charge(ip, len(result) // per)
        return response

    async def _handle_exchange(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.Response(status=422, text=InfoRequestError().text)
        return self._answer_http(body, answer_action)[0]

    def _answer_http(self, body: Any, answer: Callable[[Market, object], Any]) -> tuple[web.Response, Any]:
        """``answer``'s reply to the parsed ``body``, and the reply itself (None if refused)."""
        try:
            result = answer(self.market, body)
        except ValueError:
            return web.Response(status=422, text=InfoRequestError().text), None
        except InfoRequestError as refusal:
            return web.Response(status=refusal.status, text=refusal.text), None
        return web.Response(text=compact_json(result), content_type="application/json"), result
