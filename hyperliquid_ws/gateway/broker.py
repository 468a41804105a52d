"""The Redis connection (redis-py) and the server-side scripts the gateway relies on.

``connect`` checks the URL up front and makes a ``redis.Redis`` with timeouts;
``masked`` is the URL as logs, ``repr``, errors and ``stats()`` show it
(``redact.redact_url``). ``translate`` turns redis-py's exceptions into ``BrokerError``.

Scripts (run atomically by Redis, so a deposed leader can never append):

- ``APPEND``: a batch of ``XADD`` calls, each with the gateway's own entry ID and entry
  number (field ``n``, ``keys.py``), to the feed streams, trimmed (``MAXLEN ~`` or
  ``MINID ~``), only while the shard's leader lease still holds the caller's
  ``gateway/token`` value; or while it holds none and the shard's term key still names
  the caller (Redis lost the lease, restarted say, and nobody has led since): then the
  lease is the caller's again, taken back in the same call. Returns ``{appended, dups}``: ``dups`` counts the messages
  whose ID was already in (a retry after a lost reply: appends are idempotent); nil when
  fenced off. A snapshot message also records its ID in the snapshot hash. One script
  call per batch, its messages packed into a few arguments (redis-py's per-argument cost
  dominates otherwise): one round trip.
- ``RENEW``: extend the leader lease only if it is still the caller's.
- ``RELEASE``: delete the leader lease only if it is still the caller's (a clean stop:
  a lease that expired and went to a standby meanwhile is left alone).
- ``ACQUIRE``: take the shard's leader lease if nobody holds it. A caller whose last
  value the term key still names takes it back under that value (nobody led in
  between: its buffer and entry numbers stay good); anyone else gets a new fencing token
  (``INCR`` on the fence key, only when the lease is won) and becomes the term. Returns
  the value held, or nil.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..redact import redact_url
from .errors import BrokerError

try:
    import redis
except ImportError as exc:  # the core must stay importable without the extra
    raise ImportError("hyperliquid_ws.gateway needs redis-py: pip install 'hyperliquid-ws[redis]'") from exc

APPEND = """
local lease = redis.call('GET', KEYS[1])
if lease ~= ARGV[1] then
  if lease or redis.call('GET', KEYS[3]) ~= ARGV[1] then return false end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[11])
end
local mode, limit, blob = ARGV[2], ARGV[3], ARGV[8]
local ids, streams, lengths, snapshots = {}, {}, {}, {}
for v in string.gmatch(ARGV[4], '[^,]+') do ids[#ids + 1] = v end
for v in string.gmatch(ARGV[5], '[^,]+') do streams[#streams + 1] = tonumber(v) end
for v in string.gmatch(ARGV[6], '[^,]+') do lengths[#lengths + 1] = tonumber(v) end
for v in string.gmatch(ARGV[7], '[^,]+') do snapshots[tonumber(v)] = true end
local numbers = {}
for v in string.gmatch(ARGV[10], '[^,]+') do numbers[#numbers + 1] = v end
local offset, appended, dups = 1, 0, 0
for i = 1, #ids do
  local text = string.sub(blob, offset, offset + lengths[i] - 1)
  offset = offset + lengths[i]
  local id = redis.pcall('XADD', KEYS[streams[i]], mode, '~', limit, ids[i], 'm', text, 'n', numbers[i])
  if type(id) == 'table' and id.err then
    if not string.find(id.err, 'equal or smaller') then return id end
    dups = dups + 1
  else
    appended = appended + 1
    if snapshots[i] then redis.call('HSET', KEYS[2], string.sub(KEYS[streams[i]], #ARGV[9] + 1), id) end
  end
end
return {appended, dups}
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  if current ~= ARGV[1] then return false end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
local value = ARGV[1]
if value == '' or redis.call('GET', KEYS[2]) ~= value then
  value = ARGV[3] .. '/' .. redis.call('INCR', KEYS[3])
  redis.call('SET', KEYS[2], value)
end
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""

ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ResponseError)


def connect(url: str, *, socket_timeout: float | None = 5.0) -> Any:
    """A ``redis.Redis`` for ``url`` (``redis://``, ``rediss://`` or ``unix://``), replies
    decoded as text (typed ``Any``: the gateway reads replies by the commands' documented shapes).
    Raises ``ValueError`` for a URL redis-py cannot read; no I/O yet."""
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"a Redis URL starts with redis://, rediss:// or unix://, got {masked(url)!r}")
    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=socket_timeout,
                                      socket_connect_timeout=socket_timeout, health_check_interval=0)
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)  # an option the connection does not take: now, not later
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot use Redis URL {masked(url)}: {scrubbed(exc, url)}") from None
    return client


def close_deadline(timeout: float | None) -> float:
    """When a ``close(timeout)`` must be done by (``time.monotonic()``): ``math.inf`` for
    ``None`` (no bound). Raises ``ValueError`` for anything but seconds >= 0 or ``None``."""
    if timeout is None:
        return math.inf
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"timeout must be a number of seconds >= 0, or None to wait as long as it takes, "
                         f"got {timeout!r}")
    return time.monotonic() + timeout


def remaining(deadline: float, least: float = 0.05) -> float | None:
    """Seconds left until ``deadline`` (``time.monotonic()``), at least ``least``: the
    socket timeout of a command (or a join) that must fit in what is left of a
    ``close(timeout)``; ``None`` (no bound) for ``math.inf``."""
    if deadline == math.inf:
        return None
    return max(least, deadline - time.monotonic())


def masked(url: Any) -> str:
    return redact_url(url) if isinstance(url, str) else repr(url)


def translate(exc: BaseException, url: str, doing: str) -> BrokerError:
    """A ``BrokerError`` saying what failed, with the URL masked (the cause's own text
    can quote the URL: it is scrubbed of the password)."""
    shown = masked(url)
    return BrokerError(f"Redis at {shown}: {doing} failed: {type(exc).__name__}: {scrubbed(exc, url)}", url=shown,
                       cause=exc)


def scrubbed(exc: BaseException, url: str) -> str:
    """``exc``'s text without ``url``'s password."""
    text = str(exc)
    password = _password_of(url)
    return text.replace(password, "***") if password else text


def _password_of(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None
