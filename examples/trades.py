"""Print every SOL trade as it happens.

    python examples/trades.py                     # mainnet
    python examples/trades.py --base-url http://127.0.0.1:8765 --coin BTC --count 5
"""

import argparse
import threading

from hyperliquid_ws import MAINNET_API_URL, HyperliquidWS

parser = argparse.ArgumentParser()
parser.add_argument("--base-url", default=MAINNET_API_URL)
parser.add_argument("--coin", default="SOL")
parser.add_argument("--count", type=int, default=0, help="stop after this many trades (0: never)")
args = parser.parse_args()

seen = 0
lock = threading.Lock()

with HyperliquidWS(args.base_url) as ws:

    def on_trades(message):
        global seen
        for trade in message["data"]:
            side = "buy " if trade["side"] == "B" else "sell"
            print(f"{trade['coin']} {side} {trade['sz']:>10} @ {trade['px']}")
            with lock:
                seen += 1
                if args.count and seen >= args.count:
                    ws.close()

    ws.subscribe({"type": "trades", "coin": args.coin}, on_trades).wait()
    ws.run_forever()
