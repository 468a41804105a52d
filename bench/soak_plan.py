"""What a soak run asks of the soak server and of the client worker (``python -m bench.soak``).

Both processes build the same subscriptions and frames from a workload name:

``mix``     1,000 feeds: 250 coins x trades/l2Book/bbo/candle 1m (the suite's ``mix``, ~400 B mean).
``slow10``  10 feeds: trades on 10 coins (~305 B frames, unique tids), round-robin, so each
            feed gets a tenth of the rate.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from typing import Any

from bench.payloads import PoolItem, coins, frame_pool, subscriptions, trades_template

WORKLOADS = ("mix", "slow10")
SLOW_FEEDS = 10
_TEMPLATES_PER_COIN = 8


def soak_subscriptions(workload: str) -> list[dict[str, Any]]:
    if workload == "mix":
        return subscriptions("mix")
    if workload == "slow10":
        return [{"type": "trades", "coin": coin} for coin in coins(SLOW_FEEDS)]
    raise ValueError(f"unknown soak workload {workload!r}")


def soak_pool(workload: str, seed: int = 13) -> list[PoolItem]:
    if workload == "mix":
        return frame_pool("mix")
    if workload == "slow10":
        rng = random.Random(seed)
        return [trades_template(rng, coin) for _ in range(_TEMPLATES_PER_COIN) for coin in coins(SLOW_FEEDS)]
    raise ValueError(f"unknown soak workload {workload!r}")


@dataclass(frozen=True)
class SoakPlan:
    """Once every subscription of ``workload`` is acknowledged, wait ``start_delay``
    seconds (so the client's RSS after subscribing is measured before any data), then
    write frames for ``seconds``: at ``rate`` frames/s, or with ``rate == 0`` as fast as
    the client reads them (TCP back-pressure: the server waits whenever 4 MB are queued)."""

    workload: str
    seconds: float
    rate: float = 0.0
    start_delay: float = 0.5

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise ValueError(f"workload must be one of {WORKLOADS}, got {self.workload!r}")
        if not self.seconds > 0 or self.rate < 0 or self.start_delay < 0:
            raise ValueError(f"seconds must be > 0, rate and start_delay >= 0: {self!r}")

    @property
    def expected_subscriptions(self) -> int:
        return len(soak_subscriptions(self.workload))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> SoakPlan:
        return cls(**json.loads(text))
