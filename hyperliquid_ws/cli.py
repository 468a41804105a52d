"""The ``hyperliquid-ws`` command: subscribe from the shell, one JSON message per line.

    hyperliquid-ws trades SOL
    hyperliquid-ws l2Book BTC nSigFigs=5
    hyperliquid-ws candle ETH 1m --testnet
    hyperliquid-ws demo                 # the embedded local server, no internet needed
    hyperliquid-ws demo l2Book ETH
    hyperliquid-ws record trades BTC l2Book ETH --out data/   # see docs/recording.md
    hyperliquid-ws serve --replay data/ --speed 10

Positional values fill the feed's required fields in order; ``name=value`` sets any
other field (the value is read as JSON when it parses, else as a string).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from contextlib import ExitStack
from typing import Any, TextIO

from . import __version__
from .client import HyperliquidWS
from .endpoints import MAINNET_API_URL, TESTNET_API_URL
from .errors import HyperliquidWSError
from .feeds import FEEDS

DEMO_FEEDS = ({"type": "trades", "coin": "BTC"}, {"type": "allMids"})


def build_subscription(type_: str, values: list[str]) -> dict[str, Any]:
    """``("candle", ["BTC", "1m"])`` -> ``{"type": "candle", "coin": "BTC", "interval": "1m"}``."""
    feed = FEEDS.get(type_)
    subscription: dict[str, Any] = {"type": type_}
    positional = [v for v in values if "=" not in v]
    named = [v for v in values if "=" in v]
    required = feed.required if feed else ()
    if len(positional) > len(required):
        raise ValueError(
            f"{type_} takes {len(required)} positional value(s) ({', '.join(required) or 'none'}), "
            f"got {positional}; set other fields as name=value"
        )
    subscription.update(zip(required, positional, strict=False))
    for item in named:
        name, _, raw = item.partition("=")
        try:
            subscription[name] = json.loads(raw)
        except ValueError:
            subscription[name] = raw
    return subscription


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperliquid-ws",
        description="Stream Hyperliquid WebSocket feeds as JSON lines.",
        epilog=f"feed types: {', '.join(sorted(FEEDS))}. "
        "'hyperliquid-ws demo [TYPE ...]' streams from an embedded local server.",
    )
    parser.add_argument("type", help="feed type, such as trades or l2Book; or 'demo'")
    parser.add_argument("values", nargs="*", help="required fields in order, then name=value")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--testnet", action="store_true", help=f"use {TESTNET_API_URL}")
    where.add_argument("--base-url", help=f"HTTP API root (default {MAINNET_API_URL})")
    parser.add_argument("--count", type=int, default=0, help="exit after this many messages")
    parser.add_argument("--allow-unknown", action="store_true", help="send an unknown type as is")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


class _Printer:
    """Writes each message as one JSON line; closes the client after ``count`` messages."""

    def __init__(self, out: TextIO, count: int) -> None:
        self._out = out
        self._count = count
        self._lock = threading.Lock()
        self.printed = 0
        self.client: HyperliquidWS | None = None

    def __call__(self, message: Any) -> None:
        with self._lock:
            if self._count and self.printed >= self._count:
                return
            try:
                self._out.write(json.dumps(message, separators=(",", ":")) + "\n")
                self._out.flush()
            except BrokenPipeError:  # the reader went away (| head): stop quietly
                self._count = self.printed = 1
            self.printed += 1
            done = bool(self._count) and self.printed >= self._count
        if done and self.client is not None:
            self.client.close()


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("record", "serve"):  # the recording subcommands (hyperliquid_ws.recording)
        from .recording import cli as recording_cli

        return (recording_cli.record_main if argv[0] == "record" else recording_cli.serve_main)(argv[1:])
    args = _parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    demo = args.type == "demo"
    try:
        if demo:
            subscriptions = [build_subscription(args.values[0], args.values[1:])] if args.values else list(DEMO_FEEDS)
        else:
            subscriptions = [build_subscription(args.type, args.values)]
    except ValueError as exc:
        print(f"hyperliquid-ws: {exc}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        if demo:
            try:
                from .testing import LocalServer
            except ImportError as exc:
                print(f"hyperliquid-ws: demo needs the testing extra "
                      f"(pip install 'hyperliquid-ws[testing]'): {exc}", file=sys.stderr)
                return 2
            server = stack.enter_context(LocalServer(tick_interval=0.25))
            base_url = server.base_url
            print(f"hyperliquid-ws: demo server at {base_url}", file=sys.stderr)
        else:
            base_url = args.base_url or (TESTNET_API_URL if args.testnet else MAINNET_API_URL)
        printer = _Printer(out, args.count)
        try:
            client = stack.enter_context(HyperliquidWS(base_url, on_error=_report))
            printer.client = client
            handles = [
                client.subscribe(subscription, printer, allow_unknown=args.allow_unknown)
                for subscription in subscriptions
            ]
            for handle in handles:
                try:
                    handle.wait(timeout=15)
                except TimeoutError:
                    print(f"hyperliquid-ws: no answer yet from {client.ws_url}; still trying",
                          file=sys.stderr)
        except (ValueError, HyperliquidWSError) as exc:
            print(f"hyperliquid-ws: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        client.run_forever()
    return 0


def _report(error: BaseException) -> None:
    print(f"hyperliquid-ws: {error}", file=sys.stderr)
