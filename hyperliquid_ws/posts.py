"""Request/response over the socket: ``post`` requests matched to replies by id.

Order safety is the point of this module. A request goes out on exactly one link, at
most once. When that link drops, every request in flight on it fails at once with
``ConnectionLostError(sent=True)`` and is never sent again: an action the caller saw
fail must not execute later. A request that could not go out yet (no link) waits for
one within its timeout, and fails with ``sent=False`` if none comes.

At most ``limit`` requests are in flight at once (the server's cap is 100): more wait
their turn within their timeout rather than trip ``too many pending post requests``.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from typing import Any

from .connection import Connection
from .errors import ConnectionLostError, HyperliquidTimeoutError, HyperliquidWSError, RequestError
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)


class _Waiter:
    __slots__ = ("done", "error", "generation", "response")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.done = threading.Event()
        self.response: Any = None
        self.error: HyperliquidWSError | None = None


class PendingRequests:
    """Thread-safe: ``request`` from any number of user threads; ``resolve``, ``fail``
    and ``connection_lost`` from the reader thread."""

    def __init__(self, connection: Connection, limiter: RateLimiter, *, limit: int) -> None:
        self._connection = connection
        self._limiter = limiter
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiters: dict[int, _Waiter] = {}
        self._slots = threading.BoundedSemaphore(limit)
        self._stop = threading.Event()
        self.limit = limit

    @property
    def in_flight(self) -> int:
        return len(self._waiters)

    def request(self, kind: str, payload: dict[str, Any], timeout: float) -> Any:
        """Send ``{"type": kind, "payload": payload}`` and block for the reply's payload."""
        deadline = time.monotonic() + timeout
        if not self._slots.acquire(timeout=max(0.0, timeout)):
            raise HyperliquidTimeoutError(
                f"{kind} request not sent: {self.limit} requests stayed in flight for {timeout} s"
            )
        try:
            return self._request(kind, payload, deadline, timeout)
        finally:
            self._slots.release()

    def _request(self, kind: str, payload: dict[str, Any], deadline: float, timeout: float) -> Any:
        request_id = next(self._ids)
        text = json.dumps({"method": "post", "id": request_id, "request": {"type": kind, "payload": payload}},
                          separators=(",", ":"))
        while True:  # until it is sent once; it never goes out twice
            remaining = deadline - time.monotonic()
            if self._stop.is_set():
                raise ConnectionLostError(f"{kind} request not sent: the client is closed", sent=False)
            if remaining <= 0 or not self._connection.wait_connected(remaining, self._stop):
                raise HyperliquidTimeoutError(f"{kind} request not sent: no connection within {timeout} s")
            if not self._limiter.acquire(self._stop, deadline - time.monotonic()):
                raise HyperliquidTimeoutError(f"{kind} request not sent: message budget spent for {timeout} s")
            with self._lock:
                generation = self._connection.generation
                waiter = self._waiters[request_id] = _Waiter(generation)
            if self._connection.send_text(text, generation):
                break
            with self._lock:
                self._waiters.pop(request_id, None)
            if waiter.error is not None:  # the link died as we sent: it may have gone out
                raise waiter.error
        if not waiter.done.wait(max(0.0, deadline - time.monotonic())):
            with self._lock:
                self._waiters.pop(request_id, None)
            if waiter.done.is_set() and waiter.error is None:
                return _unwrap(kind, waiter.response)
            raise HyperliquidTimeoutError(
                f"{kind} request {request_id} got no answer within {timeout} s; it was sent and may "
                "have reached the exchange", sent=True)
        if waiter.error is not None:
            raise waiter.error
        return _unwrap(kind, waiter.response)

    def resolve(self, data: Any) -> None:
        """A ``post`` frame (reader thread)."""
        request_id = data.get("id") if isinstance(data, dict) else None
        with self._lock:
            waiter = self._waiters.pop(request_id, None) if type(request_id) is int else None  # not True
        if waiter is None:
            log.debug("post reply for no pending request: %.200r", data)
            return
        waiter.response = data.get("response")
        waiter.done.set()

    def fail(self, request_id: int, text: str) -> bool:
        """An ``error`` frame naming a request id (``too many pending post requests id=N``)."""
        with self._lock:
            waiter = self._waiters.pop(request_id, None)
        if waiter is None:
            return False
        waiter.error = RequestError(f"server refused request {request_id}: {text}", server_text=text)
        waiter.done.set()
        return True

    def connection_lost(self, generation: int, reason: str) -> None:
        """Fail every request in flight on link ``generation`` (reader thread)."""
        with self._lock:
            lost = {i: w for i, w in self._waiters.items() if w.generation == generation}
            for request_id in lost:
                del self._waiters[request_id]
        for request_id, waiter in lost.items():
            waiter.error = ConnectionLostError(
                f"connection lost ({reason}) with request {request_id} in flight; it was sent and may "
                "have reached the exchange, and it will not be sent again", sent=True)
            waiter.done.set()

    def close(self) -> None:
        self._stop.set()
        self.connection_lost(self._connection.generation, "client closed")


def _unwrap(kind: str, response: Any) -> Any:
    """The reply's payload: info data as HTTP /info returns it, an action's answer as
    the exchange sent it (``{"status": "err"}`` included), or ``RequestError``."""
    if not isinstance(response, dict):
        raise RequestError(f"malformed {kind} reply: {response!r}", server_text=str(response))
    payload = response.get("payload")
    if response.get("type") == "error":
        raise RequestError(f"server refused the {kind} request: {payload}", server_text=str(payload))
    if kind == "info":
        return payload.get("data") if isinstance(payload, dict) else payload
    return payload
