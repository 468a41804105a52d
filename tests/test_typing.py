"""The message types: mypy --strict accepts a bot written against them and catches the usual
mistakes; and the frames in protocol.md §7 have exactly the shapes the types describe."""

from __future__ import annotations

import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from hyperliquid_ws import messages
from hyperliquid_ws.feeds import FEED_OF_CHANNEL

SAMPLES = Path(__file__).parent / "typing_samples"
ROOT = Path(__file__).parent.parent


def run_mypy(tmp_path: Path, *files: str) -> dict[str, list[tuple[int, str]]]:
    """mypy --strict on the samples, with the repo's settings (Python 3.10); errors by file."""
    pytest.importorskip("mypy")
    paths = [str((SAMPLES / name).relative_to(ROOT)) for name in files]
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *paths]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "error: " in result.stdout or result.returncode == 0, result.stdout + result.stderr
    errors: dict[str, list[tuple[int, str]]] = {name: [] for name in files}
    for line in result.stdout.splitlines():
        match = re.match(r"(.+?):(\d+): error: (.*)", line)
        if match:
            errors[Path(match.group(1)).name].append((int(match.group(2)), match.group(3)))
    return errors


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[int, str]]]:
    # One run for all samples: mypy starts once and checks the package once.
    return run_mypy(tmp_path_factory.mktemp("mypy"), "good_bot.py", "bad_bot.py", "subscribe_bot.py")


def test_a_bot_written_against_the_types_passes_mypy_strict(mypy_errors: dict[str, list[tuple[int, str]]]) -> None:
    assert mypy_errors["good_bot.py"] == []


def test_mypy_catches_each_marked_mistake_and_nothing_else(mypy_errors: dict[str, list[tuple[int, str]]]) -> None:
    expected = {
        number: line.split("# E: ", 1)[1].strip()
        for number, line in enumerate((SAMPLES / "bad_bot.py").read_text().splitlines(), start=1)
        if "# E: " in line
    }
    assert len(expected) == 8
    found = mypy_errors["bad_bot.py"]
    for number, text in expected.items():
        assert any(n == number and text in message for n, message in found), (number, text, found)
    assert {n for n, _ in found} == set(expected), found


def test_builders_are_accepted_by_subscribe_and_stream(mypy_errors: dict[str, list[tuple[int, str]]]) -> None:
    assert mypy_errors["subscribe_bot.py"] == []


# --- The types against real frames (protocol.md §7 examples) -------------------------------

