"""The gateway command with timing hooks: where a message's time goes inside the gateway.

    python -m bench.gateway --consumers 1 --repeats 1 --seconds 9 --probe bench/gateway_probe.py

``bench.gateway`` runs the gateway as ``python bench/gateway_probe.py gateway ...``; this
wraps ``Channel.pipeline`` (the appender's ``APPEND`` call) and ``Appender._write``, then
runs the real command. Every 3 s it prints to stderr, as p50/p99 in µs over that span:

- ``queued``: from the blaster's send stamp (the trade's ``time``, ns) of the oldest
  message of a write to the moment the appender starts packing it (the upstream client,
  ``HeldFeed.deliver``, ``Appender.put``, and the wait for the write in flight);
- ``pack_send``: packing the ``EVALSHA`` and sending it;
- ``round_trip``: from the send to the reply (Redis running the script, and the appender
  thread getting the GIL back);
- ``batch``: messages per write.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from typing import Any


def install() -> None:
    from hyperliquid_ws.gateway import appender, channel

    spans: dict[str, list[int]] = {"queued": [], "pack_send": [], "round_trip": [], "batch": []}
    current: dict[str, int] = {}
    pipeline = channel.Channel.pipeline

    def timed_pipeline(self: Any, commands: Any) -> Any:
        if not commands or commands[0][0] != "EVALSHA":
            return pipeline(self, commands)
        connection = self._connection
        if connection is None:
            connection = self._connection = self._pool.make_connection()
        started = time.time_ns()
        try:
            connection.send_packed_command(connection.pack_commands(commands), check_health=False)
            sent = time.time_ns()
            replies = [connection.read_response() for _ in commands]
        except BaseException:
            connection.disconnect()
            raise
        spans["pack_send"].append((sent - started) // 1000)
        spans["round_trip"].append((time.time_ns() - sent) // 1000)
        if "stamp" in current:
            spans["queued"].append((started - current["stamp"]) // 1000)
        return replies

    write = appender.Appender._write

    def timed_write(self: Any, batch: Any, value: str) -> Any:
        try:
            current["stamp"] = json.loads(batch[0].text)["data"][0]["time"]
        except (KeyError, IndexError, TypeError, ValueError):
            current.pop("stamp", None)
        spans["batch"].append(len(batch))
        return write(self, batch, value)

    channel.Channel.pipeline = timed_pipeline  # type: ignore[method-assign]
    appender.Appender._write = timed_write  # type: ignore[method-assign]

    def report() -> None:
        while True:
            time.sleep(3)
            parts = []
            for name, values in spans.items():
                if len(values) >= 100:
                    cuts = statistics.quantiles(values, n=100)
                    parts.append(f"{name} {cuts[49]:.0f}/{cuts[98]:.0f}")
                values.clear()
            if parts:
                sys.stderr.write("gateway_probe p50/p99 us: " + "; ".join(parts) + "\n")
                sys.stderr.flush()

    threading.Thread(target=report, name="gateway-probe-report", daemon=True).start()


if __name__ == "__main__":  # the forkserver of bench.gateway imports nothing from here
    install()
    from hyperliquid_ws.cli.command import main

    sys.exit(main(sys.argv[1:]))
