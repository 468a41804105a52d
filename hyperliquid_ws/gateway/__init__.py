"""The Redis Streams gateway: one process holds the feeds upstream, any number consume.

Needs the ``redis`` extra (``pip install 'hyperliquid-ws[redis]'``); the core never
imports this subpackage. The user guide is ``docs/gateway.md``.

Map (module: what it holds; thread that runs it):

- ``gateway.py``: ``Gateway``, the publisher. ``<name>-control`` runs the leader lease,
  reads demand, subscribes/unsubscribes upstream with a ``HyperliquidWS``
  (``<name>-upstream-*`` threads) and publishes each feed's status.
- ``holder.py``: ``HeldFeed``, one upstream feed: dedupe against the stream's tail and
  the takeover backfill; upstream callback threads and the control thread.
- ``appender.py``: the bounded buffer and ``<name>-appender``, which writes fenced,
  idempotent ``XADD``\\ s in pipelines and rides out Redis outages.
- ``leases.py``: the leader lease (fencing token) and the demand-lease commands.
- ``client.py``: ``GatewayClient``, the consumer with ``HyperliquidWS``'s surface;
  ``<label>-lease`` (demand leases, status) and ``<label>-reader`` (``XREAD``, callbacks).
- ``reader.py``: where a consumer starts in a stream, and a named consumer's checkpoints.
- ``health.py``: whether Redis answers, as a consumer sees it; the outage hooks.
- ``feed.py``: ``ConsumerFeed``, a consumer's per-feed state behind ``Subscription``.
- ``keys.py``: every Redis key name, stream IDs, shard hashing (pure).
- ``broker.py``: the redis-py connection, error translation with the URL masked, the
  Lua scripts.
- ``errors.py``: ``GatewayError``, ``BrokerError``, ``RetentionGapError``.
- the command, ``hyperliquid-ws gateway --redis URL [--base-url URL] [--shard K/N]``, lives
  with the other commands in ``hyperliquid_ws/cli/gateway.py``.
"""

from __future__ import annotations

from .client import GatewayClient
from .errors import BrokerError, GatewayError, RetentionGapError
from .gateway import Gateway
from .keys import Keys, network_of, shard_of

__all__ = ["BrokerError", "Gateway", "GatewayClient", "GatewayError", "Keys", "RetentionGapError",
           "network_of", "shard_of"]