ZERO_HASH = "0x" + "0" * 64
FILL = {
    "coin": "BTC", "px": "66653.0", "sz": "0.001", "side": "A", "time": 1781528065899,
    "startPosition": "-0.0213", "dir": "Open Short", "closedPnl": "0.0", "hash": ZERO_HASH,
    "oid": 55030848197, "crossed": False, "fee": "0.009997", "tid": 745210434703679,
    "cloid": "0xe8d5fd7ebbb4c3cff4d1803472a11463",
    "liquidation": {"liquidatedUser": "0x3608", "markPx": "66607.0", "method": "market"},
    "feeToken": "USDC", "twapId": None,
}  # fmt: skip
USER = "0xe746435d136c4714383a64ee28e35c8bdb8d5cb1"
LEVEL = {"px": "34.967", "sz": "2.85", "n": 1}
CTX = {
    "funding": "0.0", "openInterest": "0.0", "prevDayPx": "0.37621", "dayNtlVlm": "0.0", "premium": None,
    "oraclePx": "0.3754", "markPx": "0.37621", "midPx": None, "impactPxs": None, "dayBaseVlm": "0.0",
}  # fmt: skip
TWAP_STATE = {
    "coin": "HYPE", "user": USER, "side": "B", "sz": "200.0", "executedSz": "0.0", "executedNtl": "0.0",
    "minutes": 90, "reduceOnly": False, "randomize": False, "timestamp": 1785860221159, "trigger": None,
    "stopPx": None,
}  # fmt: skip
CANDLE = {
    "t": 1764806400000, "T": 1764892799999, "s": "HYPE", "i": "1d", "o": "34.668", "c": "34.868", "h": "36.219",
    "l": "34.251", "v": "3495670.8399999999", "n": 102895,
}  # fmt: skip
TRADE = {
    "coin": "HYPE", "side": "B", "px": "35.276", "sz": "5.78", "time": 1764835613064, "hash": ZERO_HASH,
    "tid": 716095722814130, "users": [USER, USER],
}  # fmt: skip
ORDER_UPDATE = {
    "order": {
        "coin": "@107", "side": "B", "limitPx": "30.0", "sz": "0.49", "oid": 1, "timestamp": 1764843090519,
        "origSz": "0.49",
    },
    "status": "open",
    "statusTimestamp": 1764843090519,
}  # fmt: skip
FUNDING = {"time": 1, "coin": "BTC", "usdc": "-0.1", "szi": "0.01", "fundingRate": "0.0000125", "nSamples": None}
TWAP_ITEM = {"time": 1785860221, "state": TWAP_STATE, "status": {"status": "activated"}, "twapId": 2082408}
FRAMES: list[tuple[type[Any], dict[str, Any]]] = [
    (messages.AllMidsMessage, {"channel": "allMids", "data": {"mids": {"0G": "1.2017", "2Z": "0.129165"}}}),
    (messages.CandleMessage, {"channel": "candle", "data": CANDLE}),
    (messages.L2BookMessage, {"channel": "l2Book", "data": {"coin": "HYPE", "time": 1, "levels": [[LEVEL], [LEVEL]]}}),
    (messages.TradesMessage, {"channel": "trades", "backfill": True, "data": [TRADE]}),
    (messages.OrderUpdatesMessage, {"channel": "orderUpdates", "data": [ORDER_UPDATE]}),
    (messages.UserEventsMessage, {"channel": "user", "data": {"fills": [FILL]}}),
    (messages.UserEventsMessage, {"channel": "user", "data": {"funding": FUNDING}}),
    (messages.UserFillsMessage, {"channel": "userFills", "data": {"isSnapshot": True, "user": USER, "fills": [FILL]}}),
    (
        messages.UserTwapSliceFillsMessage,
        {
            "channel": "userTwapSliceFills",
            "data": {"user": USER, "twapSliceFills": [{"fill": FILL, "twapId": 2087225}]},
        },
    ),
    (messages.UserTwapHistoryMessage, {"channel": "userTwapHistory", "data": {"user": USER, "history": [TWAP_ITEM]}}),
    (messages.BboMessage, {"channel": "bbo", "data": {"coin": "HYPE", "time": 1766566375292, "bbo": [LEVEL, None]}}),
    (messages.AllDexsAssetCtxsMessage, {"channel": "allDexsAssetCtxs", "data": {"ctxs": [["", [CTX, CTX]]]}}),
    (messages.FastAssetCtxsMessage, {"channel": "fastAssetCtxs", "data": "q1ZyCnFWsqpWyk0syg6oULJSsjQ3NTDQM1Wq"}),
]


def conforms(value: Any, annotation: Any) -> bool:
    """Whether a JSON value fits a type: enough of a checker for these frames (extra keys allowed)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation)
        return (
            isinstance(value, dict)
            and annotation.__required_keys__ <= value.keys()
            and all(conforms(value[key], hints[key]) for key in hints if key in value)
        )
    if origin is list:
        return isinstance(value, list) and all(conforms(item, args[0]) for item in value)
    if origin is tuple:  # a fixed-length JSON array
        return isinstance(value, list) and len(value) == len(args) and all(map(conforms, value, args))
    if origin is dict:
        return isinstance(value, dict) and all(conforms(item, args[1]) for item in value.values())
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


@pytest.mark.parametrize(("message_type", "frame"), FRAMES, ids=[f["channel"] for _, f in FRAMES])
def test_protocol_example_frames_fit_their_types(message_type: type[Any], frame: dict[str, Any]) -> None:
    assert conforms(frame, message_type)
    assert frame["channel"] in typing.get_args(typing.get_type_hints(message_type)["channel"])


def test_the_checker_rejects_what_does_not_fit() -> None:
    def trades(**changes: Any) -> dict[str, Any]:
        trade = {key: value for key, value in {**TRADE, **changes}.items() if value is not None}
        return {"channel": "trades", "data": [trade]}

    assert conforms(trades(), messages.TradesMessage)
    assert not conforms(trades(px=35.276), messages.TradesMessage)
    assert not conforms(trades(tid="7"), messages.TradesMessage)
    assert not conforms(trades(users=None), messages.TradesMessage)
    assert not conforms(trades(users=[USER]), messages.TradesMessage)
    assert not conforms({**trades(), "channel": "trade"}, messages.TradesMessage)
    assert not conforms({"channel": "user", "data": {"fills": [{**FILL, "side": "S"}]}}, messages.UserEventsMessage)


def test_every_channel_has_a_message_type() -> None:
    channels = [typing.get_args(typing.get_type_hints(m)["channel"])[0] for m in typing.get_args(messages.Message)]
    assert sorted(channels) == sorted(FEED_OF_CHANNEL)
