"""Backfill: after a reconnect, fetch over HTTP ``/info`` what each feed missed.

Runs on its own thread (``<name>-backfill``) so the reader and the keepalive never wait
for HTTP. While a feed is being backfilled its live frames are held (``Entry.held``);
the recovered items are then delivered first, in time order, marked
``"backfill": true`` and in the live message shape, and the held frames after them.
Every item goes through the feed's tracker, so nothing already delivered comes again.

What each feed asks for is in ``PLANS`` (protocol.md §9.3). Feeds without a plan are
state feeds that heal with their next push, or have no HTTP equivalent (notification).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import requests

from .backoff import Backoff
from .dispatch import Dispatcher, Ready
from .errors import BackfillError
from .httpsession import AbortableAdapter
from .subscription import Entry
from .tls import TLSSettings

log = logging.getLogger(__name__)

PAGE = 500  # the smallest page the server is known to cut time-range answers at
MAX_PAGES = 40
_ABORT_AGAIN = 0.1  # seconds; stop() closes the session again this often until the thread ends
Fetch = Callable[[dict[str, Any]], Any]
Messages = list[dict[str, Any]]


def _paged(fetch: Fetch, body: dict[str, Any], start: int, end: int, time_of: Callable[[Any], int]) -> list[Any]:
    """Every item of a time-range query from ``start`` to ``end`` (ms, inclusive), oldest
    first; boundary items repeat between pages and are left for the tracker to drop."""
    items: list[Any] = []
    for _ in range(MAX_PAGES):
        page = fetch({**body, "startTime": start, "endTime": end})
        if not isinstance(page, list):
            raise ValueError(f"expected a list from {body['type']}, got {type(page).__name__}")
        page = sorted(page, key=time_of)
        items.extend(page)
        if len(page) < PAGE or time_of(page[-1]) <= start:
            return items
        start = time_of(page[-1])
    log.warning("backfill of %s stopped after %d pages", body["type"], MAX_PAGES)
    return items


def _funding_of(update: dict[str, Any]) -> dict[str, Any]:
    """An HTTP userFunding item in the shape of the WS feeds' funding."""
    delta = update["delta"]
    return {"time": update["time"], "coin": delta["coin"], "usdc": delta["usdc"], "szi": delta["szi"],
            "fundingRate": delta["fundingRate"], "nSamples": delta.get("nSamples")}


