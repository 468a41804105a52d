"""The exceptions of hyperliquid_ws: one root, a few subclasses a caller can act on."""

from __future__ import annotations

from typing import Any


class HyperliquidWSError(Exception):
    """Root of every error this package raises on purpose."""


class SubscriptionError(HyperliquidWSError):
    """The server refused a subscription.

    ``server_text`` holds the server's own words (``"Invalid subscription {...}"``);
    it is ``None`` only for the client's safety net in ``Registry.add``, which the pool
    never lets a subscription reach.
    """

    def __init__(
        self,
        message: str,
        *,
        subscription: dict[str, Any] | None = None,
        server_text: str | None = None,
    ) -> None:
        super().__init__(message)
        self.subscription = subscription
        self.server_text = server_text


class ServerError(HyperliquidWSError):
    """An ``error`` frame the client could not attribute to one of its requests."""

    def __init__(self, server_text: str) -> None:
        shown = server_text if len(server_text) <= 300 else server_text[:300] + f"... ({len(server_text)} chars)"
        super().__init__(f"server error: {shown}")
        self.server_text = server_text  # whole


def shown(thing: Any) -> str:
    """``repr(thing)``, or a stand-in when its ``__repr__`` raises: the report (or log
    line) of a failing callback must not fail in turn."""
    try:
        return repr(thing)
    except Exception:
        return f"<{type(thing).__qualname__} object (its repr raised)>"


class CallbackError(HyperliquidWSError):
    """A user callback raised; handed to the ``on_error`` hook, never raised.

    ``original`` is the exception the callback raised and ``message`` the frame
    it was handling.
    """

    def __init__(self, callback: Any, message: Any, original: BaseException) -> None:
        name = getattr(callback, "__qualname__", None)
        super().__init__(f"callback {name if isinstance(name, str) else shown(callback)} raised {shown(original)}")
        self.callback = callback
        self.message = message
        self.original = original


class HyperliquidTimeoutError(HyperliquidWSError, TimeoutError):
    """Nothing came back in time; also a builtin ``TimeoutError``.

    For a request, ``sent`` says whether it had gone out on the wire (it may then
    have reached the exchange).
    """

    def __init__(self, message: str, *, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


class RequestError(HyperliquidWSError):
    """The server answered a ``post`` request with an error; ``server_text`` is its text."""

    def __init__(self, message: str, *, server_text: str) -> None:
        super().__init__(message)
        self.server_text = server_text


class ConnectionLostError(HyperliquidWSError, ConnectionError):
    """The link dropped while a request was in flight. It is never sent again.

    ``sent`` is True when the request had gone out: it may have reached the exchange,
    so check (for an order: ``orderStatus`` by cloid) before placing it again.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class BackfillError(HyperliquidWSError):
    """A gap in a feed could not be recovered over HTTP; handed to ``on_error``.

    ``start_ms``..``end_ms`` is the time range that may be missing from ``subscription``.
    """

    def __init__(self, subscription: dict[str, Any], start_ms: int, end_ms: int, cause: BaseException) -> None:
        super().__init__(
            f"could not backfill {subscription} from {start_ms} to {end_ms} (ms): {cause}; "
            "items in that range may be missing"
        )
        self.subscription = subscription
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.cause = cause


class LimitError(HyperliquidWSError):
    """A subscribe would exceed one of the server's limits; nothing was sent.

    ``limit`` names it (``"max_subscriptions"``, ``"max_users"``, ``"max_connections"``)
    and ``value`` is the configured maximum (see ``hyperliquid_ws.Limits``).
    """

    def __init__(self, message: str, *, limit: str, value: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value


class SlowConsumerError(HyperliquidWSError):
    """A subscription's callbacks fell so far behind that messages were dropped.

    Handed to ``on_error`` on the first drop and every 1000th; ``dropped`` counts them.
    ``setting`` names the bound that was reached, ``"lane_limit"`` (this subscription's
    waiting messages) or ``"max_backlog"`` (the whole client's), and ``limit`` its value.
    Raise it, or make the callback hand slow work to a thread.
    """

    def __init__(self, subscription: str, limit: int, dropped: int, setting: str = "lane_limit") -> None:
        where = "this subscription" if setting == "lane_limit" else "the whole client"
        super().__init__(
            f"callbacks of {subscription} fell behind: {limit} messages were waiting for {where} "
            f"({setting}); dropped its oldest ({dropped} so far)"
        )
        self.subscription = subscription
        self.limit = limit
        self.dropped = dropped
        self.setting = setting


class BadFrameError(HyperliquidWSError, ValueError):
    """The server sent a frame the client could not use; it was dropped and counted.

    Handed to ``on_error``, never raised. ``reason`` is a short stable name, also the key
    of ``stats()["bad_frames"]``: a frame the client drops and the link goes on
    (``invalid_utf8``, ``invalid_json``, ``too_deep``, ``not_an_envelope``, ``bad_route``,
    ``bad_data``, ``binary_frame``), or a breach of RFC 6455 after which the client fails
    the connection with ``close_code`` and reconnects (``masked_frame``,
    ``reserved_bits``, ``unknown_opcode``, ``bad_control_frame``, ``bad_continuation``,
    ``bad_close_frame``, ``bad_close_code``: code 1002; ``bad_close_reason``: code 1007;
    ``message_too_big``: code 1009). ``excerpt`` is the start of the frame (at most
    ``EXCERPT`` bytes), never the whole of it. Reports are coalesced: at most one per
    reason every ``guard.LOG_EVERY`` seconds per connection, and ``repeated`` says how
    many more frames of that reason were dropped since the last report, unreported.
    """

    EXCERPT = 120

    def __init__(self, reason: str, detail: str, *, excerpt: bytes = b"", close_code: int | None = None,
                 repeated: int = 0) -> None:
        shown = f"; starts {excerpt[: self.EXCERPT]!r}" if excerpt else ""
        action = f"; connection failed with code {close_code}" if close_code is not None else "; dropped"
        more = f" ({repeated} more of this kind since the last report)" if repeated else ""
        super().__init__(f"bad frame from the server ({reason}): {detail}{action}{shown}{more}")
        self.repeated = repeated
        self.reason = reason
        self.detail = detail
        self.excerpt = excerpt[: self.EXCERPT]
        self.close_code = close_code


class ReaderError(HyperliquidWSError):
    """The client's own reader hit an exception nobody foresaw (a bug in hyperliquid_ws).

    Handed to ``on_error``; the connection was torn down and reconnects as after any
    drop, with ``on_disconnect`` and a backfill. ``original`` is the exception.
    """

    def __init__(self, connection: str, original: BaseException) -> None:
        super().__init__(f"{connection}: the reader failed with {original!r}; reconnecting")
        self.connection = connection
        self.original = original
