"""The connections of one client, and which one carries each subscription.

Everything that can share a connection does, on as few as possible. A subscription
whose frames would look like those of one already on a connection (orderUpdates,
userEvents and notification of another user; an l2Book of another precision; userFills
with the other aggregateByTime) goes to the first connection where it is unambiguous,
opening a new one when none is. The client-side limits are checked here, before
anything is sent. Thread-safe (one lock).
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

from .dispatch import Lane, Ready
from .errors import LimitError
from .feeds import Feed, key_of
from .limits import Limits
from .link import Link, LinkSettings
from .subscription import Callback, Entry, Subscription, _Owner

log = logging.getLogger(__name__)


class Pool:
    def __init__(self, name: str, settings: LinkSettings, limits: Limits) -> None:
        self._name = name
        self._settings = settings
        self._limits = limits
        self._lock = threading.Lock()
        self._numbers = itertools.count(2)
        self._started = False
        self.links: list[Link] = [Link(name, settings, carries_posts=True)]
        self.retired: list[Link] = []  # emptied and stopping; kept until their threads end

    @property
    def primary(self) -> Link:
        """The first connection: it always exists and carries the ``post`` requests."""
        return self.links[0]

    def start(self) -> None:
        with self._lock:
            self._started = True
            for link in self.links:
                if not link.started:
                    link.start()

    def stop(self, timeout: float) -> None:
        with self._lock:
            links = [*self.links, *self.retired]
        for link in links:
            link.stop(timeout)

    def entries(self) -> list[tuple[Link, Entry]]:
        with self._lock:
            links = list(self.links)
        return [(link, entry) for link in links for entry in link.registry.entries()]

    def link_of(self, entry: Entry) -> Link | None:
        """The link that carries ``entry``, if any still does."""
        with self._lock:
            return next((link for link in self.links if link.registry.owns(entry)), None)

    def subscribe(
        self, owner: _Owner, feed: Feed, canonical: dict[str, Any], wire: dict[str, Any], callback: Callback
    ) -> Subscription:
        key = key_of(canonical)
        route = feed.route_of(canonical)
        dispatcher = self._settings.dispatcher
        first = Ready()  # a late joiner's first message, served by the backfill thread

        def give(lane: Lane, message: Any) -> None:
            dispatcher.submit(lane, message, first)

        with self._lock:
            link = next((link for link in self.links if link.registry.holds(key)), None)
            if link is None:
                self._check_limits(canonical)
                link = next((link for link in self.links if link.registry.conflict(route) is None), None)
                if link is None:
                    link = self._open_link(key)
            handle, is_new = link.registry.add(owner, feed, canonical, wire, callback, give)
        if first:
            self._settings.backfiller.serve_soon(first)
        if is_new:
            link.send_subscribe(handle._entry)
        return handle

    def unsubscribe(self, handle: Subscription) -> None:
        retire: Link | None = None
        with self._lock:
            link = next((link for link in self.links if link.registry.owns(handle._entry)), None)
            if link is None:  # refused by the server, or already gone
                handle.closed = True
                return
            entry, generation = link.registry.remove(handle)
            if link is not self.primary and not link.registry.entries():
                self.links.remove(link)
                self.retired.append(link)
                retire = link
        if retire is not None:
            log.info("%s: no subscription left on it; closing", retire.name)
            retire.stop(self._settings.open_timeout, "closed: no subscription left on it")
            with self._lock:  # keep only links whose threads have yet to finish, to join at close
                self.retired = [link for link in self.retired if any(t.is_alive() for t in link.threads())]
        elif entry is not None:
            link.send_unsubscribe(entry, generation)

    def _check_limits(self, canonical: dict[str, Any]) -> None:
        limits = self._limits
        entries = [entry for link in self.links for entry in link.registry.entries()]
        if len(entries) >= limits.max_subscriptions:
            raise LimitError(
                f"Limits.max_subscriptions: this client already holds {len(entries)} subscriptions, "
                f"the most the server allows per IP", limit="max_subscriptions", value=limits.max_subscriptions)
        user = canonical.get("user")
        if user is not None:
            users = {entry.canonical["user"] for entry in entries if "user" in entry.canonical}
            if user not in users and len(users) >= limits.max_users:
                raise LimitError(
                    f"Limits.max_users: user feeds already follow {len(users)} distinct users, the most "
                    f"the server tracks per IP; {user} would be one more", limit="max_users",
                    value=limits.max_users)

    def _open_link(self, key: str) -> Link:
        limits = self._limits
        if len(self.links) >= limits.max_connections:
            raise LimitError(
                f"Limits.max_connections: {key} cannot share any of the {len(self.links)} open connections "
                "without its frames being mistaken for another subscription's, and the server allows "
                f"{limits.max_connections} connections per IP", limit="max_connections",
                value=limits.max_connections)
        link = Link(f"{self._name}.{next(self._numbers)}", self._settings, carries_posts=False)
        self.links.append(link)
        log.info("%s: opening %s for %s", self._name, link.name, key)
        if self._started:
            link.start()
        return link
