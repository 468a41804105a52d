"""Record from the real local server across a forced reconnect, then replay the recording
through another local server to unmodified clients (loopback, ephemeral ports)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hyperliquid_ws import Backoff, HyperliquidWS
from hyperliquid_ws.recording import Recorder, RecordingWriter, Replay, read
from hyperliquid_ws.recording.codec import encode_subscription
from hyperliquid_ws.router import loads
from hyperliquid_ws.testing import LocalServer
from tests.conftest import DEADLINE, Collector, wait_until

FAST = Backoff(initial=0.05, maximum=0.2, reset_after=1)


def feeds_of(user: str) -> list[dict[str, Any]]:
    return [{"type": "trades", "coin": "BTC"}, {"type": "l2Book", "coin": "ETH"},
            {"type": "candle", "coin": "BTC", "interval": "1m"}, {"type": "userFills", "user": user}]


def live(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "backfill"}


def tids(messages: list[dict[str, Any]], key: str = "data") -> list[Any]:
    out: list[Any] = []
    for m in messages:
        data = m[key] if key else m
        out += [t["tid"] for t in (data if isinstance(data, list) else data.get("fills", []))]
    return out


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A recording of four feeds over ticks before, during and after a dropped link."""
    out = tmp_path_factory.mktemp("recording")
    with LocalServer(tick_interval=None) as server:
        user = server.market.users[0]
        recorder = Recorder(out, base_url=server.base_url, flush_interval=0.1,
                            client_options={"backoff": FAST})
        try:
            for handle in [recorder.record(sub) for sub in feeds_of(user)]:
                handle.wait(DEADLINE)
            server.advance(4)
            wait_until(lambda: recorder.stats()["feeds"]["trades BTC"]["messages"] >= 4, DEADLINE)
            server.refuse_handshakes(10_000)
            server.drop_connections()
            server.advance(3)  # nobody listening: only the backfill can bring these
            server.refuse_handshakes(0)
            wait_until(lambda: recorder.stats()["feeds"]["trades BTC"]["backfilled"] >= 1, DEADLINE,
                       "the recorder's client backfilled the gap")
            assert server.wait_for_subscriptions(4, DEADLINE)
            server.advance(4)
            last = recorder.client.info({"type": "recentTrades", "coin": "BTC"})[-1]["tid"]
            wait_until(lambda: last in tids([r.message for r in read(out, feeds=["trades"])]), DEADLINE,
                       "the last trade recorded")
            assert recorder.progress_line().startswith("trades BTC: ")
        finally:
            recorder.close()
    return out, user


def test_recording_holds_every_trade_once_with_the_backfill_marked(recording: tuple[Path, str]) -> None:
    out, _ = recording
    trades = [r.message for r in read(out, feeds=["trades"])]
    assert any(m.get("backfill") for m in trades)
    assert len(tids(trades)) == len(set(tids(trades)))
    times = [r.time for r in read(out)]
    assert times == sorted(times)


def test_a_client_of_the_replay_receives_exactly_the_recorded_messages(recording: tuple[Path, str]) -> None:
    out, user = recording
    replay = Replay(out, speed=None, autoplay=False)
    with LocalServer(replay=replay) as server, HyperliquidWS(server.base_url) as client:
        collectors = [Collector() for _ in feeds_of(user)]
        for handle in [client.subscribe(sub, c) for sub, c in zip(feeds_of(user), collectors, strict=True)]:
            handle.wait(DEADLINE)
        replay.play()
        assert replay.wait_done(DEADLINE)
        for sub, collector in zip(feeds_of(user)[:3], collectors[:3], strict=True):  # event and state feeds: verbatim
            recorded = [live(r.message) for r in read(out, feeds=[sub])]
            assert collector.wait_for(len(recorded)) == recorded, sub["type"]
        fills = [live(r.message) for r in read(out, feeds=["userFills"])]
        got = collectors[3].wait_for(1)
        assert got[0]["data"]["isSnapshot"] is True  # the server's own snapshot, as of the clock
        wait_until(lambda: Counter(tids(collectors[3].messages)) == Counter(set(tids(fills))), DEADLINE,
                   "every recorded fill exactly once")


def test_replay_is_deterministic(recording: tuple[Path, str]) -> None:
    out, _ = recording
    first, second = Replay(out, speed=None), Replay(out, speed=None)
    assert [s.text for s in first.timeline.steps] == [s.text for s in second.timeline.steps]


