"""What a late joiner is given: a subscribe (or ``stream()``) that joins a feed the
client already holds gets what a fresh subscribe would have brought, before anything
later, and the handles already there see nothing new.

By the feed's kind (``feeds.Feed.kind``):

- a state feed (``clearinghouseState``, ``l2Book``, ``allMids``...): the latest frame the
  client has; the router keeps it (``Entry.latest``, one reference, no copy);
- a history feed (``userFills``, ``userFundings``... the ``isSnapshot`` feeds of
  protocol.md §6): an ``isSnapshot: true`` message, in the live snapshot's shape, with
  every item the entry has delivered, up to the 2000 most recent, which covers what a
  fresh subscribe's snapshot holds: only recent history, and everything since has come
  to the entry live or backfilled;
- any other feed: nothing, as a fresh subscribe brings nothing until the next event
  (account events, trades, candles; fastAssetCtxs' deltas: see README).

Because a joiner's snapshot holds what the entry has delivered, the one tracker then
dedupes for every handle: from its join on, each has seen the same recent items, so
after a reconnect each gets exactly the items it has not seen. (Items older than the
2000 kept count as seen for the joiner too: no snapshot brings them back.)

Pure bookkeeping: the caller holds the entry's lock.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .feeds import HISTORY, STATE, Feed
from .history import SHAPES, Shape


class Retained:
    """What one entry keeps for its late joiners."""

    __slots__ = ("_items", "_shape", "_snapshot", "kind")

    def __init__(self, feed: Feed, memory: int) -> None:
        self.kind = feed.kind
        shape = SHAPES.get(feed.type) if feed.kind == HISTORY else None
        self._shape = shape if isinstance(shape, Shape) else None
        self._items: deque[Any] = deque(maxlen=memory)
        self._snapshot: dict[str, Any] | None = None  # the first isSnapshot message delivered

    @property
    def keeps_items(self) -> bool:
        return self._shape is not None

    def note(self, message: dict[str, Any]) -> None:
        """A message of a history feed was delivered (after dedupe): keep its items."""
        shape = self._shape
        if shape is None:
            return
        data = message["data"]
        try:
            items = shape.items(data)
        except (KeyError, TypeError, IndexError):
            return
        if self._snapshot is None and isinstance(data, dict) and data.get("isSnapshot") is True:
            self._snapshot = message
        if items and isinstance(items, list):  # anything else is delivered, not kept
            self._items.extend(items)

    def first_message(self, latest: Any) -> Any | None:
        """What a joiner gets before any later message, or None (``latest``: the last
        frame routed to the entry)."""
        if self.kind == STATE:
            return latest
        snapshot, shape = self._snapshot, self._shape
        if snapshot is None or shape is None:
            return None  # no snapshot yet: the server's, when it comes, reaches every handle
        return {"channel": snapshot["channel"], "data": shape.rebuild(snapshot["data"], list(self._items))}
