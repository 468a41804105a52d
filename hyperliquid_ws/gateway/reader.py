"""A ``GatewayClient``'s reader: places each feed in its stream, reads with blocking
``XREAD`` and runs the callbacks, recording a named consumer's position after each one.

Runs on ``<name>-reader``; callbacks run there, in stream order per feed. Where a feed
starts (``place``):

- a named consumer with a recorded position resumes right after it; if that position
  was trimmed away, a ``RetentionGapError`` goes to ``on_error`` first. If the
  ``F|started`` field names the next entry, its callback had begun when the process
  died: it comes again with ``"redelivered": true``;
- otherwise (unnamed, or named and new) at the live end: a feed that opens with a
  snapshot (userFills ...) from its latest snapshot message, as a direct subscribe starts
  with one; an empty stream from its start. Any other feed (trades, candles, l2Book,
  orderUpdates ...) starts only from what the gateway appended since it began the
  holding the consumer joins (its status names the stream's ``tail`` then): the last
  such entry (the current state, the latest trade), for deltas (fastAssetCtxs) the
  first, the full state; none yet, the next to come. So the first message is never one
  left from an earlier holding, hours old. Such a consumer also notes when it began
  (``since_ms``, Redis' clock less ``SINCE_MARGIN_MS``): what a backfill appends from
  before then (the time nobody held the feed, for a named consumer that was away) is not
  its own, as a direct client never gets trades from before it subscribed; items older
  are left out of backfilled messages, a gap mark wholly older is not reported. A new
  named consumer records its place at once (with the number of the entry before it), so
  a restart before its first message finished starts there, not at the live end again.

While it reads, each entry's number (field ``n``) must be one more than the last one's:
a skip means entries went before the consumer read them (retention passed it while it
read behind, or they never reached the stream), and a ``RetentionGapError`` with the
count goes to ``on_error`` before the entry after the hole is delivered. Checking
numbers costs nothing per read; an entry without one (written by an older gateway) makes
the next read also fetch the stream's oldest entry, in the same round trip, and compare
it with the position instead.

Recording (named only), on the reader's own ``Channel`` (``channel.py``): ``HSET
consumer:NAME F <id>`` after the callbacks of ``id`` returned, in the same command as
``F|started <next id>`` when the next is already read, and answered before that next
callback starts. The last message of a read has no next yet: its position goes in the same
round trip as the next ``XREAD`` (ahead of it, so Redis has it before that read can return
anything), not in one of its own, and ``F|started`` is written just before the first
callback of the next read. A failed write is kept and written on the next success: the
position in memory is the truth while the process lives. A clean stop (``close()``)
puts a ``started`` mark that ran ahead back, so only a crash can cause a redelivery;
and since the mark for the next message is written just before its callback, a crash
in between marks it although its callback had not begun: ``"redelivered": true`` means
"may have been delivered before".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from ..errors import BackfillError
from ..feeds import DELTAS, STATE
from ..history import SHAPES, Shape
from .channel import Channel
from .errors import GatewayError, RetentionGapError
from .feed import ConsumerFeed
from .keys import MESSAGE_FIELD, Keys, entry_number, id_tuple, number_of
from .leases import redis_now_ms

log = logging.getLogger(__name__)

_BEFORE_ALL = "0-0"
SINCE_MARGIN_MS = 2000  # clocks differ (Redis', the exchange's): a backfilled item this close to a start is kept


def before(entry_id: str) -> str:
    """The greatest entry ID smaller than ``entry_id`` (``XREAD`` returns what follows it)."""
    ms, seq = id_tuple(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-18446744073709551615" if ms > 0 else _BEFORE_ALL


def report_gap(feed: ConsumerFeed, last_id: str, first_id: str, report: Callable[[BaseException], None],
               missing: int | None = None) -> None:
    feed.gaps += 1
    error = RetentionGapError(dict(feed.wire), last_id, first_id, missing=missing)
    log.warning("%s", error)
    report(error)


def report_unrecovered(feed: ConsumerFeed, mark: Any, report: Callable[[BaseException], None]) -> None:
    """A ``keys.GAP_MARK`` entry: the gateway's backfill of this range failed (after a
    takeover); a ``BackfillError`` to ``on_error``, as a direct client's would be. Not for
    a range wholly before the consumer began (``since_ms``): none of it was its own."""
    fields = mark if isinstance(mark, dict) else {}
    start, end = fields.get("start_ms"), fields.get("end_ms")
    if feed.since_ms is not None and isinstance(end, int) and end < feed.since_ms:
        log.debug("%s: a gap from before this consumer began (%s ms < %s ms)", feed.key, end, feed.since_ms)
        return
    feed.gaps += 1
    error = BackfillError(dict(feed.wire), start if isinstance(start, int) else 0, end if isinstance(end, int) else 0,
                          GatewayError(f"the gateway could not backfill it: {fields.get('error', 'unknown')}"))
    log.warning("%s", error)
    report(error)


def since_start(feed: ConsumerFeed, data: Any) -> Any:
    """A backfilled message's ``data`` without the items older than ``feed.since_ms``
    (None: nothing left); ``data`` itself when all are newer, or when its items cannot be
    read (better twice than never). A candle counts by its close time (``T``)."""
    since = feed.since_ms
    if since is None:
        return data
    feed_type = feed.canonical.get("type")
    if feed_type == "candle":
        close = data.get("T") if isinstance(data, dict) else None
        return None if type(close) is int and close < since else data
    shape = SHAPES.get(str(feed_type))
    if shape is not None and not isinstance(shape, Shape):
        shape = shape(data)
    if shape is None:
        return data
    try:
        items = shape.items(data)
        if not isinstance(items, list):
            return data
        kept = [item for item in items if not (type(when := shape.time(item)) is int and when < since)]
    except (KeyError, TypeError, IndexError, AttributeError):
        return data
    if len(kept) == len(items):
        return data
    return shape.rebuild(data, kept) if kept else None


def check_numbered(feed: ConsumerFeed, entry_id: str, fields: dict[str, str],
                   report: Callable[[BaseException], None]) -> None:
    """Before ``entry_id`` is delivered: does its number follow the last one's? Unnumbered:
    the next read compares the stream's oldest entry with the position (``check_trimmed``)."""
    if entry_id == feed.checked_id:  # read again (a write failed before its callback ran): checked
        return
    feed.checked_id = entry_id
    number = entry_number(fields)
    if number is None:
        feed.check_trim = True
    elif feed.number is not None and number != feed.number + 1 and feed.position is not None:
        report_gap(feed, feed.position, entry_id, report, missing_between(feed.number, number))
    feed.number = number


