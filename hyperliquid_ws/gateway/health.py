"""Whether Redis answers, as a consumer sees it: one report per outage, and the hooks.

``down`` and ``up`` are called by the consumer's lease and reader threads after each
command; the first success ever calls ``on_connect(url)``; only the first failure of an
outage reports (``on_error`` gets a ``BrokerError``, then ``on_disconnect(reason)``),
and only the first success after it calls ``on_connect(url)`` and
``on_reconnect(downtime_s)``. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .broker import masked, translate

log = logging.getLogger(__name__)


class Health:
    def __init__(self, label: str, url: str, *, report: Callable[[BaseException], None],
                 on_connect: Callable[[str], None] | None, on_disconnect: Callable[[str], None] | None,
                 on_reconnect: Callable[[float], None] | None) -> None:
        self._label = label
        self._url = url
        self._shown = masked(url)
        self._report = report
        self._on_connect, self._on_disconnect, self._on_reconnect = on_connect, on_disconnect, on_reconnect
        self._lock = threading.Lock()
        self.broker_up = True
        self._down_since = 0.0
        self._met = False  # Redis has answered once: on_connect has been called

    def up(self) -> None:
        if self.broker_up and self._met:
            return
        with self._lock:
            if self.broker_up and self._met:
                return
            first, self._met = not self._met, True
            recovered, self.broker_up = not self.broker_up, True
        if not recovered:  # the first answer ever: on_connect, as a client's first connect
            if first and self._on_connect is not None:
                try:
                    self._on_connect(self._shown)
                except Exception:
                    log.exception("%s: on_connect raised", self._label)
            return
        downtime = time.monotonic() - self._down_since
        log.info("%s: Redis at %s reachable again after %.1f s", self._label, self._shown, downtime)
        try:
            if self._on_connect is not None:
                self._on_connect(self._shown)
            if self._on_reconnect is not None:
                self._on_reconnect(downtime)
        except Exception:
            log.exception("%s: hook raised", self._label)

    def down(self, exc: BaseException, doing: str) -> None:
        with self._lock:
            first = self.broker_up
            self.broker_up = False
            if first:
                self._down_since = time.monotonic()
        if not first:
            return
        error = translate(exc, self._url, doing)
        log.warning("%s; retrying with backoff", error)
        self._report(error)
        if self._on_disconnect is not None:
            try:
                self._on_disconnect(str(error))
            except Exception:
                log.exception("%s: on_disconnect raised", self._label)
