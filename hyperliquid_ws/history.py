"""What each subscription has delivered, so that no item reaches a callback twice.

Time-series feeds (fills, fundings, ledger updates, trades, order updates…) send items
that can arrive twice: in the ``isSnapshot`` message a resubscribe brings, and in what
the backfill fetches over HTTP. A ``Tracker`` remembers the identity of the items it
let through (a bounded memory) and filters every later message down to the new ones.

Items older than everything the memory still holds, once it has begun to forget
(``horizon``), count as seen: they can only be history that was delivered long ago. An
item exactly at the horizon passes: at that one boundary, better twice than never. The
horizon is the oldest time among the remembered items when one is forgotten (a sliding
minimum), never the forgotten item's own time alone: one item dated far in the future
(``time`` in microseconds, or 10**400) must not make every later item look old.

Whatever a server sends, a tracker never raises: an item whose identity or time is
missing or of the wrong type is delivered and not remembered (better twice than never).

Pure: no sockets, no threads. The caller serialises access (the entry's lock).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

Items = list[Any]


@dataclass(frozen=True)
class Shape:
    """Where a feed's items sit in its ``data`` and what identifies and dates one."""

    items: Callable[[Any], Items | None]  # None: this message carries no items to judge
    rebuild: Callable[[Any, Items], Any]  # data holding only the given items
    key: Callable[[Any], Hashable]
    time: Callable[[Any], int]


def _listed(field: str, key: Callable[[Any], Hashable], time: Callable[[Any], int]) -> Shape:
    """Items in a list under ``data[field]``."""
    return Shape(
        items=lambda data: data.get(field) if isinstance(data, dict) else None,
        rebuild=lambda data, items: {**data, field: items},
        key=key,
        time=time,
    )


def _bare(key: Callable[[Any], Hashable], time: Callable[[Any], int]) -> Shape:
    """``data`` is the list of items itself."""
    return Shape(
        items=lambda data: data if isinstance(data, list) else None,
        rebuild=lambda data, items: items,
        key=key,
        time=time,
    )


def _fill_key(fill: Any) -> Hashable:
    return (fill["tid"], fill["oid"], fill["hash"])


def _order_key(update: Any) -> Hashable:
    return (update["order"]["oid"], update["status"], update["statusTimestamp"])


def _funding_key(funding: Any) -> Hashable:
    return (funding["time"], funding["coin"])


FILLS = _listed("fills", _fill_key, lambda f: f["time"])
FUNDINGS = _listed("fundings", _funding_key, lambda f: f["time"])
LEDGER = _listed("nonFundingLedgerUpdates", lambda u: (u["hash"], u["time"]), lambda u: u["time"])
TWAP_SLICE_FILLS = _listed(
    "twapSliceFills", lambda s: (_fill_key(s["fill"]), s.get("twapId")), lambda s: s["fill"]["time"]
)
TWAP_HISTORY = _listed(
    "history",
    lambda h: (h.get("twapId"), h["state"]["timestamp"], h["time"], str(h["status"])),
    lambda h: h["time"],
)
HISTORICAL_ORDERS = _listed("orderHistory", _order_key, lambda u: u["statusTimestamp"])
TRADES = _bare(lambda t: (t["tid"], t["time"]), lambda t: t["time"])
ORDER_UPDATES = _bare(_order_key, lambda u: u["statusTimestamp"])

# userEvents data holds exactly one of these keys; the others (liquidation,
# nonUserCancel) have no identity to dedupe on and pass through.
_FUNDING_EVENT = Shape(
    items=lambda data: [data["funding"]],
    rebuild=lambda data, items: {**data, "funding": items[0]},
    key=_funding_key,
    time=lambda f: f["time"],
)
_USER_EVENT_SHAPES = {"fills": FILLS, "funding": _FUNDING_EVENT}


def _user_event_shape(data: Any) -> Shape | None:
    if isinstance(data, dict):
        for name, shape in _USER_EVENT_SHAPES.items():
            if name in data:
                return shape
    return None


