"""The recording format, writer, reader and schedule without sockets; the recorder CLI
killed with SIGKILL mid-recording against a real local server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperliquid_ws.cli.record import split_feeds
from hyperliquid_ws.recording import RecordingWriter, read
from hyperliquid_ws.recording.codec import read_lines
from hyperliquid_ws.recording.replay import Replay
from hyperliquid_ws.recording.timeline import schedule
from hyperliquid_ws.testing import LocalServer
from tests.conftest import DEADLINE, wait_until

HOUR = 3600.0
T0 = 1_764_700_000.0  # 2025-12-02T18:26:40Z
TRADES = {"type": "trades", "coin": "BTC"}
BOOK = {"type": "l2Book", "coin": "ETH"}


def trade(i: int) -> dict[str, object]:
    return {"channel": "trades", "data": [{"coin": "BTC", "tid": i, "time": int((T0 + i) * 1000)}]}


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_lines_round_trip_and_rotate_by_utc_hour(tmp_path: Path, compression: str) -> None:
    if compression == "zstd":
        pytest.importorskip("zstandard")
    writer = RecordingWriter(tmp_path, compression=compression)
    for i in range(6):
        writer.write(TRADES, trade(i), t=T0 + i * HOUR / 2)
    writer.close()
    assert [p.name.split(".")[0] for p in writer.files] == ["hl-20251202T18", "hl-20251202T19", "hl-20251202T20"]
    records = list(read(tmp_path))
    assert [r.message for r in records] == [trade(i) for i in range(6)]
    assert records[0].time == T0 and records[0].subscription == TRADES and not records[0].backfill


def test_an_existing_file_is_never_appended_to(tmp_path: Path) -> None:
    for _ in range(2):
        with_writer = RecordingWriter(tmp_path)
        with_writer.write(TRADES, trade(1), t=T0)
        with_writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hl-20251202T18.1.ndjson.gz", "hl-20251202T18.ndjson.gz"]
    assert len(list(read(tmp_path))) == 2


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_truncated_file_is_read_to_its_last_whole_line(tmp_path: Path, compression: str) -> None:
    if compression == "zstd":
        pytest.importorskip("zstandard")
    writer = RecordingWriter(tmp_path, compression=compression)
    path, sizes = None, []
    for batch in range(5):  # five flushes, as the flush thread makes; never closed (a crash)
        for i in range(batch * 10, batch * 10 + 10):
            writer.write(TRADES, trade(i), t=T0 + i)
        writer.flush()
        path = writer.files[0]
        sizes.append(path.stat().st_size)
    assert path is not None
    flushed = path.read_bytes()
    assert len(list(read_lines(path))) == 50
    for cut, at_least in ((sizes[4] - 1, 40), ((sizes[3] + sizes[4]) // 2, 40), (sizes[1] + 3, 20)):
        # (a cut inside the last flush's 4-byte sync marker may still leave all 50)
        path.write_bytes(flushed[:cut])
        got = [line["msg"] for line in read_lines(path)]
        assert got == [trade(i) for i in range(len(got))]  # a prefix, every line whole
        assert at_least <= len(got) <= 50
    assert len(got) < 50


def test_concatenated_gzip_members_are_all_read(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "hl-20251202T18.ndjson.gz"
    lines = [b'{"t":%d,"sub":{},"msg":{"channel":"a","data":%d}}\n' % (i, i) for i in range(3)]
    path.write_bytes(b"".join(gzip.compress(line) for line in lines))  # as `cat a.gz b.gz` makes
    assert [line["t"] for line in read_lines(path)] == [0, 1, 2]


def test_a_gzip_file_cut_mid_line_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "hl-20251202T18.ndjson.gz"
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = b'{"t":1,"sub":{},"msg":{"channel":"a","data":1}}\n{"t":2,"sub":{},"msg":{"chan'
    path.write_bytes(packer.compress(body) + packer.flush(zlib.Z_SYNC_FLUSH))
    assert [line["t"] for line in read_lines(path)] == [1]


def test_read_merges_files_in_time_order_and_filters(tmp_path: Path) -> None:
    a = RecordingWriter(tmp_path, prefix="a-")
    b = RecordingWriter(tmp_path, prefix="b-")
    for i in range(10):
        (a if i % 2 else b).write(TRADES if i % 3 else BOOK, trade(i), t=T0 + i)
    a.close()
    b.close()
    assert [r.time - T0 for r in read(tmp_path)] == list(range(10))
    assert [r.time - T0 for r in read(tmp_path, feeds=[BOOK])] == [0, 3, 6, 9]
    assert [r.time - T0 for r in read(tmp_path, feeds=["trades"], start=T0 + 2, end=T0 + 5)] == [2, 4, 5]
    start = datetime.fromtimestamp(T0 + 8, timezone.utc)
    assert [r.time - T0 for r in read(tmp_path, start=start)] == [8, 9]
    with pytest.raises(ValueError, match="timezone-aware"):
        list(read(tmp_path, start=datetime(2025, 12, 2)))
    with pytest.raises(FileNotFoundError):
        list(read(tmp_path / "missing"))


def test_speed_ten_schedules_each_frame_at_a_tenth_of_its_offset(tmp_path: Path) -> None:
    offsets = [0.0, 0.5, 2.0, 2.0, 10.0, 3600.0]
    assert schedule([T0 + o for o in offsets], 10.0) == pytest.approx([o / 10 for o in offsets])
    assert schedule([T0 + o for o in offsets], None) == [0.0] * len(offsets)
    writer = RecordingWriter(tmp_path, compression="none")
    for i, offset in enumerate(offsets):
        writer.write(TRADES, trade(i), t=T0 + offset)
    writer.close()
    replay = Replay(tmp_path, speed=10.0)
    assert replay.due == pytest.approx([o / 10 for o in offsets])  # the plan the server task follows
    for bad in (0, -1.0, True, "fast"):
        with pytest.raises(ValueError, match="speed"):
            Replay(tmp_path, speed=bad)  # type: ignore[arg-type]


def test_feed_groups_of_the_record_command() -> None:
    user = "0x" + "ab" * 20
    assert split_feeds(["trades", "BTC", "l2Book", "ETH", "nSigFigs=5", "userFills", user]) == [
        TRADES, {"type": "l2Book", "coin": "ETH", "nSigFigs": 5}, {"type": "userFills", "user": user}]
    with pytest.raises(ValueError, match="not a feed type"):
        split_feeds(["BTC"])


def test_a_recorder_killed_with_sigkill_leaves_a_readable_file(tmp_path: Path) -> None:
    """The real CLI in a subprocess, SIGKILLed mid-recording: every line it had flushed
    (the flush thread runs every 0.2 s) is still there, each whole."""
    out = tmp_path / "data"
    with LocalServer(tick_interval=0.02) as server:
        command = [sys.executable, "-m", "hyperliquid_ws", "record", "trades", "BTC", "l2Book", "ETH",
                   "--out", str(out), "--base-url", server.base_url, "--flush-interval", "0.2", "--quiet"]
        env = {**os.environ, "NO_PROXY": "*"}
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            def recorded() -> int:
                return len(list(read(out))) if out.exists() and any(out.iterdir()) else 0
            seen = wait_until(lambda: recorded() >= 20 and recorded(), DEADLINE, "lines flushed by the child")
        finally:
            child.send_signal(signal.SIGKILL)
            _, err = child.communicate(timeout=DEADLINE)
    assert child.returncode == -signal.SIGKILL, err
    records = list(read(out))
    assert len(records) >= seen
    assert {r.channel for r in records} == {"trades", "l2Book"}
    with pytest.raises(EOFError):  # proof it was cut short: the gzip stream has no end
        import gzip

        gzip.decompress(next(out.iterdir()).read_bytes())


def _file_size_limit(limit: int) -> Any:
    """For ``subprocess``: the child may write files of at most ``limit`` bytes (RLIMIT_FSIZE);
    a write past it fails with EFBIG (SIGXFSZ ignored), as a full disk fails with ENOSPC."""
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


_WRITE_UNTIL_DONE = """
import json, os, sys
from hyperliquid_ws.recording import RecordingWriter
writer = RecordingWriter(sys.argv[1], compression=sys.argv[2])
flush_every = int(sys.argv[3])
failures = 0
for i in range(3000):  # every 7 lines share a t, as the frames of one socket read do (across flushes too)
    message = {"channel": "trades", "data": [{"coin": "BTC", "tid": i, "hash": os.urandom(96).hex()}]}
    if i % 700 == 350:
        message = {"not JSON": {i}}  # skipped (and logged), never counted
    try:
        writer.write_many([(1764700000.0 + i // 7 / 1000, {"type": "trades", "coin": "BTC"}, message, None)])
        if i % flush_every == flush_every - 1:
            writer.flush()
    except OSError:
        failures += 1
while True:  # until every line is written and flushed
    try:
        writer.flush()
    except OSError:
        failures += 1
        continue
    if not writer.held:
        break
writer.close()
print(json.dumps({"failures": failures, "lost": writer.lost, "lines": writer.lines, "files": len(writer.files)}))
"""


@pytest.mark.parametrize("flush_every", [40, 400], ids=["short", "long"])
@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_writes_that_fail_lose_and_repeat_no_line(tmp_path: Path, compression: str, flush_every: int) -> None:
    """A real process whose files may not grow past 48 KiB: every file fills up, each
    failed write cuts it back to its last flush and goes on in a new file. Every line is
    read back exactly once, in order (lines with the same t too), and every file reads
    to its end. With a flush every 400 lines, more is held at each failure than a file
    can take: the lines held are written again in smaller slices until they fit."""
    if compression == "zstd":
        pytest.importorskip("zstandard")
    done = subprocess.run([sys.executable, "-c", _WRITE_UNTIL_DONE, str(tmp_path), compression, str(flush_every)],
                          capture_output=True, text=True, timeout=DEADLINE * 4, preexec_fn=_file_size_limit(48 << 10))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    kept = [i for i in range(3000) if i % 700 != 350]
    assert report["failures"] >= 3 and report["lost"] == 0 and report["lines"] == len(kept)
    files = sorted(tmp_path.iterdir())
    assert len(files) == report["files"] >= 4 and all(f.stat().st_size <= 48 << 10 for f in files)
    assert [r.message["data"][0]["tid"] for r in read(tmp_path)] == kept
    for path in files:  # each cut file ends on a whole block: no corrupt tail to skip
        assert list(read_lines(path))


def test_a_recorder_whose_files_cannot_grow_loses_and_repeats_no_message(tmp_path: Path) -> None:
    """The real record command in a process whose files may not grow past 48 KiB, against
    a real local server: each time a file is full its writes fail, the recorder holds what
    it could not write and goes on in a new file. Its trades are exactly a direct
    client's, none missing, none twice; a clean stop (SIGTERM) exits 0."""
    from hyperliquid_ws import HyperliquidWS
    from tests.conftest import Collector

    out = tmp_path / "data"
    with LocalServer(tick_interval=0.02) as server, HyperliquidWS(server.base_url, trust_env=False) as direct:
        truth = Collector()
        direct.subscribe(TRADES, truth).wait(DEADLINE)
        command = [sys.executable, "-m", "hyperliquid_ws", "record", "trades", "BTC", "l2Book", "ETH",
                   "--out", str(out), "--base-url", server.base_url, "--flush-interval", "0.2", "--quiet"]
        child = subprocess.Popen(command, env={**os.environ, "NO_PROXY": "*"}, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, preexec_fn=_file_size_limit(48 << 10))
        try:
            wait_until(lambda: out.exists() and len(list(out.iterdir())) >= 4, DEADLINE * 2, "four files")
        finally:
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=DEADLINE)
        last = [r for r in read(out) if r.channel == "trades"][-1].message["data"][-1]["tid"]
        wait_until(lambda: any(t["tid"] == last for m in truth.messages for t in m["data"]), DEADLINE,
                   "the direct client to have the recorder's last trade")
    assert child.returncode == 0, err
    assert "writing failed" in err and "writing again" in err
    files = sorted(out.iterdir())
    assert all(f.stat().st_size <= 48 << 10 for f in files)
    tids = [t["tid"] for r in read(out) if r.channel == "trades" for t in r.message["data"]]
    true = [t["tid"] for m in truth.messages for t in m["data"]]
    assert len(tids) > 20 and len(tids) == len(set(tids))
    start = true.index(tids[0])
    assert true[start:start + len(tids)] == tids


def test_write_many_spans_an_hour_and_skips_what_json_cannot_encode(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path)
    sub = b'{"type":"trades","coin":"BTC"}'
    frame = b'{"channel":"trades","data":[]}'
    first = [(T0 + i, sub, None, frame) for i in range(3)]  # one hour: written in one go
    sizes = writer.write_many(first)
    assert sizes == [len(b'{"t":%.6f,"sub":%s,"msg":%s}\n' % (T0, sub, frame))] * 3
    later = [(T0 + HOUR, sub, trade(1), None), (T0 + HOUR + 1, sub, {"bad": {1, 2}}, None),
             (T0 + 2 * HOUR, sub, trade(2), None)]
    assert writer.write_many(later)[1] == 0  # not JSON: skipped, the others written
    writer.close()
    assert len(writer.files) == 3
    assert [r.message for r in read(tmp_path)] == [{"channel": "trades", "data": []}] * 3 + [trade(1), trade(2)]


def test_write_many_still_takes_the_three_item_lines_of_before_frames(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path)
    assert all(writer.write_many([(T0 + i, TRADES, trade(i)) for i in range(3)]))  # type: ignore[misc]
    writer.close()
    assert [r.message for r in read(tmp_path)] == [trade(i) for i in range(3)]


def test_a_line_stamped_before_the_last_one_written_is_written_at_its_time(tmp_path: Path) -> None:
    """Two readers stamp their own reads: a later batch may carry an earlier t. The file
    stays in time order, and no line is lost or moved."""
    writer = RecordingWriter(tmp_path)
    sub = b'{"type":"trades","coin":"BTC"}'
    writer.write_many([(T0 + 5, sub, trade(1), None)])
    writer.write_many([(T0 + 4, sub, trade(2), None), (T0 + 6, sub, trade(3), None)])
    writer.write(sub, trade(4), t=T0 + 1)  # the one-line path alike
    writer.close()
    assert [(r.time, r.message) for r in read(tmp_path)] == [
        (T0 + 5, trade(1)), (T0 + 5, trade(2)), (T0 + 6, trade(3)), (T0 + 6, trade(4))]


_SUBS = [b'{"type":"trades","coin":"BTC"}', b'{"type":"trades","coin":"ETH"}']


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1), st.sampled_from(["frame", "newline", "parsed"])),
                max_size=60))
