"""A small position-keeping bot: it follows one coin's mid price and one account's fills.

    python examples/bot.py 0xYourAddress                      # mainnet, Ctrl-C to stop
    python examples/bot.py --base-url http://127.0.0.1:8765 --seconds 3 0xYourAddress

``PositionBot`` is handed a ``HyperliquidWS`` instead of making its own, so a test can
give it a client on a local server: ``examples/test_bot.py`` shows how, with the
fixtures of the hyperliquid_ws pytest plugin. The bot never reconnects or resubscribes
itself; the client does that, and deduplicates the fills snapshot that follows.

Threads: the callbacks run on the client's connection threads (the reader, or the relay
while the reader is busy, so the mids and the fills may be handled at the same moment);
``state()`` may be called from any thread. Both sides meet under one lock.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass
from typing import Any

from hyperliquid_ws import MAINNET_API_URL, HyperliquidWS, Subscription


@dataclass(frozen=True)
class BotState:
    """What the bot knows, at one moment."""

    coin: str
    mid: float | None  # the latest allMids price of coin; None before the first message
    position: float  # signed size of coin: positive long, negative short
    fills: int  # fills of coin since the bot started (the opening snapshot is history)
    last_fill_tid: int | None
    connected: bool

    @property
    def notional(self) -> float | None:
        """Position value at the mid, in USDC."""
        return None if self.mid is None else self.position * self.mid


class PositionBot:
    """Keeps ``coin``'s mid and ``user``'s position in ``coin`` up to date."""

    def __init__(self, ws: HyperliquidWS, user: str, coin: str = "BTC") -> None:
        self.ws = ws
        self.user = user
        self.coin = coin
        self._lock = threading.Lock()
        self._mid: float | None = None
        self._position = 0.0
        self._fills = 0
        self._latest: tuple[int, int] | None = None  # (time, tid) of the newest fill applied
        self._history_seen = False
        self._subscriptions: list[Subscription] = []

    def start(self, timeout: float = 10.0) -> PositionBot:
        """Subscribe, and wait until the server has acknowledged both feeds."""
        self._subscriptions = [
            self.ws.subscribe({"type": "allMids"}, self._on_mids),
            self.ws.subscribe({"type": "userFills", "user": self.user}, self._on_fills),
        ]
        for subscription in self._subscriptions:
            subscription.wait(timeout=timeout)
        return self

    def stop(self) -> None:
        """Unsubscribe; the client stays open for whoever owns it."""
        for subscription in self._subscriptions:
            subscription.unsubscribe()
        self._subscriptions = []

    def state(self) -> BotState:
        with self._lock:
            return BotState(coin=self.coin, mid=self._mid, position=self._position, fills=self._fills,
                            last_fill_tid=self._latest[1] if self._latest else None,
                            connected=self.ws.connected)

    # -- callbacks (the client's threads) --------------------------------------------------

    def _on_mids(self, message: dict[str, Any]) -> None:
        mid = message["data"]["mids"].get(self.coin)
        if mid is not None:
            with self._lock:
                self._mid = float(mid)

    def _on_fills(self, message: dict[str, Any]) -> None:
        data = message["data"]
        # The first snapshot is history: it sets the position but counts no new fills.
        # Later snapshots (after a reconnect) carry only fills this bot has not seen.
        fills = sorted((f for f in data["fills"] if f["coin"] == self.coin), key=lambda f: (f["time"], f["tid"]))
        with self._lock:
            history = bool(data.get("isSnapshot")) and not self._history_seen
            self._history_seen = self._history_seen or bool(data.get("isSnapshot"))
            for fill in fills:
                key = (fill["time"], fill["tid"])
                if not history:
                    self._fills += 1
                if self._latest is None or key > self._latest:
                    # Every fill says the position it started from: no drift, even if
                    # fills were missed before the bot started.
                    size = float(fill["sz"]) if fill["side"] == "B" else -float(fill["sz"])
                    self._position = round(float(fill["startPosition"]) + size, 10)
                    self._latest = key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("user", help="account address, 0x followed by 40 hex digits")
    parser.add_argument("--base-url", default=MAINNET_API_URL)
    parser.add_argument("--coin", default="BTC")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between state lines")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: never)")
    args = parser.parse_args()

    stopping = threading.Event()
    deadline = time.monotonic() + args.seconds if args.seconds else None
    with HyperliquidWS(args.base_url) as ws:
        bot = PositionBot(ws, args.user, args.coin).start()
        try:
            while not stopping.wait(args.every):
                state = bot.state()
                print(f"{state.coin} mid {state.mid} position {state.position:g} notional {state.notional} "
                      f"fills {state.fills} connected {state.connected}", flush=True)
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
