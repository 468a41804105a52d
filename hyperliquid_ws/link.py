"""One connection of the pool and everything that serves it: its reader, keepalive and
writer threads, the registry of the subscriptions it carries, and its router.

A link's trouble stays on that link: it reconnects, resubscribes and backfills on its
own, while the other links keep streaming.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backfill import Backfiller, now_ms
from .backoff import Backoff
from .connection import Connection
from .dial import Route
from .dispatch import Dispatcher, Ready
from .guard import FrameGuard
from .keepalive import Keepalive
from .plans import PLANS
from .posts import PendingRequests
from .ratelimit import RateLimiter
from .registry import Registry
from .router import Router
from .subscription import Entry
from .writer import Writer

log = logging.getLogger(__name__)

_RECHECK_AFTER = 2.0  # seconds after a rate-limit error before unanswered subscribes count as dropped


@dataclass(frozen=True)
class LinkSettings:
    """What every link of one client shares."""

    url: str
    dispatcher: Dispatcher
    limiter: RateLimiter  # messages sent, across the pool
    connect_limiter: RateLimiter  # new connections, across the pool
    backfiller: Backfiller
    backfill: bool
    backoff: Backoff
    open_timeout: float
    ping_interval: float
    pong_timeout: float
    silent_factor: float
    silent_minimum: float
    inflight_posts: int
    max_message_size: int
    on_error: Callable[[BaseException], None] | None
    on_connect: Callable[[str], None] | None
    on_disconnect: Callable[[str], None] | None
    on_reconnect: Callable[[float], None] | None
    route: Route | None = None  # proxy and TLS context of the socket (None: direct, defaults)
    max_retry_after: float = 120.0  # seconds; the longest Retry-After honoured
    scrub: Callable[[str], str] = str  # masks the client's secrets in text other libraries wrote


class Link:
    def __init__(self, name: str, settings: LinkSettings, *, carries_posts: bool) -> None:
        self.name = name
        self._settings = settings
        self.registry = Registry()
        dispatcher = settings.dispatcher
        # lanes this link's own threads serve, when callbacks run on them
        self.ready: Ready | None = Ready() if dispatcher.on_connection_threads else None
        ready = self.ready
        self.guard = FrameGuard(name)  # served right after the read that found the bad frame
        self.guard.report = lambda error: dispatcher.report(error, ready)
        self.connection = Connection(
            settings.url, name=name, on_open=self._on_open, on_lost=self._on_lost,
            backoff=settings.backoff, open_timeout=settings.open_timeout,
            connect_limiter=settings.connect_limiter,
            run_callbacks=(lambda: dispatcher.serve(ready)) if ready is not None else None,
            guard=self.guard, max_message_size=settings.max_message_size,
            route=settings.route, max_retry_after=settings.max_retry_after, scrub=settings.scrub,
            send_timeout=settings.pong_timeout,  # a send that long without room: the server is not reading
        )
        self.connection.on_error = lambda error: self._hook(settings.on_error, error)
        self.posts = (PendingRequests(self.connection, settings.limiter, limit=settings.inflight_posts)
                      if carries_posts else None)
        self.router = Router(self.registry, dispatcher, self.posts, self.guard, ready)
        self.connection.on_frames = self.router.handle_all
        self.connection.on_batch_end = self.router.flush
        self.router.on_rate_limited = self._rate_limited
        self._recheck: tuple[float, float] | None = None  # (when, error time) after a rate-limit error
        self.rate_limit_resends = 0
        self.writer = Writer(self.connection, settings.limiter)
        self.keepalive = Keepalive(
            self.connection, settings.limiter, ping_interval=settings.ping_interval,
            pong_timeout=settings.pong_timeout, on_tick=self._on_tick,
        )
        self._down_since: float | None = None
        self._lost_at_ms = 0  # wall clock (ms) when the last link ended
        self.silent_resubscribes = 0
        self.started = False

    def start(self) -> None:
        self.started = True
        self.writer.start()
        self.connection.start()
        self.keepalive.start()

    def stop(self, timeout: float, reason: str = "closed by the user") -> None:
        """Stop for good; joins this link's threads (except the calling one)."""
        if self.posts is not None:
            self.posts.close()
        self.keepalive.stop(timeout)
        self.writer.stop(timeout)
        self.connection.close(timeout, reason)

    def threads(self) -> tuple[threading.Thread, ...]:
        return (*self.connection.threads, self.keepalive.thread, self.writer.thread)

    def send_subscribe(self, entry: Entry) -> None:
        generation = self.registry.claim(entry)
        if generation:
            self.writer.put("subscribe", [entry], generation)

    def send_unsubscribe(self, entry: Entry, generation: int) -> None:
        self.writer.put("unsubscribe", [entry], generation)

    def _hook(self, hook: Callable[[Any], None] | None, argument: Any) -> None:
        if hook is not None:
            dispatcher = self._settings.dispatcher
            dispatcher.submit(dispatcher.hook_lane(hook), argument, self.ready)
            if self.ready is not None:
                self.connection.run_callbacks_soon()

    # -- the reader thread ----------------------------------------------------------------

    def _on_open(self, generation: int) -> None:
        """A link is up: hold the feeds a backfill will fill, then replay the registry."""
        settings = self._settings
        if self._down_since is not None and settings.backfill:
            self._schedule_backfills()
        self.writer.put("subscribe", self.registry.claim_all(generation), generation)
        self._hook(settings.on_connect, self.connection.shown_url)
        if self._down_since is not None:
            self._hook(settings.on_reconnect, time.monotonic() - self._down_since)
            self._down_since = None

    def _schedule_backfills(self) -> None:
        for entry in self.registry.entries():
            if entry.feed.type in PLANS and entry.acked_at_ms is not None:
                self._backfill(entry, self._lost_at_ms)

    def _backfill(self, entry: Entry, latest_start: int) -> None:
        """Hold ``entry``'s live frames and recover what it missed from the last item it
        delivered, but never from later than ``latest_start`` (ms: when the gap opened,
        whatever time an item claimed); the backfill fetches once the server has answered
        its next subscribe. The held frames count in the client's ``max_backlog``."""
        last_seen = entry.tracker.last_time if entry.tracker is not None else None
        assert entry.acked_at_ms is not None
        start = min(entry.acked_at_ms if last_seen is None else last_seen, latest_start)
        hold_id = entry.hold(self._settings.dispatcher, start)
        if hold_id is None:
            return  # a backfill is still pending; it fetches up to when it runs
        self._settings.backfiller.schedule(entry, start, hold_id)

    def _on_lost(self, generation: int, reason: str) -> None:
        """The link ended: nothing survives on the server."""
        self._lost_at_ms = now_ms()
        self.registry.connection_lost()
        if self.posts is not None:
            self.posts.connection_lost(generation, reason)
        self._down_since = time.monotonic()
        if not self.connection.closing:
            self._hook(self._settings.on_disconnect, reason)

    def _rate_limited(self, at: float) -> None:
        """The server said the message budget was spent and dropped a message; which one
        it does not say. Look again shortly, when every earlier request has been answered."""
        self._recheck = (at + _RECHECK_AFTER, at)

    # -- the keepalive thread -------------------------------------------------------------

    def _on_tick(self, now: float) -> None:
        recheck = self._recheck
        if recheck is not None and now >= recheck[0]:
            self._recheck = None
            self._resend_dropped(recheck[1])
        self._look_for_silent_feeds(now)

    def _resend_dropped(self, error_at: float) -> None:
        dropped = self.registry.dropped_subscribes(error_at)
        generation = self.connection.generation
        if dropped and self.connection.connected:
            for entry in dropped:
                entry.resent = True
            self.rate_limit_resends += len(dropped)
            log.warning("%s: the server dropped %d subscribe(s) over its message budget; sending them again",
                        self.name, len(dropped))
            self.writer.put("subscribe", dropped, generation)

    def _look_for_silent_feeds(self, now: float) -> None:
        """A feed silent for far longer than its usual cadence, on a live link, gets a
        targeted resubscribe (once per silence), handled like a reconnect: a feed with a
        backfill plan is held and backfilled across the unsubscribe and subscribe. Feeds
        for which silence is normal (``Feed.quiet``: a user's events and history) are
        never resubscribed for it, nor, without backfill, feeds whose gap would stay open."""
        settings = self._settings
        for entry in self.registry.entries():
            entry.observe()
            cadence = entry.cadence
            if not entry.active or cadence is None or entry.resubscribed_silent or entry.feed.quiet:
                continue
            recoverable = entry.feed.type in PLANS
            if recoverable and not settings.backfill:
                continue
            silence = now - entry.last_message
            if silence > max(settings.silent_minimum, settings.silent_factor * cadence):
                generation = self.registry.reclaim(entry)
                if generation:
                    entry.resubscribed_silent = True
                    self.silent_resubscribes += 1
                    log.warning("%s: %s silent for %.1f s (usual cadence %.2f s): resubscribing",
                                self.name, entry.key, silence, cadence)
                    if recoverable:
                        self._backfill(entry, now_ms())
                    self.writer.put("unsubscribe", [entry], generation)
                    self.writer.put("subscribe", [entry], generation)
