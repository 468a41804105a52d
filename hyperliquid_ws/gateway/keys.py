"""Where everything lives in Redis, and the pure helpers around it: no I/O.

For a network ``N`` (``mainnet``, ``testnet`` or the API's ``host:port``) and the
prefix ``P`` (default ``hlws``), with ``F`` a feed's canonical key (``feeds.key_of``):

==========================  =========  ====================================================
key                          type       what
==========================  =========  ====================================================
``P:N:feed:F``               stream     the feed's messages, one entry each: field ``m``,
                                        the JSON text the server sent (+ ``backfill``);
                                        field ``n``, the entry's number in the stream
                                        (1, 2, 3 ... with no hole: a reader that sees
                                        one knows entries are missing, and how many)
``P:N:demand``               zset       demand leases: member ``consumer \\0 F``, score the
                                        lease's expiry (ms, Redis clock)
``P:N:status``               hash       F -> JSON ``{"state": "active" | "refused",
                                        "leader": key, "lease": value, "tail": the
                                        stream's last entry ID when the holding
                                        began, "began": then (ms, Redis' clock),
                                        ...}`` as the
                                        gateway holding F last saw it; true only while
                                        the leader lease named still has that value
``P:N:released``             hash       F -> the stream's last entry ID when a gateway let
                                        F go (nobody wanted it): the next holder skips
                                        the backfill of the time in between if no named
                                        consumer has a position in F (none can need it)
``P:N:snapshot``             hash       F -> the entry ID of the feed's latest snapshot
                                        message (``isSnapshot``), where unnamed readers start
``P:N:leader:K/N``           string     the leader lease of shard K of N: ``gateway/token``
``P:N:fence:K/N``            string     the shard's fencing counter (``INCR``: the token)
``P:N:term:K/N``             string     the lease value of the last gateway that won
                                        the shard's lease (no expiry): it may take the
                                        lease back under that value if Redis lost it
``P:N:consumer:NAME``        hash       a named consumer's positions: F -> the last entry
                                        ID its callbacks finished, ``F|n`` -> its number,
                                        ``F|started`` -> the one a callback started on
``P:N:wake:CONSUMER``        stream     pokes a consumer's blocked ``XREAD`` (subscribe,
                                        close); capped at a few entries, expires
==========================  =========  ====================================================
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..endpoints import MAINNET_API_URL, TESTNET_API_URL

DEFAULT_PREFIX = "hlws"
MESSAGE_FIELD = "m"
NUMBER_FIELD = "n"
GAP_MARK = "hlws_gap"  # an entry whose m is {GAP_MARK: {"start_ms", "end_ms", "error"}}: a gap the gateway
# could not backfill, where it is in the stream (consumers report it, callbacks never see it)


_DEFAULT_PORTS = {"https": 443, "http": 80}


def network_of(base_url: str) -> str:
    """``mainnet``/``testnet`` for Hyperliquid's own APIs, however the URL spells them
    (case, an explicit default port, a path), else the URL's ``host:port``."""
    parts = urlsplit(base_url.strip())
    host = parts.hostname or "local"  # lowercased by urlsplit
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    for name, known in (("mainnet", MAINNET_API_URL), ("testnet", TESTNET_API_URL)):
        ours = urlsplit(known)
        if host == ours.hostname and port == (ours.port or _DEFAULT_PORTS[ours.scheme]):
            return name
    return f"{host}:{parts.port}" if parts.port else host


def shard_of(feed_key: str, shards: int) -> int:
    """The shard (0-based) that holds ``feed_key`` among ``shards``: CRC-32 of the
    canonical key, so every gateway and every process agrees, across restarts too."""
    return zlib.crc32(feed_key.encode()) % shards


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``; shards are numbered from 0. Raises ``ValueError``."""
    k, sep, n = text.partition("/")
    digits = k.isascii() and k.isdigit() and n.isascii() and n.isdigit()  # "¹".isdigit(), int("¹") fails
    if not sep or not digits or not 0 <= int(k) < int(n):
        raise ValueError(f"a shard is K/N with 0 <= K < N, such as 0/2, got {text!r}")
    return int(k), int(n)


def shard_of_lease(lease_key: str) -> tuple[int, int] | None:
    """``P:N:leader:K/N`` -> ``(K, N)``; None for any other key."""
    try:
        return parse_shard(lease_key.rpartition(":")[2])
    except ValueError:
        return None


def id_tuple(entry_id: str) -> tuple[int, int]:
    """A stream entry ID ``"1700000000000-3"`` as ``(ms, sequence)``, for comparing."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_number(fields: dict[str, str]) -> int | None:
    """An entry's number (field ``n``), or None where it has none (an entry written
    before numbering, or not by a gateway)."""
    return number_of(fields.get(NUMBER_FIELD))


def number_of(text: str | None) -> int | None:
    """An entry number as Redis holds it (``"42"``), or None for a missing or bad one."""
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def _stdlib_encode(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


encode: Callable[[Any], bytes] = _stdlib_encode
"""A message as the compact JSON text an entry's ``m`` holds (UTF-8 bytes)."""
try:  # the "fast" extra: about 9 us a trades message with json, 0.4 with orjson
    import orjson
except ImportError:  # pragma: no cover - exercised by installs without the extra
    pass
else:
    def encode(message: Any) -> bytes:
        try:
            text: bytes = orjson.dumps(message)  # (typed: without orjson, mypy sees Any)
        except TypeError:  # what orjson cannot write (an int beyond 64 bits): json can
            return _stdlib_encode(message)
        return text


@dataclass(frozen=True)
class Keys:
    """The key names of one prefix and network."""

    network: str
    prefix: str = DEFAULT_PREFIX

    @property
    def base(self) -> str:
        return f"{self.prefix}:{self.network}"

    def stream(self, feed_key: str) -> str:
        return f"{self.base}:feed:{feed_key}"

    @property
    def demand(self) -> str:
        return f"{self.base}:demand"

    @property
    def status(self) -> str:
        return f"{self.base}:status"

    @property
    def released(self) -> str:
        return f"{self.base}:released"

    @property
    def snapshot(self) -> str:
        return f"{self.base}:snapshot"

    def leader(self, shard: int, shards: int) -> str:
        return f"{self.base}:leader:{shard}/{shards}"

    @property
    def leaders(self) -> str:
        """A ``SCAN MATCH`` pattern for every shard's leader lease."""
        return f"{_glob_escaped(self.base)}:leader:*"

    def term(self, shard: int, shards: int) -> str:
        return f"{self.base}:term:{shard}/{shards}"

    def fence(self, shard: int, shards: int) -> str:
        return f"{self.base}:fence:{shard}/{shards}"

    def consumer(self, name: str) -> str:
        return f"{self.base}:consumer:{name}"

    @property
    def consumers(self) -> str:
        """A ``SCAN MATCH`` pattern for every named consumer's positions."""
        return f"{_glob_escaped(self.base)}:consumer:*"

    def wake(self, consumer: str) -> str:
        return f"{self.base}:wake:{consumer}"


def _glob_escaped(text: str) -> str:
    """``text`` matched literally by ``SCAN MATCH`` (a prefix may hold ``*?[]\\``)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def demand_member(consumer: str, feed_key: str) -> str:
    return f"{consumer}\0{feed_key}"


def feed_of_member(member: str) -> str:
    return member.partition("\0")[2]
