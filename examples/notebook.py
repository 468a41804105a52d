"""A notebook-friendly pattern: let the client fill a small structure in the background,
and read it from cells whenever you like. No run_forever(); the cell returns at once.

    python examples/notebook.py --base-url http://127.0.0.1:8765 --seconds 2
"""

import argparse
import threading
from collections import deque

import hyperliquid_ws
from hyperliquid_ws import MAINNET_API_URL, HyperliquidWS

parser = argparse.ArgumentParser()
parser.add_argument("--base-url", default=MAINNET_API_URL)
parser.add_argument("--coin", default="BTC")
parser.add_argument("--seconds", type=float, default=10.0)
args = parser.parse_args()

# --- cell 1: start streaming -----------------------------------------------------------
hyperliquid_ws.close_all()  # running this cell again must not leave the previous client running
ws = HyperliquidWS(args.base_url)
recent_trades = deque(maxlen=100)  # bounded: a notebook left open all day stays small
mids = {}
lock = threading.Lock()


def on_trades(message):
    with lock:
        recent_trades.extend(message["data"])


def on_mids(message):
    with lock:
        mids.update(message["data"]["mids"])


ws.subscribe({"type": "trades", "coin": args.coin}, on_trades)
ws.subscribe({"type": "allMids"}, on_mids).wait()

# --- cell 2, any time later: look at what arrived ----------------------------------------
threading.Event().wait(args.seconds)
with lock:
    print(f"{args.coin} mid {mids.get(args.coin)}; {len(recent_trades)} recent trades")
    for trade in list(recent_trades)[-5:]:
        print(f"  {trade['side']} {trade['sz']} @ {trade['px']}")

# --- last cell: stop --------------------------------------------------------------------
ws.close()
