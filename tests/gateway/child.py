"""The consumer processes of the gateway tests, started from a forkserver that has this
module (and so hyperliquid_ws.gateway and redis) imported already: 20 of them start in
well under a second, not 20 interpreter start-ups.

``consume(config, ready, stop)`` runs in the child. CONFIG: ``redis``, ``base_url``,
``name`` (or None), ``feeds`` (subscriptions), ``out`` (a file: one JSON line
``{"feed": i, "m": message}`` per message, written when the callback starts, so a kill
inside the callback still leaves its line), ``lease_ttl``, ``pause`` (seconds each
callback takes), ``stream`` (true: each feed is read by a ``for`` loop over
``client.stream(feed)`` on a thread of its own, which writes the line at the top of its
body, instead of a callback), ``stall_after`` (the body that writes that many lines in all
waits until ``stop``: the consumer falls behind the stream). Sets ``ready`` once every
feed is held upstream and has delivered a message, then runs until ``stop`` is set (or
it is killed).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from hyperliquid_ws.gateway import GatewayClient


def consume(config: dict[str, Any], ready: Any, stop: Any) -> None:
    out = open(config["out"], "a", buffering=1)  # noqa: SIM115 (lives as long as the process)
    lock = threading.Lock()
    pause = threading.Event()
    first = [threading.Event() for _ in config["feeds"]]

    written = [0]

    def callback_for(index: int) -> Any:
        def callback(message: object) -> None:
            with lock:
                out.write(json.dumps({"feed": index, "m": message}, separators=(",", ":")) + "\n")
                out.flush()
                written[0] += 1
                stall = written[0] >= config.get("stall_after", float("inf"))
            first[index].set()
            if stall:
                stop.wait()
            elif config.get("pause"):
                pause.wait(config["pause"])
        return callback

    client = GatewayClient(config["redis"], base_url=config["base_url"], name=config.get("name"),
                           lease_ttl=config.get("lease_ttl", 10.0), block=0.2)
    loops = []
    if config.get("stream"):
        streams = [client.stream(feed) for feed in config["feeds"]]

        def loop(index: int) -> None:
            body = callback_for(index)
            with streams[index] as stream:
                for message in stream:
                    body(message)

        loops = [threading.Thread(target=loop, args=(i,), name=f"child-loop-{i}") for i in range(len(streams))]
        for thread in loops:
            thread.start()
        handles = [s.wait(60) for s in streams]
    else:
        handles = [client.subscribe(feed, callback_for(i)) for i, feed in enumerate(config["feeds"])]
        for handle in handles:
            handle.wait(60)
    if all(event.wait(60) for event in first):
        ready.set()
    stop.wait()
    client.close()
    for thread in loops:
        thread.join(10)
    out.close()
