"""``FrameTap``: a handle whose messages the delivering thread appends to a deque, with
its read's time and the frame's bytes, as the recorder uses it, against the real local
server: the bytes are the frame exactly as sent, only while the message is that frame;
a tap sees what the callbacks see, in their order, also when it joins or leaves a busy
feed; recording from frames keeps one message a line."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
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
    """A FrameTap and its queue, read as the recorder reads it: ``wait_for(n)`` gives the
    ``(message, frame)`` pairs of our pushed trades (the message parsed from the frame
    when only the frame was queued); ``times`` their ``t``."""

    def __init__(self, tag: Any = "tap") -> None:
        self.queue: deque[Any] = deque()
        self.tap = FrameTap(self.queue, tag)
        self.tag = tag
        self.items: list[Any] = []

    def ours(self) -> list[tuple[Any, bytes | None, float]]:
        while self.queue:
            self.items.append(self.queue.popleft())
        out = []
        for t, tag, message, frame in self.items:
            assert tag == self.tag and (message is None) != (frame is None)
            message = json.loads(frame) if message is None else message
            if ours(message):
                out.append((message, frame, t))
        return out

    def wait_for(self, count: int) -> list[tuple[Any, bytes | None]]:
        wait_until(lambda: len(self.ours()) >= count, DEADLINE, f"{count} tapped messages")
        return [(message, frame) for message, frame, _ in self.ours()]

    @property
    def times(self) -> list[float]:
        return [t for _, _, t in self.ours()]


class Ours(Collector):
    def __call__(self, message: Any) -> None:
        if ours(message):
            super().__call__(message)


def test_a_frame_tap_gets_the_frame_exactly_as_sent_while_the_message_is_that_frame(server, client) -> None:
    taps, plain = Taps(), Ours()
    client.subscribe(TRADES, taps.tap).wait(DEADLINE)
    client.subscribe(TRADES, plain).wait(DEADLINE)
    # Odd but valid JSON: spaces and a newline between tokens, as a server may send.
    first = '{"channel": "trades",\n "data": ' + json.dumps([trade(1), trade(2)]) + '}'
    server.push(first)
    server.push({"channel": "trades", "data": [trade(2), trade(3)]})  # tid 2 again: deduped out

    got = taps.wait_for(2)
    assert got[0] == (json.loads(first), first.encode())
    message, frame = got[1]
    assert message["data"] == [trade(3)] and frame is None  # not the frame any more
    assert [m["data"] for m in plain.wait_for(2)] == [[trade(1), trade(2)], [trade(3)]]  # the other handle alike


def test_a_frame_tap_alone_on_a_feed_still_has_its_trades_deduped(server, client) -> None:
    taps = Taps()
    client.subscribe(TRADES, taps.tap).wait(DEADLINE)
    server.push({"channel": "trades", "data": [trade(5)]})
    server.push({"channel": "trades", "data": [trade(5)]})  # wholly a duplicate: not delivered
    server.push({"channel": "trades", "data": [trade(6)]})
    got = taps.wait_for(2)
    assert [[t["tid"] - OURS for t in m["data"]] for m, _ in got] == [[5], [6]]
    assert [json.loads(frame) for _, frame in got] == [m for m, _ in got]  # each its own frame, whole


def test_a_frame_tap_needs_a_deque() -> None:
    with pytest.raises(ValueError, match="deque"):
        FrameTap([], "tag")  # type: ignore[arg-type]


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
    client.subscribe(TRADES, taps.tap).wait(DEADLINE)
    server.push(json.dumps({"channel": "trades", "data": [trade(1)]}) + "\x0c")
    server.push(json.dumps({"channel": "trades", "data": [trade(2)]}) + "\r\n")
    (message, frame), = taps.wait_for(1)
    assert message["data"] == [trade(2)] and json.loads(frame) == message
    assert [e.reason for e in errors.wait_for(1)] == ["invalid_json"]


def test_a_tap_gets_the_time_of_the_read_in_the_callbacks_order(server, client) -> None:
    taps, plain = Taps(), Ours()
    client.subscribe(TRADES, plain).wait(DEADLINE)
    client.subscribe(TRADES, taps.tap).wait(DEADLINE)
    before = time.time()
    for n in range(20):
        server.push({"channel": "trades", "data": [trade(n)]})
    taps.wait_for(20)
    after = time.time()
    assert before <= taps.times[0] and taps.times == sorted(taps.times) and taps.times[-1] <= after
    assert [m for m, _ in taps.wait_for(20)] == plain.wait_for(20)


def _pump(server: Any, frames: list[Any], done: threading.Event) -> threading.Thread:
    def run() -> None:
        for frame in frames:
            server.push(frame)
        done.set()
    pusher = threading.Thread(target=run, name="test-pusher")
    pusher.start()
    return pusher


@pytest.mark.parametrize("kind", ["trades", "l2Book"])
def test_a_tap_joining_and_leaving_a_busy_feed_sees_a_run_of_what_the_callback_saw(server, client, kind) -> None:
    """No message twice, none skipped, whichever path (fast or locked) each frame takes
    while the tap comes and goes: its messages are one contiguous run of the callback's."""
    n = 1500
    if kind == "trades":
        sub, frames = TRADES, [{"channel": "trades", "data": [trade(i)]} for i in range(n)]

        def key(message: Any) -> Any:
            return message["data"][0]["tid"] if ours(message) else None
    else:
        sub = {"type": "l2Book", "coin": "BTC"}
        frames = [{"channel": "l2Book", "data": {"coin": "BTC", "time": T + i, "levels": [
            [{"px": "90000.0", "sz": str(i + 1), "n": 1}], [{"px": "90001.0", "sz": "1.0", "n": 1}]]}}
            for i in range(n)]

        def key(message: Any) -> Any:
            return message["data"]["time"] if message["data"]["time"] >= T else None

    seen: list[Any] = []
    plain = Collector()
    client.subscribe(sub, lambda m: (seen.append(key(m)), plain(m))).wait(DEADLINE)
    done = threading.Event()
    pusher = _pump(server, frames, done)
    wait_until(lambda: sum(k is not None for k in seen) >= n // 5, DEADLINE, "the feed flowing")
    queue: deque[Any] = deque()
    tap = client.subscribe(sub, FrameTap(queue)).wait(DEADLINE)
    wait_until(lambda: sum(k is not None for k in seen) >= n // 2, DEADLINE, "more frames")
    tap.unsubscribe()
    pusher.join(DEADLINE)
    assert done.is_set()
    wait_until(lambda: key_count(seen) == n, DEADLINE, "every frame at the callback")
    ours_seen = [k for k in seen if k is not None]
    tapped = [key(json.loads(f) if m is None else m) for _, _, m, f in queue]
    ours_tapped = [k for k in tapped if k is not None]
    assert ours_seen == sorted(set(ours_seen)) and len(ours_seen) == n  # the callback: all, once, in order
    assert ours_tapped, "the tap saw none of the frames"
    start = ours_seen.index(ours_tapped[0])
    assert ours_tapped == ours_seen[start:start + len(ours_tapped)]


def key_count(keys: list[Any]) -> int:
    return sum(k is not None for k in keys)


class _Owner:
    def unsubscribe(self, subscription: Any) -> None:
        pass

    def _link_problem(self, entry: Any) -> None:
        return None


class _Refuse:
    """A budget with no room: the first live frame held makes the hold give up."""

    def may_hold(self, holding: int) -> bool:
        return False

    def unhold(self, count: int) -> None:
        pass


def test_no_lock_free_path_while_a_backfill_that_gave_up_still_delivers() -> None:
    """After a hold gives up (max_backlog), the backfill thread still delivers what it
    recovers through the same tracker, under the entry's lock: the reader must not take
    the lock-free path (and run the tracker at the same time) until it is done."""
    from hyperliquid_ws.feeds import canonical
    from hyperliquid_ws.registry import Registry

    feed, form = canonical(TRADES)
    queued: list[Any] = []
    handle, _ = Registry().add(_Owner(), feed, form, dict(TRADES), lambda m: None)
    entry = handle._entry
    assert entry.fast is not None  # one handle, a tracker, nothing held
    hold_id = entry.hold(_Refuse())
    assert entry.fast is None
    gave_up = entry.deliver({"channel": "trades", "data": [trade(1)]}, lambda lane, m: queued.append(m))
    assert gave_up is not None and entry.held is None
    assert entry.fast is None  # the backfill has not delivered yet
    entry.attach(Registry().add(_Owner(), feed, form, dict(TRADES), lambda m: None)[0])
    entry.detach(entry.handles[-1])  # a handle coming and going meanwhile does not turn it back on
    assert entry.fast is None
    delivered, done, mine = entry.release_some(lambda lane, m: queued.append(m),
                                               deque([({"channel": "trades", "data": [trade(0)]}, True)]),
                                               hold_id, None)
    assert (delivered, done, mine) == (1, True, False)
    assert entry.fast is not None  # done: the reader may judge frames itself again
    assert [m["data"][0]["tid"] - OURS for m in queued] == [1, 0]


def test_nothing_is_queued_once_the_tap_is_unsubscribed(server, client) -> None:
    taps, plain = Taps(), Ours()
    client.subscribe(TRADES, plain).wait(DEADLINE)
    handle = client.subscribe(TRADES, taps.tap).wait(DEADLINE)
    server.push({"channel": "trades", "data": [trade(1)]})
    taps.wait_for(1)
    handle.unsubscribe()
    server.push({"channel": "trades", "data": [trade(2)]})
    assert [m["data"] for m in plain.wait_for(2)] == [[trade(1)], [trade(2)]]
    assert [m["data"] for m, _, _ in taps.ours()] == [[trade(1)]]


def test_a_record_that_races_close_is_refused_and_leaves_no_tap(server, client, tmp_path: Path) -> None:
    """close() on another thread between record()'s check and its subscribe: the new
    handle would feed a queue nobody drains any more. It is unsubscribed, and record()
    says the recorder is closed."""
    recorder = Recorder(tmp_path, client=client)
    subscribe = client.subscribe

    def close_first(*args: Any, **kwargs: Any) -> Any:
        recorder.close()  # what the other thread did, in the window
        return subscribe(*args, **kwargs)

    client.subscribe = close_first  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="closed"):
        recorder.record(TRADES)
    client.subscribe = subscribe  # type: ignore[method-assign]
    assert not [s for s in client.stats()["subscriptions"] if s.get("callbacks")]