def _fills(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> list[Any]:
    body: dict[str, Any] = {"type": "userFillsByTime", "user": sub["user"]}
    if sub.get("aggregateByTime"):
        body["aggregateByTime"] = True
    return _paged(fetch, body, start, end, lambda f: f["time"])


def _fundings(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> list[Any]:
    updates = _paged(fetch, {"type": "userFunding", "user": sub["user"]}, start, end, lambda u: u["time"])
    return [_funding_of(u) for u in updates]


def _trades(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    trades = sorted((t for t in fetch({"type": "recentTrades", "coin": sub["coin"]}) if t["time"] >= start),
                    key=lambda t: t["time"])
    return [{"channel": "trades", "data": trades}] if trades else []


def _candles(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    request = {"coin": sub["coin"], "interval": sub["interval"], "startTime": start, "endTime": end}
    candles = sorted(fetch({"type": "candleSnapshot", "req": request}), key=lambda c: c["t"])
    return [{"channel": "candle", "data": candle} for candle in candles]


def _user_fills(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    fills = _fills(fetch, sub, start, end)
    return [{"channel": "userFills", "data": {"user": sub["user"], "fills": fills}}] if fills else []


def _user_events(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    timed: list[tuple[int, dict[str, Any]]] = []
    by_time: dict[int, list[Any]] = {}
    for fill in _fills(fetch, sub, start, end):
        by_time.setdefault(fill["time"], []).append(fill)
    timed += [(when, {"channel": "user", "data": {"fills": fills}}) for when, fills in by_time.items()]
    timed += [(f["time"], {"channel": "user", "data": {"funding": f}}) for f in _fundings(fetch, sub, start, end)]
    return [message for _, message in sorted(timed, key=lambda pair: pair[0])]


def _user_fundings(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    fundings = _fundings(fetch, sub, start, end)
    return [{"channel": "userFundings", "data": {"user": sub["user"], "fundings": fundings}}] if fundings else []


def _ledger(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    body = {"type": "userNonFundingLedgerUpdates", "user": sub["user"]}
    updates = _paged(fetch, body, start, end, lambda u: u["time"])
    data = {"user": sub["user"], "nonFundingLedgerUpdates": updates}
    return [{"channel": "userNonFundingLedgerUpdates", "data": data}] if updates else []


def _changed_orders(fetch: Fetch, sub: dict[str, Any], start: int) -> list[Any]:
    orders = fetch({"type": "historicalOrders", "user": sub["user"]})
    return sorted((o for o in orders if o["statusTimestamp"] >= start), key=lambda o: o["statusTimestamp"])


def _order_updates(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    orders = _changed_orders(fetch, sub, start)
    return [{"channel": "orderUpdates", "data": orders}] if orders else []


def _historical_orders(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    orders = _changed_orders(fetch, sub, start)
    data = {"user": sub["user"], "orderHistory": orders}
    return [{"channel": "userHistoricalOrders", "data": data}] if orders else []


def _twap_slice_fills(fetch: Fetch, sub: dict[str, Any], start: int, end: int) -> Messages:
    body = {"type": "userTwapSliceFillsByTime", "user": sub["user"]}
    slices = _paged(fetch, body, start, end, lambda s: s["fill"]["time"])
    data = {"user": sub["user"], "twapSliceFills": slices}
    return [{"channel": "userTwapSliceFills", "data": data}] if slices else []


PLANS: dict[str, Callable[[Fetch, dict[str, Any], int, int], Messages]] = {
    "trades": _trades,
    "candle": _candles,
    "userFills": _user_fills,
    "userEvents": _user_events,
    "userFundings": _user_fundings,
    "userNonFundingLedgerUpdates": _ledger,
    "orderUpdates": _order_updates,
    "userHistoricalOrders": _historical_orders,
    "userTwapSliceFills": _twap_slice_fills,
}


class Backfiller:
    """The backfill thread. ``schedule`` is called by the reader at reconnect, after it
    has set ``entry.held`` on each entry, so no live frame slips past the backfill."""

    def __init__(self, info_url: str, dispatcher: Dispatcher, name: str, *, http_timeout: float,
                 retries: int = 4, retry_backoff: Backoff | None = None, proxy: str | None = None,
                 tls: TLSSettings | None = None, scrub: Callable[[str], str] = str) -> None:
        self._info_url = info_url
        self._dispatcher = dispatcher
        self._http_timeout = http_timeout
        self._retries = retries
        self._retry_backoff = retry_backoff or Backoff(initial=0.5, maximum=8.0, jitter=0.5)
        self._session = requests.Session()
        # The client read the environment once (proxy.py); the session must not read it again.
        self._session.trust_env = False
        self._session.mount("http://", AbortableAdapter())  # stop() ends a call in flight
        self._session.mount("https://", AbortableAdapter())
        if proxy is not None:
            self._session.proxies = {"http": proxy, "https": proxy}
        if tls is not None:
            tls.configure(self._session)
        self._scrub = scrub  # requests' messages name the URL, query and all
        self._jobs: deque[tuple[Entry, int]] = deque()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self.gaps_backfilled = 0
        self.gaps_unrecovered = 0
        self.items_backfilled = 0
        self.thread = threading.Thread(target=self._run, name=f"{name}-backfill", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def schedule(self, entry: Entry, start_ms: int) -> None:
        """Recover ``entry``'s items from ``start_ms`` (ms) up to when the job runs."""
        with self._ready:
            self._jobs.append((entry, start_ms))
            self._ready.notify()

    def stop(self, timeout: float) -> None:
        """Stop the thread; closing the session ends an HTTP call in flight (``httpsession.py``),
        again until the thread has gone, in case one started meanwhile."""
        self._stop.set()
        with self._ready:
            self._ready.notify()
        deadline = time.monotonic() + timeout
        while True:
            self._session.close()
            remaining = deadline - time.monotonic()
            if not self.thread.is_alive() or self.thread is threading.current_thread() or remaining <= 0:
                return
            self.thread.join(min(_ABORT_AGAIN, remaining))

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._jobs and not self._stop.is_set():
                    self._ready.wait()
                if self._stop.is_set():
                    for entry, _ in self._jobs:
                        self._release(entry, [])
                    return
                entry, start = self._jobs.popleft()
            self._backfill(entry, start, now_ms())

    def _backfill(self, entry: Entry, start: int, end: int) -> None:
        """One gap: fetch, deliver, release the held frames. Whatever fails (the HTTP API,
        an answer of the wrong shape, a bug) is a ``BackfillError``: the gap is reported,
        the held frames flow, the thread goes on."""
        try:
            messages = PLANS[entry.feed.type](self._fetch, entry.wire, start, end)
            for message in messages:
                message["backfill"] = True
            delivered = self._release(entry, messages)
        except Exception as exc:
            self.gaps_unrecovered += 1
            error = BackfillError(entry.wire, start, end, exc)
            log.warning("%s", error)
            if entry.held is not None:
                self._release(entry, [])
            self._dispatcher.report(error)
            return
        self.gaps_backfilled += 1
        self.items_backfilled += delivered
        log.info("backfilled %s from %d to %d: %d message(s)", entry.key, start, end, delivered)

    def _release(self, entry: Entry, messages: list[Any]) -> int:
        """Deliver the backfilled ``messages`` and the held live frames; callbacks that
        fall to this thread run only after the entry's lock is let go."""
        ready: Ready = deque()
        delivered = entry.release(lambda lane, message: self._dispatcher.submit(lane, message, ready), messages)
        self._dispatcher.serve(ready)
        return delivered

    def _fetch(self, body: dict[str, Any]) -> Any:
        """POST ``body`` to /info; transient failures (network, 429, 5xx) are retried."""
        for attempt in range(self._retries + 1):
            if self._stop.is_set():
                raise InterruptedError("client closed")
            try:
                response = self._session.post(self._info_url, json=body, timeout=self._http_timeout)
                if response.status_code != 429 and response.status_code < 500:
                    try:
                        response.raise_for_status()
                    except requests.HTTPError as exc:  # its message quotes the URL
                        raise requests.HTTPError(self._scrub(str(exc)), response=response) from None
                    return response.json()
                problem: str = f"HTTP {response.status_code}"
            except (requests.ConnectionError, requests.Timeout) as exc:
                if self._stop.is_set():  # stop() aborted it
                    raise InterruptedError("client closed") from None
                problem = self._scrub(repr(exc))
            if attempt == self._retries:
                raise OSError(f"{body['type']} failed {attempt + 1} times, last: {problem}")
            delay = self._retry_backoff.delay(attempt)
            log.info("backfill %s: %s; retrying in %.2f s", body["type"], problem, delay)
            if self._stop.wait(delay):
                raise InterruptedError("client closed")
        raise AssertionError("unreachable")


def now_ms() -> int:
    return int(time.time() * 1000)
