"""The ``hyperliquid-ws`` command: subscribe from the shell, one JSON message per line.

    hyperliquid-ws trades SOL
    hyperliquid-ws l2Book BTC nSigFigs=5 --format table
    hyperliquid-ws candle ETH 1m --testnet
    hyperliquid-ws info meta            # any /info request; fields as name=value
    hyperliquid-ws demo                 # the embedded local server, no internet needed
    hyperliquid-ws demo l2Book ETH
    hyperliquid-ws gateway --redis redis://localhost:6379/0   # see docs/gateway.md
    hyperliquid-ws record trades BTC l2Book ETH --out data/   # see docs/recording.md
    hyperliquid-ws serve --replay data/ --speed 10

Positional values fill the feed's required fields in order; ``name=value`` sets any
other field (the value is read as JSON when it parses, else as a string). Feed types
match whatever their case; a typo gets a suggestion.

Exit status: 0 when done (``--count`` reached), 1 when the server cannot be reached
within ``--connect-timeout`` or refuses, 2 for a bad command line, 130 on Ctrl-C.
``main()`` runs on the main thread; the printer and the error reporter run where the
client runs callbacks (a connection's thread). ``console()`` in ``cli/__init__.py``
puts Ctrl-C handling in place before this module is imported.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from .. import __version__
from ..endpoints import MAINNET_API_URL, TESTNET_API_URL, socket_url
from ..errors import HyperliquidWSError, SubscriptionError
from ..feeds import FEEDS, canonical, feed_hint, known_feed_type
from . import INTERRUPTED
from .table import answer_lines, message_lines

if TYPE_CHECKING:
    from ..client import HyperliquidWS

DEMO_FEEDS = ({"type": "trades", "coin": "BTC"}, {"type": "allMids"})
_CONNECT_FAILED = re.compile(r"\S+: cannot connect to \S+: connect failed: (?P<reason>.*)\Z", re.DOTALL)


def feed_type(name: str) -> str:
    """The feed type ``name`` means, whatever its case; ``ValueError`` with a suggestion
    for a typo."""
    found = known_feed_type(name)
    if found is not None:
        return found
    raise ValueError(f"unknown feed type {name!r}; {feed_hint(name)} (--allow-unknown sends it as it is)")


def _named(values: list[str], into: dict[str, Any]) -> None:
    for item in values:
        name, _, raw = item.partition("=")
        try:
            into[name] = json.loads(raw)
        except ValueError:
            into[name] = raw


def build_subscription(type_: str, values: list[str], *, allow_unknown: bool = False) -> dict[str, Any]:
    """``("candle", ["BTC", "1m"])`` -> ``{"type": "candle", "coin": "BTC", "interval": "1m"}``;
    ``ValueError`` saying what is wrong for an unknown type or a missing or bad field."""
    try:
        type_ = feed_type(type_)
    except ValueError:
        if not allow_unknown:
            raise
    feed = FEEDS.get(type_)
    subscription: dict[str, Any] = {"type": type_}
    positional = [v for v in values if "=" not in v]
    required = feed.required if feed else ()
    if len(positional) > len(required):
        takes = f"takes {', '.join(required)} in that order" if required else "takes no positional values"
        raise ValueError(f"{subscription['type']} {takes}, got {' '.join(positional)!r}; "
                         "set other fields as name=value")
    subscription.update(zip(required, positional, strict=False))
    _named([v for v in values if "=" in v], subscription)
    canonical(subscription, allow_unknown=allow_unknown)  # a missing or bad field is a usage error, said now
    return subscription


def build_request(values: list[str]) -> dict[str, Any]:
    """``["l2Book", "coin=ETH"]`` -> ``{"type": "l2Book", "coin": "ETH"}`` (an ``/info`` body)."""
    if not values or "=" in values[0]:
        raise ValueError("info needs a request type, such as 'info meta' or 'info l2Book coin=ETH'")
    positional = [v for v in values[1:] if "=" not in v]
    if positional:
        raise ValueError(f"info takes its fields as name=value, got {' '.join(positional)!r}")
    request: dict[str, Any] = {"type": values[0]}
    _named(values[1:], request)
    return request


def shown_url(url: str) -> str:
    """``url`` fit to print: scheme, host and port; no credentials, no key in a path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    path = parts.path if parts.path in ("", "/ws", "/info") else "/…" + ("/ws" if parts.path.endswith("/ws") else "")
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of messages >= 1, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperliquid-ws",
        usage=("%(prog)s [options] TYPE [VALUE ...] | info REQUEST [name=value ...] | demo [TYPE ...] | "
               "record TYPE VALUE... --out DIR | serve [--replay DIR]"),
        description="Stream Hyperliquid WebSocket feeds as JSON lines (or a compact table), "
                    "or ask one /info request.",
        epilog=f"feed types (any case): {', '.join(sorted(FEEDS))}. "
               "'demo ...' does the same against an embedded local server, no internet needed. "
               "'record' and 'serve' have their own --help (record and replay). "
               "Exit status: 0 done, 1 unreachable or refused, 2 bad usage, 130 Ctrl-C.",
    )
    parser.add_argument("type", nargs="?", metavar="TYPE", help="feed type such as trades or l2Book; info; demo")
    parser.add_argument("values", nargs="*", metavar="VALUE",
                        help="the feed's required fields in order, then optional ones as name=value")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--testnet", action="store_true", help=f"use {TESTNET_API_URL}")
    where.add_argument("--base-url", help=f"HTTP API root (default {MAINNET_API_URL})")
    parser.add_argument("-n", "--count", type=_positive_int, help="exit after this many messages")
    parser.add_argument("--format", choices=("json", "table"), default="json",
                        help="json: one message per line, as sent (default); table: short lines for people")
    parser.add_argument("--connect-timeout", type=_positive_seconds, default=15.0, metavar="SECONDS",
                        help="give up (exit 1) when the first connection fails for this long (default 15)")
    parser.add_argument("--allow-unknown", action="store_true", help="send an unknown feed type as it is")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return parser