def missing_between(last: int | None, number: int | None) -> int | None:
    """How many entries are missing between numbers ``last`` and ``number``; None when
    unknown, or when the numbering started again (the stream was made anew)."""
    if last is None or number is None or number <= last:
        return None
    return number - last - 1


def check_trimmed(feed: ConsumerFeed, first: list[Any], report: Callable[[BaseException], None]) -> None:
    """``first``: the stream's oldest entry (``XRANGE - + COUNT 1``), read just before the
    next ``XREAD`` of a feed whose entries carry no numbers. Newer than the feed's
    position: retention passed it, and ``XREAD`` would go on silently from the oldest
    entry kept."""
    feed.check_trim = False
    position = feed.position
    if position is not None and first and id_tuple(first[0][0]) > id_tuple(position):
        report_gap(feed, position, first[0][0], report)


def place(client: Any, keys: Keys, feed: ConsumerFeed, name: str | None,
          report: Callable[[BaseException], None]) -> None:
    """Set ``feed.position`` (and ``feed.redeliver``) before its first read."""
    if name is not None:
        done, started, number = client.hmget(keys.consumer(name),
                                             [feed.key, feed.key + "|started", feed.key + "|n"])
        if done is not None:
            first = client.xrange(feed.stream, "-", "+", count=1)
            recorded = number_of(number)
            oldest = entry_number(first[0][1]) if first else None
            if first and id_tuple(first[0][0]) > id_tuple(done) and not _follows(done, recorded, oldest):
                report_gap(feed, done, first[0][0], report, missing_between(recorded, oldest))
                feed.checked_id = first[0][0]  # reported here: not again when it is read
                feed.number = oldest
            elif recorded is not None:  # the number to follow, recorded with the position
                feed.number = recorded
            else:  # a position recorded before numbers were: from the entry at it
                at = client.xrange(feed.stream, done, done)
                feed.number = entry_number(at[0][1]) if at else None
            feed.position = done
            if started is not None and id_tuple(started) > id_tuple(done):
                feed.redeliver = started
            feed.started_recorded = started
            return
    if feed.fresh_start and feed.tail is None and not feed.settled.is_set():
        return  # not placed yet: the gateway's status says where its current holding begins
    position, number = _live_end(client, keys, feed)
    feed.position, feed.number = position, number
    if not feed.snapshot_feed:
        began = feed.subscribed_ms if feed.subscribed_ms is not None else redis_now_ms(client)
        feed.since_ms = began - SINCE_MARGIN_MS
    if name is not None:  # a restart before its first message finished starts here, not at the live end
        fields = {feed.key: feed.position}
        if feed.number is not None:
            fields[feed.key + "|n"] = str(feed.number)
        client.hset(keys.consumer(name), mapping=fields)


