"""The keepalive thread: ping well inside the server's 60 s idle limit, and call a link
dead when nothing at all has come back within ``pong_timeout`` of a ping.

Any whole inbound frame counts as life (the reader stamps ``last_inbound``), so a busy
feed never looks dead; a frame that trickles in and never completes does not count, so a
server that keeps a frame open forever is a dead link, and so is one that keeps a
fragmented message open (frames of a message begun over ``pong_timeout`` ago are no
answer to a ping). So is one whose send has been
stuck past its deadline. A dead link is aborted (its socket shut down, no lock taken),
and the reader's normal error path reconnects: there is one way to die. The keepalive
never waits for the send lock: while it is busy, the ping goes out on a later tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .connection import Connection
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

PING = '{"method":"ping"}'


class Keepalive:
    def __init__(
        self, connection: Connection, limiter: RateLimiter, *, ping_interval: float, pong_timeout: float,
        on_tick: Callable[[float], None] | None = None,
    ) -> None:
        self._on_tick = on_tick
        self._connection = connection
        self._limiter = limiter
        self._ping_interval = ping_interval
        self._pong_timeout = pong_timeout
        self._tick = min(ping_interval, pong_timeout) / 4
        self._stop = threading.Event()
        self.pings_sent = 0
        self.dead_links = 0
        self.thread = threading.Thread(
            target=self._run, name=f"{connection.name}-keepalive", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _run(self) -> None:
        """The keepalive thread; its one guard keeps it ticking whatever a tick raises."""
        while True:
            try:
                self._watch()
                return
            except Exception:
                log.exception("%s: keepalive tick failed; going on", self._connection.name)

    def _watch(self) -> None:
        conn = self._connection
        generation = 0
        next_ping = 0.0
        awaiting_since: float | None = None
        while not self._stop.wait(self._tick):
            if not conn.connected:
                continue
            now = time.monotonic()
            if conn.generation != generation:  # a new link: start its clock afresh
                generation = conn.generation
                next_ping = now + self._ping_interval
                awaiting_since = None
            if conn.send_overdue(now):
                self.dead_links += 1
                conn.abort("a send has been stuck past its deadline (the server is not reading)")
                continue
            if awaiting_since is not None:
                began = conn.message_began
                stuck = began is not None and now - began > self._pong_timeout  # a message that never ends
                if (conn.last_inbound >= awaiting_since and not stuck) or conn.in_user_code:
                    # an answer came, or the socket's holder is busy in callbacks and has
                    # not read it yet: either way the link is not dead
                    awaiting_since = None
                elif now - awaiting_since > self._pong_timeout:
                    self.dead_links += 1
                    awaiting_since = None
                    conn.abort(f"nothing received within {self._pong_timeout:g} s of a ping")
                    continue
            if self._on_tick is not None:
                self._on_tick(now)
            if now >= next_ping:
                if self._limiter.try_acquire() > 0:
                    continue  # the message budget is spent (a big replay): ping next tick
                if conn.send_text(PING, generation, wait=0):
                    self.pings_sent += 1
                    if awaiting_since is None:
                        awaiting_since = now
                next_ping = now + self._ping_interval
