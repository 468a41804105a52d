"""``LocalServer``: a loopback Hyperliquid server (WebSocket ``/ws`` + HTTP ``/info``).

Threads: ``start()`` launches one thread, ``hlws-local-server``, which runs an asyncio
loop with the aiohttp app, the optional market ticker and every connection. All state
(market, connections, logs) belongs to that loop. Every public method is thread-safe and
may be called from any thread except the server thread itself: it hands a coroutine to
the loop with ``asyncio.run_coroutine_threadsafe`` and blocks until it has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hyperliquid_ws.testing import feeds
from hyperliquid_ws.testing.connection import Frame
from hyperliquid_ws.testing.dispatch import Limits
from hyperliquid_ws.testing.limits import WeightBudget
from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.raw import RawSend
from hyperliquid_ws.testing.replies import compact_json
from hyperliquid_ws.testing.replies import frame as data_frame
from hyperliquid_ws.testing.subscriptions import channel_of, normalise_subscription, subscription_key
from hyperliquid_ws.testing.web_app import STOP_GRACE, ServerApp
from hyperliquid_ws.weights import BUDGET

if TYPE_CHECKING:
    from hyperliquid_ws.recording.replay import Replay

logger = logging.getLogger(__name__)

THREAD_NAME = "hlws-local-server"
CONTROL_TIMEOUT = 10.0

T = TypeVar("T")


class LocalServer:
    """A faithful local Hyperliquid exchange for tests and demos.

    ``tick_interval=None`` freezes the market until ``advance()`` is called; a number
    moves it on its own every that many seconds. ``ssl_context`` (a server-side
    ``ssl.SSLContext`` holding a certificate, e.g. one ``trustme`` issued) serves TLS:
    ``https://`` and ``wss://``. Like live, a trades subscription is answered with the
    latest ``trades_replay`` trades right after the ack (0: nothing until the next trade).

    ``replay`` (a recording path, or a ``hyperliquid_ws.recording.Replay``) answers
    subscriptions and ``/info`` from a recording instead of the scripted market, at the
    recorded pace times ``speed`` (None: as fast as clients read); the market ticker is
    off then. ``server.replay`` holds its clock and controls (docs/recording.md).

    Like live, HTTP ``/info`` has a REST weight budget per client IP
    (``info_weight_per_window``, 1200, in every ``rate_window``: protocol.md §9.1) and
    answers HTTP 429 beyond it; ``server.info_refused`` counts those answers.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, market: Market | None = None,
        tick_interval: float | None = 0.5, idle_timeout: float = 60.0,
        max_subscriptions: int = 1000, max_users: int = 10,
        max_messages_per_minute: int = 2000, max_inflight_posts: int = 100,
        rate_window: float = 60.0, max_connections: int = 10, greeting: bool = False, seed: int = 1,
        info_weight_per_window: int = BUDGET,
        ssl_context: ssl.SSLContext | None = None, trades_replay: int = 10,
        replay: str | Path | Replay | None = None, speed: float | None = 1.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError("port must be between 0 and 65535")
        if tick_interval is not None and tick_interval <= 0:
            raise ValueError("tick_interval must be positive or None")
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        for name, value in (("max_subscriptions", max_subscriptions), ("max_users", max_users),
                            ("max_messages_per_minute", max_messages_per_minute),
                            ("max_inflight_posts", max_inflight_posts)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1")
        self.host = host
        self.tls = ssl_context is not None
        self.market = market if market is not None else Market(seed)
        if trades_replay < 0:
            raise ValueError("trades_replay must not be negative")
        self.market.trades_replay = trades_replay
        if rate_window <= 0:
            raise ValueError("rate_window must be positive")
        limits = Limits(max_subscriptions, max_users, max_messages_per_minute,
                        max_inflight_posts, rate_window)
        self.replay = _replay_of(replay, speed)
        self._app = ServerApp(self.market, limits, host=host, port=port, replay=self.replay,
                              tick_interval=tick_interval, idle_timeout=idle_timeout,
                              greeting=greeting, on_change=self._notify_waiters,
                              max_connections=max_connections, ssl_context=ssl_context,
                              info_budget=WeightBudget(info_weight_per_window, window=rate_window))
        self._hub = self._app.hub
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._lifecycle = threading.Lock()
        self._changed = threading.Condition()
        self._counts = (0, 0, 0)  # connections, subscriptions, received; under _changed

    # ------------------------------------------------------------ lifecycle
    def start(self) -> LocalServer:
        """Start listening; return once the port is bound. Any thread."""
        with self._lifecycle:
            if self._thread is not None:
                raise RuntimeError("LocalServer already started")
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()
        if not self._ready.wait(CONTROL_TIMEOUT) or self._startup_error is not None:
            error = self._startup_error
            self.stop()
            raise RuntimeError(f"LocalServer failed to start: {error!r}") from error
        logger.info("local Hyperliquid server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Close every connection, stop the loop and join the thread. Idempotent."""
        with self._lifecycle:
            thread, loop = self._thread, self._loop
            if thread is None:
                return
            if thread is threading.current_thread():
                raise RuntimeError("stop() cannot be called from the server thread")
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop already finished
                    loop.call_soon_threadsafe(self._app.request_stop)
            thread.join(CONTROL_TIMEOUT + STOP_GRACE)
            if thread.is_alive():
                logger.error("server thread did not stop in time")
            self._thread = None
            self._loop = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        bound = self._app.port
        return bound if bound is not None else self._app.requested_port

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/ws"

    # -------------------------------------------------------------- controls
    def push(self, frame: Frame, conn: int | None = None) -> int:
        """Send a raw frame to every connection (or one); return how many got it.

        A dict or list goes out as compact JSON, a str exactly as given.
        """
        return self._call(lambda: self._hub.push(frame, conn))

    def send_raw(self, data: bytes, conn: int | None = None, *, chunk_size: int | None = None,
                 interval: float = 0.0, repeat: int | None = 1) -> int:
        """Write ``data`` verbatim to the TCP socket of every connection (or only ``conn``).

        Returns how many connections it started on (0 for an unknown or closing one).
        No framing, masking or checks: build frames, good or hostile, with
        ``hyperliquid_ws.testing.wire.encode_frame``; send part of one to cut it short.

        - ``chunk_size`` (bytes): write ``data`` this many bytes at a time; None writes
          it whole.
        - ``interval`` (seconds, >= 0): the pause between one write and the next,
          between chunks and between repetitions.
        - ``repeat``: send ``data`` this many times; None repeats it until the connection
          closes, ``drop_connections()`` cuts it, or the server stops.

        Sends to one connection go out in call order. When nothing earlier is still
        queued there, the first write (all of ``data`` without ``chunk_size``) has been
        handed to the socket when this returns; the rest trickle out from a task on the
        server loop, and this returns at once. A send made while an earlier trickle runs
        starts when that ends (never, after a ``repeat=None`` one). A trickle stops when
        the TCP connection closes, from either side, or the server stops; it pauses while
        over 64 KiB sit unsent (a client that does not read). E.g. a frame announcing
        2**40 bytes, then 1 KiB of its body every 0.5 s::

            server.send_raw(wire.encode_frame(b"", length=2**40), conn)
            server.send_raw(b"x" * 1024, conn, repeat=None, interval=0.5)

        Raw bytes ignore ``silence()``: they are the test's own words, not the server's.
        The server's frames (replies, pushes, market ticks) still go out between raw
        writes, so they may land inside a frame the raw bytes began; ``silence()`` first
        to keep the wire to raw bytes alone (aiohttp still answers a client's close
        frame). ``raw_pending()`` says whether a trickle is still running. Raises
        ``ValueError``/``TypeError`` for bad arguments before anything is sent.
        """
        send = RawSend(data, chunk_size=chunk_size, interval=interval, repeat=repeat)
        return self._call_sync(lambda: self._hub.send_raw(send, conn))

    def stop_reading(self, conn: int | None = None) -> int:
        """Stop reading the TCP socket of every connection (or only ``conn``), for good:
        a server that never reads, so the client's sends pile up in the kernel buffers
        until they block. Frames still go out. Returns how many connections it stopped."""
        return self._call_sync(lambda: self._hub.stop_reading(conn))

    def raw_pending(self, conn: int | None = None) -> int:
        """How many connections (of all, or ``conn``) still have ``send_raw`` bytes to write."""
        return self._call_sync(lambda: self._hub.raw_busy(conn))

    def publish(self, subscription: dict[str, Any], data: Any) -> int:
        """Send ``data`` on the subscription's channel to every holder; return the count."""
        normalised = _normalised_or_raise(subscription)
        return self._call(lambda: self._hub.publish(normalised, data))

    def emit(self, subscription: dict[str, Any]) -> dict[str, Any] | None:
        """Build a realistic frame for ``subscription`` from the market and publish it."""
        normalised = _normalised_or_raise(subscription)

        async def emit_on_loop() -> dict[str, Any] | None:
            data = feeds.sample_data(normalised, self.market)
            if data is None:
                return None
            await self._hub.publish(normalised, data)
            return data_frame(channel_of(normalised), data)
        return self._call(emit_on_loop)

    def advance(self, steps: int = 1) -> None:
        """Move the market ``steps`` ticks and push every update to its subscribers."""
        if steps < 0:
            raise ValueError("steps must not be negative")
        self._call(lambda: self._app.advance(steps))

    def trigger(self, event: str, **options: Any) -> None:
        """Make the market produce a rare event now and push it to every subscriber:
        ``"liquidation"``, ``"nonUserCancel"``, ``"twapSliceFill"`` (options ``user``,
        ``coin``), ``"emptyBook"``, ``"oneSidedBook"`` (``keep="asks"|"bids"``),
        ``"restoreBook"`` (option ``coin``), ``"outcomeSettled"`` (``outcome``). See
        ``hyperliquid_ws.testing.scenarios``.
        Raises ``ValueError`` for an unknown event or option."""
        self._call(lambda: self._app.trigger(event, options))

    def drop_connections(self, conn: int | None = None) -> int:
        """Abort every TCP connection (or only ``conn``) without a close frame; return how many."""
        return self._call_sync(lambda: self._hub.abort_all(conn))

    def close_connections(self, code: int = 1000, reason: str = "") -> int:
        """Send a close frame with ``code`` to every connection; return how many."""
        async def close_on_loop() -> int:
            tasks = self._hub.close_all(code, reason)
            await asyncio.sleep(0)  # let each close task write its frame
            return len(tasks)
        return self._call(close_on_loop)

    def silence(self, on: bool = True) -> None:
        """Half-open mode: send nothing and ignore input, but keep every socket open."""
        self._call_sync(lambda: setattr(self._hub, "silenced", on))

    def stall(self, subscription: dict[str, Any]) -> None:
        """Stop pushing ``subscription``'s frames (a stuck feed on a live socket) until a
        client subscribes to it again. What happens meanwhile is still recorded, so
        HTTP ``/info`` has it."""
        key = subscription_key(_normalised_or_raise(subscription))
        self._call_sync(lambda: self._hub.stalled.add(key))

    def hold_posts(self, on: bool = True) -> None:
        """Leave posts unanswered while on; turning it off answers the held ones."""
        async def hold_on_loop() -> None:
            self._app.dispatcher.holding_posts = on
            if not on:
                await self._app.dispatcher.release_posts()
        self._call(hold_on_loop)

    def refuse_handshakes(self, n: int, status: int = 503, retry_after: str | float | None = None) -> None:
        """Answer the next ``n`` WebSocket upgrade attempts with HTTP ``status`` (503, 429 ...),
        with a ``Retry-After`` header when ``retry_after`` is given (seconds, or an HTTP-date)."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, got {status!r}")
        self._call_sync(lambda: setattr(self._app, "refusals", (n, status, retry_after)))

    def fail_info(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` HTTP ``/info`` requests with ``status`` (a flaky API)."""
        self._call_sync(lambda: setattr(self._app, "info_failures", (n, status)))

    def add_subscription(self, subscription: dict[str, Any], conn: int | None = None) -> int:
        """Hold ``subscription`` on every connection (or ``conn``) as if it had been asked
        for, without telling the client: a subscribe whose ack it never saw, an
        unsubscribe the server dropped. The client's next subscribe of it is then
        answered ``Already subscribed``. Returns how many connections now hold it."""
        normalised = _normalised_or_raise(subscription)

        def add() -> int:
            targets = self._hub.targets(conn)
            for target in targets:
                target.subscriptions[subscription_key(normalised)] = normalised
            self._hub.changed()
            return len(targets)
        return self._call_sync(add)

    def remove_subscription(self, subscription: dict[str, Any], conn: int | None = None) -> int:
        """Drop ``subscription`` from every connection (or ``conn``) without telling the
        client, so its next unsubscribe is answered ``Already unsubscribed``. Returns
        how many connections held it."""
        key = subscription_key(_normalised_or_raise(subscription))

        def remove() -> int:
            removed = sum(target.subscriptions.pop(key, None) is not None for target in self._hub.targets(conn))
            self._hub.changed()
            return removed
        return self._call_sync(remove)

    def received(self, conn: int | None = None) -> list[tuple[int, object]]:
        """Messages clients sent, in order, as (connection id, parsed JSON or raw text).

        Only the most recent ``web_app.MAX_RECEIVED`` are kept.
        """
        return self._call_sync(
            lambda: [item for item in self._app.received if conn is None or item[0] == conn])

    @property
    def connections_refused(self) -> int:
        """Upgrades refused because ``max_connections`` were already open."""
        return self._app.connections_refused

    @property
    def info_refused(self) -> int:
        """``/info`` requests answered HTTP 429: over the REST weight budget."""
        return self._app.info_budget.refused

    def connection_ids(self) -> list[int]:
        return self._call_sync(lambda: list(self._hub.connections))

    def subscriptions(self, conn: int | None = None) -> list[dict[str, Any]]:
        """Normalised subscriptions currently held, by one connection or by all."""
        return self._call_sync(lambda: [
            dict(sub) for c in self._hub.targets(conn) for sub in c.subscriptions.values()])

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> bool:
        """Block until exactly ``n`` connections are open; False on timeout."""
        return self._wait(lambda counts: counts[0] == n, timeout)

    def wait_for_subscriptions(self, n: int, timeout: float = 5.0) -> bool:
        """Block until exactly ``n`` subscriptions are held in total; False on timeout."""
        return self._wait(lambda counts: counts[1] == n, timeout)

    def wait_for_received(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` client messages have arrived; False on timeout."""
        return self._wait(lambda counts: counts[2] >= n, timeout)

    # ------------------------------------------------------ thread hand-off
    def _call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        loop = self._running_loop()
        future = asyncio.run_coroutine_threadsafe(make(), loop)
        return future.result(CONTROL_TIMEOUT)

    def _call_sync(self, function: Callable[[], T]) -> T:
        async def run() -> T:
            return function()
        return self._call(run)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if threading.current_thread() is self._thread:
            raise RuntimeError("LocalServer controls cannot be called from the server thread")
        loop = self._loop
        if loop is None or not self._ready.is_set() or loop.is_closed():
            raise RuntimeError("LocalServer is not running")
        return loop

    def _wait(self, condition: Callable[[tuple[int, int, int]], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: condition(self._counts), timeout)

    def _notify_waiters(self) -> None:
        """Loop thread: publish fresh counts to threads blocked in ``wait_for_*``."""
        with self._changed:
            self._counts = (len(self._hub.connections), self._hub.subscription_count(),
                            self._app.received_total)
            self._changed.notify_all()

    # ----------------------------------------------------------- loop thread
    def _run(self) -> None:
        """Server thread: own the event loop from start to finish."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._app.serve(self._ready.set))
        except BaseException as error:  # reported to start(), never lost
            self._startup_error = error
            logger.exception("local server crashed")
        finally:
            self._ready.set()
            _cancel_leftover_tasks(loop)
            loop.close()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Server thread, after ``serve``: every task should be gone; say so if one is not.

    A task still pending here would otherwise be destroyed with the loop, reported only
    at garbage collection, if ever. Cancel and finish it instead, as ``asyncio.run`` does.
    """
    leftover = asyncio.all_tasks(loop)
    if not leftover:
        return
    logger.warning("%d task(s) still pending when the server stopped: %s", len(leftover),
                   ", ".join(sorted(repr(task.get_coro()) for task in leftover)))
    for task in leftover:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))


def _replay_of(replay: str | Path | Replay | None, speed: float | None) -> Replay | None:
    if replay is None:
        return None
    from hyperliquid_ws.recording.replay import Replay  # the recording package, only when asked for

    return replay if isinstance(replay, Replay) else Replay(replay, speed=speed)


def _normalised_or_raise(subscription: dict[str, Any]) -> dict[str, Any]:
    normalised, valid = normalise_subscription(subscription)
    if not valid:
        raise ValueError(f"invalid subscription: {compact_json(normalised)}")
    return normalised
