"""``HyperliquidWS``: the facade a user holds. It wires the parts together:

    registry (what is wanted) -> connection (reader thread) -> router -> dispatcher (callbacks)
                                 keepalive thread (ping, dead-link detection)

Threads, per connection: ``<name>-reader`` reads the socket, runs the callbacks of what
it read, and reconnects; ``<name>-relay`` reads on while a callback keeps the reader
busy; ``<name>-keepalive`` pings; ``<name>-writer`` sends. Per client,
``<name>-backfill`` fetches gaps over HTTP and runs the callbacks of what it recovers and
of a late joiner's first message; while it is busy, more backfills get
``<name>-backfill-2`` ... ``-4``, and with ``callback_threads=0`` the backfills' reports to
``on_error`` run on ``<name>-backfill-hooks``. With ``callback_threads=N`` the ``<name>-dispatch-k``
threads run every callback instead, and there is no relay.
None is started before the first ``subscribe`` (or ``run_forever``); ``close()`` stops
and joins them all.

Thread-safety: every public method may be called from any thread, including from a
callback, and ``close()`` is idempotent.

Fork safety: a child process made with ``os.fork()`` inherits the client's sockets but
none of its threads. There the client never touches them (so the parent's links go on
as if nothing happened), ``close()`` only marks it closed, ``connected`` is False,
``repr`` says so, and every other use (``stats()`` included) raises
``HyperliquidWSError`` saying to create a new client in the child.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import ssl
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from .backfill import Backfiller
from .backoff import Backoff
from .dial import Route
from .dispatch import DEFAULT_MAX_BACKLOG, Dispatcher, ErrorHook
from .endpoints import MAINNET_API_URL, check_base_url, info_url, socket_url
from .errors import HyperliquidTimeoutError, HyperliquidWSError
from .feeds import canonical
from .frames import DEFAULT_MAX_MESSAGE_SIZE
from .limits import Limits
from .link import LinkSettings
from .pool import Pool
from .proxy import FROM_ENVIRONMENT, ProxyOption, resolve
from .ratelimit import RateLimiter, WeightLimiter
from .redact import Scrubber, redact_url
from .retry_after import DEFAULT_MAX_RETRY_AFTER
from .stats import collect
from .stream import Stream
from .subscription import Entry, Subscription
from .tls import PathLike, tls_settings
from .weights import items_weight, request_weight

log = logging.getLogger(__name__)

_SERVER_IDLE_LIMIT = 60.0
_MANY_CLIENTS = 5  # open at once: more is most likely a leak (a notebook cell run again)
_numbers = itertools.count(1)
_open_clients: weakref.WeakSet[HyperliquidWS] = weakref.WeakSet()


def _whole(name: str, value: Any, minimum: int, meaning: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}{meaning}, got {value!r}")
    return value


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class HyperliquidWS:
    """A thread-based client for Hyperliquid's WebSocket API.

    ``base_url`` is the HTTP API root (``MAINNET_API_URL``, ``TESTNET_API_URL`` or
    ``"http://127.0.0.1:8765"``); the socket is ``base_url`` + ``/ws`` with ws(s).
    Timing knobs are in seconds. ``on_error`` receives every ``HyperliquidWSError``
    that has no caller to raise to (a refused resubscribe, a callback that raised as
    ``CallbackError``, an unattributed server error); it runs where callbacks run.

    ``callback_threads=0`` (the default) runs callbacks on the connection's own threads,
    right after each read: the lowest latency, and a callback that runs longer than
    ``RELAY_AFTER`` (0.05 s) has the connection's relay thread read on for it.
    ``callback_threads=N`` hands every message to ``N`` dispatcher threads instead
    (``1``: global arrival order). See ``dispatch.py``.

    Networks (README, "Networks and proxies"): ``proxy`` (a URL, or ``None``; default:
    the environment as requests reads it, unless ``trust_env=False``), ``ca_bundle`` or
    ``ssl_context``, all for the socket and the HTTP calls alike; a refused handshake's
    ``Retry-After`` is honoured up to ``max_retry_after`` s. Credentials in ``base_url`` or
    ``proxy`` go on the wire only: ``base_url``, ``ws_url``, ``info_url``, ``proxy``,
    ``repr``, ``stats()``, logs, hooks and errors show them masked.
    """

    def __init__(
        self,
        base_url: str = MAINNET_API_URL,
        *,
        ping_interval: float = 20.0,
        pong_timeout: float = 10.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        backoff: Backoff | None = None,
        limits: Limits | None = None,
        backfill: bool = True,
        http_timeout: float = 10.0,
        silent_feed_factor: float = 20.0,
        silent_feed_minimum: float = 60.0,
        callback_threads: int = 0,
        lane_limit: int = 100_000,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        on_error: ErrorHook | None = None,
        on_connect: Callable[[str], None] | None = None,
        on_disconnect: Callable[[str], None] | None = None,
        on_reconnect: Callable[[float], None] | None = None,
        name: str | None = None,
        proxy: ProxyOption = FROM_ENVIRONMENT,
        trust_env: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        ca_bundle: PathLike | None = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    ) -> None:
        real_base = check_base_url(base_url)
        real_ws, real_info = socket_url(real_base), info_url(real_base)
        self.base_url = redact_url(real_base)  # as shown; the real ones stay on the wire
        self.ws_url = redact_url(real_ws)
        self.info_url = redact_url(real_info)
        proxies = resolve(real_ws, real_info, proxy, trust_env)
        tls = tls_settings(ssl_context, ca_bundle)
        self._scrubber = Scrubber([real_base, proxies.socket, proxies.http])
        self.proxy = redact_url(proxies.socket) if proxies.socket else None  # the socket's, as shown
        self._ping_interval = _positive("ping_interval", ping_interval)
        if self._ping_interval >= _SERVER_IDLE_LIMIT:
            raise ValueError(
                f"ping_interval must be well under the server's {_SERVER_IDLE_LIMIT:g} s idle "
                f"limit, got {ping_interval!r}"
            )
        self._pong_timeout = _positive("pong_timeout", pong_timeout)
        self._open_timeout = _positive("open_timeout", open_timeout)
        self._close_timeout = _positive("close_timeout", close_timeout)
        if not isinstance(backfill, bool):
            raise ValueError(f"backfill must be True or False, got {backfill!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise ValueError(f"backoff must be a hyperliquid_ws.Backoff, got {backoff!r}")
        if limits is not None and not isinstance(limits, Limits):
            raise ValueError(f"limits must be a hyperliquid_ws.Limits, got {limits!r}")
        self.limits = limits or Limits()
        hooks = {"on_error": on_error, "on_connect": on_connect, "on_disconnect": on_disconnect,
                 "on_reconnect": on_reconnect}
        for hook_name, hook in hooks.items():
            if hook is not None and not callable(hook):
                raise ValueError(f"{hook_name} must be callable, got {hook!r}")
        self.name = name or f"hlws-{next(_numbers)}"
        _whole("callback_threads", callback_threads, 0, " (0: on the connection's threads)")
        _whole("lane_limit", lane_limit, 1, " (messages)")
        _whole("max_backlog", max_backlog, 1, " (messages, across the client)")
        _whole("max_message_size", max_message_size, 1024, " (bytes)")
        self._dispatcher = Dispatcher(self.name, on_error, threads=callback_threads, lane_limit=lane_limit,
                                      max_backlog=max_backlog)
        self._limiter = RateLimiter(self.limits.messages_per_window, self.limits.message_window)
        self._backfiller = Backfiller(real_info, self._dispatcher, self.name,
                                      http_timeout=_positive("http_timeout", http_timeout),
                                      proxy=proxies.http, tls=tls, scrub=self._scrubber.scrub,
                                      weights=WeightLimiter(self.limits.info_weight_per_window,
                                                            self.limits.info_window))
        settings = LinkSettings(
            url=real_ws,
            dispatcher=self._dispatcher,
            limiter=self._limiter,
            connect_limiter=RateLimiter(self.limits.new_connections_per_minute, 60.0),
            backfiller=self._backfiller,
            backfill=backfill,
            backoff=backoff or Backoff(),
            open_timeout=self._open_timeout,
            ping_interval=self._ping_interval,
            pong_timeout=self._pong_timeout,
            silent_factor=_positive("silent_feed_factor", silent_feed_factor),
            silent_minimum=_positive("silent_feed_minimum", silent_feed_minimum),
            inflight_posts=self.limits.inflight_posts,
            max_message_size=max_message_size,
            on_error=on_error,
            on_connect=on_connect,
            on_disconnect=on_disconnect,
            on_reconnect=on_reconnect,
            route=Route(proxies.socket, tls.context),
            max_retry_after=_positive("max_retry_after", max_retry_after),
            scrub=self._scrubber.scrub,
        )
        self._pool = Pool(self.name, settings, self.limits)
        self._streams: weakref.WeakSet[Stream] = weakref.WeakSet()
        self._lifecycle = threading.Lock()
        self._started = False
        self._running_forever = False  # run_forever() was called: the script meant to stay
        self._subscribed_at = 0.0  # monotonic time of the last subscribe()
        self._closed = threading.Event()  # close() was called
        self._stopped = threading.Event()  # ... and has stopped the threads
        self._pid = os.getpid()  # a forked child must not use this client (see the module docstring)

    # -- public API -----------------------------------------------------------------------

    def subscribe(
        self,
        subscription: Mapping[str, Any],
        callback: Callable[[Any], None],
        *,
        allow_unknown: bool = False,
    ) -> Subscription:
        """Deliver every frame of ``subscription`` to ``callback``; return a handle at once.

        ``callback(message)`` gets the frame as the server sent it,
        ``{"channel": ..., "data": ...}``, on the connection's reader (or relay) thread,
        or on a dispatcher thread with ``callback_threads`` > 0. Raises ``ValueError`` for a malformed subscription and
        ``LimitError`` when it would pass one of the ``Limits``; nothing is sent then.
        A subscription whose frames would look like another's on the wire (another
        account's orderUpdates, another l2Book precision) goes to a connection of its
        own. ``allow_unknown=True`` sends a type this version does not know as it is;
        its frames are expected on the channel named like the type.

        A subscribe that joins a feed the client already holds shares its server
        subscription and first gets what a fresh one would bring (``joiners.py``): the
        latest state of a state feed, or an ``isSnapshot: true`` message of a history
        feed (protocol.md §6), before any later message.
        """
        if not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        feed, canonical_form = canonical(subscription, allow_unknown=allow_unknown)
        self._check_usable()
        wire = dict(subscription)
        if "user" in canonical_form:
            wire["user"] = canonical_form["user"]
        handle = self._pool.subscribe(self, feed, canonical_form, wire, callback)
        self._subscribed_at = time.monotonic()
        self._start()
        return handle

    def stream(
        self,
        subscription: Mapping[str, Any],
        *,
        timeout: float | None = None,
        maxsize: int = 10_000,
        overflow: str = "drop_oldest",
        allow_unknown: bool = False,
    ) -> Stream:
        """Iterate over a feed's messages, blocking: ``for m in ws.stream(sub, timeout=30)``.

        ``timeout`` ends the iteration when nothing arrives within it (None: never).
        Up to ``maxsize`` messages wait for the consumer; beyond that ``overflow``
        (``"drop_oldest"`` or ``"drop_newest"``) decides, and every drop is counted and
        logged. Leaving the loop in any way unsubscribes; it is also a context manager.
        """
        stream = Stream(dict(subscription) if isinstance(subscription, Mapping) else subscription,
                        timeout=timeout, maxsize=maxsize, overflow=overflow)
        stream.attach(self.subscribe(subscription, stream.feeder(), allow_unknown=allow_unknown))
        self._streams.add(stream)
        return stream

    def stats(self) -> dict[str, Any]:
        """A plain dict: per connection and per subscription counters, backfill, queue
        depths, callback errors, and current counts against each limit."""
        self._check_forked()  # in a child, the counters are the parent's, frozen at the fork
        return collect(self)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove one handle's callback; the last one on a feed unsubscribes on the wire."""
        if not isinstance(subscription, Subscription):
            raise ValueError(f"unsubscribe takes the Subscription that subscribe returned, got {subscription!r}")
        self._check_forked()
        self._pool.unsubscribe(subscription)

    def _link_problem(self, entry: Entry) -> str | None:
        """Why the connection carrying ``entry`` is not up (for ``Subscription.wait``'s
        error), or None while it is."""
        link = self._pool.link_of(entry)
        if link is None or link.connection.connected:
            return None
        connection = link.connection
        reason = connection.last_disconnect_reason
        return f"not connected to {connection.shown_url}" + (f" ({reason})" if reason else "")

    def info(self, request: dict[str, Any], *, timeout: float = 10.0, paced: bool = False) -> Any:
        """Ask an info request over the socket; return exactly what HTTP ``POST /info``
        would (the reply payload's ``data``). Blocks the calling thread only.

        Its weight (``weights.py``, protocol.md §9.1) is counted in the client's REST
        weight budget (``Limits.info_weight_per_window``), which paces the backfill's
        HTTP requests: whether the exchange counts socket posts in that budget is
        UNCONFIRMED (protocol.md §5), and counting them is the safe side. ``paced=True``
        also waits for room in the budget first, within ``timeout`` (bulk requests, such
        as the gateway's takeover backfill); by default it is sent at once.

        Raises ``RequestError`` if the server answers with an error,
        ``HyperliquidTimeoutError`` (a ``TimeoutError``) if no answer comes in time (or,
        paced, no room in the budget: then ``sent`` is False), and
        ``ConnectionLostError`` if the link drops while it is in flight.
        """
        if not isinstance(request, dict) or not isinstance(request.get("type"), str):
            raise ValueError(f"an info request is a dict with a 'type', such as {{'type': 'allMids'}}, got {request!r}")
        timeout = _positive("timeout", timeout)
        budget = self._backfiller.weights
        if paced:
            started = time.monotonic()
            if not budget.acquire(request_weight(request), self._closed, timeout):
                self._check_usable()
                raise HyperliquidTimeoutError(f"{self.name}: no room in the REST weight budget for {request['type']} "
                                              f"within {timeout} s", sent=False)
            timeout = max(0.001, timeout - (time.monotonic() - started))
        else:
            budget.charge(request_weight(request))
        answer = self._post("info", request, timeout)
        budget.charge(items_weight(request["type"], answer))
        return answer

    def action(self, signed: dict[str, Any], *, timeout: float = 10.0) -> Any:
        """Send a signed exchange action over the socket; return the exchange's answer.

        ``signed`` is exactly the HTTP ``/exchange`` body: ``{"action": {...}, "nonce":
        ms, "signature": {"r", "s", "v"}, "vaultAddress"?: ...}``. An answer of
        ``{"status": "err", ...}`` is the exchange's own verdict and is *returned*, not
        raised. ``RequestError``, ``HyperliquidTimeoutError`` and ``ConnectionLostError``
        as for ``info``; the last two say in ``.sent`` whether it went out. An action
        is never sent twice, not even after a reconnect.
        """
        if not isinstance(signed, dict) or not isinstance(signed.get("action"), dict):
            raise ValueError("a signed action is a dict with 'action', 'nonce' and 'signature'")
        missing = [k for k in ("nonce", "signature") if k not in signed]
        if missing:
            raise ValueError(f"a signed action needs {' and '.join(map(repr, missing))}; sign it first")
        return self._post("action", signed, timeout)

    def _post(self, kind: str, payload: dict[str, Any], timeout: float) -> Any:
        timeout = _positive("timeout", timeout)
        self._check_usable()
        self._start()
        posts = self._pool.primary.posts
        assert posts is not None  # the primary link carries the posts
        return posts.request(kind, payload, timeout)

    def run_forever(self) -> None:
        """Block until ``close()`` is called (from a callback or another thread) or Ctrl-C."""
        self._check_forked()
        self._running_forever = True
        self._start()
        try:
            while not self._closed.wait(0.5):
                pass
        except KeyboardInterrupt:
            log.info("%s: interrupted", self.name)
        finally:
            self.close()

    def close(self) -> None:
        """Stop for good and join every thread this client started. Idempotent and safe
        from any thread: from a callback, that callback's thread exits as soon as the
        callback returns, and a concurrent ``close()`` elsewhere waits for it."""
        with self._lifecycle:
            first = not self._closed.is_set()
            self._closed.set()
            started = self._started
        if first:
            _open_clients.discard(self)
            for stream in list(self._streams):
                stream.end()  # a loop waiting without a timeout ends now
        if not started or self._pid != os.getpid():
            return  # in a forked child: the sockets are the parent's; leave them be
        timeout = self._close_timeout
        if first:
            self._dispatcher.stop()  # first: a connection thread serving a backlog stops after its callback
            self._pool.stop(timeout)
            self._backfiller.stop(timeout)
            self._scrubber.uninstall()
            self._stopped.set()
        else:
            self._stopped.wait(2 * timeout)
        current = threading.current_thread()
        for thread in self._threads():
            if thread is not current and thread.is_alive():
                thread.join(timeout)
                if thread.is_alive():
                    log.warning("%s: thread %s still running after close(); %s", self.name, thread.name,
                                self._what_holds(thread))

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def connected(self) -> bool:
        """True while every connection of the pool is up (never in a forked child: the
        links are the parent's)."""
        return self._pid == os.getpid() and all(link.connection.connected for link in self._pool.links)

    def __enter__(self) -> HyperliquidWS:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            _warn_if_the_block_ended_at_once(self)
        self.close()

    def __repr__(self) -> str:
        links = self._pool.links
        up = sum(link.connection.connected for link in links)
        state = "closed" if self.closed else "idle" if not self._started else f"{up}/{len(links)} connected"
        if self._pid != os.getpid():
            state = f"inherited by a forked child (the client of process {self._pid})"
        subscriptions = sum(len(link.registry.entries()) for link in links)
        errors = self._dispatcher.callback_errors
        return (f"<HyperliquidWS {self.name} {self.ws_url} {state} subscriptions={subscriptions} "
                f"delivered={self._dispatcher.delivered} callback_errors={errors}>")

    # -- internals ------------------------------------------------------------------------

    def _check_forked(self) -> None:
        if self._pid != os.getpid():
            raise HyperliquidWSError(
                f"this client was created in process {self._pid} and this is a forked child "
                f"({os.getpid()}); its connections belong to the parent. Create a new HyperliquidWS "
                "in the child (after the fork)")

    def _check_usable(self) -> None:
        self._check_forked()
        if self._closed.is_set():
            raise HyperliquidWSError("this client is closed; create a new HyperliquidWS")

    def _start(self) -> None:
        with self._lifecycle:
            if self._started or self._closed.is_set():
                return
            self._started = True
            _open_clients.add(self)
            if len(_open_clients) >= _MANY_CLIENTS:
                log.warning("%d HyperliquidWS clients are open in this process; close() the ones you no "
                            "longer use (re-running a notebook cell makes a new one each time: call "
                            "hyperliquid_ws.close_all() at the top of the cell)", len(_open_clients))
            self._scrubber.install()
            self._dispatcher.start()
            self._backfiller.start()
            self._pool.start()

    def _what_holds(self, thread: threading.Thread) -> str:
        """A guess at why ``thread`` outlived ``close()``, for its warning: a connection's
        thread blames a callback only when it is inside one."""
        for link in [*self._pool.links, *self._pool.retired]:
            connection = link.connection
            if thread in connection.threads and not connection.in_user_code:
                return "it is stuck in network I/O that close() could not interrupt (please report this)"
        return "a callback may be blocking"

    def _threads(self) -> list[threading.Thread]:
        links = [*self._pool.links, *self._pool.retired]
        return [*(t for link in links for t in link.threads()), *self._backfiller.threads, *self._dispatcher.threads]


