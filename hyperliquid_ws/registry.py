"""The desired subscriptions, and the requests on the wire that the server has not answered.

The registry is the truth every connect replays: an entry leaves only when its last
handle unsubscribes or the server refuses it. All methods are thread-safe (one lock);
``routes`` and ``feed_of_channel`` are read by the reader thread without the lock, which
is safe because they are only ever replaced key by key.

Acks and errors carry no request id. They are matched to the unanswered requests by
meaning (canonical form: the server adds defaults and reorders keys, protocol.md §3.1),
and errors that echo nothing (limit errors) go to the oldest unanswered subscribe: the
server answers the requests of one connection in order.

``Already subscribed`` and ``Already unsubscribed`` are the server's idempotent answers
(§3.3): the end state is what was asked, so they complete the request like an ack,
counted in ``already`` and logged at DEBUG, never reported as errors.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import deque
from typing import Any

from .errors import SubscriptionError
from .feeds import FEED_OF_CHANNEL, FEEDS, Feed, RouteKey, key_of, lenient_canonical
from .subscription import Callback, Entry, Submit, Subscription, _Owner

log = logging.getLogger(__name__)

_ECHOING_ERROR = re.compile(
    r"(?P<kind>Already subscribed|Invalid subscription|Already unsubscribed):?\s*(?P<json>\{.*\})\s*\Z",
    re.S,
)
_LIMIT_ERROR = re.compile(r"Cannot (track more than \d+ total users|subscribe to more than \d+)")
_PARSE_ERROR = "Error parsing JSON into valid websocket request:"


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self.routes: dict[RouteKey, Entry] = {}
        self.feed_of_channel: dict[str, Feed] = dict(FEED_OF_CHANNEL)
        self._unanswered: deque[tuple[str, Entry]] = deque()
        self._generation = 0  # the live connection's generation; 0 while disconnected
        self.already = {"subscribed": 0, "unsubscribed": 0}  # idempotent answers taken as success

    # -- what the user asks for -------------------------------------------------------

    def add(
        self, owner: _Owner, feed: Feed, canonical: dict[str, Any], wire: dict[str, Any],
        callback: Callback, give: Submit | None = None,
    ) -> tuple[Subscription, bool]:
        """Attach a callback; return its handle and whether the entry is new. A late
        joiner's first message goes on its lane through ``give`` (``Entry.attach``); without
        one, a joiner gets nothing before the next frame."""
        key = key_of(canonical)
        with self._lock:
            entry = self._entries.get(key)
            is_new = entry is None
            if entry is None:
                entry = Entry(key, feed, canonical, wire)
                other = self.routes.get(entry.route)
                if other is not None:
                    raise SubscriptionError(
                        f"{key} cannot share a connection with {other.key}: their frames look "
                        "the same on the wire, so one's data would reach the other's callbacks",
                        subscription=dict(wire),
                    )
                self._entries[key] = entry
                self.routes[entry.route] = entry
                for channel in feed.channels:
                    self.feed_of_channel.setdefault(channel, feed)
            handle = Subscription(owner, entry, callback)
            entry.attach(handle, give)
        return handle, is_new

    def remove(self, handle: Subscription) -> tuple[Entry | None, int]:
        """Detach a handle; return its entry and the generation to send the unsubscribe
        on, if one must go on the wire now."""
        with self._lock:
            if handle.closed:
                return None, 0
            handle.closed = True
            entry = handle._entry
            entry.detach(handle)
            if entry.handles or self._entries.get(entry.key) is not entry:
                return None, 0
            self._drop(entry)
            if self._generation and entry.sent_on == self._generation:
                self._unanswered.append(("unsubscribe", entry))
                return entry, self._generation
            return None, 0

    def _drop(self, entry: Entry) -> None:
        del self._entries[entry.key]
        if self.routes.get(entry.route) is entry:
            del self.routes[entry.route]
        entry.active = False
        entry.answered.set()  # nothing more to wait for

    # -- what goes on the wire --------------------------------------------------------

    def claim(self, entry: Entry) -> int:
        """The generation on which the caller must send ``entry``'s subscribe now, or 0
        (not connected, or already sent there: every connect replays the registry)."""
        with self._lock:
            generation = self._generation
            if not generation or entry.sent_on == generation:
                return 0
            if self._entries.get(entry.key) is not entry:
                return 0
            entry.sent_on = generation
            self._unanswered.append(("subscribe", entry))
            return generation

    def claim_all(self, generation: int) -> list[Entry]:
        """A link is up: every entry not yet sent on it, claimed for the caller to send."""
        with self._lock:
            self._generation = generation
            todo = [e for e in self._entries.values() if e.sent_on != generation]
            for entry in todo:
                entry.sent_on = generation
                self._unanswered.append(("subscribe", entry))
            return todo

    def reclaim(self, entry: Entry) -> int:
        """Claim an unsubscribe and a fresh subscribe of ``entry`` on the live link (a
        targeted resubscribe); returns its generation, or 0 if there is no live link."""
        with self._lock:
            generation = self._generation
            if not generation or self._entries.get(entry.key) is not entry or entry.sent_on != generation:
                return 0
            self._unanswered.append(("unsubscribe", entry))
            self._unanswered.append(("subscribe", entry))
            return generation

    def dropped_subscribes(self, before: float) -> list[Entry]:
        """Subscribes sent on the live link before ``before`` (monotonic) and still
        unanswered: the server answers in order, so it dropped them."""
        with self._lock:
            return [entry for method, entry in self._unanswered
                    if method == "subscribe" and entry.sent_on == self._generation
                    and 0 < entry.sent_at <= before and self._entries.get(entry.key) is entry]

    def holds(self, key: str) -> bool:
        return key in self._entries

    def owns(self, entry: Entry) -> bool:
        return self._entries.get(entry.key) is entry

    def conflict(self, route: RouteKey) -> Entry | None:
        """The entry that frames of ``route`` would also reach on this link, if any."""
        return self.routes.get(route)

    def connection_lost(self) -> None:
        """Nothing survives a reconnect on the server: every entry is pending again."""
        with self._lock:
            self._generation = 0
            self._unanswered.clear()
            for entry in self._entries.values():
                entry.active = False

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    # -- what the server answers ------------------------------------------------------

    def acknowledged(self, method: str, echo: Any) -> Entry | None:
        """A ``subscriptionResponse``: mark its request answered; return the entry."""
        with self._lock:
            found = self._take(method, echo)
            if found is not None and method == "subscribe" and self._entries.get(found.key) is found:
                found.acknowledged()
            elif found is not None and method == "subscribe":
                found.settled.set()
            return found

    def refused(self, text: str) -> tuple[Entry | None, str | None]:
        """An ``error`` frame: attribute it. Returns the refused entry (if a subscribe
        was refused, it is removed) and the method of the request it answered."""
        with self._lock:
            method, entry = self._attribute(text)
            if entry is not None and text.startswith("Already "):
                # Idempotent: the server holds (or does not hold) it, as was asked.
                self.already["subscribed" if method == "subscribe" else "unsubscribed"] += 1
                log.debug("%s: %s; taken as done", entry.key, text)
                if method == "subscribe":
                    entry.resent = False
                    if self._entries.get(entry.key) is entry:
                        entry.acknowledged()
                    else:
                        entry.settled.set()
                return entry, "resubscribed"
            if entry is not None and method == "subscribe":
                entry.fail(
                    SubscriptionError(
                        f"server refused {entry.key}: {text}",
                        subscription=dict(entry.wire),
                        server_text=text,
                    )
                )
                if self._entries.get(entry.key) is entry:
                    self._drop(entry)
                for handle in entry.handles:
                    handle.closed = True
            return entry, method

    def _attribute(self, text: str) -> tuple[str | None, Entry | None]:
        echoing = _ECHOING_ERROR.match(text)
        if echoing:
            method = "unsubscribe" if echoing["kind"] == "Already unsubscribed" else "subscribe"
            try:
                echo = json.loads(echoing["json"])
            except ValueError:
                return None, None
            entry = self._take(method, echo)
            if entry is None and echoing["kind"] == "Already subscribed":
                canonical = lenient_canonical(echo)
                entry = self._entries.get(key_of(canonical)) if canonical else None
                return ("subscribe", entry) if entry is not None and entry.resent else (None, None)
            if entry is None and echoing["kind"] == "Invalid subscription":
                method, entry = "unsubscribe", self._take("unsubscribe", echo)
            return (method, entry) if entry is not None else (None, None)
        if _LIMIT_ERROR.match(text):
            for item in self._unanswered:
                if item[0] == "subscribe":
                    self._unanswered.remove(item)
                    return item
            return None, None
        if text.startswith(_PARSE_ERROR):
            try:
                request = json.loads(text[len(_PARSE_ERROR) :])
            except ValueError:
                return None, None
            if isinstance(request, dict) and request.get("method") in ("subscribe", "unsubscribe"):
                entry = self._take(request["method"], request.get("subscription"))
                if entry is not None:
                    return request["method"], entry
        return None, None

    def _take(self, method: str, echo: Any) -> Entry | None:
        """Remove and return the unanswered request that ``echo`` answers.

        Exact canonical match first; else the request that agrees with the echo on the
        most fields it set (``agreement``); ties go to the oldest, as the server
        answers in order.
        """
        canonical = lenient_canonical(echo)
        if canonical is None:
            return None
        key = key_of(canonical)
        best: tuple[str, Entry] | None = None
        best_score = -1
        for item in self._unanswered:
            item_method, entry = item
            if item_method != method:
                continue
            if entry.key == key:
                best = item
                break
            score = agreement(entry.feed, entry.canonical, canonical)
            if score is not None and score > best_score:
                best, best_score = item, score
        if best is None:
            return None
        self._unanswered.remove(best)
        return best[1]


def agreement(feed: Feed, asked: dict[str, Any], echo: dict[str, Any]) -> int | None:
    """How well an echo answers a request (both in canonical form, defaults dropped), or
    ``None`` if it cannot be its answer.

    The echo is matched by the fields the request set: each one it echoes must be equal,
    and each required one must be echoed. A field the request set and the echo leaves
    out was dropped by the server (a flag it names otherwise, such as spotState's
    ``isPortfolioMargin``). A field only in the echo matches when it holds the feed's
    default, which the canonical form has already dropped, or when this version does
    not know it (a field the server added); a known field with another value does not.
    The score is the number of fields set and echoed equal: the most specific wins.
    """
    if asked.get("type") != echo.get("type"):
        return None
    known = FEEDS.get(feed.type)
    required = known.required if known is not None else ()
    optional = known.optional if known is not None else ()
    score = 0
    for name, value in asked.items():
        if name == "type":
            continue
        if name in echo:
            if echo[name] != value:
                return None
            score += 1
        elif name in required:
            return None
    for name in echo:
        if name not in asked and (name in required or name in optional):
            return None
    return score

