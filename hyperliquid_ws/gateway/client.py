"""``GatewayClient``: the ``HyperliquidWS`` surface, fed from a gateway's Redis streams.

Threads: ``<name>-lease`` renews this consumer's demand leases (every third of
``lease_ttl``) and reads the gateway's status for feeds not settled yet;
``<name>-reader`` reads the streams (``reader.py``) and runs every callback. Both start
at the first ``subscribe`` (or ``run_forever``); ``close()`` drops the leases, stops and
joins them. Every public method is thread-safe, callable from a callback, and
``close()`` is idempotent.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any, cast

from ..backoff import Backoff
from ..dispatch import ErrorHook, call_user
from ..endpoints import MAINNET_API_URL, check_base_url
from ..errors import HyperliquidWSError
from ..feeds import canonical as canonical_of
from ..feeds import key_of
from ..stream import DONE, PARKED, UNTAKEN, Handover, Stream
from ..subscription import Entry, Subscription
from .broker import ERRORS, close_deadline, connect, masked, remaining, translate
from .channel import Channel
from .feed import ConsumerFeed
from .health import Health
from .keys import DEFAULT_PREFIX, GAP_MARK, Keys, network_of, shard_of, shard_of_lease
from .leases import MIN_TTL, drop_demand, redis_now_ms, renew_demand
from .reader import (
    Checkpoints,
    check_numbered,
    decode,
    place,
    read_round,
    report_unrecovered,
    since_start,
    streams_of,
    xread,
)

log = logging.getLogger(__name__)

_numbers = itertools.count(1)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class GatewayClient:
    """A consumer of a ``Gateway``: ``subscribe``, ``stream``, ``unsubscribe``,
    ``run_forever``, ``close``, ``stats`` and the hooks, as on ``HyperliquidWS``.

    ``redis_url`` is the gateway's Redis; ``base_url`` names the network exactly as the
    gateway's does. ``name`` makes the consumer durable: its position in each feed is
    kept in Redis and a restart resumes after the last message its callbacks finished
    (``reader.py``). Unnamed consumers start at the live end. ``lease_ttl`` (s, at least
    0.5): how long this consumer's demand outlives it if it dies. ``block`` (s): the longest ``XREAD``
    wait. ``batch``: entries read per call. Hooks: ``on_error(error)`` gets
    ``CallbackError``, ``BrokerError``, ``RetentionGapError``; ``on_disconnect(reason)``
    and ``on_connect(url)``/``on_reconnect(downtime_s)`` mark a Redis outage and its end.
    Raises ``ValueError`` for a bad value (nothing is connected before the first use).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        base_url: str = MAINNET_API_URL,
        name: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        lease_ttl: float = 10.0,
        block: float = 1.0,
        batch: int = 100,
        backoff: Backoff | None = None,
        on_error: ErrorHook | None = None,
        on_connect: Callable[[str], None] | None = None,
        on_disconnect: Callable[[str], None] | None = None,
        on_reconnect: Callable[[float], None] | None = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS):
            raise ValueError(f"name must be letters, digits and -_. only, got {name!r}")
        for label, value in (("lease_ttl", lease_ttl), ("block", block)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
        if lease_ttl < MIN_TTL:
            raise ValueError(f"lease_ttl must be at least {MIN_TTL} s (renewed every third of it, a shorter lease "
                             f"lapses on an ordinary pause and the gateway lets the feeds go), got {lease_ttl!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise ValueError(f"backoff must be a hyperliquid_ws.Backoff, got {backoff!r}")
        hooks = {"on_error": on_error, "on_connect": on_connect, "on_disconnect": on_disconnect,
                 "on_reconnect": on_reconnect}
        for hook_name, hook in hooks.items():
            if hook is not None and not callable(hook):
                raise ValueError(f"{hook_name} must be callable, got {hook!r}")
        self._url = redis_url
        self._redis = connect(redis_url, socket_timeout=float(block) + 5.0)
        self.redis_url = masked(redis_url)
        self.base_url = check_base_url(base_url)  # ValueError, as HyperliquidWS raises
        self.keys = Keys(network_of(self.base_url), prefix)
        self.name = name
        self.consumer_id = name or f"anon-{uuid.uuid4().hex[:12]}"
        self._label = f"hlws-gw-{name or next(_numbers)}"
        self._lease_ttl_ms = int(lease_ttl * 1000)
        self._block_ms = max(1, int(block * 1000))
        self._batch = batch
        self._backoff = backoff or Backoff(initial=0.1, maximum=5.0)
        self._on_error = on_error
        self._feeds: dict[str, ConsumerFeed] = {}
        self._streams: weakref.WeakSet[Stream] = weakref.WeakSet()
        self._parked: list[ConsumerFeed] = []  # feeds whose message waits for a durable stream's loop (reader)
        self._dropped: list[str] = []  # feed keys whose demand is to be dropped (lease thread)
        self._lock = threading.Lock()
        self._changed = threading.Event()  # feeds changed: the lease thread acts now
        self._closing = threading.Event()
        self._started = False
        self._channel = Channel(self._redis)  # the reader thread's own connection
        self._checkpoints = Checkpoints(self._channel, self.keys, name) if name is not None else None
        self._wake_key = self.keys.wake(self.consumer_id)
        self._health = Health(self._label, redis_url, report=self._report, on_connect=on_connect,
                              on_disconnect=on_disconnect, on_reconnect=on_reconnect)
        self.delivered = 0
        self.callback_errors = 0
        self._threads = [threading.Thread(target=self._lease_loop, name=f"{self._label}-lease", daemon=True),
                         threading.Thread(target=self._read_loop, name=f"{self._label}-reader", daemon=True)]

    # -- public API -----------------------------------------------------------------------

    def subscribe(self, subscription: Mapping[str, Any], callback: Callable[[Any], None], *,
                  allow_unknown: bool = False) -> Subscription:
        """As ``HyperliquidWS.subscribe``: validate, register the demand, return at once.

        ``callback(message)`` runs on ``<name>-reader`` (one thread for every feed of this
        client: a callback that blocks holds them all back) with the message as the server
        sent it (``{"channel", "data"}``, ``"backfill": true`` for backfilled ones and
        ``"redelivered": true`` for one a crash interrupted). The handle's ``wait()``
        returns once the gateway holds the feed upstream, or raises its
        ``SubscriptionError``. Raises ``ValueError`` for a malformed subscription, and on a
        named consumer for a feed it already reads (its position is kept per feed: a second
        handle would miss what the first took alone, a replayed backlog after a restart).
        """
        if not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        feed_type, canonical = canonical_of(subscription, allow_unknown=allow_unknown)
        if self._closing.is_set():
            raise HyperliquidWSError("this client is closed; create a new GatewayClient")
        key = key_of(canonical)
        with self._lock:
            feed = self._feeds.get(key)
            if feed is not None and self.name is not None:
                raise ValueError(f"named consumer {self.name!r} already reads {feed.wire}: its position in Redis is "
                                 f"per feed, so each feed takes one callback or stream (fan out from that one, or "
                                 f"read the feed under another name; a stream of it counts until it is closed: "
                                 f"close() it, or read it in a with block)")
            if feed is None:
                wire = dict(subscription)
                if "user" in canonical:
                    wire["user"] = canonical["user"]
                feed = ConsumerFeed(key, canonical, wire, self.keys.stream(key), feed_type.kind)
                self._feeds[key] = feed
            handle = Subscription(self, cast(Any, feed), callback)
            feed.attach(handle)
        self._changed.set()
        self._start()
        self._poke()
        return handle

    def stream(self, subscription: Mapping[str, Any], *, timeout: float | None = None, maxsize: int = 10_000,
               overflow: str = "drop_oldest", allow_unknown: bool = False) -> Stream:
        """As ``HyperliquidWS.stream``: a blocking iterator over one feed's messages.

        On a named consumer it is durable, as a callback is: there is no queue (``maxsize``
        and ``overflow`` do not apply), the reader hands the loop one message at a time
        and records the position once the loop comes back for the next (or the stream is
        closed, or its ``with`` block ends without an exception). A message the loop held
        when it ended otherwise (a crash, an exception, the client closing) comes again
        after a restart, marked ``"redelivered": true``; ``close()`` on this client from
        the loop's body counts it finished. A loop slower than ``stream.PARK_AFTER`` does
        not hold the other feeds back (the reader parks its message and reads on), so
        streams read in step from one thread work. Raises ``ValueError`` as ``subscribe``."""
        stream = Stream(dict(subscription) if isinstance(subscription, Mapping) else subscription,
                        timeout=timeout, maxsize=maxsize, overflow=overflow, durable=self.name is not None)
        feeder = stream.feeder()
        if isinstance(feeder, Handover):
            feeder.wake = self._poke
        stream.attach(self.subscribe(subscription, feeder, allow_unknown=allow_unknown))
        self._streams.add(stream)
        return stream

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove one handle's callback; the last one on a feed drops its demand lease."""
        if not isinstance(subscription, Subscription):
            raise ValueError(f"unsubscribe takes the Subscription that subscribe returned, got {subscription!r}")
        with self._lock:
            subscription.closed = True
            feed = cast(ConsumerFeed, subscription._entry)
            feed.detach(subscription)
            if not feed.handles and self._feeds.get(feed.key) is feed:
                del self._feeds[feed.key]
                self._dropped.append(feed.key)
        self._changed.set()
        self._poke()

    def stats(self) -> dict[str, Any]:
        """Plain dict: Redis state, totals, and per feed its position and counters."""
        with self._lock:
            feeds = {key: {"position": f.position, "delivered": f.delivered, "redelivered": f.redelivered,
                           "gaps": f.gaps, "active": f.active, "listeners": len(f.handles)}
                     for key, f in self._feeds.items()}
        return {"name": self.name, "consumer": self.consumer_id, "redis_url": self.redis_url,
                "network": self.keys.network, "broker_up": self._health.broker_up, "delivered": self.delivered,
                "callback_errors": self.callback_errors, "subscriptions": feeds}

    def run_forever(self) -> None:
        """Block until ``close()`` (from a callback or another thread) or Ctrl-C."""
        self._start()
        try:
            while not self._closing.wait(0.5):
                pass
        except KeyboardInterrupt:
            log.info("%s: interrupted", self._label)
        finally:
            self.close()

    def close(self, timeout: float | None = 5.0) -> None:
        """Drop this consumer's demand leases, stop and join its threads, within about
        ``timeout`` s (a Redis that does not answer costs no more; the leases then expire
        on their own, a thread still in a Redis call ends at its socket timeout); ``None``
        waits as long as that takes. Idempotent; from a callback it returns at once (the
        reader ends when the callback returns, recording its position), and a ``close()``
        elsewhere (``run_forever``'s) waits for that. Raises ``ValueError`` for a negative
        ``timeout``."""
        deadline = close_deadline(timeout)
        first = not self._closing.is_set()
        self._closing.set()
        self._changed.set()
        if not first:
            self._join(deadline)
            return
        for stream in list(self._streams):
            stream.end()  # wakes their loops, and the reader if it waits on one
        # Close's own connection, for its two round trips (the poke, the leases dropped):
        # each may take a share of the timeout, and the joins what is left between them.
        share = None if timeout is None else max(0.05, timeout / 4)
        closer = connect(self._url, socket_timeout=share)
        try:
            if self._started:
                self._poke(closer)
                self._join(deadline - (share or 0.0))
            with self._lock:
                keys = [*self._feeds, *self._dropped]
            try:
                pipe = closer.pipeline(transaction=False)
                drop_demand(pipe, self.keys, self.consumer_id, keys)
                pipe.delete(self._wake_key)
                pipe.execute()
            except ERRORS as exc:
                log.info("%s: could not drop the demand leases (%s); they expire on their own", self._label,
                         translate(exc, self._url, "closing"))
        finally:
            closer.close()
        self._redis.close()

    def _join(self, deadline: float) -> None:
        if not self._started:
            return
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current and thread.is_alive():
                thread.join(remaining(deadline, 0.0))
                if thread.is_alive():
                    log.warning("%s: thread %s still running after close()", self._label, thread.name)

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    @property
    def connected(self) -> bool:
        """True while Redis answered the last command."""
        return self._started and self._health.broker_up and not self.closed

    def _link_problem(self, entry: Entry) -> str | None:
        """Why ``Subscription.wait`` got no answer, when Redis is the reason (else None)."""
        if self._started and not self._health.broker_up:
            return f"Redis at {self.redis_url} is not answering"
        try:
            leases = [shard_of_lease(k) for k in self._redis.scan_iter(match=self.keys.leaders, count=1000)]
        except ERRORS:
            return None
        if any(lease is not None and shard_of(entry.key, lease[1]) == lease[0] for lease in leases):
            return None  # a gateway leads this feed's shard: it is just slow to answer
        return (f"no gateway leads network {self.keys.network} (for this feed's shard) in Redis at "
                f"{self.redis_url}; start one: hyperliquid-ws gateway --redis URL --base-url {self.base_url}")

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<GatewayClient {self._label} {self.redis_url} {self.keys.network} "
                f"subscriptions={len(self._feeds)} delivered={self.delivered}>")

    # -- threads --------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._started or self._closing.is_set():
                return
            self._started = True
        for thread in self._threads:
            thread.start()

    def _poke(self, client: Any = None) -> None:
        """Wake the reader's blocked XREAD (best effort: it wakes within ``block`` anyway);
        ``client``: the connection to send it on (a close's own), else the client's."""
        if not self._started:
            return
        try:
            (client or self._redis).xadd(self._wake_key, {"poke": "1"}, maxlen=10, approximate=False)
        except ERRORS:
            log.debug("%s: poke failed", self._label, exc_info=True)

    def _lease_loop(self) -> None:
        renew_every = self._lease_ttl_ms / 3000
        last_renew = 0.0
        failures = 0
        pending: list[ConsumerFeed] = []
        owed = False  # the feeds changed since the last renewal that went through
        while not self._closing.is_set():
            if self._changed.is_set():
                self._changed.clear()  # before the snapshot: a subscribe after it sets it again for the next round
                owed = True
            try:
                with self._lock:
                    feeds = list(self._feeds.values())
                    dropped, self._dropped = self._dropped, []
                try:
                    drop_demand(self._redis, self.keys, self.consumer_id, dropped)
                except ERRORS:
                    with self._lock:
                        self._dropped.extend(dropped)
                    raise
                now = time.monotonic()
                pending = [f for f in feeds if not f.settled.is_set()]
                if now - last_renew >= renew_every or owed:
                    redis_now = redis_now_ms(self._redis)
                    expiry = redis_now + self._lease_ttl_ms
                    renew_demand(self._redis, self.keys, self.consumer_id, [f.key for f in feeds], expiry)
                    self._redis.expire(self._wake_key, max(60, self._lease_ttl_ms // 1000 * 3))
                    last_renew, owed = now, False
                    for feed in feeds:
                        if feed.subscribed_ms is None:
                            feed.subscribed_ms = redis_now  # the demand is in: a holding from now on is its own
                if pending:
                    self._settle(pending)
                self._health.up()
                failures = 0
            except ERRORS as exc:
                self._health.down(exc, "renewing the demand leases")
            except Exception as exc:  # never end silently (STYLE 10a)
                log.exception("%s: lease loop failed; going on", self._label)
                self._report(HyperliquidWSError(f"{self._label}: lease loop failed: {exc!r}"))
                failures += 1
                if self._closing.wait(self._backoff.delay(failures - 1)):
                    return
                continue
            wait = 0.05 if pending else renew_every
            if self._changed.wait(wait) and self._closing.is_set():
                return

    def _settle(self, pending: list[ConsumerFeed]) -> None:
        """Settle the feeds whose status the gateway published and that is still true:
        the leader lease it names holds the value it names (a status written by a
        gateway that has stopped or died since is no answer)."""
        statuses = [_status_of(text) for text in self._redis.hmget(self.keys.status, [f.key for f in pending])]
        leaders = sorted({s["leader"] for s in statuses if s is not None and isinstance(s.get("leader"), str)})
        current = dict(zip(leaders, self._redis.mget(leaders), strict=True)) if leaders else {}
        settled = False
        for feed, status in zip(pending, statuses, strict=True):
            if status is None:
                continue
            leader = status.get("leader")
            if isinstance(leader, str) and current.get(leader) != status.get("lease"):
                continue  # left by a gateway that no longer leads
            feed.settle(status)
            settled = True
        if settled:
            self._poke()  # a feed waiting for its status to be placed is read from now

    def _read_loop(self) -> None:
        try:
            self._read_until_closed()
        finally:
            if self._checkpoints is not None:
                with self._lock:
                    feeds = list(self._feeds.values())
                try:
                    for feed in list(self._parked):
                        self._unpark(feed)
                    for feed in self._parked:  # its loop still holds the message: the mark stays
                        feed.interrupted = True
                    self._checkpoints.settle(feeds)
                except ERRORS as exc:
                    log.info("%s: could not settle the positions (%s)", self._label,
                             translate(exc, self._url, "closing"))
            self._channel.close()

    def _read_until_closed(self) -> None:
        attempt = 0
        wake_position = "$"
        while not self._closing.is_set():
            try:
                if wake_position == "$":
                    wake_position = self._channel.call("XADD", self._wake_key, "MAXLEN", 10, "*", "poke", "0")
                with self._lock:
                    feeds = list(self._feeds.values())
                for parked in list(self._parked):
                    self._unpark(parked)
                held_back = {f.key for f in self._parked}  # an earlier handle's message still in a loop's hands:
                unplaced = [f for f in feeds if f.position is None and f.key not in held_back]  # its end first
                if unplaced and self._checkpoints is not None:
                    self._checkpoints.flush()
                for feed in unplaced:
                    place(self._redis, self.keys, feed, self.name, self._report)
                positions = {f.stream: f.position for f in feeds if f.position is not None and f.parked is None}
                positions[self._wake_key] = wake_position
                reply = read_round(self._channel, self._checkpoints, feeds, xread(positions, self._batch,
                                   self._block_ms), self._report)
                self._health.up()
                attempt = 0
                by_stream = {f.stream: f for f in feeds}
                for stream, entries in streams_of(reply):
                    if stream == self._wake_key:
                        wake_position = entries[-1][0]
                        continue
                    reading = by_stream.get(stream)
                    if reading is not None:
                        self._deliver(reading, entries)
            except ERRORS as exc:
                self._health.down(exc, "reading the streams")
                if self._closing.wait(self._backoff.delay(attempt)):
                    return
                attempt += 1
            except Exception as exc:  # never end silently (STYLE 10a)
                log.exception("%s: reader failed; going on", self._label)
                self._report(HyperliquidWSError(f"{self._label}: reader failed: {exc!r}"))
                if self._closing.wait(self._backoff.delay(attempt)):
                    return
                attempt += 1

    def _deliver(self, feed: ConsumerFeed, entries: list[tuple[str, dict[str, str]]]) -> None:
        checkpoints = self._checkpoints
        for index, (entry_id, fields) in enumerate(entries):
            if self._closing.is_set() or not feed.handles:
                if checkpoints is not None:
                    checkpoints.withdraw(feed)  # the next entry's mark went ahead; it will not start here
                return
            check_numbered(feed, entry_id, fields, self._report)
            try:
                message = decode(fields)
            except (KeyError, ValueError) as exc:
                log.warning("%s: dropped undecodable entry %s of %s: %r", self._label, entry_id, feed.key, exc)
                feed.position = entry_id
                continue
            if isinstance(message, dict) and GAP_MARK in message:  # a gap the gateway could not backfill
                report_unrecovered(feed, message[GAP_MARK], self._report)
                self._pass(feed, entry_id, entries, index)
                continue
            if feed.since_ms is not None and isinstance(message, dict) and message.get("backfill") is True:
                data = message.get("data")
                recent = since_start(feed, data)
                if recent is None:  # wholly from before this consumer began: never its own
                    self._pass(feed, entry_id, entries, index)
                    continue
                if recent is not data:
                    message = {**message, "data": recent}
            if feed.redeliver is not None:
                if entry_id == feed.redeliver and isinstance(message, dict):
                    message["redelivered"] = True
                    feed.redelivered += 1
                feed.redeliver = None
            if checkpoints is not None:
                checkpoints.started(feed, entry_id)
            callbacks = feed.callbacks
            for callback in callbacks:
                self._call_user(callback, message)
            if checkpoints is not None:
                if any(isinstance(c, Handover) and c.outcome == PARKED for c in callbacks):
                    feed.parked = (entry_id, callbacks)  # its loop is slow: the other feeds go on
                    self._parked.append(feed)
                    return
                if not self._finished(feed, callbacks):
                    return
            self._advance(feed, entry_id, entries[index + 1][0] if index + 1 < len(entries) else None)

    def _pass(self, feed: ConsumerFeed, entry_id: str, entries: list[tuple[str, dict[str, str]]],
              index: int) -> None:
        """Move past an entry no callback gets (a gap mark, a backfill from before this
        consumer began), recorded as a finished one is (named)."""
        feed.position = entry_id
        if self._checkpoints is not None:
            following = entries[index + 1][0] if index + 1 < len(entries) else None
            self._checkpoints.finished(feed, entry_id, following)

    def _advance(self, feed: ConsumerFeed, entry_id: str, following: str | None) -> None:
        """``entry_id``'s callbacks are done: the feed's position moves (recorded, named)."""
        feed.position = entry_id
        feed.delivered += 1
        self.delivered += 1
        if self._checkpoints is not None:
            self._checkpoints.finished(feed, entry_id, following)

    def _unpark(self, feed: ConsumerFeed) -> None:
        """A parked message (reader thread, each round): once its loop is done with it (or
        the stream ended), settle it as ``_deliver`` would have, and read the feed on."""
        assert feed.parked is not None
        entry_id, callbacks = feed.parked
        if any(isinstance(c, Handover) and c.poll() == PARKED for c in callbacks):
            return
        feed.parked = None
        self._parked.remove(feed)
        if self._finished(feed, callbacks):
            self._advance(feed, entry_id, None)

    def _finished(self, feed: ConsumerFeed, callbacks: tuple[Callable[[Any], None], ...]) -> bool:
        """After a message's callbacks: did every durable stream among them finish it? If
        one did not, and the feed or this client is going away, the position stays (the
        feed stops here): a restart delivers the message again, marked ``redelivered``
        unless no loop had taken it."""
        outcomes = [c.outcome for c in callbacks if isinstance(c, Handover)]
        if all(o == DONE for o in outcomes) or (feed.handles and not self._closing.is_set()):
            return True
        if len(outcomes) == len(callbacks) and all(o == UNTAKEN for o in outcomes):
            assert self._checkpoints is not None
            self._checkpoints.withdraw(feed)
        else:
            feed.interrupted = True  # its started mark stays (a clean stop keeps it)
        return False

    def _call_user(self, callback: Callable[[Any], None], message: Any) -> None:
        """As the client runs callbacks (``dispatch.call_user``: logged, reported to
        ``on_error`` as a ``CallbackError``, a raising hook logged at a bounded rate)."""
        if not call_user(callback, message, self._on_error):
            self.callback_errors += 1

    def _report(self, error: BaseException) -> None:
        hook = self._on_error
        if hook is not None:
            try:
                hook(error)
            except Exception:
                log.exception("%s: on_error raised", self._label)


def _status_of(text: str | None) -> dict[str, Any] | None:
    """A status field of ``P:N:status`` (JSON), or None for none or a malformed one."""
    if text is None:
        return None
    try:
        status = json.loads(text)
    except ValueError:
        return None
    return status if isinstance(status, dict) else None
