"""Follow one account's fills: the first message is a snapshot of recent history.

    python examples/user_fills.py 0xYourAddress
    python examples/user_fills.py --base-url http://127.0.0.1:8765 --count 1 <address>
"""

import argparse

from hyperliquid_ws import MAINNET_API_URL, HyperliquidWS

parser = argparse.ArgumentParser()
parser.add_argument("user", help="account address, 0x followed by 40 hex digits")
parser.add_argument("--base-url", default=MAINNET_API_URL)
parser.add_argument("--count", type=int, default=0, help="stop after this many messages (0: never)")
args = parser.parse_args()

messages = 0

with HyperliquidWS(args.base_url) as ws:

    def on_fills(message):
        global messages
        data = message["data"]
        kind = "snapshot" if data.get("isSnapshot") else "update"
        print(f"{kind}: {len(data['fills'])} fill(s)")
        for fill in data["fills"]:
            print(f"  {fill['time']} {fill['coin']} {fill['dir']} {fill['sz']} @ {fill['px']} "
                  f"fee {fill['fee']} {fill['feeToken']} (tid {fill['tid']})")
        messages += 1
        if args.count and messages >= args.count:
            ws.close()

    ws.subscribe({"type": "userFills", "user": args.user}, on_fills).wait()
    ws.run_forever()
