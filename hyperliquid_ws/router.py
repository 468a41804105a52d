"""Turns each text frame into work: data frames to their subscription's callbacks, acks
and errors to the registry. Runs on the thread holding the socket and never calls user code:
it only queues messages on their lanes (see ``dispatch.py``).

Everything one frame causes runs inside the single ``try`` of ``handle``: whatever a
frame makes raise (a parse error, a field of the wrong type, a bug) drops that frame
through the connection's ``FrameGuard`` and the next frame is handled as usual.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from json.decoder import JSONDecoder
from json.scanner import make_scanner
from time import monotonic
from typing import Any

from .dispatch import Dispatcher, Lane, Ready
from .errors import ServerError, SubscriptionError
from .guard import UNPARSED, FrameGuard
from .posts import PendingRequests
from .registry import Registry

_JSON_WHITESPACE = " \t\n\r"  # RFC 8259 §2: the only whitespace JSON allows
_scan_once = make_scanner(JSONDecoder())  # type: ignore[arg-type]  # typeshed names the C type oddly


def _stdlib_loads(payload: bytes) -> Any:
    """``json.loads`` without its Python-level wrapping, which costs as much as parsing a
    small frame: a strict UTF-8 decode and the C scanner, both in C. It accepts what
    ``json.loads`` accepts: anything but whitespace after the value is an error, and a
    frame the scanner cannot start on (leading whitespace, or not JSON) goes to
    ``json.loads`` itself, which skips the whitespace or says what is wrong."""
    text = payload.decode()
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:  # no value at character 0: the rare path
        return json.loads(text)
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):  # str.strip() alone would pass \x0c, \xa0...
        raise ValueError(f"extra data after the JSON value at character {end}")
    return value


loads: Callable[[bytes], Any] = _stdlib_loads
try:  # the "fast" extra: parsing is most of what a book frame costs
    import orjson
except ImportError:  # pragma: no cover - exercised by installs without the extra
    pass
else:
    _orjson_loads = orjson.loads

    def _fast_loads(payload: bytes) -> Any:
        """orjson, and the stdlib for what orjson refuses but JSON allows (an integer
        beyond a double's range, such as ``10**400``): the frame is parsed, not dropped.
        orjson reads an integer beyond 64 bits as a float (``history.Tracker`` then never
        takes its item for a duplicate: ``lossy``); the default install keeps it exact."""
        try:
            return _orjson_loads(payload)
        except orjson.JSONDecodeError:
            return _stdlib_loads(payload)

    loads = _fast_loads

log = logging.getLogger(__name__)

# Some servers greet each connection with this text, not JSON (protocol.md §1): expected.
GREETING = b"Websocket connection established."
_RATE_ERROR = re.compile(r"Cannot send more than \d+ messages")
# ids are ours (a counter), so more than 19 digits is not one of them (and int() of
# thousands of digits raises)
_POST_ERROR = re.compile(r"too many pending post requests.*?id=(?P<id>\d{1,19})(?!\d)")


class Router:
    def __init__(self, registry: Registry, dispatcher: Dispatcher, posts: PendingRequests | None,
                 guard: FrameGuard, ready: Ready | None = None) -> None:
        self._registry = registry
        # Mutated in place by the registry, never replaced: safe to hold (registry.py).
        self._feed_of_channel = registry.feed_of_channel
        self._routes = registry.routes
        self._guard = guard
        self._ready = ready  # where queued lanes wait, when the connection's threads serve them
        self._dispatcher = dispatcher
        self._posts = posts
        self._control: dict[str, Callable[[Any], None]] = {
            "subscriptionResponse": self._on_ack,
            "error": self._on_error,
            "post": posts.resolve if posts is not None else lambda data: None,
            "pong": lambda data: None,
        }
        self.on_rate_limited: Callable[[float], None] | None = None  # set by the link
        self._batch: list[tuple[Lane, Any]] = []  # for the dispatcher, per socket read
        self._add = self._add_to_batch

    def handle(self, payload: bytes) -> None:
        """One text frame from the server (reader thread); see ``handle_all``."""
        self.handle_all((payload,))

    def handle_all(self, payloads: Sequence[bytes]) -> None:
        """The text frames of one socket read, in order (reader thread). Never raises: a
        frame that cannot be handled is dropped through the guard, and the next one is
        handled as usual.

        The hot path of every data frame, written out once per read: parse, find the feed
        by channel and the entry by route (two dict lookups), note when it came, then
        through the entry's ``fast`` path (one handle with a lane, nothing held: deduped
        by its tracker if it has one, queued on the lane, its ``FrameTap`` queues fed), with
        no lock; or through ``Entry.deliver`` (under the entry's lock) for the rest."""
        now = monotonic()  # one clock read per socket read: when these frames came
        wall = time.time()  # the same moment for FrameTaps (s since the epoch)
        feed_of_channel, routes, batch = self._feed_of_channel, self._routes, self._batch
        for payload in payloads:
            message: Any = UNPARSED
            try:
                message = loads(payload)
                channel = message["channel"]
                feed = feed_of_channel.get(channel)
                if feed is None:
                    self._handle_control(channel, message, payload)
                    continue
                try:
                    entry = routes.get((feed.type, feed.frame_route(message["data"])))  # type: ignore[arg-type]
                except (KeyError, TypeError, IndexError, AttributeError) as exc:  # TypeError: unhashable
                    self._guard.bad_frame("bad_route", f"{feed.type} frame without a usable route ({exc!r})",
                                          payload)
                    continue
                if entry is None:
                    self._guard.unrecognise("unrouted", payload)
                    continue
                entry.last_message = now
                entry.received += 1
                if entry.keeps_latest:  # a state feed's: before reading fast, see subscription.Entry.attach
                    entry.latest = message
                fast = entry.fast
                if fast is None:
                    gave_up = entry.deliver(message, self._add, payload, wall)
                    if gave_up is not None:  # its hold reached the bound: the frames flow, the gap is reported
                        log.warning("%s", gave_up)
                        self._dispatcher.report(gave_up, self._ready)
                    continue
                lane, tracker, taps = fast
                frame: bytes | None = payload
                if tracker is not None:  # trades, candles, fills...: dedupe
                    data = message["data"]
                    deliver, kept = tracker.admit(data)
                    if not deliver:
                        continue
                    if kept is not data:
                        message, frame = {**message, "data": kept}, None
                batch.append((lane, message))
                entry.delivered += 1
                for handle in taps:  # subscription.put_taps, written out
                    queue = handle.tap_queue
                    if queue is not None:
                        queue.append((wall, handle.tap_tag, None, frame) if frame is not None
                                     else (wall, handle.tap_tag, message, None))
            except Exception as exc:  # the one guard: this frame is dropped, the link goes on
                if payload == GREETING:
                    self._guard.unrecognise("greeting", payload)
                else:
                    self._guard.failed(payload, exc, message)

    def _handle_control(self, channel: Any, message: Any, payload: bytes) -> None:
        """An acknowledgement, an error, a post answer or a pong (or an unknown channel)."""
        control = self._control.get(channel)
        if control is None:
            if not isinstance(channel, str):
                raise TypeError(f"channel is {type(channel).__name__}")
            self._guard.unrecognise("unknown_channel", payload)
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
            # A first subscribe's refusal is raised to its caller by wait(): no warning for it too.
            log.log(logging.WARNING if entry.acked_at_ms is not None else logging.INFO, "%s", entry.error)
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
            log.warning("server error: %.300s", text)
            self._dispatcher.report(ServerError(text), self._ready)
