"""Backfill: after a reconnect, fetch over HTTP ``/info`` what each feed missed.

Runs on its own threads (``<name>-backfill``...) so the reader and the keepalive never wait
for HTTP. While a feed is being backfilled its live frames are held (``Entry.held``);
the recovered items are then delivered first, in time order, marked
``"backfill": true`` and in the live message shape, and the held frames after them.
A recovered item has the keys and value types of a live one, optional keys left out
where a live frame leaves them out (tests/test_backfill_shapes.py checks every plan).
Every item goes through the feed's tracker, so nothing already delivered comes again.

What each feed asks for is in ``plans.PLANS`` (protocol.md §9.3). Feeds without a plan
are state feeds that heal with their next push, or have no HTTP equivalent (notification).
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
from .dispatch import TAKE, Dispatcher, Lane, Ready
from .errors import BackfillError
from .history import SHAPES, Shape
from .httpsession import AbortableAdapter
from .plans import PLANS, Partial
from .ratelimit import WeightLimiter
from .subscription import Entry
from .tls import TLSSettings
from .weights import items_weight, request_weight

log = logging.getLogger(__name__)

ANSWER_WAIT = 15.0  # seconds a backfill waits for its feed's subscribe to be answered
SNAPSHOT_WAIT = 1.0  # ... and then for a history feed's isSnapshot frame, which follows the ack
_WAIT_SLICE = 0.05
WORKERS = 4  # backfills at once: threads, and /info requests in flight
RELEASE_WAIT = 1.0  # seconds a slice of released frames waits for the callbacks to catch up
_ABORT_AGAIN = 0.1  # seconds; stop() closes the session again this often until the threads end


class Backfiller:
    """The backfill threads. ``schedule`` is called by the reader at reconnect (and by the
    keepalive at a silent-feed resubscribe), after ``entry.hold()``, so no live frame
    slips past the backfill. A job fetches once the feed's subscribe has been answered,
    up to that moment, so the recovered items and the held frames meet without a gap.

    Up to ``WORKERS`` jobs run at once, one thread each (``<name>-backfill``, then
    ``<name>-backfill-2``... started when a job finds every thread busy), so a feed's
    held frames wait only for its own fetch, never for another feed's retries, while
    /info sees at most ``WORKERS`` requests at a time. Released frames go out ``TAKE``
    at a time, each slice once the callbacks have nearly caught up with the last, so a
    release never floods ``max_backlog``. With ``callback_threads=0``, reports to
    ``on_error`` run on ``<name>-backfill-hooks``, never on a thread that serves
    backfills: a hook that blocks holds up only later reports."""

    def __init__(self, info_url: str, dispatcher: Dispatcher, name: str, *, http_timeout: float,
                 retries: int = 4, retry_backoff: Backoff | None = None, proxy: str | None = None,
                 tls: TLSSettings | None = None, scrub: Callable[[str], str] = str,
                 weights: WeightLimiter) -> None:
        self._info_url = info_url
        self._dispatcher = dispatcher
        self._name = name
        self._http_timeout = http_timeout
        self._retries = retries
        self.weights = weights  # the REST budget every request (retries too) is paced by
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
        self._jobs: deque[tuple[Entry, int, int]] = deque()  # (entry, start ms, hold id)
        self._to_serve: deque[Ready] = deque()  # late joiners' first messages
        self._ready = threading.Condition()  # guards the jobs, the threads and the counters
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a job
        self._reports = Ready()  # the hook lane, for <name>-backfill-hooks to serve
        self._reported = threading.Condition()
        self._hooks: threading.Thread | None = None
        self.gaps_backfilled = 0
        self.gaps_unrecovered = 0
        self.items_backfilled = 0
        self.thread = self._new_worker()  # the first worker, started with the client

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """Every thread this backfiller has started (any thread)."""
        with self._ready:
            return (*self._workers, *((self._hooks,) if self._hooks is not None else ()))

    def _new_worker(self) -> threading.Thread:
        """A worker thread, not yet started (the caller holds ``_ready``, or is ``__init__``)."""
        number = len(self._workers) + 1
        suffix = "" if number == 1 else f"-{number}"
        thread = threading.Thread(target=self._run, name=f"{self._name}-backfill{suffix}", daemon=True)
        self._workers.append(thread)
        return thread

    def start(self) -> None:
        self.thread.start()

    def schedule(self, entry: Entry, start_ms: int, hold_id: int) -> None:
        """Recover ``entry``'s items from ``start_ms`` (ms) up to when the job runs, then
        release hold ``hold_id`` (any thread)."""
        with self._ready:
            self._jobs.append((entry, start_ms, hold_id))
            if (len(self._jobs) > self._idle and len(self._workers) < WORKERS and not self._stop.is_set()
                    and self.thread.is_alive()):
                self._new_worker().start()
            self._ready.notify()

    def serve_soon(self, ready: Ready) -> None:
        """Run the callbacks of ``ready``'s lanes on a backfill thread, soon (any thread): a
        late joiner's first message, which must not run inside ``subscribe()`` itself,
        where the caller may hold a lock its callback needs."""
        with self._ready:
            self._to_serve.append(ready)
            self._ready.notify()

    def _serve_waiting(self) -> None:
        while self._to_serve:
            with self._ready:
                ready = self._to_serve.popleft() if self._to_serve else None
            if ready is not None:
                self._dispatcher.serve(ready)

    def stop(self, timeout: float) -> None:
        """Stop every thread and join them within about ``timeout`` seconds in all. Closing
        the session ends an HTTP call in flight (``httpsession.py``); it is closed again
        until the threads have gone, in case one started a call meanwhile."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        with self._reported:
            self._reported.notify_all()
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        while True:
            self._session.close()
            alive = [thread for thread in self.threads if thread.is_alive() and thread is not me]
            remaining = deadline - time.monotonic()
            if not alive or remaining <= 0:
                return
            alive[0].join(min(_ABORT_AGAIN, remaining))

    def _run(self) -> None:
        """A worker: one job at a time, each under one guard (a job that fails unforeseen
        costs only itself, and its hold is let go)."""
        while True:
            with self._ready:
                self._idle += 1
                while not self._jobs and not self._to_serve and not self._stop.is_set():
                    self._ready.wait()
                self._idle -= 1
                if self._stop.is_set():
                    jobs, self._jobs = list(self._jobs), deque()
                    break
                job = self._jobs.popleft() if self._jobs and not self._to_serve else None
            if job is None:
                self._serve_waiting()
                continue
            try:
                self._job(*job)
            except Exception:
                log.exception("backfill of %s failed unforeseen; its held frames are let go", job[0].key)
                self._release(job[0], job[2], [])
        for entry, _, hold_id in jobs:  # closing: the held frames go out, no gap is reported
            self._release(entry, hold_id, [])

    def _job(self, entry: Entry, start: int, hold_id: int) -> None:
        self._wait_for_answer(entry)
        if self._stop.is_set():  # closing: not a gap worth reporting
            self._release(entry, hold_id, [])
            return
        self._backfill(entry, start, now_ms(), hold_id)

    def _wait_for_answer(self, entry: Entry) -> None:
        """Fetch only once the server has answered the feed's new subscribe: what happens
        before that is not in the live frames, so the fetch must reach past it. After
        ``ANSWER_WAIT`` it fetches anyway (the held frames cover what comes later; a link
        that comes back after that starts a new backfill)."""
        deadline = time.monotonic() + ANSWER_WAIT
        while not entry.answered.wait(_WAIT_SLICE):
            if self._stop.is_set() or time.monotonic() >= deadline:
                return
            self._serve_waiting()  # late joiners do not wait for it

    def _snapshot_covers(self, entry: Entry, start: int) -> bool:
        """Whether a history feed's resubscribe snapshot already holds everything since
        ``start`` (ms): the server's own answer to a gap (protocol.md §6, "present in the
        snapshot ack"), which saves the HTTP requests (and their REST weight, §9.1). The
        snapshot holds the most recent items, so it covers the gap when it is empty or
        reaches back to ``start``; otherwise, or if none comes, the plan fetches."""
        if not entry.feed.snapshot:
            return False
        shape = SHAPES.get(entry.feed.type)
        if not isinstance(shape, Shape):
            return False
        deadline = time.monotonic() + SNAPSHOT_WAIT
        while True:
            snapshot = next((m for m in entry.held_messages() if _is_snapshot(m)), None)
            if snapshot is not None:
                break
            if self._stop.wait(_WAIT_SLICE) or time.monotonic() >= deadline:
                return False
        try:
            items = shape.items(snapshot["data"]) or []
            return not items or min(shape.time(item) for item in items) <= start
        except (KeyError, TypeError, IndexError, ValueError):
            return False

    def _backfill(self, entry: Entry, start: int, end: int, hold_id: int) -> None:
        """One gap: fetch, deliver, release the held frames. Whatever fails (the HTTP API,
        an answer of the wrong shape, a bug) is a ``BackfillError``: the gap is reported,
        the held frames flow, the thread goes on."""
        try:
            if self._snapshot_covers(entry, start):
                self._release(entry, hold_id, [])
                self._count(gaps_backfilled=1)
                log.info("%s: its resubscribe snapshot covers the gap from %d", entry.key, start)
                return
            partial: Partial | None = None
            try:
                messages = PLANS[entry.feed.type](self._fetch, entry.wire, start, end)
            except Partial as exc:  # the end of the gap: delivered, and the rest reported below
                messages, partial = exc.messages, exc
            for message in messages:
                message["backfill"] = True
            delivered, held = self._release(entry, hold_id, messages)
        except Exception as exc:
            self._count(gaps_unrecovered=1)
            error = BackfillError(entry.wire, start, end, exc)
            log.warning("%s", error)
            self._release(entry, hold_id, [])
            self._report(error)
            return
        if partial is not None:
            self._count(gaps_unrecovered=1, items_backfilled=delivered)
            error = BackfillError(entry.wire, partial.start_ms, partial.end_ms, partial)
            log.warning("%s", error)
            self._report(error)
            return
        self._count(gaps_backfilled=1, items_backfilled=delivered)
        log.info("backfilled %s from %d to %d: %d message(s)%s", entry.key, start, end, delivered,
                 "" if held else ", after the live frames its hold gave up (Entry.deliver)")

    def _count(self, **increments: int) -> None:
        with self._ready:
            for counter, increment in increments.items():
                setattr(self, counter, getattr(self, counter) + increment)

    def _release(self, entry: Entry, hold_id: int, messages: list[Any]) -> tuple[int, bool]:
        """Deliver the backfilled ``messages``, then the held live frames, ``TAKE`` at a
        time; each slice waits (up to ``RELEASE_WAIT``) until the callbacks have nearly
        caught up with the last one. Callbacks that fall to this thread run only after the
        entry's lock is let go. Returns (backfilled messages delivered, whether the hold
        was still ``hold_id``: no if it gave up meanwhile)."""
        pending: deque[tuple[Any, bool]] = deque((message, True) for message in messages)
        ready = Ready()  # emptied by each serve

        def submit(lane: Lane, message: Any) -> None:
            self._dispatcher.submit(lane, message, ready)
        delivered = 0
        held: bool | None = None
        while True:
            count, done, mine = entry.release_some(submit, pending, hold_id, TAKE)
            self._dispatcher.serve(ready)
            delivered += count
            held = mine if held is None else held
            if done:
                return delivered, held
            lanes = [handle.lane for handle in entry.handles]
            deadline = time.monotonic() + RELEASE_WAIT
            while (not self._stop.is_set() and time.monotonic() < deadline
                   and not self._dispatcher.wait_for_lanes(lanes, TAKE, _WAIT_SLICE)):
                pass

    def _report(self, error: BaseException) -> None:
        """Hand ``error`` to ``on_error``, never on this thread: it serves other feeds'
        backfills, and a hook may block."""
        if not self._dispatcher.on_connection_threads:
            self._dispatcher.report(error)  # a dispatcher thread runs it
            return
        self._dispatcher.report(error, self._reports)
        if not self._reports:
            return  # no hook, or the thread serving the hook's lane already has it
        with self._reported:
            if self._hooks is None and not self._stop.is_set():
                hooks = threading.Thread(target=self._run_hooks, name=f"{self._name}-backfill-hooks", daemon=True)
                with self._ready:
                    self._hooks = hooks
                hooks.start()
            self._reported.notify()

    def _run_hooks(self) -> None:
        """``<name>-backfill-hooks``: serves the reports the workers made."""
        while True:
            with self._reported:
                while not self._reports and not self._stop.is_set():
                    self._reported.wait()
                if self._stop.is_set():
                    return
            self._dispatcher.serve(self._reports)

    def _fetch(self, body: dict[str, Any]) -> Any:
        """POST ``body`` to /info within the REST weight budget (``weights.py``); transient
        failures (network, 429, 5xx) are retried."""
        weights = self.weights
        for attempt in range(self._retries + 1):
            if self._stop.is_set():
                raise InterruptedError("client closed")
            if not weights.acquire(request_weight(body), self._stop):
                raise InterruptedError("client closed")
            try:
                response = self._session.post(self._info_url, json=body, timeout=self._http_timeout)
                if response.status_code != 429 and response.status_code < 500:
                    try:
                        response.raise_for_status()
                    except requests.HTTPError as exc:  # its message quotes the URL
                        raise requests.HTTPError(self._scrub(str(exc)), response=response) from None
                    answer = response.json()
                    weights.charge(items_weight(body["type"], answer))
                    return answer
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


def _is_snapshot(message: Any) -> bool:
    data = message.get("data") if isinstance(message, dict) else None
    return isinstance(data, dict) and data.get("isSnapshot") is True


def now_ms() -> int:
    return int(time.time() * 1000)
