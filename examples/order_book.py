"""Keep the top of an order book on screen.

    python examples/order_book.py --coin ETH --levels 5
    python examples/order_book.py --base-url http://127.0.0.1:8765 --count 3
"""

import argparse

from hyperliquid_ws import MAINNET_API_URL, HyperliquidWS

parser = argparse.ArgumentParser()
parser.add_argument("--base-url", default=MAINNET_API_URL)
parser.add_argument("--coin", default="ETH")
parser.add_argument("--levels", type=int, default=5)
parser.add_argument("--count", type=int, default=0, help="stop after this many books (0: never)")
args = parser.parse_args()

books = 0

with HyperliquidWS(args.base_url) as ws:

    def on_book(message):
        global books
        bids, asks = message["data"]["levels"]
        print(f"--- {message['data']['coin']} at {message['data']['time']}")
        for ask in reversed(asks[: args.levels]):
            print(f"            {ask['px']:>12}  {ask['sz']}")
        for bid in bids[: args.levels]:
            print(f"{bid['sz']:>10}  {bid['px']:>12}")
        books += 1
        if args.count and books >= args.count:
            ws.close()

    ws.subscribe({"type": "l2Book", "coin": args.coin}, on_book).wait()
    ws.run_forever()