class _Printer:
    """Writes each message; closes the client after ``count`` messages (any thread)."""

    def __init__(self, out: TextIO, count: int | None, render: Callable[[Any], list[str]]) -> None:
        self._out = out
        self._count = count
        self._render = render
        self._lock = threading.Lock()
        self.printed = 0
        self.done = threading.Event()  # count reached, or the reader went away
        self.client: HyperliquidWS | None = None

    def __call__(self, message: Any) -> None:
        with self._lock:
            if self.done.is_set():
                return
            try:
                self._out.write("".join(line + "\n" for line in self._render(message)))
                self._out.flush()
                self.printed += 1
            except BrokenPipeError:  # the reader went away (| head): stop quietly
                self.done.set()
            if self._count is not None and self.printed >= self._count:
                self.done.set()
        if self.done.is_set() and self.client is not None:
            self.client.close()


class _Reporter:
    """The ``on_error`` hook: each error on one line. A refusal of a subscription the
    command is still waiting for is left out: ``wait()`` raises it, and that is printed."""

    def __init__(self) -> None:
        self.waiting = True

    def __call__(self, error: BaseException) -> None:
        if not (self.waiting and isinstance(error, SubscriptionError)):
            print(f"hyperliquid-ws: {error}", file=sys.stderr)


class _ConnectFailures(logging.Filter):
    """Connect failures name the server they could not reach; one line per new reason,
    not one per retry."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._last = ""

    def filter(self, record: logging.LogRecord) -> bool:
        found = _CONNECT_FAILED.match(record.getMessage())
        if found is None:
            self._last = ""
            return True
        text = f"cannot connect to {self._url}: {found['reason']}; retrying"
        if text == self._last:
            return False
        self._last, record.msg, record.args = text, text, ()
        return True


def _log_to_stderr(verbose: int, url: str) -> Callable[[], None]:
    """Library warnings (and with -v, info) to stderr for the run; returns the undo."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose
                                           else "hyperliquid-ws: %(message)s"))
    handler.addFilter(_ConnectFailures(url))
    logger = logging.getLogger("hyperliquid_ws")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logger.propagate, propagate = False, logger.propagate

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    return undo


