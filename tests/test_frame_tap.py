"""``FrameTap``: a handle that gets each message with the frame's bytes, as the recorder
uses it, against the real local server: the bytes are the frame exactly as sent, only
while the message is that frame, and recording from them keeps one message a line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from hyperliquid_ws.recording import Recorder, read
from hyperliquid_ws.recording.codec import encode_line, read_lines
from hyperliquid_ws.subscription import FrameTap
from tests.conftest import DEADLINE, Collector, wait_until

TRADES = {"type": "trades", "coin": "BTC"}
T = int(time.time() * 1000) + 86_400_000  # ms since the epoch: after anything the market traded
OURS = 10**15  # our trades' tids: none of the local market's


def trade(n: int) -> dict[str, Any]:
    return {"coin": "BTC", "side": "B", "px": "90000.0", "sz": "0.1", "time": T + n, "hash": "0x" + "ab" * 32,
            "tid": OURS + n, "users": ["0x" + "11" * 20, "0x" + "22" * 20]}


def ours(message: Any) -> bool:
    return all(t["tid"] >= OURS for t in message["data"])


class Taps:
    """A FrameTap callback: keeps the ``(message, frame)`` pairs of our pushed trades."""

    def __init__(self) -> None:
        self.got = Collector()

    def __call__(self, message: Any, frame: bytes | None) -> None:
        if ours(message):
            self.got((message, frame))


class Ours(Collector):
    def __call__(self, message: Any) -> None:
        if ours(message):
            super().__call__(message)


def test_a_frame_tap_gets_the_frame_exactly_as_sent_while_the_message_is_that_frame(server, client) -> None:
    taps, plain = Taps(), Ours()
    client.subscribe(TRADES, FrameTap(taps)).wait(DEADLINE)
    client.subscribe(TRADES, plain).wait(DEADLINE)
    # Odd but valid JSON: spaces and a newline between tokens, as a server may send.
    first = '{"channel": "trades",\n "data": ' + json.dumps([trade(1), trade(2)]) + '}'
    server.push(first)
    server.push({"channel": "trades", "data": [trade(2), trade(3)]})  # tid 2 again: deduped out

    got = taps.got.wait_for(2)
    assert got[0] == (json.loads(first), first.encode())
    message, frame = got[1]
    assert message["data"] == [trade(3)] and frame is None  # not the frame any more
    assert [m["data"] for m in plain.wait_for(2)] == [[trade(1), trade(2)], [trade(3)]]  # the other handle alike


def test_a_frame_tap_alone_on_a_feed_still_has_its_trades_deduped(server, client) -> None:
    taps = Taps()
    client.subscribe(TRADES, FrameTap(taps)).wait(DEADLINE)
    server.push({"channel": "trades", "data": [trade(5)]})
    server.push({"channel": "trades", "data": [trade(5)]})  # wholly a duplicate: not delivered
    server.push({"channel": "trades", "data": [trade(6)]})
    got = taps.got.wait_for(2)
    assert [[t["tid"] - OURS for t in m["data"]] for m, _ in got] == [[5], [6]]
    assert [json.loads(frame) for _, frame in got] == [m for m, _ in got]  # each its own frame, whole


def test_a_frame_tap_needs_a_callable() -> None:
    with pytest.raises(ValueError, match="callable"):
        FrameTap("not a function")  # type: ignore[arg-type]


def test_a_line_built_from_a_frame_with_newlines_is_still_one_line() -> None:
    frame = b'{"channel": "trades",\n"data":\r\n[]}\t\r\n '  # every JSON whitespace, the tail included
    line = encode_line(1.5, {"type": "trades", "coin": "BTC"}, json.loads(frame), frame)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert json.loads(line) == {"t": 1.5, "sub": {"type": "trades", "coin": "BTC"}, "msg": json.loads(frame)}


def test_the_recorder_writes_frames_as_they_came_and_encodes_what_the_client_changed(server, tmp_path: Path) -> None:
    first = '{"channel": "trades",\n "data": ' + json.dumps([trade(1), trade(2)]) + '}'
    with Recorder(tmp_path, base_url=server.base_url, flush_interval=0.05) as recorder:
        recorder.record(TRADES).wait(DEADLINE)
        server.push(first)
        server.push({"channel": "trades", "data": [trade(2), trade(3)]})
        wait_until(lambda: sum(ours(r.message) for r in read(tmp_path)) >= 2, DEADLINE, "both recorded")
    lines = [line for path in sorted(tmp_path.iterdir()) for line in read_lines(path) if ours(line["msg"])]
    assert [line["msg"] for line in lines] == [json.loads(first), {"channel": "trades", "data": [trade(3)]}]
    assert [r.message for r in read(tmp_path) if ours(r.message)] == [line["msg"] for line in lines]


def test_a_frame_with_whitespace_json_does_not_allow_is_refused_by_the_client(server, make_client) -> None:
    """What the client parses, a recording line can hold: a frame ending in a form feed
    (str.strip() would pass it, JSON does not) is a bad frame, as it is to orjson."""
    taps, errors = Taps(), Collector()
    client = make_client(on_error=errors)
    client.subscribe(TRADES, FrameTap(taps)).wait(DEADLINE)
    server.push(json.dumps({"channel": "trades", "data": [trade(1)]}) + "\x0c")
    server.push(json.dumps({"channel": "trades", "data": [trade(2)]}) + "\r\n")
    (message, frame), = taps.got.wait_for(1)
    assert message["data"] == [trade(2)] and json.loads(frame) == message
    assert [e.reason for e in errors.wait_for(1)] == ["invalid_json"]
