"""``HyperliquidWS.stats()``: a plain-dict picture of the client, for logs and dashboards."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import HyperliquidWS


def collect(client: HyperliquidWS) -> dict[str, Any]:
    pool = client._pool
    limits = client.limits
    links = list(pool.links)
    entries = pool.entries()
    now = time.monotonic()
    posts = pool.primary.posts
    users = {entry.canonical["user"] for _, entry in entries if "user" in entry.canonical}
    connections = [
        {
            "name": link.name,
            "connected": link.connection.connected,
            "connects": link.connection.connects,
            "reconnects": max(0, link.connection.connects - 1),
            "last_disconnect_reason": link.connection.last_disconnect_reason,
            "subscriptions": len(link.registry.entries()),
            "send_queue": link.writer.depth,
            "pings_sent": link.keepalive.pings_sent,
            "dead_links": link.keepalive.dead_links,
            "silent_feed_resubscribes": link.silent_resubscribes,
            "rate_limit_resends": link.rate_limit_resends,
            "unrouted_frames": link.guard.unrecognised.get("unrouted", 0),
            "bad_frames": dict(link.guard.bad),  # reason -> frames dropped or links failed (BadFrameError)
            "unrecognised_frames": dict(link.guard.unrecognised),  # reason -> frames nobody asked for
            "relays": link.connection.relays,  # a callback ran long and the socket changed threads
            "retry_after": link.connection.retry_after,  # seconds the last refused handshake asked to wait
            "next_attempt_in": _until(link.connection.next_attempt_at, now),  # while waiting to reconnect
            "already_answers": dict(link.registry.already),  # idempotent server answers taken as done
        }
        for link in links
    ]
    subscriptions = [
        {
            "subscription": dict(entry.wire),
            "connection": link.name,
            "active": entry.active,
            "callbacks": len(entry.handles),
            "received": entry.received,
            "delivered": entry.delivered,
            "duplicates_dropped": entry.tracker.duplicates if entry.tracker is not None else 0,
            "seconds_since_last_message": round(now - entry.last_message, 3) if entry.last_message else None,
            "held_for_backfill": len(entry.held) if entry.held is not None else 0,
            "waiting_for_callbacks": sum(len(h.lane.queue) for h in entry.handles),  # a lane per handle
            "dropped_slow_consumer": sum(h.lane.dropped for h in entry.handles),
        }
        for link, entry in entries
    ]
    streams = [{"subscription": s.subscription, "depth": s.depth, "maxsize": s.maxsize,
                "received": s.received, "dropped": s.dropped} for s in list(client._streams)]
    backfiller = client._backfiller
    return {
        "name": client.name,
        "url": client.ws_url,
        "proxy": client.proxy,  # the socket's, credentials masked; None: direct
        "closed": client.closed,
        "connections": connections,
        "reconnects": sum(c["reconnects"] for c in connections),
        "last_disconnect_reason": next(
            (c["last_disconnect_reason"] for c in connections if c["last_disconnect_reason"]), None),
        "bad_frames": _summed(link.guard.bad for link in links),
        "subscriptions": subscriptions,
        "streams": streams,
        "backfill": {
            "gaps_backfilled": backfiller.gaps_backfilled,
            "gaps_unrecovered": backfiller.gaps_unrecovered,
            "messages_backfilled": backfiller.items_backfilled,
        },
        "callback_errors": client._dispatcher.callback_errors,
        "queues": {
            "dispatch": client._dispatcher.depth,
            "held_for_backfill": client._dispatcher.held,  # counted in max_backlog too
            "send": sum(c["send_queue"] for c in connections),
            "streams": sum(s["depth"] for s in streams),
        },
        "delivered": client._dispatcher.delivered,
        "limits": {
            "subscriptions": {"used": len(entries), "max": limits.max_subscriptions},
            "users": {"used": len(users), "max": limits.max_users},
            "connections": {"used": len(links), "max": limits.max_connections},
            "messages_in_window": {"used": client._limiter.used, "max": limits.messages_per_window,
                                   "window_seconds": limits.message_window},
            "posts_in_flight": {"used": posts.in_flight if posts else 0, "max": limits.inflight_posts},
            "info_weight_in_window": {"used": backfiller.weights.used, "max": limits.info_weight_per_window,
                                      "window_seconds": limits.info_window, "waited": backfiller.weights.waited},
        },
    }


def _until(when: float | None, now: float) -> float | None:
    return None if when is None else round(max(0.0, when - now), 3)


def _summed(counters: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counter in counters:
        for reason, count in counter.items():
            total[reason] = total.get(reason, 0) + count
    return total
