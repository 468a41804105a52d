"""A consumer process for the gateway tests: ``python tests/gateway_child.py CONFIG_JSON``.

CONFIG: ``redis``, ``base_url``, ``name`` (or null), ``feeds`` (subscriptions), ``out`` (a
file: one JSON line ``{"feed": i, "m": message}`` per message, written when the callback
starts, so a kill inside the callback still leaves its line), ``lease_ttl``, ``pause``
(seconds each callback takes). Prints ``ready`` once every feed is held upstream and has
delivered a message, then runs until its stdin closes (or it is killed).
"""

from __future__ import annotations

import json
import sys
import threading

from hyperliquid_ws.gateway import GatewayClient


def main() -> None:
    config = json.loads(sys.argv[1])
    out = open(config["out"], "a", buffering=1)  # noqa: SIM115 (lives as long as the process)
    lock = threading.Lock()
    pause = threading.Event()
    first = [threading.Event() for _ in config["feeds"]]

    def callback_for(index: int):  # type: ignore[no-untyped-def]
        def callback(message: object) -> None:
            with lock:
                out.write(json.dumps({"feed": index, "m": message}, separators=(",", ":")) + "\n")
                out.flush()
            first[index].set()
            if config.get("pause"):
                pause.wait(config["pause"])
        return callback

    client = GatewayClient(config["redis"], base_url=config["base_url"], name=config.get("name"),
                           lease_ttl=config.get("lease_ttl", 10.0), block=0.2)
    handles = [client.subscribe(feed, callback_for(i)) for i, feed in enumerate(config["feeds"])]
    for handle in handles:
        handle.wait(30)
    for event in first:
        if not event.wait(30):
            print("no message", flush=True)
    print("ready", flush=True)
    sys.stdin.read()
    client.close()
    out.close()


if __name__ == "__main__":
    main()
