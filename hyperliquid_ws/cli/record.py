"""``hyperliquid-ws record`` and ``hyperliquid-ws serve``: the recording commands.

    hyperliquid-ws record trades BTC l2Book ETH userFills 0x... --out data/
    hyperliquid-ws serve --replay data/ --speed 10

The main thread only waits (and prints the progress line); the recorder's and the
client's threads do the work.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any, TextIO

from ..endpoints import MAINNET_API_URL, TESTNET_API_URL
from ..feeds import feed_hint, known_feed_type
from .command import build_subscription


def split_feeds(tokens: list[str]) -> list[dict[str, Any]]:
    """``["trades", "BTC", "l2Book", "ETH", "nSigFigs=5"]`` -> two subscriptions: each
    known feed type starts one, the values after it fill its fields. Raises ``ValueError``."""
    groups: list[list[str]] = []
    for token in tokens:
        kind = known_feed_type(token)  # any case: l2book is l2Book
        if kind is not None:
            groups.append([kind])
        elif not groups:
            raise ValueError(f"{token!r} is not a feed type; {feed_hint(token)}")
        else:
            groups[-1].append(token)
    if not groups:
        raise ValueError("name at least one feed, e.g. 'trades BTC'")
    return [build_subscription(group[0], group[1:]) for group in groups]


def _record_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperliquid-ws record",
                                     description="Record feeds into hourly NDJSON files.")
    parser.add_argument("feeds", nargs="+", help="TYPE VALUE... per feed: trades BTC l2Book ETH userFills 0x...")
    parser.add_argument("--out", required=True, help="directory for the files (created if missing)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--testnet", action="store_true", help=f"use {TESTNET_API_URL}")
    where.add_argument("--base-url", help=f"HTTP API root (default {MAINNET_API_URL})")
    parser.add_argument("--compression", choices=("gzip", "zstd", "none"), default="gzip")
    parser.add_argument("--flush-interval", type=float, default=1.0, help="seconds (default 1): the most a crash loses")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: never)")
    parser.add_argument("--progress-interval", type=float, default=1.0, help="seconds between progress lines")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def record_main(argv: list[str], err: TextIO = sys.stderr) -> int:
    from ..recording.recorder import Recorder

    args = _record_parser().parse_args(argv)
    try:
        subscriptions = split_feeds(args.feeds)
        base_url = args.base_url or (TESTNET_API_URL if args.testnet else MAINNET_API_URL)
        recorder = Recorder(args.out, base_url=base_url, compression=args.compression,
                            flush_interval=args.flush_interval,
                            client_options={"on_error": lambda e: print(f"hyperliquid-ws: {e}", file=err)})
    except (ValueError, ImportError) as exc:
        print(f"hyperliquid-ws record: {exc}", file=err)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ends = time.monotonic() + args.duration if args.duration > 0 else None
    end = "\r" if err.isatty() else "\n"
    try:
        for subscription in subscriptions:
            recorder.record(subscription)
        print(f"hyperliquid-ws record: {len(subscriptions)} feed(s) into {args.out}", file=err)
        while not stop.wait(args.progress_interval):
            if not args.quiet:
                err.write(recorder.progress_line() + end)
                err.flush()
            if ends is not None and time.monotonic() >= ends:
                break
    except KeyboardInterrupt:
        pass
    except ValueError as exc:
        print(f"hyperliquid-ws record: {exc}", file=err)
        return 2
    finally:
        recorder.close()
    if not args.quiet:
        err.write(recorder.progress_line() + "\n")
    return 0


def _speed(text: str) -> float | None:
    if text in ("max", "none", "None"):
        return None
    return float(text)


def serve_main(argv: list[str], err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="hyperliquid-ws serve",
                                     description="Run the local server: the scripted market, or a replay.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--replay", help="a recording (file or directory) to replay instead of the scripted market")
    parser.add_argument("--speed", type=_speed, default=1.0, help="times the recorded pace; 'max': as fast as read")
    parser.add_argument("--tick", type=float, default=0.5, help="scripted market: seconds between ticks")
    args = parser.parse_args(argv)
    try:
        from ..recording.replay import Replay
        from ..testing import LocalServer
    except ImportError as exc:
        print(f"hyperliquid-ws serve: needs the testing extra (pip install 'hyperliquid-ws[testing]'): {exc}",
              file=err)
        return 2
    try:
        replay = Replay(args.replay, speed=args.speed) if args.replay else None  # starts at the first subscription
        server = LocalServer(args.host, args.port, tick_interval=args.tick, replay=replay)
    except (ValueError, FileNotFoundError) as exc:
        print(f"hyperliquid-ws serve: {exc}", file=err)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        what = f"replaying {len(replay)} messages from {args.replay}" if replay else "scripted market"
        print(f"hyperliquid-ws serve: {server.base_url} ({what}); press Ctrl-C to stop", file=err, flush=True)
        try:
            while not stop.wait(1.0):
                if replay is not None and replay.wait_done(0):
                    print("hyperliquid-ws serve: replay finished; still answering", file=err, flush=True)
                    replay = None
        except KeyboardInterrupt:
            pass
    return 0
