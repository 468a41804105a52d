"""``python -m hyperliquid_ws.testing``: run the local server until Ctrl-C.

The main thread only waits; the server runs on its own ``hlws-local-server`` thread.
"""

from __future__ import annotations

import argparse
import logging
import threading

from hyperliquid_ws.testing.server import LocalServer

logger = logging.getLogger("hyperliquid_ws.testing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hyperliquid_ws.testing",
        description="Run a local Hyperliquid exchange (WebSocket /ws and HTTP /info).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--tick", type=float, default=0.5,
                        help="seconds between market ticks (default 0.5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--greeting", action="store_true",
                        help="send 'Websocket connection established.' on connect")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = LocalServer(args.host, args.port, tick_interval=args.tick, seed=args.seed,
                         greeting=args.greeting)
    server.start()
    logger.info("base_url=%s ws_url=%s users=%s", server.base_url, server.ws_url,
                ", ".join(server.market.users))
    logger.info("press Ctrl-C to stop")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
