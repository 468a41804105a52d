"""What the server does with each text frame a client sends.

``Dispatcher`` runs on the server loop thread: one ``handle_text`` call per frame, in
the order a connection's frames arrive.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from hyperliquid_ws.testing import feeds
from hyperliquid_ws.testing.actions import answer_action
from hyperliquid_ws.testing.connection import Connection, Hub
from hyperliquid_ws.testing.info import InfoRequestError, answer_info
from hyperliquid_ws.testing.limits import MessageRateLimit
from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.replay_hook import ReplaySource
from hyperliquid_ws.testing.replies import (
    ack_frame,
    already_subscribed_text,
    already_unsubscribed_text,
    error_frame,
    frame,
    invalid_subscription_text,
    parse_error_text,
    pong_frame,
    post_frame,
    too_many_messages_text,
    too_many_posts_text,
    too_many_subscriptions_text,
    too_many_users_text,
)
from hyperliquid_ws.testing.subscriptions import (
    channel_of,
    normalise_subscription,
    subscription_key,
    user_of,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """The per-server limits of protocol.md §5 (the real server counts them per IP)."""

    max_subscriptions: int
    max_users: int
    max_messages_per_minute: int
    max_inflight_posts: int
    rate_window: float = 60.0


@dataclass
class HeldPost:
    conn: Connection
    post_id: int
    request: dict[str, Any]


class Dispatcher:
    """Answers subscribe, unsubscribe, ping and post requests."""

    def __init__(self, hub: Hub, market: Market, limits: Limits, replay: ReplaySource | None = None) -> None:
        self.hub = hub
        self.replay = replay
        self.market = market
        self.limits = limits
        self.rate = MessageRateLimit(limits.max_messages_per_minute, window=limits.rate_window)
        self.holding_posts = False
        self.held_posts: list[HeldPost] = []

    async def handle_text(self, conn: Connection, text: str) -> None:
        if not self.rate.allow():
            await self._error(conn, too_many_messages_text(self.limits.max_messages_per_minute))
            return
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self._error(conn, parse_error_text(text))
            return
        method, subscription = message.get("method"), message.get("subscription")
        if method == "ping":
            await self.hub.send(conn, pong_frame())
        elif method == "subscribe" and isinstance(subscription, dict):
            await self._subscribe(conn, subscription)
        elif method == "unsubscribe" and isinstance(subscription, dict):
            await self._unsubscribe(conn, subscription)
        elif method == "post" and _is_post(message):
            await self._post(conn, message["id"], message["request"])
        else:
            await self._error(conn, parse_error_text(text))

    async def _error(self, conn: Connection, text: str) -> None:
        await self.hub.send(conn, error_frame(text))

    async def _subscribe(self, conn: Connection, subscription: dict[str, Any]) -> None:
        normalised, valid = normalise_subscription(subscription)
        if not valid:
            await self._error(conn, invalid_subscription_text(normalised))
            return
        key = subscription_key(normalised)
        if key in conn.subscriptions:
            await self._error(conn, already_subscribed_text(normalised))
            return
        if self.hub.subscription_count() >= self.limits.max_subscriptions:
            await self._error(conn, too_many_subscriptions_text(self.limits.max_subscriptions))
            return
        user = user_of(normalised)
        tracked = self.hub.tracked_users()
        if user is not None and user not in tracked and len(tracked) >= self.limits.max_users:
            await self._error(conn, too_many_users_text(self.limits.max_users))
            return
        conn.subscriptions[key] = normalised
        self.hub.stalled.discard(key)  # a fresh subscription gets the feed going again
        self.hub.changed()
        await self.hub.send(conn, ack_frame("subscribe", normalised))
        data = (feeds.initial_data(normalised, self.market) if self.replay is None
                else self.replay.initial_data(normalised))
        if data is not None:
            await self.hub.send(conn, frame(channel_of(normalised), data))

    async def _unsubscribe(self, conn: Connection, subscription: dict[str, Any]) -> None:
        normalised, _ = normalise_subscription(subscription)
        if conn.subscriptions.pop(subscription_key(normalised), None) is None:
            await self._error(conn, already_unsubscribed_text(normalised))
            return
        self.hub.changed()
        await self.hub.send(conn, ack_frame("unsubscribe", normalised))

    async def _post(self, conn: Connection, post_id: int, request: dict[str, Any]) -> None:
        if len(self.held_posts) >= self.limits.max_inflight_posts:
            await self._error(conn, too_many_posts_text(post_id))
            return
        if self.holding_posts:
            self.held_posts.append(HeldPost(conn, post_id, request))
            return
        await self.hub.send(conn, post_frame(post_id, self.post_response(request)))

    def post_response(self, request: dict[str, Any]) -> dict[str, Any]:
        """The ``response`` of a post: info data, an action answer, or an error string."""
        payload = request["payload"]
        try:
            if request["type"] == "info":
                data = (answer_info(self.market, payload) if self.replay is None
                        else self.replay.answer_info(self.market, payload))
                return {"type": "info", "payload": {"type": payload["type"], "data": data}}
            return {"type": "action", "payload": answer_action(self.market, payload)}
        except InfoRequestError as refusal:
            return {"type": "error", "payload": refusal.status_line}

    async def release_posts(self) -> int:
        """Answer every held post whose connection is still open; return how many."""
        held, self.held_posts = self.held_posts, []
        answered = 0
        for post in held:
            if post.conn.id in self.hub.connections:
                response = self.post_response(post.request)
                answered += await self.hub.send(post.conn, post_frame(post.post_id, response))
        return answered

    def forget(self, conn: Connection) -> None:
        """Drop the held posts of a closed connection (they no longer count as in flight)."""
        self.held_posts = [post for post in self.held_posts if post.conn is not conn]


def _is_post(message: dict[str, Any]) -> bool:
    request = message.get("request")
    return (type(message.get("id")) is int and isinstance(request, dict)
            and request.get("type") in ("info", "action") and "payload" in request)
