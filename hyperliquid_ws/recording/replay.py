"""``Replay``: plays a recording through ``LocalServer`` instead of the scripted market.

    with LocalServer(replay="data/", speed=10.0) as server:
        ...  # an unmodified client subscribes to server.base_url as usual

Threads: ``run`` is a task on the server loop (``hlws-local-server``); it sends each
record to the connections holding its subscription when the record is due (see
``timeline.schedule``), answers new subscribers and ``/info`` from ``Timeline`` as of
the replay clock. ``play``, ``pause``, ``run_until``, ``wait_done`` and the properties
are thread-safe and may be called from any thread but the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .reader import FeedFilter, read
from .replay_info import answer_replay_info
from .timeline import Timeline, schedule

if TYPE_CHECKING:
    from ..testing.connection import Hub
    from ..testing.market import Market


def check_speed(speed: float | None) -> float | None:
    if speed is None:
        return None
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
        raise ValueError(f"speed must be a positive number (times real time) or None (as fast as read), got {speed!r}")
    return float(speed)


class Replay:
    """A recording, its replay clock, and controls over them.

    - ``path``: a recording file, a directory of them, or a list (see ``read``);
      ``feeds``, ``start``, ``end`` select what is replayed, as in ``read``.
    - ``speed``: the recorded pace times this (10.0: ten times faster); ``None`` sends
      each frame as soon as the previous one was written to the sockets.
    - ``autoplay``: start the clock at the first subscription (default); else at ``play()``.

    The replay clock is the receive time (s since the epoch) of the last record sent:
    what a new subscriber's snapshot and every ``/info`` answer are built from. A
    recorded ``isSnapshot`` frame goes out without the flag (subscribers got their own
    snapshot when they subscribed; clients drop the items they already have), and
    backfilled records go out as plain frames, in their recorded place. The same
    recording always gives the same frames in the same order. Raises ``ValueError``
    for an empty selection or a bad ``speed``, ``FileNotFoundError`` for a missing path.
    """

    def __init__(self, path: str | Path | Iterable[str | Path], *, speed: float | None = 1.0,
                 autoplay: bool = True, feeds: Iterable[FeedFilter] | None = None,
                 start: float | None = None, end: float | None = None) -> None:
        self.speed = check_speed(speed)
        self.autoplay = autoplay
        self.timeline = Timeline(read(path, feeds=feeds, start=start, end=end))
        self.due = schedule([step.time for step in self.timeline.steps], self.speed)
        self._progress = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._playing = False
        self._stop_after: float | None = None  # pause once every record up to this time is sent
        self.frames_sent = 0  # frames written, counted once per connection

    # ---------------------------------------------------------------- controls
    @property
    def clock(self) -> float:
        with self._progress:
            return self.timeline.clock

    @property
    def position(self) -> int:
        """How many records have been sent."""
        with self._progress:
            return self.timeline.position

    def __len__(self) -> int:
        return len(self.timeline.steps)

    def play(self) -> None:
        """Start or resume the clock (a resumed replay keeps its pace from where it paused)."""
        self._on_loop(lambda: self._set(True, None))

    def pause(self) -> None:
        """Stop sending after the current frame; subscriptions and ``/info`` keep working."""
        self._on_loop(lambda: self._set(False, None))

    def run_until(self, t: float, timeout: float = 10.0) -> bool:
        """Play until every record received at or before ``t`` (s since the epoch) is sent,
        then pause; block until then. False on timeout (then still playing towards ``t``)."""
        self._on_loop(lambda: self._set(True, t))
        timeline = self.timeline

        def reached() -> bool:
            return timeline.done or (not self._playing and timeline.steps[timeline.position].time > t)
        with self._progress:
            return self._progress.wait_for(reached, timeout)

    def wait_done(self, timeout: float = 10.0) -> bool:
        """Block until every record has been sent; False on timeout."""
        with self._progress:
            return self._progress.wait_for(lambda: self.timeline.done, timeout)

    # ------------------------------------------------- server hooks (loop thread)
    def initial_data(self, normalised: dict[str, Any]) -> Any | None:
        """Called for each new subscription: its snapshot as of the clock; starts an autoplay."""
        if self.autoplay and not self._playing and self.timeline.position == 0 and self._stop_after is None:
            self._set(True, None)
        return self.timeline.initial_data(normalised)

    def answer_info(self, market: Market, body: object) -> Any:
        return answer_replay_info(self.timeline, market, body)

    async def run(self, hub: Hub) -> None:
        """The replay task: send every record when due, honouring pauses."""
        loop = asyncio.get_running_loop()
        with self._progress:  # from now on controls go through the loop (see _on_loop)
            self._loop, self._wakeup = loop, asyncio.Event()
        timeline, due = self.timeline, self.due
        anchor: float | None = None  # loop time at which the replay's offset 0 is (re)based
        while not timeline.done:
            step_index = timeline.position
            step = timeline.steps[step_index]
            if self._stop_after is not None and step.time > self._stop_after:
                self._set(False, None)
            if not self._playing:
                anchor = None
                await self._sleep(None)
                continue
            if anchor is None:
                anchor = loop.time() - due[step_index]
            delay = anchor + due[step_index] - loop.time()
            if delay > 0:
                await self._sleep(delay)
                continue
            await self._send(hub, step.key, step.text)
            with self._progress:
                timeline.advance()
                self._progress.notify_all()
        with self._progress:
            self._playing = False
            self._progress.notify_all()

    async def _send(self, hub: Hub, key: str, text: str) -> None:
        for conn in list(hub.connections.values()):
            if key in conn.subscriptions:
                self.frames_sent += await hub.send(conn, text)

    async def _sleep(self, delay: float | None) -> None:
        assert self._wakeup is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), delay)
        self._wakeup.clear()

    def _set(self, playing: bool, stop_after: float | None) -> None:
        with self._progress:
            self._playing, self._stop_after = playing, stop_after
            self._progress.notify_all()
        if self._wakeup is not None:
            self._wakeup.set()

    def _on_loop(self, action: Any) -> None:
        with self._progress:  # (re-entrant) so the task cannot start between the test and the action
            loop = self._loop
            if loop is None:  # not running yet: the task reads the flags when it starts
                action()
                return
        loop.call_soon_threadsafe(action)
