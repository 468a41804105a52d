"""``/info`` answers from a recording, as of the replay clock (server loop thread).

The requests a client's backfill makes are answered from what the replay has sent so
far; anything the recording cannot answer (``meta``, account state it never saw) goes
to the scripted market, as without a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..testing.info import MAX_USER_FILLS, RECENT_TRADES, InfoRequestError, answer_info
from ..testing.market import Market
from ..testing.subscriptions import normalise_subscription, subscription_key
from .timeline import Timeline


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if type(value) is not int:
        raise InfoRequestError()
    return value


def _user(body: dict[str, Any]) -> str:
    user = body.get("user")
    if not isinstance(user, str):
        raise InfoRequestError()
    return user.lower()


def _recent_trades(timeline: Timeline, body: dict[str, Any]) -> Any:
    return timeline.trades.get(str(body.get("coin")), [])[-RECENT_TRADES:]


def _candle_snapshot(timeline: Timeline, body: dict[str, Any]) -> Any:
    req = body.get("req")
    if not isinstance(req, dict):
        raise InfoRequestError()
    start, end = _int(req, "startTime"), _int(req, "endTime", 2**62)
    candles = timeline.candles.get((str(req.get("coin")), str(req.get("interval"))), {})
    return [candles[t] for t in sorted(candles) if start <= t <= end]


def _l2_book(timeline: Timeline, body: dict[str, Any]) -> Any:
    sub, _ = normalise_subscription({"type": "l2Book", "coin": body.get("coin"),
                                     "nSigFigs": body.get("nSigFigs"), "mantissa": body.get("mantissa")})
    return timeline.latest.get(subscription_key(sub))


def _all_mids(timeline: Timeline, body: dict[str, Any]) -> Any:
    return dict(timeline.mids)


def _fills(timeline: Timeline, body: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(timeline.fills.get(_user(body), {}).values(), key=lambda f: int(f.get("time", 0)))


def _user_fills(timeline: Timeline, body: dict[str, Any]) -> Any:
    return list(reversed(_fills(timeline, body)[-MAX_USER_FILLS:]))


def _user_fills_by_time(timeline: Timeline, body: dict[str, Any]) -> Any:
    start, end = _int(body, "startTime"), _int(body, "endTime", 2**62)
    return [f for f in _fills(timeline, body) if start <= int(f.get("time", 0)) <= end][:MAX_USER_FILLS]


_Answer = Callable[[Timeline, dict[str, Any]], Any]
_FROM_RECORDING: dict[str, tuple[_Answer, Callable[[Timeline, dict[str, Any]], bool]]] = {
    "recentTrades": (_recent_trades, lambda tl, body: bool(tl.trades)),
    "candleSnapshot": (_candle_snapshot, lambda tl, body: bool(tl.candles)),
    "l2Book": (_l2_book, lambda tl, body: _l2_book(tl, body) is not None),
    "allMids": (_all_mids, lambda tl, body: bool(tl.mids)),
    "userFills": (_user_fills, lambda tl, body: _user(body) in tl.fills),
    "userFillsByTime": (_user_fills_by_time, lambda tl, body: _user(body) in tl.fills),
}
"""Answered from the recording once it holds that kind of data (the predicate)."""


def answer_replay_info(timeline: Timeline, market: Market, body: object) -> Any:
    """The answer to one ``/info`` body during a replay; raises ``InfoRequestError`` as the
    scripted server does for a body the real one would refuse."""
    if isinstance(body, dict):
        handler = _FROM_RECORDING.get(str(body.get("type")))
        if handler is not None:
            answer, recorded = handler
            if recorded(timeline, body):
                return answer(timeline, body)
    return answer_info(market, body)
