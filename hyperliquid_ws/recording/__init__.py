"""Record feeds to disk, read them back, replay them through the local server.

    from hyperliquid_ws import recording
    with recording.Recorder("data/", base_url=...) as recorder:
        recorder.record({"type": "trades", "coin": "BTC"})
    for record in recording.read("data/", feeds=["trades"]):
        record.time, record.subscription, record.message

Map (docs/recording.md is the guide):

- ``codec.py``: the line format, file names, gzip/zstd streams, reading a file up to
  its last whole line. Pure; any thread.
- ``writer.py``: ``RecordingWriter``, hourly files; thread-safe (one lock); a failed write
  (a full disk) is cut back and written again, nothing lost or repeated.
- ``recorder.py``: ``Recorder``, a client's callbacks into a writer; its
  ``hlws-recorder-flush`` thread flushes every ``flush_interval`` s.
- ``reader.py``: ``read`` and ``Record``; the caller's thread.
- ``frames.py``: ``to_dataframe``/``to_parquet`` (the ``data`` extra: pandas, pyarrow).
- ``archive.py``: imports Hyperliquid's S3 archive files (l2Book LZ4, node fills; ``lz4``).
- ``timeline.py``: a replay's records, schedule and state as of its clock. Pure.
- ``replay_info.py``: ``/info`` answers from the timeline.
- ``replay.py``: ``Replay``, the task on the local server's loop that sends the records.
- the commands, ``hyperliquid-ws record ...`` and ``hyperliquid-ws serve [--replay DIR]``, live
  with the other commands in ``hyperliquid_ws/cli/record.py``.

Depends on the core client and (for replay) ``hyperliquid_ws.testing``; neither depends
on it. Optional packages are imported only by the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .reader import Record, read, recording_files
from .recorder import Recorder
from .writer import RecordingWriter

if TYPE_CHECKING:
    from .replay import Replay

__all__ = ["Record", "Recorder", "RecordingWriter", "Replay", "read", "recording_files"]


def __getattr__(name: str) -> Any:
    """``Replay`` needs the testing extra (aiohttp); import it on first use."""
    if name == "Replay":
        from .replay import Replay

        return Replay
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
