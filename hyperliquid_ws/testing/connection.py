"""Open WebSocket connections and the fan-out of frames to them.

Everything here runs on the server loop thread; ``LocalServer`` reaches it from other
threads only through ``asyncio.run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Union

from aiohttp import web

from hyperliquid_ws.testing.raw import RawSend, RawWriter, Spawn
from hyperliquid_ws.testing.replies import compact_json, frame
from hyperliquid_ws.testing.subscriptions import channel_of, subscription_key, user_of

logger = logging.getLogger(__name__)

# Python 3.9 cannot evaluate "X | Y" at runtime, and this alias is evaluated.
Frame = Union[dict[str, Any], list[Any], str]  # noqa: UP007
"""What can be sent: a JSON value (serialised compactly) or raw text sent as-is."""

LINGER = 1.0
"""Seconds a closed connection's socket may keep flushing unsent bytes before it is cut."""


class Connection:
    """One client socket: its subscriptions, when it last spoke, its raw byte queue."""

    def __init__(self, conn_id: int, ws: web.WebSocketResponse, transport: Any, now: float,
                 spawn: Spawn) -> None:
        self.id = conn_id
        self.ws = ws
        self.transport = transport
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.last_received = now
        self.closing = False
        self.raw = RawWriter(conn_id, transport, spawn)

    async def send(self, message: Frame) -> bool:
        """Send one frame; False if the socket is already going away."""
        if self.closing or self.ws.closed:
            return False
        text = message if isinstance(message, str) else compact_json(message)
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError) as error:
            logger.debug("connection %d: send failed: %r", self.id, error)
            return False
        return True

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class Hub:
    """The set of open connections, the silence switch and subscription bookkeeping."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.connections: dict[int, Connection] = {}
        self.silenced = False
        self.stalled: set[str] = set()  # subscription keys whose frames are not pushed
        self._on_change = on_change
        self._next_id = 1
        self._background: set[asyncio.Task[Any]] = set()
        self._raw_tasks: set[asyncio.Task[None]] = set()
        self._raw_stopped = False
        self._lingering: set[Any] = set()  # transports of forgotten connections

    def open(self, ws: web.WebSocketResponse, transport: Any, now: float) -> Connection:
        conn = Connection(self._next_id, ws, transport, now, self._spawn_raw)
        self._next_id += 1
        self.connections[conn.id] = conn
        self._on_change()
        return conn

    def forget(self, conn: Connection) -> None:
        conn.raw.stop()  # a trickle ends with its connection
        if conn.transport is not None:
            # aiohttp closes the socket gracefully, after its write buffer drains. A client
            # that said goodbye but never reads again (say, after a flood of raw bytes) would
            # hold it open forever, past stop(): give it LINGER seconds, then cut it.
            self._lingering.add(conn.transport)
            asyncio.get_running_loop().call_later(LINGER, self._cut, conn.transport)
        if self.connections.pop(conn.id, None) is not None:
            self._on_change()

    def cut_lingering(self) -> None:
        """Shutdown: abort every socket still flushing after its connection ended."""
        for transport in list(self._lingering):
            self._cut(transport)

    def _cut(self, transport: Any) -> None:
        self._lingering.discard(transport)
        transport.abort()  # a no-op for a socket that has finished closing

    def changed(self) -> None:
        """Tell waiting threads that subscriptions or the received log changed."""
        self._on_change()

    def targets(self, conn_id: int | None) -> list[Connection]:
        if conn_id is None:
            return list(self.connections.values())
        conn = self.connections.get(conn_id)
        return [conn] if conn is not None else []

    async def send(self, conn: Connection, message: Frame) -> bool:
        """Send unless the server is silenced."""
        return False if self.silenced else await conn.send(message)

    async def push(self, message: Frame, conn_id: int | None = None) -> int:
        sent = 0
        for conn in self.targets(conn_id):
            sent += await self.send(conn, message)
        return sent

    async def publish(self, normalised: dict[str, Any], data: Any) -> int:
        """Send ``data`` on the subscription's channel to every connection holding it."""
        key = subscription_key(normalised)
        if key in self.stalled:
            return 0
        message = frame(channel_of(normalised), data)
        sent = 0
        for conn in list(self.connections.values()):
            if key in conn.subscriptions:
                sent += await self.send(conn, message)
        return sent

    def distinct_subscriptions(self) -> dict[str, dict[str, Any]]:
        held: dict[str, dict[str, Any]] = {}
        for conn in self.connections.values():
            held.update(conn.subscriptions)
        return held

    def subscription_count(self) -> int:
        return sum(len(conn.subscriptions) for conn in self.connections.values())

    def tracked_users(self) -> set[str]:
        users: set[str] = set()
        for conn in self.connections.values():
            users.update(u for u in map(user_of, conn.subscriptions.values()) if u is not None)
        return users

    def close_all(self, code: int, reason: str) -> list[asyncio.Task[Any]]:
        """Start a close handshake on every connection; return the tasks doing it.

        The close frame is written at once; the tasks then wait for the client's reply
        in the background, so a client that never reads cannot block the caller.
        """
        tasks = []
        for conn in list(self.connections.values()):
            if conn.closing or conn.ws.closed:
                continue
            conn.closing = True
            task = asyncio.ensure_future(conn.ws.close(code=code, message=reason.encode()))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            tasks.append(task)
        return tasks

    def send_raw(self, send: RawSend, conn_id: int | None = None) -> int:
        """Start ``send`` on every connection (or one), ignoring ``silenced``; return how many.

        A connection whose TCP transport is already closing is skipped, as is every
        connection once ``stop_raw`` has run (the server is shutting down).
        """
        if self._raw_stopped:
            return 0
        return sum(conn.raw.start(send) for conn in self.targets(conn_id))

    def stop_reading(self, conn_id: int | None = None) -> int:
        """Pause reading on every connection's (or one's) transport; return how many.
        aiohttp resumes only what it paused itself, so this pause lasts."""
        stopped = 0
        for conn in self.targets(conn_id):
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.pause_reading()
                stopped += 1
        return stopped

    def raw_busy(self, conn_id: int | None = None) -> int:
        """How many connections (of all, or ``conn_id``) still have raw bytes queued."""
        return sum(conn.raw.busy for conn in self.targets(conn_id))

    async def stop_raw(self) -> None:
        """Shutdown: cancel every trickle and wait until each task has finished."""
        self._raw_stopped = True
        for conn in self.connections.values():
            conn.raw.stop()
        tasks = list(self._raw_tasks)
        for task in tasks:  # also those of connections already forgotten, not yet finished
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn_raw(self, pump: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(pump)
        self._raw_tasks.add(task)
        task.add_done_callback(self._raw_tasks.discard)
        return task

    def abort_all(self, conn_id: int | None = None) -> int:
        conns = self.targets(conn_id)
        for conn in conns:
            conn.abort()
        return len(conns)