#: feed type -> the shape of its items (or a function of the data, for userEvents)
SHAPES: dict[str, Shape | Callable[[Any], Shape | None]] = {
    "trades": TRADES,
    "userFills": FILLS,
    "userFundings": FUNDINGS,
    "userNonFundingLedgerUpdates": LEDGER,
    "userTwapSliceFills": TWAP_SLICE_FILLS,
    "userTwapHistory": TWAP_HISTORY,
    "userHistoricalOrders": HISTORICAL_ORDERS,
    "orderUpdates": ORDER_UPDATES,
    "userEvents": _user_event_shape,
}


_EXACT = 2**53  # floats this large or larger may each stand for several integers


def lossy(key: Hashable) -> bool:
    """Whether ``key`` holds a float too large to be exact: the ``fast`` extra's orjson
    reads an integer beyond 64 bits as one, so two different ids (``2**64``, ``2**64 + 1``)
    would be one key, and the second item taken for a duplicate. Such items are
    delivered and not remembered (better twice than never)."""
    if type(key) is float:
        return not -_EXACT < key < _EXACT  # NaN too
    if type(key) is tuple:
        return any(lossy(part) for part in key)
    return False


class Tracker:
    """Remembers up to ``memory`` delivered items of one subscription."""

    __slots__ = ("_lows", "_memory", "_order", "_recorded", "_seen", "_shape", "duplicates", "horizon", "last_time")

    def __init__(self, shape: Shape | Callable[[Any], Shape | None], memory: int = 5000) -> None:
        self._shape = shape
        self._memory = memory
        self._seen: set[Hashable] = set()
        self._order: deque[tuple[Hashable, int]] = deque()  # (key, time), oldest first
        self._lows: deque[tuple[int, int]] = deque()  # (time, number): the sliding minimum of _order's times
        self._recorded = 0  # items recorded so far; numbers them
        self.horizon: int | None = None  # older than this counts as seen (see the module docstring)
        self.last_time: int | None = None  # the time of the item delivered last (ms)
        self.duplicates = 0  # items filtered out

    def admit(self, data: Any, *, backfill: bool = False) -> tuple[bool, Any]:
        """Filter ``data`` down to items not delivered before, and remember them.

        Returns ``(deliver, data)``: ``deliver`` is False when nothing new is left.
        Data this tracker cannot read passes through unchanged: better twice than never.
        """
        shape = self._shape if isinstance(self._shape, Shape) else self._shape(data)
        if shape is None:
            return True, data
        try:
            items = shape.items(data)
        except (KeyError, TypeError, IndexError, AttributeError):
            return True, data
        if not items or not isinstance(items, list):
            return True, data
        if len(items) == 1:  # the common case: one trade, one fill, one update
            is_new, key, when = self._judge(shape, items[0])
            if not is_new:
                self.duplicates += 1
                return False, data
            if key is not None:
                self._record(key, when)
            return True, data
        # Judge the whole batch against the memory as it was, then record: recording
        # while judging could evict keys that later items of this batch need.
        judged = [self._judge(shape, item) for item in items]
        fresh = [item for item, (is_new, _, _) in zip(items, judged, strict=True) if is_new]
        for is_new, key, when in judged:
            if is_new and key is not None:
                self._record(key, when)
        if len(fresh) == len(items):
            return True, data
        self.duplicates += len(items) - len(fresh)
        if not fresh:
            return False, data
        return True, shape.rebuild(data, fresh)

    def _judge(self, shape: Shape, item: Any) -> tuple[bool, Hashable | None, int]:
        """(new?, key, time) of one item; an item that cannot be read counts as new."""
        try:
            key = shape.key(item)
            when = shape.time(item)
            seen = key in self._seen  # TypeError if the key cannot be hashed
        except (KeyError, TypeError, IndexError, AttributeError):
            return True, None, 0
        if type(when) is not int or lossy(key):  # a time that cannot be compared, an inexact id: deliver, forget
            return True, None, 0
        if seen or (self.horizon is not None and when < self.horizon):
            return False, key, when
        self._seen.add(key)  # also catches a repeat within the batch
        return True, key, when

    def _record(self, key: Hashable, when: int) -> None:
        order, lows = self._order, self._lows
        order.append((key, when))
        number = self._recorded
        self._recorded = number + 1
        while lows and lows[-1][0] >= when:
            lows.pop()
        lows.append((when, number))
        self.last_time = when  # the latest delivered, not the greatest: a far-future one passes
        if len(order) > self._memory:
            forgotten_key, forgotten = order.popleft()
            self._seen.discard(forgotten_key)
            if lows[0][1] == number - self._memory:
                lows.popleft()
            low = min(forgotten, lows[0][0])
            if self.horizon is None or low > self.horizon:
                self.horizon = low