def test_every_line_a_batch_writes_is_exactly_its_own_time_feed_and_message(tmp_path_factory: Any,
                                                                          spec: list[Any]) -> None:
    """Runs of lines that share a time and a feed are written with one head between
    their frames; whatever the mix (frames with a newline of their own, parsed
    messages, feeds and times alternating), each line reads back as its own."""
    out = tmp_path_factory.mktemp("lines")
    writer = RecordingWriter(out, compression="none")
    items: list[Any] = []
    for n, (dt, feed, kind) in enumerate(spec):
        message = {"channel": "trades", "data": [{"tid": n, "coin": "BTC" if feed == 0 else "ETH"}]}
        frame = json.dumps(message, separators=(",", ":")).encode()
        if kind == "newline":
            frame = frame.replace(b",", b",\n", 1)
        items.append((T0 + dt * 0.5, _SUBS[feed], None if kind != "parsed" else message,
                      None if kind == "parsed" else frame))
    sizes = writer.write_many(items)
    writer.close()
    lines = [line for path in writer.files for line in (path.read_bytes().split(b"\n")[:-1])]
    assert [len(line) + 1 for line in lines] == sizes
    got = [json.loads(line) for line in lines]
    expected, last = [], 0.0
    for t, sub, message, frame in items:
        last = max(last, t)
        expected.append({"t": last, "sub": json.loads(sub), "msg": message if frame is None else json.loads(frame)})
    assert got == expected


