"""Every subscription type the client knows, as data.

For each feed: the fields a subscription may carry and how to check them, the channel(s)
its frames arrive on, and the *route*: the part of a frame that says which subscription
it belongs to. A subscription and the frames it receives share one route key,
``(feed type, route tuple)``; the router is a dictionary lookup on that key.

Everything here is pure: no sockets, no threads, no state.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

CANDLE_INTERVALS = (
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M",
)  # fmt: skip
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")

Route = tuple[Any, ...]
RouteKey = tuple[str, Route]


def _check_coin(feed: str, value: Any) -> str:
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValueError(
            f"{feed} needs 'coin' as a non-empty string such as 'BTC', 'PURR/USDC' or '@107', "
            f"got {value!r}"
        )
    return value


def _check_user(feed: str, value: Any) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError(
            f"{feed} needs 'user' as '0x' followed by 40 hex digits (the account address), "
            f"got {value!r}"
        )
    return value.lower()


def _check_interval(feed: str, value: Any) -> str:
    if value not in CANDLE_INTERVALS:
        raise ValueError(
            f"{feed} needs 'interval' as one of {', '.join(CANDLE_INTERVALS)}; got {value!r}"
        )
    return str(value)


def _check_dex(feed: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{feed} needs 'dex' as a string ('' is the first perp dex), got {value!r}")
    return value


def _check_bool(feed: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{feed} needs {name!r} as true or false, got {value!r}")
    return value


def _check_sig_figs(feed: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or value not in (2, 3, 4, 5)):
        raise ValueError(f"{feed} needs 'nSigFigs' as 2, 3, 4, 5 or None, got {value!r}")
    return value


def _check_mantissa(feed: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or value not in (1, 2, 5)):
        raise ValueError(f"{feed} needs 'mantissa' as 1, 2, 5 or None, got {value!r}")
    return value


_CHECKERS: dict[str, Callable[[str, str, Any], Any]] = {
    "coin": lambda feed, name, v: _check_coin(feed, v),
    "user": lambda feed, name, v: _check_user(feed, v),
    "interval": lambda feed, name, v: _check_interval(feed, v),
    "dex": lambda feed, name, v: _check_dex(feed, v),
    "nSigFigs": lambda feed, name, v: _check_sig_figs(feed, v),
    "mantissa": lambda feed, name, v: _check_mantissa(feed, v),
    "bool": _check_bool,
}

# Every optional field and the value the server assumes when it is left out (and echoes
# in its ack, protocol.md §3.1). Each feed lists its own in the table below (``defaults``):
# a field equal to its default is dropped from the canonical form, so {"nSigFigs": None}
# and no nSigFigs are one subscription, as they are to the server.
_DEX_DEFAULT = {"dex": ""}
_KIND_OF_OPTIONAL = {
    "dex": "dex",
    "nSigFigs": "nSigFigs",
    "mantissa": "mantissa",
    "fast": "bool",
    "aggregateByTime": "bool",
    "isPortfolioMargin": "bool",
    "ignorePortfolioMargin": "bool",
}

# What a feed's frames are (``Feed.kind``); it decides what a late joiner is given and
# whether a silent feed is resubscribed (README "Feeds, reconnects and late joiners"):
STATE = "state"  # every frame is the whole current state: a gap heals with the next push
DELTAS = "deltas"  # a full state first, then only what changed (fastAssetCtxs)
HISTORY = "history"  # a user's time series: opens with an isSnapshot frame of recent items
ACCOUNT = "account"  # a user's events, no snapshot: silent while the account is idle
MARKET = "market"  # trades and candles: events of a coin's market
EVENTS = "events"  # rare events for everyone (outcomeMetaUpdates)
KINDS = (STATE, DELTAS, HISTORY, ACCOUNT, MARKET, EVENTS)
QUIET_KINDS = frozenset({HISTORY, ACCOUNT, EVENTS})  # silence is normal: never resubscribed for it


def _user(data: Any) -> Route:
    return (data["user"].lower(),)


def _user_dex(data: Any) -> Route:
    return (data["user"].lower(), data.get("dex", ""))


def _coin(data: Any) -> Route:
    return (data["coin"],)


def _dex(data: Any) -> Route:
    return (data.get("dex", ""),)


def _nothing(data: Any) -> Route:
    return ()


def _first_trade_coin(data: Any) -> Route | None:
    return (data[0]["coin"],) if data else None


@dataclass(frozen=True)
class Feed:
    """One subscription type.

    ``route_fields`` name, in order, the subscription fields that make up the route;
    ``frame_route`` reads the same tuple out of a frame's ``data`` (``None``: not
    routable, such as an empty trades list). Fields outside the route (l2Book's
    nSigFigs, userFills' aggregateByTime, the user of orderUpdates) are invisible in
    the frames, so two subscriptions differing only there cannot share a connection.
    """

    type: str
    channels: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    route_fields: tuple[str, ...]
    frame_route: Callable[[Any], Route | None]
    kind: str = STATE
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def snapshot(self) -> bool:
        """Its first frame after a subscribe is ``isSnapshot: true`` with recent history."""
        return self.kind == HISTORY

    @property
    def quiet(self) -> bool:
        """Silence is normal for it, so a silent feed is never resubscribed."""
        return self.kind in QUIET_KINDS

    def route_of(self, canonical: dict[str, Any]) -> RouteKey:
        return (self.type, tuple(canonical.get(f, self.defaults.get(f)) for f in self.route_fields))

    def is_default(self, name: str, value: Any) -> bool:
        """``value`` is what the server assumes for ``name`` when it is left out."""
        if name not in self.defaults:
            return False
        default = self.defaults[name]
        return bool(value == default and type(value) is type(default))


def _feed(
    type_: str,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    *,
    route: tuple[str, ...] = (),
    frame_route: Callable[[Any], Route | None] = _nothing,
    channels: tuple[str, ...] = (),
    kind: str = STATE,
    defaults: Mapping[str, Any] | None = None,
) -> Feed:
    defaults = dict(defaults or {})
    assert kind in KINDS and set(defaults) == set(optional), type_
    return Feed(type_, channels or (type_,), required, optional, route, frame_route, kind, defaults)


def _user_history(type_: str, defaults: Mapping[str, Any] | None = None) -> Feed:
    """A per-user time series: routed by user, opens with an ``isSnapshot`` frame."""
    return _feed(type_, ("user",), tuple(defaults or ()), route=("user",), frame_route=_user, kind=HISTORY,
                 defaults=defaults)


def _user_dex_state(type_: str) -> Feed:
    """A per-user state feed of one perp dex."""
    return _feed(type_, ("user",), ("dex",), route=("user", "dex"), frame_route=_user_dex, defaults=_DEX_DEFAULT)


FEEDS: dict[str, Feed] = {
    f.type: f
    for f in (
        _feed("allMids", optional=("dex",), route=("dex",), frame_route=_dex, defaults=_DEX_DEFAULT),
        _feed("notification", ("user",), kind=ACCOUNT),
        _feed("webData2", ("user",), route=("user",), frame_route=_user),
        _feed(
            "webData3",
            ("user",),
            route=("user",),
            frame_route=lambda d: (d["userState"]["user"].lower(),),
        ),
        _user_dex_state("twapStates"),
        _user_dex_state("clearinghouseState"),
        _user_dex_state("openOrders"),
        _feed(
            "candle",
            ("coin", "interval"),
            route=("coin", "interval"),
            frame_route=lambda d: (d["s"], d["i"]),
            kind=MARKET,
        ),
        _feed(
            "l2Book",
            ("coin",),
            ("nSigFigs", "mantissa", "fast"),
            route=("coin", "fast"),
            frame_route=lambda d: (d["coin"], bool(d.get("fast", False))),
            defaults={"nSigFigs": None, "mantissa": None, "fast": False},
        ),
        _feed("trades", ("coin",), route=("coin",), frame_route=_first_trade_coin, kind=MARKET),
        _feed("orderUpdates", ("user",), kind=ACCOUNT),
        _feed("userEvents", ("user",), channels=("user",), kind=ACCOUNT),
        _user_history("userFills", {"aggregateByTime": False}),
        _user_history("userFundings"),
        _user_history("userNonFundingLedgerUpdates"),
        _user_history("userTwapSliceFills"),
        _user_history("userTwapHistory"),
        _user_history("userHistoricalOrders"),
        _feed(
            "activeAssetCtx",
            ("coin",),
            route=("coin",),
            frame_route=_coin,
            channels=("activeAssetCtx", "activeSpotAssetCtx"),
        ),
        _feed(
            "activeAssetData",
            ("user", "coin"),
            route=("user", "coin"),
            frame_route=lambda d: (d["user"].lower(), d["coin"]),
        ),
        _feed("bbo", ("coin",), route=("coin",), frame_route=_coin),
        _feed(
            "spotState",
            ("user",),
            ("isPortfolioMargin", "ignorePortfolioMargin"),
            route=("user",),
            frame_route=_user,
            defaults={"isPortfolioMargin": False, "ignorePortfolioMargin": False},
        ),
        _feed("allDexsClearinghouseState", ("user",), route=("user",), frame_route=_user),
        _feed("allDexsAssetCtxs"),
        _feed("assetCtxs", optional=("dex",), route=("dex",), frame_route=_dex, defaults=_DEX_DEFAULT),
        _feed("spotAssetCtxs"),
        _feed("fastAssetCtxs", kind=DELTAS),
        _feed("outcomeMetaUpdates", kind=EVENTS),
    )
}

#: channel name -> feed; differs from the type for userEvents ("user") and for spot
#: activeAssetCtx ("activeSpotAssetCtx").
FEED_OF_CHANNEL: dict[str, Feed] = {ch: f for f in FEEDS.values() for ch in f.channels}


def unknown_feed(type_: str) -> Feed:
    """A feed for a type this version does not know: frames on the channel named like the
    type all go to it (so only one such subscription per type fits on a connection).
    What its frames are is unknown, so it counts as quiet: never resubscribed for silence."""
    return _feed(type_, kind=EVENTS)


_BY_LOWER = {name.lower(): name for name in FEEDS}


def known_feed_type(name: str) -> str | None:
    """The feed type ``name`` means, whatever its case (``"l2book"`` -> ``"l2Book"``), or None."""
    return _BY_LOWER.get(name.lower())


def feed_hint(name: str) -> str:
    """``"did you mean trades?"`` for a mistyped feed type, else the list of them."""
    close = difflib.get_close_matches(name.lower(), _BY_LOWER, n=3, cutoff=0.6)
    return (f"did you mean {' or '.join(_BY_LOWER[c] for c in close)}?" if close
            else f"feed types: {', '.join(sorted(FEEDS))}")


def canonical(subscription: Any, *, allow_unknown: bool = False) -> tuple[Feed, dict[str, Any]]:
    """Check a subscription and return its feed and canonical form, or raise ``ValueError``.

    The canonical form lowercases addresses and drops optional fields equal to their
    default. It never mutates ``subscription``. With ``allow_unknown``, a type this
    version does not know is accepted as it is (only ``type`` is checked).
    """
    if isinstance(subscription, Mapping) and not isinstance(subscription, dict):
        subscription = dict(subscription)
    if not isinstance(subscription, dict):
        raise ValueError(
            "a subscription is a dict such as {'type': 'trades', 'coin': 'SOL'}, "
            f"got {type(subscription).__name__}"
        )
    type_ = subscription.get("type")
    feed = FEEDS.get(type_) if isinstance(type_, str) else None
    if feed is None:
        if allow_unknown and isinstance(type_, str) and type_:
            return unknown_feed(type_), dict(subscription)
        raise ValueError(
            f"unknown subscription type {type_!r}; known types: {', '.join(sorted(FEEDS))} "
            "(pass allow_unknown=True to send a newer type as it is)"
        )
    allowed = ("type", *feed.required, *feed.optional)
    extra = [k for k in subscription if k not in allowed]
    if extra:
        raise ValueError(
            f"{type_} does not take {', '.join(map(repr, extra))}; "
            f"allowed fields: {', '.join(allowed)}"
        )
    result: dict[str, Any] = {"type": type_}
    for name in feed.required:
        if name not in subscription:
            raise ValueError(f"{type_} needs {name!r}; required fields: {', '.join(feed.required)}")
        result[name] = _CHECKERS[name](feed.type, name, subscription[name])
    for name in feed.optional:
        if name in subscription:
            value = _CHECKERS[_KIND_OF_OPTIONAL[name]](feed.type, name, subscription[name])
            if not feed.is_default(name, value):
                result[name] = value
    if "mantissa" in result and result.get("nSigFigs") != 5:
        raise ValueError(f"{type_} takes 'mantissa' only with nSigFigs=5")
    return feed, result


def lenient_canonical(subscription: Any) -> dict[str, Any] | None:
    """The canonical form of an echo from the server, or ``None`` if it is not one.

    Echoes carry the server's defaults (``"nSigFigs": null``, ``"dex": ""``, protocol.md
    §3.1) and may add fields; the feed's own defaults (``Feed.defaults``) are dropped and
    addresses lowercased, anything else is kept.
    """
    if not isinstance(subscription, dict) or not isinstance(subscription.get("type"), str):
        return None
    feed = FEEDS.get(subscription["type"])
    result: dict[str, Any] = {}
    for name, value in subscription.items():
        if feed is not None and feed.is_default(name, value):
            continue
        if name == "user" and isinstance(value, str):
            value = value.lower()
        result[name] = value
    return result


def key_of(canonical_form: dict[str, Any]) -> str:
    """A string that is equal for two subscriptions exactly when they are the same feed."""
    return json.dumps(canonical_form, sort_keys=True, separators=(",", ":"))
