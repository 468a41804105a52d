"""Turns each text frame into work: data frames to their subscription's callbacks, acks
and errors to the registry. Runs on the thread holding the socket and never calls user code:
it only queues messages on their lanes (see ``dispatch.py``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from json.decoder import JSONDecoder
from json.scanner import make_scanner
from typing import Any

from .dispatch import Dispatcher, Lane, Ready
from .errors import ServerError, SubscriptionError
from .posts import PendingRequests
from .registry import Registry

_scan_once = make_scanner(JSONDecoder())  # type: ignore[arg-type]  # typeshed names the C type oddly


def _stdlib_loads(payload: bytes) -> Any:
    """``json.loads`` without its Python-level wrapping, which costs as much as parsing a
    small frame: a strict UTF-8 decode and the C scanner, both in C."""
    return _scan_once(payload.decode(), 0)[0]


try:  # the "fast" extra: parsing is most of what a book frame costs
    from orjson import loads
except ImportError:  # pragma: no cover - exercised by installs without the extra
    loads = _stdlib_loads

log = logging.getLogger(__name__)

_RATE_ERROR = re.compile(r"Cannot send more than \d+ messages")
_POST_ERROR = re.compile(r"too many pending post requests.*?id=(?P<id>\d+)")


class Router:
    def __init__(self, registry: Registry, dispatcher: Dispatcher, posts: PendingRequests | None,
                 ready: Ready | None = None) -> None:
        self._registry = registry
        self._ready = ready  # where queued lanes wait, when the connection's threads serve them
        self._dispatcher = dispatcher
        self._posts = posts
        self._control: dict[str, Callable[[Any], None]] = {
            "subscriptionResponse": self._on_ack,
            "error": self._on_error,
            "post": posts.resolve if posts is not None else lambda data: None,
            "pong": lambda data: None,
        }
        self.unrouted = 0
        self.on_rate_limited: Callable[[float], None] | None = None  # set by the link
        self._batch: list[tuple[Lane, Any]] = []  # for the dispatcher, per socket read
        self._add = self._add_to_batch

    def handle(self, payload: bytes) -> None:
        """One text frame from the server (reader thread)."""
        try:
            message = loads(payload)
            channel = message["channel"]
        except (ValueError, TypeError, KeyError, StopIteration):
            log.debug("ignoring a frame that is not a JSON envelope: %.200r", payload)
            return
        feed = self._registry.feed_of_channel.get(channel)
        if feed is not None:
            try:
                route = feed.frame_route(message["data"])
            except (KeyError, TypeError, IndexError, AttributeError):
                route = None
            entry = self._registry.routes.get((feed.type, route))  # type: ignore[arg-type]
            if entry is None:
                self.unrouted += 1
                log.debug("no subscription for %s frame (route %r); dropped", channel, route)
                return
            entry.heard(time.monotonic())
            entry.latest = message  # a late joiner's first message (subscription.Entry.attach)
            if entry.direct:  # one handle, no tracker, nothing held
                self._batch.append((entry.lane, message))
                entry.delivered += 1
            else:
                entry.deliver(message, self._add)
            return
        control = self._control.get(channel)
        if control is None:
            log.debug("ignoring a frame on unknown channel %r", channel)
            return
        control(message.get("data"))

    def _add_to_batch(self, lane: Lane, message: Any) -> None:
        self._batch.append((lane, message))

    def flush(self) -> None:
        """Queue the frames of one socket read on their lanes (reader thread)."""
        if self._batch:
            batch, self._batch = self._batch, []
            self._dispatcher.submit_many(batch, self._ready)

    def _on_ack(self, data: Any) -> None:
        method = data.get("method") if isinstance(data, dict) else None
        entry = self._registry.acknowledged(str(method), data.get("subscription") if method else None)
        if entry is None:
            log.debug("acknowledgement matches no request: %r", data)
        else:
            log.debug("%s acknowledged: %s", method, entry.key)

    def _on_error(self, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        post = _POST_ERROR.search(text)
        if post and self._posts is not None and self._posts.fail(int(post["id"]), text):
            return
        if _RATE_ERROR.match(text) and self.on_rate_limited is not None:
            self.on_rate_limited(time.monotonic())
        entry, method = self._registry.refused(text)
        if method == "resubscribed":
            log.debug("%s was live after all", entry.key if entry else "?")
        elif entry is not None and entry.error is not None and method == "subscribe":
            log.warning("%s", entry.error)
            self._dispatcher.report(entry.error, self._ready)
        elif entry is not None:
            self._dispatcher.report(
                SubscriptionError(
                    f"server refused {method} of {entry.key}: {text}",
                    subscription=dict(entry.wire),
                    server_text=text,
                ),
                self._ready,
            )
        else:
            log.warning("server error: %s", text)
            self._dispatcher.report(ServerError(text), self._ready)