def test_dropping_the_link_mid_replay_is_healed_by_backfill_from_the_recording(
        recording: tuple[Path, str]) -> None:
    out, _ = recording
    trades = [r for r in read(out, feeds=["trades"])]
    replay = Replay(out, speed=None, autoplay=False, feeds=["trades"])
    with LocalServer(replay=replay) as server, HyperliquidWS(server.base_url, backoff=FAST) as client:
        collector = Collector()
        client.subscribe({"type": "trades", "coin": "BTC"}, collector).wait(DEADLINE)
        times = sorted({r.time for r in trades})  # one read's frames share their time
        assert replay.run_until(times[2], DEADLINE)
        collector.wait_for(3)
        server.refuse_handshakes(10_000)
        server.drop_connections()
        wait_until(lambda: not client.connected, DEADLINE)
        assert replay.run_until(times[5], DEADLINE)  # three frames or more go out to nobody
        server.refuse_handshakes(0)
        wait_until(lambda: client.stats()["backfill"]["gaps_backfilled"] >= 1, DEADLINE, "the gap backfilled")
        replay.play()
        assert replay.wait_done(DEADLINE)
        every = tids([r.message for r in trades])
        wait_until(lambda: len(tids(collector.messages)) >= len(set(every)), DEADLINE)
        assert sorted(tids(collector.messages)) == sorted(set(every))  # nothing lost, nothing twice
        assert any(m.get("backfill") for m in collector.messages)


def test_a_new_subscriber_gets_the_state_as_of_the_replay_clock(recording: tuple[Path, str]) -> None:
    out, _ = recording
    books = [r for r in read(out, feeds=["l2Book"])]
    # The books of one socket read share their time, and run_until(t) sends every record
    # at t: the state as of t is the last book at that time (the first one with a later next).
    k = next(i for i in range(2, len(books) - 1) if books[i].time < books[i + 1].time)
    replay = Replay(out, speed=None, autoplay=False)
    with LocalServer(replay=replay) as server, HyperliquidWS(server.base_url) as client:
        assert replay.run_until(books[k].time, DEADLINE)
        collector = Collector()
        client.subscribe({"type": "l2Book", "coin": "ETH"}, collector).wait(DEADLINE)
        got = collector.wait_for(1)[0]
        assert got == live(books[k].message), (replay.clock, replay.position, [b.time for b in books[:k + 2]],
                                               got["data"]["time"], [b.data["time"] for b in books[:k + 2]])
        assert client.info({"type": "l2Book", "coin": "ETH"}) == books[k].data


def test_the_serve_command_replays_a_recording(recording: tuple[Path, str]) -> None:
    """``hyperliquid-ws serve --replay DIR --speed max`` in a subprocess, to an unmodified client."""
    out, _ = recording
    command = [sys.executable, "-m", "hyperliquid_ws", "serve", "--replay", str(out), "--speed", "max", "--port", "0"]
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stderr is not None
        banner = child.stderr.readline()  # "hyperliquid-ws serve: http://127.0.0.1:PORT (replaying N messages ...)"
        base_url = banner.split()[2]
        recorded = [live(r.message) for r in read(out, feeds=["trades"])]
        with HyperliquidWS(base_url, proxy=None) as client:
            collector = Collector()
            client.subscribe({"type": "trades", "coin": "BTC"}, collector).wait(DEADLINE)
            assert collector.wait_for(len(recorded)) == recorded  # autoplay: from the first subscription
    finally:
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=DEADLINE)
    assert child.returncode == 0


def test_a_recorded_frame_with_a_lone_surrogate_escape_is_replayed_as_it_came(tmp_path: Path) -> None:
    """JSON may escape half a surrogate pair ("\\ud800"); such a string cannot be UTF-8, so
    the replay sends it escaped, as a server would, instead of failing on it; the client
    then treats it as it treats such a live frame (orjson refuses it, the stdlib takes it)."""
    sub = {"type": "trades", "coin": "BTC"}
    frames = [b'{"channel":"trades","data":[{"coin":"BTC","side":"B","px":"1.0","sz":"1","time":%d,'
              b'"hash":"0x%s","tid":%d,"users":["0xa","0xb"]}]}' % (1_900_000_000_000 + i, h, 10**15 + i)
              for i, h in enumerate([b"00", b"\\ud800", b"01"])]
    writer = RecordingWriter(tmp_path)
    writer.write_many([(1_900_000_000.0 + i, encode_subscription(sub), None, f) for i, f in enumerate(frames)])
    writer.close()
    replay = Replay(tmp_path, speed=None, autoplay=False)
    parses = []  # what the client's parser makes of each frame live: orjson refuses "\\ud800", the stdlib not
    for frame in frames:
        try:
            parses.append(loads(frame)["data"][0]["hash"])
        except ValueError:
            parses.append(None)
    errors, got = Collector(), Collector()
    with LocalServer(replay=replay) as server, HyperliquidWS(server.base_url, on_error=errors) as client:
        client.subscribe(sub, got).wait(DEADLINE)
        replay.play()
        assert replay.wait_done(DEADLINE)
        wait_until(lambda: [m["data"][0]["hash"] for m in got.messages if m["data"][0]["tid"] >= 10**15]
                   == [h for h in parses if h is not None], DEADLINE, "every frame the client can parse")
        if None in parses:
            (error,) = errors.wait_for(1)
            assert error.reason == "invalid_json" and b"\\ud800" in error.excerpt
        assert "0x00" in parses and "0x01" in parses