def _forget_in_child() -> None:
    """After ``os.fork()``, in the child: the inherited clients are the parent's; the exit
    of the child must not close them (``close()`` would shut the shared sockets down)."""
    _open_clients.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def close_all() -> int:
    """Close every open ``HyperliquidWS`` of this process (any thread); return how many
    were open. For notebooks: at the top of a cell that makes a client, so that running
    the cell again does not leave the previous client (and its callbacks) running."""
    clients = list(_open_clients)
    for client in clients:
        client.close()
    return len(clients)


def _forgotten_subscriptions(client: HyperliquidWS) -> list[str]:
    """The live subscriptions of a client nobody closed or ran, for the exit warning."""
    if client.closed or client._running_forever or client._pid != os.getpid():
        return []
    return [json.dumps(entry.wire, separators=(",", ":")) for _, entry in client._pool.entries()]


WITH_BLOCK_GRACE = 0.5  # s: a with block that ends sooner after subscribing, with nothing delivered, gets a warning


def _warn_if_the_block_ended_at_once(client: HyperliquidWS) -> None:
    """A ``with`` block that ends right after subscribing, before any message arrived,
    most likely meant to keep receiving (the exit warning's case, in a block)."""
    forgotten = _forgotten_subscriptions(client)
    elapsed = time.monotonic() - client._subscribed_at
    entries = [entry for _, entry in client._pool.entries()]
    heard = any(entry.received or entry.active for entry in entries)  # a frame or an ack: the block waited
    if forgotten and not heard and elapsed < WITH_BLOCK_GRACE:
        shown = ", ".join(forgotten[:5]) + (f" and {len(forgotten) - 5} more" if len(forgotten) > 5 else "")
        log.warning("the with block closed %s %.2f s after subscribing, before any message arrived. To keep "
                    "receiving, end the block with ws.run_forever() (returns on ws.close() or Ctrl-C)",
                    shown, elapsed)


@atexit.register
def _close_open_clients() -> None:
    """A script that falls off the end without close() still shuts down cleanly; if it
    still had subscriptions, it most likely meant to keep receiving, so say so once. Not
    after an uncaught exception (Ctrl-C too): its traceback already said why it ended."""
    forgotten = [sub for client in list(_open_clients) for sub in _forgotten_subscriptions(client)]
    if forgotten and getattr(sys, "last_value", None) is None:
        shown = ", ".join(forgotten[:5]) + (f" and {len(forgotten) - 5} more" if len(forgotten) > 5 else "")
        log.warning("the script ended with live subscriptions (%s): nothing more will arrive. To keep "
                    "receiving, end it with ws.run_forever() (returns on ws.close() or Ctrl-C); "
                    "close() the client when done to silence this", shown)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C again while closing: leave now (daemon threads)
        close_all()