def _wait_connected(client: HyperliquidWS, timeout: float, done: threading.Event) -> str | None:
    """Wait for the first connection; ``None`` once up (or done), else why not."""
    deadline = time.monotonic() + timeout
    while not (client.connected or done.is_set()):
        if time.monotonic() >= deadline:
            reason = client.stats()["last_disconnect_reason"] or "no answer"
            return (f"could not connect to {shown_url(client.ws_url)} within {timeout:g} s "
                    f"(last attempt: {reason})")
        done.wait(0.05)
    return None


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gateway"]:  # the Redis gateway (hyperliquid_ws.gateway, the redis extra)
        from .gateway import main as gateway_main

        return gateway_main(argv[1:])
    if argv[:1] in (["record"], ["serve"]):  # the recording subcommands (hyperliquid_ws.recording)
        from . import record

        return (record.record_main if argv[0] == "record" else record.serve_main)(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.type is None:
        parser.error("give a feed type and its values (trades SOL), info REQUEST (info meta), or demo")
    words: list[str] = [args.type, *args.values]
    demo = words[0].lower() == "demo"
    if demo:
        words = words[1:]
    try:
        if words and words[0].lower() == "info":
            request: dict[str, Any] | None = build_request(words[1:])
            subscriptions: list[dict[str, Any]] = []
        else:
            request = None
            subscriptions = ([build_subscription(words[0], words[1:], allow_unknown=args.allow_unknown)]
                             if words else list(DEMO_FEEDS))
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"hyperliquid-ws: error: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, demo, request, subscriptions, out)
    except KeyboardInterrupt:
        return INTERRUPTED


def _run(args: argparse.Namespace, demo: bool, request: dict[str, Any] | None,
         subscriptions: list[dict[str, Any]], out: TextIO) -> int:
    with ExitStack() as stack:
        if demo:
            try:
                from ..testing import LocalServer
            except ImportError as exc:
                print(f"hyperliquid-ws: demo needs the testing extra "
                      f"(pip install 'hyperliquid-ws[testing]'): {exc}", file=sys.stderr)
                return 2
            server = stack.enter_context(LocalServer(tick_interval=0.25))
            base_url = server.base_url
            print(f"hyperliquid-ws: demo server at {base_url}", file=sys.stderr)
        else:
            base_url = args.base_url or (TESTNET_API_URL if args.testnet else MAINNET_API_URL)
        from ..client import HyperliquidWS

        reporter = _Reporter()
        try:
            url = shown_url(socket_url(base_url))
        except ValueError as exc:
            print(f"hyperliquid-ws: {exc}", file=sys.stderr)
            return 2
        stack.callback(_log_to_stderr(args.verbose, url))
        client = stack.enter_context(HyperliquidWS(base_url, on_error=reporter,
                                                   open_timeout=min(10.0, args.connect_timeout)))
        render = message_lines if args.format == "table" else _json_line
        printer = _Printer(out, args.count, render)
        printer.client = client
        try:
            if request is not None:
                return _ask(client, request, args, out)
            handles = [client.subscribe(s, printer, allow_unknown=args.allow_unknown) for s in subscriptions]
            problem = _wait_connected(client, args.connect_timeout, printer.done)
            if problem is not None:
                print(f"hyperliquid-ws: {problem}", file=sys.stderr)
                return 1
            for handle in handles:
                try:
                    handle.wait(timeout=10)
                except TimeoutError:
                    print(f"hyperliquid-ws: no answer yet from {shown_url(client.ws_url)} to "
                          f"{json.dumps(handle.subscription)}; still waiting", file=sys.stderr)
            reporter.waiting = False
        except (ValueError, HyperliquidWSError) as exc:
            print(f"hyperliquid-ws: {exc}", file=sys.stderr)
            return 1
        while not printer.done.wait(0.5):
            pass
    return 0


def _ask(client: HyperliquidWS, request: dict[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    """``hyperliquid-ws info ...``: one request, its answer printed."""
    client._start()  # connect now (as subscribe would), to say soon and clearly if the server cannot be reached
    problem = _wait_connected(client, args.connect_timeout, threading.Event())
    if problem is not None:
        print(f"hyperliquid-ws: {problem}", file=sys.stderr)
        return 1
    answer = client.info(request, timeout=10)
    lines = answer_lines(answer) if args.format == "table" else [_json_line(answer)[0]]
    out.write("".join(line + "\n" for line in lines))
    out.flush()
    return 0


def _json_line(message: Any) -> list[str]:
    return [json.dumps(message, separators=(",", ":"))]