class TradesTracker(Tracker):
    """A ``Tracker`` for trades, with the live stream's own order written out.

    Live trades come in time order. While they do, the generic memory (``_seen``,
    ``_order``, ``_lows``) is not kept up per trade: each new trade's key only goes into
    ``_ring``, the last ``memory + 1`` keys recorded in order (oldest overwritten), and a
    trade is judged by ``_top`` (the latest time recorded) and the keys at that time,
    ``_top_keys``: later is new, at ``_top`` it is new unless among those keys. That is
    exactly what the generic judgement gives for such a trade (nothing remembered is
    later, and every remembered trade at ``_top`` is in ``_top_keys`` while they are
    fewer than the memory).

    Anything else (a trade out of order, a backfill, a field of the wrong type, reading
    ``horizon``) first brings the generic memory up to date from the ring, as the generic
    tracker's steps one by one would have left it, then takes the generic path: if the
    ring went round, the memory is its last ``memory`` keys and the horizon the time of
    the one before them (older keys were forgotten), else its keys are recorded after
    what the memory held. So each trade is recorded once, at most, and ``horizon`` (a
    property here) is always the generic tracker's.

    A fixed ring of tuples of ints, and slots: with a thousand feeds each tracker is cold
    when its next trade comes, and its memory stays ~65 KB however long it runs (a run
    list cut at four times the memory grew to ~250 KB, and was copied as it grew).
    """

    __slots__ = ("_horizon", "_last", "_ordered", "_position", "_ring", "_top", "_top_keys")

    def __init__(self, memory: int) -> None:
        super().__init__(TRADES, memory)
        self._ring: list[tuple[int, int] | None] = [None] * (memory + 1)  # keys recorded in order
        self._position = 0  # the ring's next slot
        self._last = memory  # the ring's last slot
        self._ordered = False  # True while the ring is in use
        self._top: int | None = None  # the latest time recorded
        self._top_keys: tuple[tuple[int, int], ...] = ()  # the keys recorded at ``_top`` while ordered
        self._horizon: int | None = None

    @property  # an attribute in the base class: the generic steps read and set it
    def horizon(self) -> int | None:
        if self._ordered:
            self._catch_up()
        return self._horizon

    @horizon.setter
    def horizon(self, value: int | None) -> None:
        self._horizon = value

    def admit(self, data: Any, *, backfill: bool = False) -> tuple[bool, Any]:
        if self._ordered and type(data) is list and len(data) == 1:  # the live frame, written out
            trade = data[0]
            if type(trade) is dict:
                tid, when = trade.get("tid"), trade.get("time")
                if type(tid) is int and type(when) is int:
                    top_keys, key = self._top_keys, (tid, when)
                    if when > self._top:  # type: ignore[operator]
                        self._top, self._top_keys = when, (key,)
                    elif when != self._top or len(top_keys) + 1 >= self._memory:
                        return self._judged(data, backfill)
                    elif key in top_keys:  # several trades in one millisecond: this one again
                        self.duplicates += 1
                        return False, data
                    else:
                        self._top_keys = (*top_keys, key)
                    self.last_time = when
                    position = self._position
                    self._ring[position] = key
                    self._position = position + 1 if position < self._last else 0
                    return True, data
        return self._judged(data, backfill)

    def _judged(self, data: Any, backfill: bool) -> tuple[bool, Any]:
        """``admit`` for any frame but a single well-formed live trade of the ordered run."""
        if type(data) is list and data:
            top = self._top
            keys = []
            for trade in data:  # in order and well formed? (the judgement needs both)
                if type(trade) is not dict:
                    break
                tid, when = trade.get("tid"), trade.get("time")
                if type(tid) is not int or type(when) is not int or (top is not None and when < top):
                    break
                keys.append((tid, when))
                top = when
            else:  # (fewer at one time than the memory holds: a thousand trades in one millisecond are not)
                if (self._ordered or self._top is None or keys[0][1] > self._top) and (
                        len(self._top_keys) + len(keys) < self._memory):
                    return self._admit_in_order(data, keys)
        if self._ordered:
            self._catch_up()
        return super().admit(data, backfill=backfill)

    def _admit_in_order(self, data: list[Any], keys: list[tuple[int, int]]) -> tuple[bool, Any]:
        top, top_keys = self._top, list(self._top_keys)
        self._ordered = True
        ring, position, last = self._ring, self._position, self._last
        fresh: list[Any] | None = None if len(keys) == 1 else []
        for index, key in enumerate(keys):
            when = key[1]
            if when != top:
                top, top_keys = when, [key]
            elif key in top_keys:
                self.duplicates += 1
                if fresh is None:
                    return False, data
                continue
            else:
                top_keys.append(key)
            ring[position] = key
            position = position + 1 if position < last else 0
            if fresh is not None:
                fresh.append(data[index])
        self._top, self._top_keys, self._position = top, tuple(top_keys), position
        if fresh is not None:
            if not fresh:
                return False, data
            self.last_time = fresh[-1]["time"]
            if len(fresh) < len(data):
                data = fresh
        else:
            self.last_time = keys[0][1]
        return True, data

    def _catch_up(self) -> None:
        """Record the ring into the generic memory, as the generic tracker would have."""
        ring, position = self._ring, self._position
        self._ring, self._position, self._ordered, self._top_keys = [None] * len(ring), 0, False, ()
        keys = [key for key in ring[position:] + ring[:position] if key is not None]  # oldest first
        if len(keys) == len(ring):  # round: the one before the last ``memory`` was forgotten, and all before it
            before = keys.pop(0)[1]
            if self._horizon is None or before > self._horizon:
                self._horizon = before
            self._seen.clear()
            self._order.clear()
            self._lows.clear()
        seen, record = self._seen, super()._record
        last_time = self.last_time
        for key in keys:
            seen.add(key)
            record(key, key[1])
        self.last_time = last_time

    def _record(self, key: Hashable, when: int) -> None:
        super()._record(key, when)
        if self._top is None or when > self._top:
            self._top = when


class CandleTracker:
    """Candles update in place (same ``t``): live frames always pass and are the last
    one seen; a backfilled candle passes if it is newer than that, or that one changed."""

    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None
        self.duplicates = 0

    @property
    def last_time(self) -> int | None:
        return None if self.last is None else self.last["t"]

    def admit(self, data: Any, *, backfill: bool = False) -> tuple[bool, Any]:
        if not isinstance(data, dict) or type(data.get("t")) is not int:
            return True, data  # cannot be placed in time: delivered, not remembered
        last = self.last
        if not backfill:  # a live candle is the latest, whatever came before (a bad ``t`` too)
            self.last = data
            return True, data
        if last is not None and (data["t"] < last["t"] or data == last):
            self.duplicates += 1
            return False, data
        if last is None or data["t"] >= last["t"]:
            self.last = data
        return True, data