def _live_end(client: Any, keys: Keys, feed: ConsumerFeed) -> tuple[str, int | None]:
    """Where a consumer new to ``feed`` starts: the position before the first entry to
    deliver, and that position's entry number (None: unknown)."""
    start = None  # the entry to deliver first
    if feed.snapshot_feed:
        snapshot = client.hget(keys.snapshot, feed.key)
        if snapshot is not None:
            start = next(iter(client.xrange(feed.stream, snapshot, snapshot)), None)
    elif feed.fresh_start and feed.tail is not None:
        # Only what the gateway appended since it began holding the feed (after ``tail``)
        # is current: the last such entry (the latest state), for deltas the first (the
        # full state the rest build on), for events (trades ...) of a holding that began
        # after this consumer subscribed the first too (all of them are its own); none
        # yet, the next one to come.
        if feed.kind == DELTAS or (feed.kind != STATE and feed.began_ms is not None
                                   and feed.subscribed_ms is not None and feed.began_ms >= feed.subscribed_ms):
            start = next(iter(client.xrange(feed.stream, f"({feed.tail}", "+", count=1)), None)
        else:
            last = next(iter(client.xrevrange(feed.stream, "+", "-", count=1)), None)
            start = last if last is not None and id_tuple(last[0]) > id_tuple(feed.tail) else None
        if start is None:
            at = client.xrange(feed.stream, feed.tail, feed.tail) if feed.tail != _BEFORE_ALL else []
            return feed.tail, entry_number(at[0][1]) if at else None
    if start is None:
        start = next(iter(client.xrevrange(feed.stream, "+", "-", count=1)), None)
    if start is None:
        return _BEFORE_ALL, None
    number = entry_number(start[1])
    return before(start[0]), number - 1 if number is not None else None


def _follows(done: str, recorded: int | None, oldest: int | None) -> bool:
    """Does the stream's oldest entry (number ``oldest``) come right after a recorded
    position (``done``, number ``recorded``), so nothing was trimmed in between? A
    position recorded at the start of an empty stream (``0-0``) is followed by entry 1."""
    if oldest is None:
        return done == _BEFORE_ALL
    if done == _BEFORE_ALL and recorded is None:
        return oldest == 1
    return recorded is not None and oldest == recorded + 1


