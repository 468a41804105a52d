"""A ``GatewayClient``'s reader: places each feed in its stream, reads with blocking
``XREAD`` and runs the callbacks, recording a named consumer's position after each one.

Runs on ``<name>-reader``; callbacks run there, in stream order per feed. Where a feed
starts (``place``):

- a named consumer with a recorded position resumes right after it; if that position
  was trimmed away, a ``RetentionGapError`` goes to ``on_error`` first (and so while it
  runs: each read of a feed that moved also reads the stream's oldest entry, in the same
  round trip, to see whether retention has passed the position). If the
  ``F|started`` field names the next entry, its callback had begun when the process
  died: it comes again with ``"redelivered": true``;
- otherwise (unnamed, or named and new) at the live end: from the feed's latest
  snapshot message (userFills ...), else its last entry, as a direct subscribe starts
  with a snapshot or the current state; an empty stream from its start.

Recording (named only): ``HSET consumer:NAME F <id>`` after the callbacks of ``id``
returned, in the same command as ``F|started <next id>`` when the next is already read:
one round trip per message. A failed write is kept and written on the next success:
the position in memory is the truth while the process lives. A clean stop (``close()``)
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

from .errors import RetentionGapError
from .feed import ConsumerFeed
from .keys import MESSAGE_FIELD, Keys, id_tuple

log = logging.getLogger(__name__)

_BEFORE_ALL = "0-0"


def before(entry_id: str) -> str:
    """The greatest entry ID smaller than ``entry_id`` (``XREAD`` returns what follows it)."""
    ms, seq = id_tuple(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-18446744073709551615" if ms > 0 else _BEFORE_ALL


def report_gap(feed: ConsumerFeed, last_id: str, first_id: str, report: Callable[[BaseException], None]) -> None:
    feed.gaps += 1
    error = RetentionGapError(dict(feed.wire), last_id, first_id)
    log.warning("%s", error)
    report(error)


def check_trimmed(feed: ConsumerFeed, first: list[Any], report: Callable[[BaseException], None]) -> None:
    """``first``: the stream's oldest entry (``XRANGE - + COUNT 1``), read just before the
    next ``XREAD``. Older than the feed's position: retention passed it, and ``XREAD``
    would go on silently from the oldest entry kept."""
    feed.check_trim = False
    position = feed.position
    if position is not None and first and id_tuple(first[0][0]) > id_tuple(position):
        report_gap(feed, position, first[0][0], report)


def place(client: Any, keys: Keys, feed: ConsumerFeed, name: str | None,
          report: Callable[[BaseException], None]) -> None:
    """Set ``feed.position`` (and ``feed.redeliver``) before its first read."""
    if name is not None:
        done, started = client.hmget(keys.consumer(name), [feed.key, feed.key + "|started"])
        if done is not None:
            first = client.xrange(feed.stream, "-", "+", count=1)
            if first and id_tuple(first[0][0]) > id_tuple(done):
                report_gap(feed, done, first[0][0], report)
            feed.position = done
            if started is not None and id_tuple(started) > id_tuple(done):
                feed.redeliver = started
            feed.started_recorded = started
            return
    if feed.snapshot_feed:
        snapshot = client.hget(keys.snapshot, feed.key)
        if snapshot is not None and client.xrange(feed.stream, snapshot, snapshot):
            feed.position = before(snapshot)
            return
    last = client.xrevrange(feed.stream, "+", "-", count=1)
    feed.position = before(last[0][0]) if last else _BEFORE_ALL


class Checkpoints:
    """A named consumer's positions, written as callbacks finish (reader thread only)."""

    def __init__(self, client: Any, keys: Keys, name: str) -> None:
        self._client = client
        self._key = keys.consumer(name)
        self._unwritten: dict[str, str] = {}

    def started(self, feed: ConsumerFeed, entry_id: str) -> None:
        if feed.started_recorded != entry_id:
            self._write({feed.key + "|started": entry_id})
            feed.started_recorded = entry_id

    def finished(self, feed: ConsumerFeed, entry_id: str, next_id: str | None) -> None:
        fields = {feed.key: entry_id}
        if next_id is not None:
            fields[feed.key + "|started"] = next_id
            feed.started_recorded = next_id
        self._write(fields)

    def settle(self, feeds: list[ConsumerFeed]) -> None:
        """On a clean stop: a ``started`` mark that ran ahead of the last finished message
        (written with it, for the next) goes back, so a restart repeats nothing."""
        fields = {f.key + "|started": f.position for f in feeds
                  if f.position is not None and f.started_recorded not in (None, f.position)}
        if fields:
            self._write(fields)
            for feed in feeds:
                feed.started_recorded = feed.position

    def flush(self) -> None:
        if self._unwritten:
            fields, self._unwritten = self._unwritten, {}
            self._write(fields)

    def _write(self, fields: dict[str, str]) -> None:
        try:
            self._client.hset(self._key, mapping={**self._unwritten, **fields})
            self._unwritten = {}
        except Exception:
            self._unwritten.update(fields)
            raise


def decode(fields: dict[str, str]) -> Any:
    return json.loads(fields[MESSAGE_FIELD])
