"""What one benchmark run asks of the blaster and of a client worker."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from bench.payloads import subscriptions

MODES = ("blast", "paced", "reconnect")


@dataclass(frozen=True)
class Plan:
    """``workload`` names the subscriptions and frames (see ``payloads``).

    ``blast`` writes ``frames`` pre-built frames as fast as the socket takes them, once
    every subscription is acknowledged; ``paced`` writes ``frames`` freshly stamped
    trades at ``rate`` a second; ``reconnect`` drops the link ``drop_after`` seconds
    after everything is acknowledged and times how long until it is all acknowledged
    again on a new connection.
    """

    workload: str
    mode: str = "blast"
    frames: int = 0
    rate: float = 0.0
    drop_after: float = 0.3

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    @property
    def expected_subscriptions(self) -> int:
        return len(subscriptions(self.workload))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        return cls(**json.loads(text))
