"""``ConsumerFeed``: one feed as a ``GatewayClient`` holds it, shared by its handles.

It quacks like the core's ``subscription.Entry`` where ``Subscription`` looks (``key``,
``wire``, ``active``, ``error``, ``settled``), so ``GatewayClient.subscribe`` returns the
very ``Subscription`` class ``HyperliquidWS.subscribe`` does. ``callbacks`` is replaced,
never mutated, so the reader thread reads it without a lock.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from ..errors import SubscriptionError
from ..feeds import HISTORY, MARKET
from ..subscription import Callback, Subscription

_ENTRY_ID = re.compile(r"[0-9]+-[0-9]+")


class ConsumerFeed:
    def __init__(self, key: str, canonical: dict[str, Any], wire: dict[str, Any], stream: str,
                 kind: str = MARKET) -> None:
        self.key = key
        self.canonical = canonical
        self.wire = wire
        self.stream = stream
        self.kind = kind  # the feed's kind (feeds.py): STATE, DELTAS, HISTORY ...
        self.snapshot_feed = kind == HISTORY  # opens with an isSnapshot message (userFills ...)
        self.fresh_start = kind != HISTORY  # a new reader starts after the tail of the holding it joins
        self.tail: str | None = None  # the stream's last entry ID when the gateway began holding it
        self.began_ms: int | None = None  # when that holding began (ms, Redis' clock)
        self.subscribed_ms: int | None = None  # when this consumer's demand for it first went in (Redis' clock)
        self.handles: tuple[Subscription, ...] = ()
        self.callbacks: tuple[Callback, ...] = ()
        self.active = False  # the gateway holds it upstream
        self.error: SubscriptionError | None = None
        self.settled = threading.Event()  # first "active" or refusal
        self.position: str | None = None  # the last entry ID handed to the callbacks (None: not placed yet)
        self.redeliver: str | None = None  # the entry ID whose callback had started before a crash
        self.since_ms: int | None = None  # placed at the live end (not a snapshot feed): backfilled items
        # older than this (ms, Redis clock, less a margin) came before it subscribed, and are not its own
        self.started_recorded: str | None = None  # the "started" ID last written (named consumers)
        self.interrupted = False  # a durable stream's loop held the started message when it ended
        self.parked: tuple[str, tuple[Callback, ...]] | None = None  # (entry ID, its callbacks) awaiting a loop
        self.delivered = 0
        self.redelivered = 0
        self.gaps = 0
        self.number: int | None = None  # the entry number (field n) of the entry at position, if known
        self.checked_id: str | None = None  # the last entry whose number was checked
        self.check_trim = False  # read an unnumbered entry: the next read checks retention has not passed it

    def attach(self, handle: Subscription) -> None:
        self.handles = (*self.handles, handle)
        self.callbacks = tuple(h.callback for h in self.handles)

    def detach(self, handle: Subscription) -> None:
        self.handles = tuple(h for h in self.handles if h is not handle)
        self.callbacks = tuple(h.callback for h in self.handles)

    def settle(self, status: dict[str, Any]) -> None:
        """Apply the gateway's status for this feed, one found true (the lease thread)."""
        state = status.get("state")
        if state == "active":
            tail, began = status.get("tail"), status.get("began")
            self.tail = tail if isinstance(tail, str) and _ENTRY_ID.fullmatch(tail) else None
            self.began_ms = began if type(began) is int else None
            self.active = True
            self.settled.set()
        elif state == "refused" and self.error is None:
            text = str(status.get("error", "refused"))
            self.error = SubscriptionError(f"the gateway's upstream refused {self.wire}: {text}",
                                           subscription=dict(self.wire), server_text=text)
            self.active = False
            self.settled.set()

    def __repr__(self) -> str:
        return f"<ConsumerFeed {self.key} listeners={len(self.handles)} position={self.position}>"
