"""One WebSocket to the server, kept open by its reader thread until ``close()``.

The reader thread connects (interruptibly), tells its owner the link is up, reads
frames and hands each read's text frames to ``on_frames``, and when the link ends for any reason waits
out the backoff and connects again. Every way a link can die (a reset, a close frame, a
failed handshake, ``abort()`` from the keepalive) ends in the same place. All sends go
through one lock.

When callbacks run on the connection's threads (``run_callbacks``), the reader runs
them after each read, and a second thread, the *relay*, stands by. Whichever thread
holds the socket reads a batch of frames, queues them (``on_batch_end``), then runs the
callbacks. If it is still inside them after ``RELAY_AFTER`` seconds, the other thread
takes the socket, reads on and serves the other subscriptions; the first one, once its
callback returns, stands by in turn. Only while both are inside callbacks does reading
pause, and the keepalive knows that a busy link is not a dead one (``in_user_code``).

Nothing a server sends can end these threads. A frame that breaks RFC 6455 fails the
link with the close code ``frames.ProtocolError`` names (1002, or 1009 for a message
over ``max_message_size``), counted in the ``FrameGuard`` and reported; and any
exception nobody foresaw, in the read loop, the callbacks' scheduling or the hooks, tears
the link down the same way, is reported as a ``ReaderError``, and reconnects.
``connected`` is True only while a thread is reading the live link; ``last_inbound`` is
stamped only when whole frames came.

No server can wedge a send. The socket stays blocking for the bulk reader, so every
send (pongs, pings, subscribes, posts, close frames) is written here, under the send
lock, with a deadline (``send_timeout``): a server that stops reading fills the kernel
buffers, the send waits for room at most that long, and then the link fails and
reconnects. Nobody waits for the send lock without a bound either; the keepalive
aborts a stuck link by shutting its socket down, without the lock, and ``close()``
sends its close frame only if the lock comes free soon.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

import websocket

from .backoff import Backoff
from .dial import Closing, Route, dial
from .errors import ReaderError
from .frames import DEFAULT_MAX_MESSAGE_SIZE, FrameReader, ProtocolError
from .guard import FrameGuard
from .ratelimit import RateLimiter
from .redact import redact_url
from .retry_after import DEFAULT_MAX_RETRY_AFTER, reconnect_delay, retry_after_of

log = logging.getLogger(__name__)

RELAY_AFTER = 0.05  # seconds a thread may spend in callbacks before the other takes the socket
_RELAY_POLL = RELAY_AFTER / 2  # so a stuck reader is relieved within 1.5 x RELAY_AFTER
CONNECT_WARNING_EVERY = 60.0  # seconds between WARNINGs while connecting keeps failing the same way
DEFAULT_SEND_TIMEOUT = 10.0  # seconds a send may wait for room in the socket's buffer
CLOSE_FRAME_WAIT = 1.0  # seconds close() waits for the send lock and its close frame
SEND_CHUNK = 4096  # bytes written per wait for room: well under what a writable socket has free
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


class SendTimeout(OSError):
    """A send found no room in the socket's buffer within its deadline: the server is
    not reading."""


class Connection:
    """Thread-safe: ``send_text``, ``abort`` and ``close`` may be called from any thread."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        on_open: Callable[[int], None],
        on_lost: Callable[[int, str], None],
        backoff: Backoff,
        open_timeout: float,
        connect_limiter: RateLimiter | None = None,
        run_callbacks: Callable[[], None] | None = None,
        guard: FrameGuard | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        route: Route | None = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        scrub: Callable[[str], str] = lambda text: text,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url)  # for logs and hooks: no credentials
        self._route = route
        self._max_retry_after = max_retry_after
        self._scrub = scrub  # takes the client's secrets out of other libraries' messages
        self.name = name
        self.guard = guard or FrameGuard(name)
        self._max_message_size = max_message_size
        self._on_open = on_open
        self.on_frames: Callable[[list[bytes]], None] = lambda payloads: None  # set by the owner
        self.on_batch_end: Callable[[], None] = lambda: None  # after each read's frames
        self.on_error: Callable[[BaseException], None] = lambda error: None  # set by the owner
        self._run_callbacks = run_callbacks
        self._on_lost = on_lost
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._connect_limiter = connect_limiter
        self._closing = threading.Event()
        self._send_lock = threading.Lock()
        self._send_timeout = send_timeout
        self.sending_since: float | None = None  # monotonic, while a send is under way
        self._ws: websocket.WebSocket | None = None
        self._raw: socket.socket | None = None  # the TCP socket, for abort()
        self._abort_reason: str | None = None
        self.generation = 0  # +1 on every successful connect; 0 = never connected
        self.connected = False
        self._up = threading.Event()  # set while connected
        self.last_inbound = 0.0
        self.connects = 0
        self.relays = 0  # times the socket changed threads because a callback ran long
        self.last_disconnect_reason: str | None = None
        self._connect_warned_at = 0.0  # monotonic time of the last connect-failure WARNING
        self._close_reason = "closed by the user"
        self.retry_after: float | None = None  # the last Retry-After a refused handshake asked for
        self.next_attempt_at: float | None = None  # monotonic, while waiting to connect again
        # Taking turns at the socket (all under ``_turn_lock``; ``_turn`` to wait for one):
        self._turn_lock = threading.Lock()
        self._turn = threading.Condition(self._turn_lock)
        self._session: FrameReader | None = None  # the live link's receive side
        self._holder: threading.Thread | None = None  # the thread that reads it now
        self._busy_since: float | None = None  # when the holder went into callbacks
        self._ended: str | None = None  # why the last session ended
        self._relay_work = False  # callbacks queued between sessions
        self.thread = threading.Thread(target=self._run, name=f"{name}-reader", daemon=True)
        self.relay = (threading.Thread(target=self._relay_run, name=f"{name}-relay", daemon=True)
                      if run_callbacks is not None else None)

    def start(self) -> None:
        self.thread.start()
        if self.relay is not None:
            self.relay.start()

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        return (self.thread,) if self.relay is None else (self.thread, self.relay)

    @property
    def in_user_code(self) -> bool:
        """True while the thread holding the socket is inside callbacks (nobody reads)."""
        return self._busy_since is not None

    def run_callbacks_soon(self) -> None:
        """Callbacks were queued outside a session (a hook): the relay runs them."""
        with self._turn:
            self._relay_work = True
            self._turn.notify_all()

    # -- any thread ---------------------------------------------------------------------

    def send_text(self, text: str, generation: int = 0, wait: float | None = None) -> bool:
        """Send one text frame; False if not connected (or no longer on ``generation``),
        or if the send lock stayed busy for ``wait`` seconds (by default the send
        timeout). A send that cannot finish within the send timeout fails the link."""
        if not self._send_lock.acquire(timeout=self._send_timeout if wait is None else wait):
            return False
        try:
            ws = self._ws
            if ws is None or not self.connected or (generation and generation != self.generation):
                return False
            return self._send(ws, text.encode(), websocket.ABNF.OPCODE_TEXT)
        finally:
            self._send_lock.release()

    def _send(self, ws: websocket.WebSocket, payload: bytes, opcode: int, timeout: float | None = None) -> bool:
        """Write one frame within ``timeout`` (the send timeout by default); the send
        lock is held. On failure the link is shut down (its reader then reconnects)."""
        timeout = self._send_timeout if timeout is None else timeout
        try:
            self._write(ws, websocket.ABNF.create_frame(payload, opcode).format(), timeout)
        except SendTimeout as exc:
            self._abort_reason = self._abort_reason or str(exc)
            log.warning("%s: %s; dropping the connection", self.name, exc)
            self._shutdown_raw()
            return False
        except (OSError, websocket.WebSocketException) as exc:
            log.debug("%s: send failed: %s", self.name, exc)
            self._shutdown_raw()
            return False
        return True

    def _write(self, ws: websocket.WebSocket, data: bytes, timeout: float) -> None:
        """Write ``data`` to the (blocking) socket without ever blocking past ``timeout``:
        wait until it is writable, then write at most ``SEND_CHUNK`` bytes (with
        ``MSG_DONTWAIT`` when it is plain TCP), again until all is written."""
        sock = ws.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed")
        plain = not isinstance(sock, ssl.SSLSocket)
        view = memoryview(data)
        deadline = (now := time.monotonic()) + timeout
        self.sending_since = now
        try:
            if plain:  # the usual case: all of it goes at once, one system call
                with contextlib.suppress(BlockingIOError):
                    view = view[sock.send(view, _DONTWAIT):]
            while view:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not _writable(sock, remaining):
                    raise SendTimeout(f"a send found no room within {timeout:g} s (the server is not reading)")
                if plain:
                    with contextlib.suppress(BlockingIOError):
                        view = view[sock.send(view, _DONTWAIT):]
                else:
                    view = view[sock.send(view[:SEND_CHUNK]):]
        finally:
            self.sending_since = None

    @property
    def message_began(self) -> float | None:
        """Since when (monotonic) a fragmented message has been arriving on the live
        link, unfinished; None if none is."""
        session = self._session
        return None if session is None else session.message_began

    def send_overdue(self, now: float) -> bool:
        """True if a send has been under way for longer than its deadline allows (a
        write the kernel accepted in part and then held): the keepalive aborts the link."""
        since = self.sending_since
        return since is not None and now - since > self._send_timeout + CLOSE_FRAME_WAIT

    @property
    def closing(self) -> bool:
        """True once ``close()`` was called."""
        return self._closing.is_set()

    def wait_connected(self, timeout: float, stop: threading.Event) -> bool:
        """Block until connected (True), or ``timeout`` passed or ``stop`` was set."""
        deadline = time.monotonic() + timeout
        while not self._up.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            if stop.is_set() or self._closing.is_set() or time.monotonic() >= deadline:
                return False
        return True

    def abort(self, reason: str) -> None:
        """End the current link now (the reader then reconnects); ``reason`` is logged."""
        log.warning("%s: dropping the connection: %s", self.name, reason)
        self._abort_reason = reason
        self._shutdown_raw()

    def close(self, timeout: float, reason: str = "closed by the user") -> None:
        """Stop for good: no reconnect. Joins the reader unless called from it. ``reason``
        is what ``last_disconnect_reason`` says of the link this ends."""
        if not self._closing.is_set():
            self._close_reason = reason
        self._closing.set()
        wait = min(timeout, CLOSE_FRAME_WAIT)
        if self._send_lock.acquire(timeout=wait):  # busy that long: a send is stuck; no goodbye
            try:
                ws = self._ws
                if ws is not None and self.connected:
                    self._send(ws, struct.pack("!H", websocket.STATUS_NORMAL), websocket.ABNF.OPCODE_CLOSE, wait)
            finally:
                self._send_lock.release()
        self._shutdown_raw()
        with self._turn:
            self._turn.notify_all()
        for thread in self.threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout)
                if thread.is_alive():
                    log.warning("%s: thread %s did not stop within %.1f s", self.name, thread.name, timeout)

    def _shutdown_raw(self) -> None:
        raw = self._raw
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)

    # -- the reader thread ----------------------------------------------------------------

    def _run(self) -> None:
        """The reader thread: connect, serve, back off, again, until ``close()``."""
        while True:
            try:
                self._connect_and_serve()
                break
            except Exception as exc:  # the loop's own guard: report, wait a moment, go on
                self._internal_error(exc)
                if self._closing.wait(self._backoff.delay(0)):
                    break
        if self._closing.is_set():  # whatever close() interrupted: a link, a connect, a wait
            self.last_disconnect_reason = self._close_reason
        self._release()

    def _connect_and_serve(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            self._abort_reason = None
            if self._connect_limiter is not None and not self._connect_limiter.acquire(self._closing):
                break  # closed while waiting for the new-connection budget
            try:
                ws = self._open()
            except Closing:
                break
            except Exception as exc:
                reason = self._scrub(f"connect failed: {_failure(exc)}")
                self._log_connect_failure(reason)
                self.last_disconnect_reason = reason
                asked = self.retry_after = retry_after_of(exc)
            else:
                asked = None
                up_since = time.monotonic()
                reason = self._serve(ws)
                if time.monotonic() - up_since >= self._backoff.reset_after:
                    attempt = 0
            if self._closing.is_set():
                break
            delay = reconnect_delay(self._backoff.delay(attempt), asked, self._max_retry_after)
            attempt += 1
            log.info("%s: reconnecting in %.2f s (attempt %d%s)", self.name, delay, attempt,
                     "" if asked is None else f"; the server asked for {asked:g} s")
            self.next_attempt_at = time.monotonic() + delay
            closed = self._closing.wait(delay)
            self.next_attempt_at = None
            if closed:
                break

    def _log_connect_failure(self, reason: str) -> None:
        """A WARNING for a new reason, and again every ``CONNECT_WARNING_EVERY`` s while it
        lasts; the retries between are INFO (an offline bot does not fill its log)."""
        now = time.monotonic()
        if reason != self.last_disconnect_reason or now - self._connect_warned_at >= CONNECT_WARNING_EVERY:
            self._connect_warned_at = now
            log.warning("%s: cannot connect to %s: %s", self.name, self.shown_url, reason)
        else:
            log.info("%s: cannot connect to %s: %s (again)", self.name, self.shown_url, reason)

    def _serve(self, ws: websocket.WebSocket) -> str:
        """Run one live link until it ends; return why it ended."""
        with self._send_lock:
            self._ws = ws
            self.generation += 1
            self.connected = True
            self.connects += 1
            self._up.set()
        generation = self.generation
        self.last_inbound = time.monotonic()
        log.info("%s: connected to %s", self.name, self.shown_url)
        try:
            self._on_open(generation)
            reason = self._read(ws)
        except Exception as exc:  # the owner's hook failed: end this link like any other
            reason = self._internal_error(exc)
        with self._send_lock:
            self.connected = False
            self._up.clear()
            self._ws = None
        if self._abort_reason is not None:
            reason = self._abort_reason
        if self._closing.is_set():
            reason = self._close_reason
        self.last_disconnect_reason = reason
        self._release()
        if not self._closing.is_set():
            log.warning("%s: connection lost: %s", self.name, reason)
        try:
            self._on_lost(generation, reason)
        except Exception as exc:
            self._internal_error(exc)
        return reason

    def _internal_error(self, exc: Exception) -> str:
        """An exception nobody foresaw on this connection's threads: log and report it,
        and make sure the link ends (the reconnect path then heals it). Returns the reason."""
        reason = f"internal error: {exc!r}"
        log.error("%s: %s; dropping the connection", self.name, reason, exc_info=exc)
        self._abort_reason = self._abort_reason or reason
        self._shutdown_raw()
        try:
            self.on_error(ReaderError(self.name, exc))
        except Exception:
            log.exception("%s: reporting an internal error failed", self.name)
        return reason

    def _read(self, ws: websocket.WebSocket) -> str:
        """Read (and, with ``run_callbacks``, serve) until the link ends; return why."""
        sock = ws.sock
        if sock is None:
            return "connection closed"
        guard = self.guard
        session = FrameReader(
            sock, self._pong, max_message_size=self._max_message_size,
            on_binary=lambda payload: guard.bad_frame("binary_frame", "a binary frame (this API sends text)", payload),
        )
        with self._turn:
            self._session, self._holder, self._busy_since = session, threading.current_thread(), None
            self._turn.notify_all()
        self._take_turns(session)
        return self._ended or "connection closed"

    def _take_turns(self, session: FrameReader) -> None:
        """Hold the socket, or stand by for it, until ``session`` ends (either thread)."""
        me = threading.current_thread()
        run_callbacks = self._run_callbacks
        lock = self._turn_lock
        failed = False  # this thread hit an internal error: it only reads the link out
        while True:
            # No lock needed to read ``_holder`` here: only this thread makes itself the
            # holder, and no one takes the socket from it while it is not in callbacks.
            if self._holder is not me and not self._stand_by(session, me):
                return
            try:
                if run_callbacks is not None and not failed:
                    self._busy_since = time.monotonic()
                    try:
                        run_callbacks()
                    finally:
                        with lock:
                            stolen = self._holder is not me
                            if not stolen:
                                self._busy_since = None
                    if stolen:
                        continue  # the other thread took the socket meanwhile: stand by
                ended = self._read_once(session)
            except Exception as exc:  # the one guard of this loop: the link ends, the error is told
                failed = True
                ended = self._internal_error(exc)
                if self._holder is not me:
                    continue  # the holder reads the shut-down socket and ends the session
            if ended is not None:
                with lock:
                    self._ended, self._session, self._holder = ended, None, None
                    self._relay_work = True  # the last batch's callbacks
                    self._turn.notify_all()
                return

    def _stand_by(self, session: FrameReader, me: threading.Thread) -> bool:
        """Wait until the holder has been inside callbacks for ``RELAY_AFTER``, then take
        the socket (True), or until ``session`` ends (False)."""
        with self._turn:
            while self._session is session:
                busy = self._busy_since
                if busy is not None and time.monotonic() - busy >= RELAY_AFTER:
                    log.debug("%s: a callback has run %.3f s; %s reads on", self.name,
                              time.monotonic() - busy, me.name)
                    self._holder, self._busy_since = me, None
                    self.relays += 1
                    return True
                self._turn.wait(_RELAY_POLL)
            return False

    def _read_once(self, session: FrameReader) -> str | None:
        """One read's worth of frames, routed and queued; why the link ended, if it did.
        ``last_inbound`` is stamped only when whole frames came: neither a wait nor a
        trickle of bytes that never completes a frame is a sign of life (and the
        keepalive looks at ``message_began`` for a message that never ends)."""
        reason: str | None = None
        frames = session.frames
        texts: list[bytes] = []
        try:
            closed = session.read(texts.append)
        except ProtocolError as exc:
            reason = self._fail(exc)
        except (OSError, websocket.WebSocketException) as exc:
            reason = self._scrub(f"connection error: {exc!r}")
        else:
            if closed is not None:
                code, text = closed
                reason = ("connection closed by the server (no close frame)" if code is None and not text
                          else f"server closed the connection (code {code}, {text!r})")
        if texts:  # those that came before an error too, in order
            self.on_frames(texts)
        if session.frames != frames:
            self.last_inbound = time.monotonic()
        self.on_batch_end()
        return reason

    def _fail(self, error: ProtocolError) -> str:
        """Fail the link as RFC 6455 §7.1.7 says: a close frame with ``error.code``, then
        close the socket without waiting for the answer. Returns the reason."""
        self.guard.bad_frame(error.reason, error.detail, error.header, close_code=error.code)
        if self._send_lock.acquire(timeout=CLOSE_FRAME_WAIT):
            try:
                ws = self._ws
                if ws is not None:
                    self._send(ws, struct.pack("!H", error.code) + error.reason.encode(),
                               websocket.ABNF.OPCODE_CLOSE, CLOSE_FRAME_WAIT)
            finally:
                self._send_lock.release()
        self._shutdown_raw()
        return f"protocol error: {error.detail} (closed with code {error.code})"

    def _relay_run(self) -> None:
        """The relay thread: stands by during a session; between sessions it runs the
        callbacks the reader queued (so a slow hook never delays a reconnect)."""
        assert self._run_callbacks is not None
        while True:
            with self._turn:
                while self._session is None and not self._relay_work and not self._closing.is_set():
                    self._turn.wait()
                if self._closing.is_set():
                    return
                session, self._relay_work = self._session, False
            try:
                if session is None:
                    self._run_callbacks()
                else:
                    self._take_turns(session)
            except Exception as exc:  # never dies: report, end the link, stand by again
                self._internal_error(exc)

    def _pong(self, payload: bytes) -> None:
        """Answer a ping (the thread holding the socket). A pong that cannot go out within
        the send timeout fails the link, so a server that floods pings and never reads
        cannot hold the reader (or the send lock) for longer."""
        if not self._send_lock.acquire(timeout=self._send_timeout):
            self.abort(f"the send lock stayed busy for {self._send_timeout:g} s")
            return
        try:
            ws = self._ws
            if ws is not None:
                self._send(ws, payload, websocket.ABNF.OPCODE_PONG)
        finally:
            self._send_lock.release()

    def _open(self) -> websocket.WebSocket:
        """Connect and handshake; ``close()`` interrupts it (``Closing``)."""
        def hold(sock: socket.socket) -> None:
            self._raw = sock  # so that close() and abort() can shut it down

        try:
            return dial(self.url, timeout=self._open_timeout, closing=self._closing, hold=hold, route=self._route)
        except BaseException:
            self._release()
            if self._closing.is_set():
                raise Closing from None
            raise

    def _release(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.close()


def _writable(sock: socket.socket, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for room in ``sock``'s send buffer (or an error:
    the send that follows then raises it)."""
    if hasattr(select, "poll"):  # no limit on the descriptor's number, unlike select()
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        return bool(poller.poll(timeout * 1000))
    return bool(select.select([], [sock], [sock], timeout)[1])


def _failure(exc: BaseException) -> str:
    """Why a connect failed, the same text each time for the same cause (so the warning is
    not repeated on every retry): an HTTP answer to the upgrade by its status alone, not
    with its headers (a ``Date`` changes every time)."""
    if isinstance(exc, websocket.WebSocketBadStatusException):
        return (f"the server answered the WebSocket upgrade with HTTP {exc.status_code} "
                f"({type(exc).__name__})")
    return repr(exc)