class Checkpoints:
    """A named consumer's positions, written as callbacks finish (reader thread only)."""

    def __init__(self, channel: Channel, keys: Keys, name: str) -> None:
        self._channel = channel
        self._key = keys.consumer(name)
        self._unwritten: dict[str, str] = {}

    def started(self, feed: ConsumerFeed, entry_id: str) -> None:
        if feed.started_recorded != entry_id:
            self._write({feed.key + "|started": entry_id})
            feed.started_recorded = entry_id

    def finished(self, feed: ConsumerFeed, entry_id: str, next_id: str | None) -> None:
        """With ``next_id`` (already read): written now, before its callback. Without: kept
        for ``pending``, the round trip of the next ``XREAD``. The entry's number goes
        with it (``F|n``), so a restart checks the next entry's even if the stream no
        longer holds this one."""
        fields = {feed.key: entry_id}
        if feed.number is not None:
            fields[feed.key + "|n"] = str(feed.number)
        if next_id is None:
            self._unwritten.update(fields)
            return
        feed.started_recorded = next_id
        fields[feed.key + "|started"] = next_id
        self._write(fields)

    def withdraw(self, feed: ConsumerFeed) -> None:
        """The message marked ``started`` never reached a callback after all (a durable
        stream ended before its loop took it): the mark goes back to the position."""
        if feed.position is not None and feed.started_recorded not in (None, feed.position):
            self._write({feed.key + "|started": feed.position})
            feed.started_recorded = feed.position

    def flush(self) -> None:
        """Write what is kept for the next read now (before a feed is placed from Redis:
        a feed subscribed again in this process must see its own last position)."""
        self._write({})

    def pending(self) -> tuple[Any, ...] | None:
        """The ``HSET`` of what is not written yet, to send ahead of the next read; call
        ``written`` once its round trip succeeded."""
        if not self._unwritten:
            return None
        return ("HSET", self._key, *(part for pair in self._unwritten.items() for part in pair))

    def written(self) -> None:
        self._unwritten = {}

    def settle(self, feeds: list[ConsumerFeed]) -> None:
        """On a clean stop: a ``started`` mark that ran ahead of the last finished message
        (written with it, for the next) goes back, so a restart repeats nothing; but not
        where a durable stream's loop held that message when it ended."""
        ahead = [f for f in feeds if not f.interrupted]
        self._write({f.key + "|started": f.position for f in ahead
                     if f.position is not None and f.started_recorded not in (None, f.position)})
        for feed in ahead:
            feed.started_recorded = feed.position

    def _write(self, fields: dict[str, str]) -> None:
        self._unwritten.update(fields)
        command = self.pending()
        if command is not None:
            self._channel.call(*command)
            self._unwritten = {}


def read_round(channel: Channel, checkpoints: Checkpoints | None, feeds: list[ConsumerFeed],
               read: tuple[Any, ...], report: Callable[[BaseException], None]) -> Any:
    """One round trip: the last read's final position (named), then for each feed that
    moved, the stream's oldest entry (has retention passed it? ``XREAD`` alone would go on
    silently from the oldest entry kept), then ``read``, the blocking ``XREAD``. Returns
    its reply."""
    position = checkpoints.pending() if checkpoints is not None else None
    checks = [f for f in feeds if f.check_trim]
    commands = [("XRANGE", f.stream, "-", "+", "COUNT", 1) for f in checks]
    commands.append(read)
    if position is not None:
        commands.insert(0, position)
    replies = channel.pipeline(commands)
    if checkpoints is not None and position is not None:
        checkpoints.written()
        replies = replies[1:]
    *firsts, reply = replies
    for feed, first in zip(checks, firsts, strict=True):
        check_trimmed(feed, first, report)
    return reply


def xread(positions: dict[str, str], count: int, block_ms: int) -> tuple[Any, ...]:
    return ("XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", *positions, *positions.values())


def streams_of(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """An ``XREAD`` reply as the parser gives it (RESP3: a map of stream to entries; RESP2:
    a list of ``[stream, entries]``; nil on timeout) as ``[(stream, [(id, fields)])]``."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(stream, [(entry_id, dict(zip(values[::2], values[1::2], strict=True)))
                      for entry_id, values in entries])
            for stream, entries in pairs]


def decode(fields: dict[str, str]) -> Any:
    return json.loads(fields[MESSAGE_FIELD])
