"""``Gateway``: holds the feeds consumers want upstream and appends them to Redis Streams.

Threads: ``<name>-control`` runs the leader lease, reads the demand leases, subscribes
and unsubscribes upstream and publishes each feed's status; ``<name>-backfill``
recovers each feed's gap after a takeover (``holder.Backfills``);
``<name>-appender`` writes to Redis (``appender.py``); while leading, the gateway's
``HyperliquidWS`` (named ``<name>-upstream``) runs its own threads and calls
``HeldFeed.deliver`` from them. ``start()`` starts them, ``close()`` stops and joins
them all. Every public method is thread-safe; ``close()`` is idempotent.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..client import HyperliquidWS
from ..dispatch import ErrorHook
from ..endpoints import MAINNET_API_URL, check_base_url
from ..errors import HyperliquidWSError
from ..feeds import FEEDS, lenient_canonical, unknown_feed
from .appender import Appender
from .broker import ERRORS, RENEW, close_deadline, connect, masked, remaining, translate
from .errors import GatewayError
from .holder import TAIL, Backfills, HeldFeed
from .keys import DEFAULT_PREFIX, Keys, network_of, parse_shard, shard_of
from .leases import MIN_TTL, LeaderLease, redis_now_ms, wanted_feeds

log = logging.getLogger(__name__)

_numbers = itertools.count(1)
DEFAULT_MAXLEN = 100_000  # entries kept per stream when neither maxlen nor retention_s is given


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


class Gateway:
    """Fans Hyperliquid feeds out to Redis Streams for any number of ``GatewayClient``\\ s.

    ``redis_url``: ``redis://[:password@]host:6379/0`` (masked wherever it is shown).
    ``base_url``: the upstream API root, as for ``HyperliquidWS``; it also names the
    network in every key (``keys.py``). ``shard``: ``"K/N"`` or ``(K, N)``, this
    gateway holds the feeds whose key hashes to K of N. Retention per stream, one of:
    ``maxlen`` entries (``MAXLEN ~``; 100,000 when neither is given), or ``retention_s``,
    the entries younger than that many seconds (``MINID ~``). ``grace`` (s): how long a
    feed nobody wants stays subscribed upstream. ``leader_ttl`` (s, at least 0.5): the leader
    lease; a standby takes over within about that long after the leader dies. ``max_buffer`` (messages): held while
    Redis is unreachable. ``backfill_timeout`` (s): the most each ``/info`` request of a
    takeover's backfill may take (a failed backfill goes into the stream as a gap mark:
    consumers get a ``BackfillError``). ``client_options`` go to the upstream ``HyperliquidWS``.
    ``on_error`` gets every ``HyperliquidWSError`` without a caller (``BrokerError`` for
    an outage, the upstream client's own reports). Raises ``ValueError`` for a bad value.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        base_url: str = MAINNET_API_URL,
        shard: str | tuple[int, int] = (0, 1),
        prefix: str = DEFAULT_PREFIX,
        maxlen: int | None = None,
        retention_s: float | None = None,
        grace: float = 30.0,
        leader_ttl: float = 3.0,
        demand_poll: float = 0.1,
        max_buffer: int = 100_000,
        backfill_timeout: float = 10.0,
        name: str | None = None,
        on_error: ErrorHook | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._url = redis_url
        self._client = connect(redis_url)
        self.redis_url = masked(redis_url)
        self.shard, self.shards = parse_shard(shard) if isinstance(shard, str) else shard
        if not (isinstance(self.shard, int) and isinstance(self.shards, int) and 0 <= self.shard < self.shards):
            raise ValueError(f"shard must be K/N with 0 <= K < N, got {shard!r}")
        if not isinstance(prefix, str) or not prefix or ":" in prefix:
            raise ValueError(f"prefix must be a non-empty string without ':', got {prefix!r}")
        self.base_url = check_base_url(base_url)  # ValueError, as HyperliquidWS raises
        self.keys = Keys(network_of(self.base_url), prefix)
        if maxlen is not None and retention_s is not None:
            raise ValueError("give maxlen (entries kept per stream) or retention_s (their age), not both")
        retention = ("MAXLEN", _count("maxlen", DEFAULT_MAXLEN if maxlen is None else maxlen))
        if retention_s is not None:
            retention = ("MINID", int(_seconds("retention_s", retention_s) * 1000))
        self._grace = _seconds("grace", grace)
        self._leader_ttl = _seconds("leader_ttl", leader_ttl)
        if self._leader_ttl < MIN_TTL:
            raise ValueError(f"leader_ttl must be at least {MIN_TTL} s (renewed every third of it, a shorter lease "
                             f"lapses on an ordinary pause and the standby takes over), got {leader_ttl!r}")
        self._demand_poll = _seconds("demand_poll", demand_poll)
        self._backfill_timeout = _seconds("backfill_timeout", backfill_timeout)
        if on_error is not None and not callable(on_error):
            raise ValueError(f"on_error must be callable, got {on_error!r}")
        self._on_error = on_error
        self._client_options = dict(client_options or {})
        for reserved in ("name", "on_error"):
            if reserved in self._client_options:
                raise ValueError(f"client_options must not set {reserved!r}; the gateway sets it")
        self.name = name or f"hlws-gateway-{next(_numbers)}"
        self.gateway_id = f"{socket.gethostname()}:{os.getpid()}:{self.name}"
        self._appender = Appender(self.name, self._client, redis_url, self.keys, retention=retention,
                                  max_buffer=_count("max_buffer", max_buffer), report=self._report)
        self._appender.lease_key = self.keys.leader(self.shard, self.shards)
        self._appender.term_key = self.keys.term(self.shard, self.shards)
        self._appender.lease_ttl_ms = int(self._leader_ttl * 1000)
        self._appender.on_fenced = self._fenced
        self._lease = LeaderLease(self._client, self.keys, self.shard, self.shards, self.gateway_id,
                                  int(self._leader_ttl * 1000))
        self._renew = self._client.register_script(RENEW)
        self._upstream: HyperliquidWS | None = None
        self._held: dict[str, HeldFeed] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._fenced_flag = threading.Event()
        self._started = False
        self._broker_up = True
        self._last_renew = 0.0
        self._role = "starting"  # until the first try for the lease: then "leading" or "standby"
        self._back_at = -float("inf")  # when Redis last answered again after an outage (monotonic s)
        self.takeovers = 0
        self.step_downs = 0
        self._control = threading.Thread(target=self._run, name=f"{self.name}-control", daemon=True)
        self._backfills = Backfills(self.name, lambda held: self._held.get(held.feed_key) is held, self._report)

    # -- public API -----------------------------------------------------------------------

    def start(self) -> Gateway:
        """Start the threads; return at once (it leads or stands by on its own)."""
        with self._lock:
            if self._started or self._closing.is_set():
                return self
            self._started = True
        self._appender.start()
        self._control.start()
        return self

    @property
    def leading(self) -> bool:
        """True while this gateway holds its shard's leader lease."""
        return self._appender.lease_value is not None

    def held(self) -> list[dict[str, Any]]:
        """The canonical subscriptions this gateway holds upstream (a copy)."""
        with self._lock:
            return [dict(h.canonical) for h in self._held.values()]

    def stats(self) -> dict[str, Any]:
        """Plain dict: leadership, Redis, buffer, per-feed counters, the upstream client's stats."""
        with self._lock:
            feeds = {key: {"received": h.received, "appended": h.appended, "duplicates": h.duplicates,
                           "state": h.state[0]} for key, h in self._held.items()}
            upstream = self._upstream
        return {
            "name": self.name, "redis_url": self.redis_url, "network": self.keys.network,
            "shard": f"{self.shard}/{self.shards}", "leading": self.leading, "takeovers": self.takeovers,
            "step_downs": self.step_downs, "broker_up": self._appender.broker_up and self._broker_up,
            "outages": self._appender.outages, "buffered": self._appender.depth,
            "appended": self._appender.appended, "dropped": self._appender.dropped,
            "duplicates_skipped": self._appender.duplicates_skipped, "feeds": feeds,
            "upstream": upstream.stats() if upstream is not None else None,
        }

    def run_forever(self) -> None:
        """Start, then block until ``close()`` (from another thread) or Ctrl-C."""
        self.start()
        try:
            while not self._closing.wait(0.5):
                pass
        except KeyboardInterrupt:
            log.info("%s: interrupted", self.name)
        finally:
            self.close()

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop: write what is buffered, unsubscribe upstream, give the leader lease up,
        join every thread, all within about ``timeout`` s (a Redis that does not answer
        costs no more); ``None`` waits as long as that takes. Idempotent, any thread.
        Raises ``ValueError`` for a negative ``timeout``."""
        deadline = close_deadline(timeout)
        first = not self._closing.is_set()
        self._closing.set()
        if not first or not self._started:
            return
        last = None if timeout is None else max(0.05, timeout / 4)  # kept for the lease's release
        joins = deadline - (last or 0.0)
        if self._control is not threading.current_thread():
            self._control.join(remaining(joins, 0.0))
        self._stop_upstream()  # first: nothing more comes in (a backfill in flight ends) ...
        self._backfills.stop(remaining(joins, 0.0))
        self._appender.stop(remaining(joins, 0.0))  # ... then what is buffered goes out
        closer = connect(self._url, socket_timeout=remaining(deadline))
        try:
            self._lease.release(closer)
        except ERRORS as exc:
            log.info("%s: could not release the leader lease (%s); it expires on its own", self.name,
                     translate(exc, self._url, "releasing the lease"))
        finally:
            closer.close()
        self._appender.lease_value = None  # not leading any more
        self._client.close()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        role = "leading" if self.leading else "stopped" if self._closing.is_set() else self._role
        return f"<Gateway {self.name} {self.redis_url} {self.keys.network} shard {self.shard}/{self.shards} {role}>"

    # -- the control thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing.is_set():
            try:
                self._tick()
                if not self._broker_up:
                    self._broker_up = True
                    log.info("%s: Redis reachable again", self.name)
            except ERRORS as exc:
                if self._broker_up:
                    self._broker_up = False
                    error = translate(exc, self._url, "the control loop")
                    log.warning("%s; retrying", error)
                    self._report(error)
            except Exception as exc:  # never end silently (STYLE 10a)
                log.exception("%s: control loop failed; going on", self.name)
                self._report(GatewayError(f"{self.name}: control loop failed: {exc!r}"))
            if self._closing.wait(self._demand_poll):
                return

    def _tick(self) -> None:
        if self._fenced_flag.is_set():
            self._fenced_flag.clear()
            if self._upstream is not None:  # not already stepped down (a failed renewal)
                self._step_down("another gateway took the lease")
        now = time.monotonic()
        if not self._broker_up:
            self._back_at = now  # Redis answers again (or this tick fails like the last)
        if self.leading:
            if now - self._last_renew >= self._leader_ttl / 3:
                if not self._lease.renew(self._renew) and not self._lease.acquire():
                    self._step_down(f"the lease is held by {self._lease.holder()}")
                    return
                self._last_renew = now
        elif now - self._back_at < self._leader_ttl:
            self._client.ping()  # Redis answers (the outage is over only if it does) ...
            return  # ... but the leader, cut off too, gets the first chance to take its lease back
        elif self._lease.acquire():
            self._take_over(now)
        else:
            if self._role != "standby":
                self._role = "standby"
                log.info("%s: standing by; shard %d/%d is led by %s", self.name, self.shard, self.shards,
                         self._lease.holder())
            return
        wanted = {key for key in wanted_feeds(self._client, self.keys, redis_now_ms(self._client))
                  if shard_of(key, self.shards) == self.shard}
        self._follow(wanted, now)
        self._publish_status()

    def _take_over(self, now: float) -> None:
        self.takeovers += 1
        self._role = "leading"
        self._last_renew = now
        self._stop_upstream()  # a leftover from a leadership lost in between, if any
        options = {"on_error": self._report, **self._client_options}
        self._upstream = HyperliquidWS(self.base_url, name=f"{self.name}-upstream", **options)
        self._appender.lease_value = self._lease.value
        log.info("%s: leading shard %d/%d as %s", self.name, self.shard, self.shards, self._lease.value)  # now true

    def _step_down(self, why: str) -> None:
        self.step_downs += 1
        self._role = "standby"
        log.warning("%s: no longer leading (%s); standing by", self.name, why)
        self._appender.lease_value = None
        discarded = self._appender.discard()
        if discarded:
            log.warning("%s: %d buffered message(s) left for the new leader to backfill", self.name, discarded)
        self._stop_upstream()

    def _fenced(self) -> None:
        """Appender thread: a write was fenced off; the control thread steps down."""
        self._fenced_flag.set()

    def _follow(self, wanted: set[str], now: float) -> None:
        upstream = self._upstream
        assert upstream is not None
        for key in wanted - self._held.keys():
            self._hold(upstream, key)
        for key, held in list(self._held.items()):
            if key in wanted:
                held.unwanted_since = None
            elif held.unwanted_since is None:
                held.unwanted_since = now
            elif now - held.unwanted_since >= self._grace:
                self._let_go(key, held)

    def _hold(self, upstream: HyperliquidWS, key: str) -> None:
        canonical = lenient_canonical(json.loads(key))
        if canonical is None:
            log.warning("%s: ignoring demand for %r: not a subscription", self.name, key)
            return
        feed = FEEDS.get(canonical["type"]) or unknown_feed(canonical["type"])
        held = HeldFeed(key, feed, canonical, self._appender, self._report)
        tail = self._client.xrevrange(self.keys.stream(key), "+", "-", count=TAIL)
        held.seed(tail)
        held.tail_id = tail[0][0] if tail else "0-0"
        held.began_ms = redis_now_ms(self._client)
        released = self._client.hget(self.keys.released, key)
        if released is not None:
            self._client.hdel(self.keys.released, key)
        if released == held.tail_id and not self._read_by_name(key):
            held.skip_backfill()  # see _let_go
        with self._lock:
            self._held[key] = held
        try:
            held.handle = upstream.subscribe(canonical, held.deliver, allow_unknown=canonical["type"] not in FEEDS)
        except (ValueError, HyperliquidWSError) as exc:
            held.handle = None
            held.refusal = json.dumps(
                {"state": "refused", "error": str(exc), "kind": type(exc).__name__, **self._signature()})
            self._client.hset(self.keys.status, key, held.refusal)
            held.published_state = "refused"
            return
        timeout = self._backfill_timeout
        self._backfills.add(held, lambda body: upstream.info(body, timeout=timeout, paced=True))

    def _let_go(self, key: str, held: HeldFeed) -> None:
        # The status goes first, then the demand is read again: a consumer renews its
        # demand before it reads the status, so one that read this holding's status before
        # it went is seen here and keeps the feed held (it would take a message of this
        # holding for the live end of the next); one that reads after waits for the next.
        self._client.hdel(self.keys.status, key)
        if key in wanted_feeds(self._client, self.keys, redis_now_ms(self._client)):
            held.unwanted_since = None
            held.published_state = None  # the status comes back, as it was
            if held.refusal is not None:
                self._client.hset(self.keys.status, key, held.refusal)
            log.debug("%s: %s wanted again as it was let go; still held", self.name, key)
            return
        log.info("%s: nobody wants %s; unsubscribing upstream", self.name, key)
        if held.handle is not None:
            held.handle.unsubscribe()
        # The stream stops here on purpose. Whoever holds the feed next skips the backfill
        # of the time nobody wanted it (which only recentTrades could reach, with a false
        # gap alarm to every new reader) unless a named consumer has read the feed: away,
        # it may come back for that time. A message still queued for the feed moves the
        # tail past this mark: the next holder then backfills, as after a takeover (the
        # safe side). Marked before the feed leaves ``held()``: whoever sees it gone sees it.
        last = self._client.xrevrange(self.keys.stream(key), "+", "-", count=1)
        self._client.hset(self.keys.released, key, last[0][0] if last else "0-0")
        with self._lock:
            self._held.pop(key, None)

    def _read_by_name(self, key: str) -> bool:
        """Has any named consumer a position in feed ``key`` (it may resume from it)?"""
        names = list(self._client.scan_iter(match=self.keys.consumers, count=1000))
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hexists(name, key)
        return any(pipe.execute()) if names else False

    def _publish_status(self) -> None:
        for key, held in list(self._held.items()):
            state, error = held.state
            if state == "pending" or state == held.published_state:
                continue
            payload: dict[str, Any] = {"state": state, "tail": held.tail_id, "began": held.began_ms,
                                       **self._signature()}
            if error is not None:
                payload.update(error=error, kind="SubscriptionError")
            self._client.hset(self.keys.status, key, json.dumps(payload))
            held.published_state = state

    def _signature(self) -> dict[str, Any]:
        """What makes a status true: it holds while this leader lease keeps this value
        (a consumer checks, so a status left by a gateway that stopped or died is not
        taken for an answer)."""
        return {"by": self.gateway_id, "leader": self._appender.lease_key, "lease": self._lease.value}

    def _stop_upstream(self) -> None:
        upstream, self._upstream = self._upstream, None
        with self._lock:
            self._held.clear()
        if upstream is not None:
            upstream.close()

    def _report(self, error: BaseException) -> None:
        hook = self._on_error
        if hook is None:
            return
        try:
            hook(error)
        except Exception:
            log.exception("%s: on_error raised", self.name)

