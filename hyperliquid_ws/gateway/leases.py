"""Leases in Redis: the leader lease of a shard (with its fencing token) and the helpers
that read consumers' demand leases. Every call is one or two Redis commands on the
calling thread (the gateway's control thread, or a consumer's lease thread) and lets
redis-py's exceptions through for the caller to count and retry.
"""

from __future__ import annotations

from typing import Any

from .broker import ACQUIRE, RELEASE
from .keys import Keys, demand_member, feed_of_member

MIN_TTL = 0.5  # s: the shortest lease (leader or demand) a gateway or consumer takes


def redis_now_ms(client: Any) -> int:
    """Redis' own clock (ms): every lease is measured on it, so hosts need no common clock."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


class LeaderLease:
    """The leader lease of shard ``shard`` of ``shards``, held under ``gateway/token``.

    The token comes from ``INCR`` on the shard's fence key when the lease is won, so each
    leadership has its own; the append script refuses every write whose value is not the
    lease's current one. The term key keeps the last winner's value beyond the lease's
    expiry, so the same leader can take a lease Redis lost back (``broker.ACQUIRE``).
    """

    def __init__(self, client: Any, keys: Keys, shard: int, shards: int, gateway: str, ttl_ms: int) -> None:
        self._client = client
        self._key = keys.leader(shard, shards)
        self._term = keys.term(shard, shards)
        self._fence = keys.fence(shard, shards)
        self._gateway = gateway
        self._script = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self.ttl_ms = ttl_ms
        self.value: str | None = None  # "gateway/token" while this gateway holds (or held) it

    def acquire(self) -> bool:
        """Take the lease if nobody holds it: under the old value when this gateway won it
        last (nobody led in between), else under a new token. False: another holds it."""
        value = self._script(keys=[self._key, self._term, self._fence],
                             args=[self.value or "", self.ttl_ms, self._gateway], client=self._client)
        self.value = str(value) if value is not None else None
        return self.value is not None

    def renew(self, script: Any) -> bool:
        """Extend the lease; False when another gateway holds it now (step down)."""
        if self.value is None:
            return False
        return bool(script(keys=[self._key], args=[self.value, self.ttl_ms], client=self._client))

    def release(self, client: Any = None) -> None:
        """Give the lease up at once (a clean stop), so a standby need not wait for expiry;
        only if it is still this gateway's (``broker.RELEASE``). ``client``: the connection
        to send it on (a close's own, with a short timeout), else the lease's."""
        value, self.value = self.value, None
        if value is not None:
            self._release(keys=[self._key], args=[value], client=client or self._client)

    def holder(self) -> str | None:
        value = self._client.get(self._key)
        return str(value) if value is not None else None


def wanted_feeds(client: Any, keys: Keys, now_ms: int) -> set[str]:
    """Feed keys with at least one unexpired demand lease; expired leases are removed."""
    pipe = client.pipeline(transaction=False)
    pipe.zremrangebyscore(keys.demand, "-inf", now_ms)
    pipe.zrangebyscore(keys.demand, now_ms, "+inf")
    _, members = pipe.execute()
    return {feed_of_member(m) for m in members}


def renew_demand(client: Any, keys: Keys, consumer: str, feed_keys: list[str], expiry_ms: int) -> None:
    if feed_keys:
        client.zadd(keys.demand, {demand_member(consumer, f): expiry_ms for f in feed_keys})


def drop_demand(client: Any, keys: Keys, consumer: str, feed_keys: list[str]) -> None:
    if feed_keys:
        client.zrem(keys.demand, *(demand_member(consumer, f) for f in feed_keys))