def test_a_time_that_shows_as_the_next_hour_is_filed_under_it(tmp_path: Path) -> None:
    """A line's t is written to the microsecond: 0.4 us before an hour ends shows as the
    hour itself, so the line goes in that hour's file, as its t says."""
    writer = RecordingWriter(tmp_path, compression="none")
    end = T0 - T0 % HOUR + HOUR
    sub = b'{"type":"trades","coin":"BTC"}'
    writer.write_many([(end - 2.0, sub, trade(1), None), (end - 4e-7, sub, trade(2), None)])
    writer.close()
    for path in writer.files:
        for line in read_lines(path):
            assert path.name.startswith(datetime.fromtimestamp(line["t"], timezone.utc).strftime("hl-%Y%m%dT%H"))
    assert len(writer.files) == 2


def test_a_mistyped_feed_gets_a_suggestion_from_record_and_read(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="did you mean trades"):
        split_feeds(["trade", "BTC"])
    assert split_feeds(["l2book", "ETH"]) == [{"type": "l2Book", "coin": "ETH"}]  # any case, as the stream command
    writer = RecordingWriter(tmp_path)
    writer.write(TRADES, trade(1), t=T0)
    writer.close()
    with pytest.raises(ValueError, match="did you mean trades"):
        list(read(tmp_path, feeds=["trade"]))  # would match nothing, silently
    assert [r.message for r in read(tmp_path, feeds=[{"type": "trades"}])] == [trade(1)]


def test_an_hours_numbered_files_are_read_after_the_one_they_follow(tmp_path: Path) -> None:
    from hyperliquid_ws.recording.reader import recording_files

    names = ["hl-20251202T18.10.ndjson", "hl-20251202T18.2.ndjson", "hl-20251202T18.ndjson",
             "hl-20251202T19.ndjson", "hl-20251202T18.1.ndjson"]
    for n, name in enumerate(names):
        line = {"t": T0, "sub": TRADES, "msg": {"file": name, "n": n}}
        (tmp_path / name).write_text(json.dumps(line) + "\n")
    order = ["hl-20251202T18.ndjson", "hl-20251202T18.1.ndjson", "hl-20251202T18.2.ndjson",
             "hl-20251202T18.10.ndjson", "hl-20251202T19.ndjson"]
    assert [p.name for p in recording_files(tmp_path)] == order
    assert [r.message["file"] for r in read(tmp_path)] == order  # one t: the files' order decides
