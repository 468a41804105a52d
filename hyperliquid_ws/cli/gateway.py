"""``hyperliquid-ws gateway``: run a gateway from the shell until Ctrl-C or SIGTERM.

    hyperliquid-ws gateway --redis redis://localhost:6379/0
    hyperliquid-ws gateway --redis redis://10.0.0.5:6379/0 --shard 1/3 --testnet
    HLWS_REDIS_URL=redis://:PASSWORD@10.0.0.5:6379/0 hyperliquid-ws gateway   # no password in `ps`
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from ..endpoints import MAINNET_API_URL, TESTNET_API_URL

SWITCH_INTERVAL = 0.0005  # seconds
REDIS_URL_VARIABLE = "HLWS_REDIS_URL"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperliquid-ws gateway",
                                     description="Fan Hyperliquid feeds out through Redis Streams.")
    from_env = os.environ.get(REDIS_URL_VARIABLE)
    parser.add_argument("--redis", required=from_env is None, default=from_env,
                        help=f"Redis URL, such as redis://localhost:6379/0 (default: ${REDIS_URL_VARIABLE}, "
                        "which keeps a password out of the process list)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--testnet", action="store_true", help=f"use {TESTNET_API_URL}")
    where.add_argument("--base-url", help=f"HTTP API root (default {MAINNET_API_URL})")
    parser.add_argument("--shard", default="0/1", help="K/N: hold the feeds that hash to shard K of N")
    parser.add_argument("--maxlen", type=int, default=None,
                        help="entries kept per stream (MAXLEN ~; default 100,000; or --retention)")
    parser.add_argument("--retention", type=float, default=None,
                        help="keep entries this many seconds instead (MINID ~)")
    parser.add_argument("--grace", type=float, default=30.0, help="seconds a feed nobody wants stays subscribed")
    parser.add_argument("--leader-ttl", type=float, default=3.0, help="seconds of the leader lease")
    parser.add_argument("--prefix", default="hlws", help="key prefix in Redis")
    parser.add_argument("--name", default=None, help="this gateway's name in logs and leases")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else
                        logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        from ..gateway import Gateway
    except ImportError as exc:
        print(f"hyperliquid-ws gateway: {exc}", file=sys.stderr)
        return 2
    base_url = args.base_url or (TESTNET_API_URL if args.testnet else MAINNET_API_URL)
    try:
        gateway = Gateway(args.redis, base_url=base_url, shard=args.shard, maxlen=args.maxlen,
                          retention_s=args.retention, grace=args.grace, leader_ttl=args.leader_ttl,
                          prefix=args.prefix, name=args.name)  # errors: logged once each
    except ValueError as exc:
        print(f"hyperliquid-ws gateway: {exc}", file=sys.stderr)
        return 2

    stopped_by: list[tuple[int, bool]] = []  # (signal, whether it led then)

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped_by.append((signum, gateway.leading))
        gateway.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Its role as it changes (leading, standing by, stepping down) and the feeds it takes
    # up and lets go, whatever -v says: what an operator watches.
    logging.getLogger("hyperliquid_ws.gateway.gateway").setLevel(min(logging.INFO, logging.root.level))
    # This process is the gateway's own: hand the GIL between the upstream reader and the
    # appender every 0.5 ms, not 5 ms (the default would add up to 5 ms to every message).
    sys.setswitchinterval(SWITCH_INTERVAL)
    print(f"hyperliquid-ws gateway: {gateway!r}", file=sys.stderr, flush=True)
    gateway.run_forever()
    if not stopped_by:
        return 0
    signum, led = stopped_by[0]
    role = ("it led: what Redis took of its buffer is written, and its lease is given up (or expires)" if led
            else "it was standing by")
    print(f"hyperliquid-ws gateway: stopped ({signal.Signals(signum).name}); {role}", file=sys.stderr, flush=True)
    return 130 if signum == signal.SIGINT else 0
