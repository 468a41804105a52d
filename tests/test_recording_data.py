"""The archive importer (an LZ4 fixture built here in the archive's format) and the
tables (pandas, Parquet); skipped where the ``data`` extra is not installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperliquid_ws.recording import RecordingWriter, read
from hyperliquid_ws.recording.archive import import_archive
from hyperliquid_ws.recording.frames import rows, to_dataframe, to_parquet

T0 = 1_764_700_000.0


def book(i: int) -> dict[str, object]:
    return {"coin": "BTC", "time": int((T0 + i) * 1000), "levels": [
        [{"px": str(100 - i - n), "sz": "1.5", "n": 2} for n in range(3)],
        [{"px": str(101 + i + n), "sz": "0.5", "n": 1} for n in range(3)]]}


def fill(i: int, user: str = "0x" + "ab" * 20) -> list[object]:
    return [user, {"coin": "ETH", "px": "2000.5", "sz": "0.1", "side": "B", "time": int((T0 + i) * 1000),
                   "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0", "hash": f"0x{i:064x}",
                   "oid": 10 + i, "crossed": True, "fee": "0.01", "tid": 100 + i, "feeToken": "USDC"}]


def test_the_archive_l2book_and_fills_files_import_into_a_recording(tmp_path: Path) -> None:
    lz4_frame = pytest.importorskip("lz4.frame")
    archive = tmp_path / "market_data" / "20251202" / "18" / "l2Book"
    archive.mkdir(parents=True)
    lines = [{"time": f"2025-12-02T18:26:{40 + i:02d}.123456789", "ver_num": 1,
              "raw": {"channel": "l2Book", "data": book(i)}} for i in (2, 0, 1)]  # out of order on purpose
    (archive / "BTC.lz4").write_bytes(lz4_frame.compress("".join(json.dumps(x) + "\n" for x in lines).encode()))
    fills = tmp_path / "node_fills.lz4"
    blocks = [{"block_time": "2025-12-02T18:26:41", "events": [fill(1), fill(2)]}, fill(3)]
    fills.write_bytes(lz4_frame.compress("".join(json.dumps(b) + "\n" for b in blocks).encode()))
    out = tmp_path / "rec"
    assert import_archive([archive / "BTC.lz4"], out) == 3
    assert import_archive([fills], out, kind="fills") == 3
    records = list(read(out))
    assert [r.channel for r in records] == ["l2Book", "userFills"] * 3
    books = [r for r in records if r.channel == "l2Book"]
    assert [r.data for r in books] == [book(0), book(1), book(2)]
    assert books[0].time == pytest.approx(T0 + 0.123456789)
    assert books[0].subscription == {"type": "l2Book", "coin": "BTC"}
    assert [r.data["fills"][0]["tid"] for r in records if r.channel == "userFills"] == [101, 102, 103]


def write_sample(directory: Path) -> None:
    writer = RecordingWriter(directory)
    for i in range(3):
        writer.write({"type": "trades", "coin": "BTC"}, {"channel": "trades", "data": [
            {"coin": "BTC", "side": "B", "px": "100.5", "sz": "2", "time": int((T0 + i) * 1000),
             "hash": "0x0", "tid": i, "users": ["0x1", "0x2"]}]}, t=T0 + i)
        writer.write({"type": "l2Book", "coin": "BTC"}, {"channel": "l2Book", "data": book(i)}, t=T0 + i)
        writer.write({"type": "userFills", "user": fill(i)[0]},
                     {"channel": "userFills", "data": {"user": fill(i)[0], "fills": [fill(i)[1]]}}, t=T0 + i)
    writer.write({"type": "candle", "coin": "BTC", "interval": "1m"}, {"channel": "candle", "data": {
        "t": int(T0 * 1000), "T": int(T0 * 1000) + 59_999, "s": "BTC", "i": "1m", "o": "1", "c": "2", "h": "3",
        "l": "0.5", "v": "10", "n": 4}, "backfill": True}, t=T0 + 5)
    writer.close()


def test_rows_flatten_books_to_the_top_levels(tmp_path: Path) -> None:
    write_sample(tmp_path)
    top = list(rows(read(tmp_path), "l2Book", levels=2))
    assert top[0]["bid_px_0"] == 100.0 and top[0]["ask_px_1"] == 102.0 and "bid_px_2" not in top[0]
    assert [r["tid"] for r in rows(read(tmp_path), "trades")] == [0, 1, 2]
    with pytest.raises(ValueError, match="table"):
        list(rows([], "orders"))


def test_dataframes_and_parquet(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    write_sample(tmp_path / "rec")
    trades = to_dataframe(tmp_path / "rec", "trades")
    assert list(trades["px"]) == [100.5] * 3 and str(trades["time"].dt.tz) == "UTC"
    candles = to_dataframe(tmp_path / "rec", "candle")
    assert candles.loc[0, "close"] == 2.0 and bool(candles.loc[0, "backfill"])
    written = to_parquet(tmp_path / "rec", tmp_path / "parquet", levels=3)
    assert sorted(p.name for p in written) == ["candle.parquet", "fills.parquet", "l2Book.parquet", "trades.parquet"]
    books = pandas.read_parquet(tmp_path / "parquet" / "l2Book.parquet")
    assert len(books) == 3 and books.loc[2, "ask_px_2"] == 105.0
