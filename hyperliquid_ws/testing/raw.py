"""Raw bytes on a connection's TCP transport, bypassing aiohttp's frame writer.

``RawSend`` is one ``LocalServer.send_raw`` call, checked on the caller's thread.
``RawWriter`` is one connection's queue of them; it runs on the server loop thread
(``hlws-local-server``) and writes straight to the asyncio transport.

Why the bytes never land inside a frame aiohttp is writing: the loop is one thread, and
aiohttp writes each uncompressed frame with back-to-back ``transport.write`` calls and no
``await`` between them (a compressed frame is compressed first, then written the same
way). Each raw write is one ``transport.write`` of one chunk, so frames and chunks are
atomic with respect to each other. The converse is the caller's business: aiohttp's own
frames (replies, ticks, its automatic close reply) may land between two chunks, inside a
frame the raw bytes began; ``LocalServer.silence()`` stops all but the close reply.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

logger = logging.getLogger(__name__)

HIGH_WATER = 64 * 1024
"""Bytes: a trickle waits while the transport holds more than this, unsent (a client
that stops reading must not make a ``repeat=None`` trickle grow the server's memory)."""
ROOM_POLL = 0.01
"""Seconds between looks at the transport's buffer while a trickle waits for room.
Polled because aiohttp's protocol owns the transport's pause/resume callbacks."""

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class RawSend:
    """The bytes of one ``send_raw`` call and how they go out; immutable once checked.

    ``data``: the bytes (a copy is kept). ``chunk_size``: bytes per write, or None for
    all of ``data`` in one write. ``interval``: seconds between one write and the next,
    within the call (between chunks and between repetitions). ``repeat``: how many times
    ``data`` is sent, or None for no end.
    """

    __slots__ = ("chunk_size", "data", "interval", "repeat")

    def __init__(self, data: bytes, *, chunk_size: int | None = None, interval: float = 0.0,
                 repeat: int | None = 1) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__} "
                            "(encode text first, or build a frame with wire.encode_frame)")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)):
            raise TypeError(f"chunk_size must be an int or None, got {chunk_size!r}")
        if isinstance(repeat, bool) or not (repeat is None or isinstance(repeat, int)):
            raise TypeError(f"repeat must be an int, or None for no end; got {repeat!r}")
        self.data = bytes(data)
        if not self.data:
            raise ValueError("data must not be empty")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1 byte, got {chunk_size}")
        if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval >= 0):
            raise ValueError(f"interval must be a finite number of seconds >= 0, got {interval!r}")
        if repeat is not None and repeat < 1:
            raise ValueError(f"repeat must be at least 1, or None for no end; got {repeat}")
        self.chunk_size = chunk_size
        self.interval = float(interval)
        self.repeat = repeat

    @property
    def single_write(self) -> bool:
        """True when everything goes out in one write, so no background task is needed."""
        return self.repeat == 1 and (self.chunk_size is None or self.chunk_size >= len(self.data))

    def writes(self) -> Iterator[bytes]:
        """The chunks in order, each one ``transport.write``; endless when ``repeat`` is None."""
        size = self.chunk_size or len(self.data)
        chunks = [self.data[start:start + size] for start in range(0, len(self.data), size)]
        sent = 0
        while self.repeat is None or sent < self.repeat:
            yield from chunks
            sent += 1


class _Pending:
    __slots__ = ("interval", "writes", "written")

    def __init__(self, send: RawSend) -> None:
        self.writes = send.writes()
        self.interval = send.interval
        self.written = 0


class RawWriter:
    """One connection's raw sends, written in call order. Loop thread only.

    The first write of a send made while nothing is queued happens inside ``start``,
    so it is on the transport before the control call returns; everything else runs in
    one background task made by ``spawn``, which ends when the queue empties, when the
    transport closes, or at ``stop()``.
    """

    def __init__(self, conn_id: int, transport: Any, spawn: Spawn) -> None:
        self._conn_id = conn_id
        self._transport = transport  # asyncio.Transport, or None if aiohttp had none
        self._spawn = spawn
        self._queue: deque[_Pending] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        """The TCP connection is closing or gone (either side), so writes are pointless."""
        return self._transport is None or self._transport.is_closing()

    @property
    def busy(self) -> bool:
        """A send is still queued or trickling."""
        return bool(self._queue)

    def start(self, send: RawSend) -> bool:
        """Write ``send`` now, or queue it behind earlier sends; False if the socket is closed."""
        if self.closed:
            return False
        pending = _Pending(send)
        if not self._queue:
            self._write(pending, next(pending.writes))
            if send.single_write:
                return True
        self._queue.append(pending)
        if self._task is None:
            self._task = self._spawn(self._pump())
        return True

    def stop(self) -> None:
        """Drop every queued send and cancel the trickle; the task ends at the next loop turn."""
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _pump(self) -> None:
        try:
            await self._write_queue()
        except Exception:  # one failed write must not leave a half-dead queue behind
            logger.exception("connection %d: raw send failed; dropping its queue", self._conn_id)
            self._queue.clear()
        # Not in a ``finally``: a cancelled pump was cleared by ``stop()``, which may
        # already have started a successor that this must not forget.
        self._task = None

    async def _write_queue(self) -> None:
        while self._queue:
            pending = self._queue[0]
            for chunk in pending.writes:
                if pending.written:
                    await asyncio.sleep(pending.interval)  # even 0: let the loop breathe
                await self._wait_for_room()
                if self.closed:
                    self._queue.clear()
                    return
                self._write(pending, chunk)
            self._queue.popleft()

    async def _wait_for_room(self) -> None:
        while not self.closed and self._transport.get_write_buffer_size() > HIGH_WATER:
            await asyncio.sleep(ROOM_POLL)

    def _write(self, pending: _Pending, chunk: bytes) -> None:
        self._transport.write(chunk)
        pending.written += 1
