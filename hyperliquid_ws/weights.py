"""What each ``/info`` request costs against the per-IP REST budget (protocol.md §9.1).

The budget is 1200 weight a minute per IP. A request weighs 2 (``l2Book``, ``allMids``,
``clearinghouseState``, ``orderStatus``, ``spotClearinghouseState``, ``exchangeStatus``),
60 (``userRole``) or 20 (every other type); the answers of the time-range and list
requests add 1 per 20 items returned (``candleSnapshot``: per 60). The docs say "per 20
items"; we charge a started 20 as a whole one (``items_weight``), so the client's count
never falls below the server's. Pure; any thread.
"""

from __future__ import annotations

import math
from typing import Any

BUDGET = 1200  # weight a minute per IP
WINDOW = 60.0  # s
DEFAULT_WEIGHT = 20
_WEIGHTS = {"l2Book": 2, "allMids": 2, "clearinghouseState": 2, "orderStatus": 2, "spotClearinghouseState": 2,
            "exchangeStatus": 2, "userRole": 60}
ITEMS_PER_WEIGHT = {
    **dict.fromkeys(("recentTrades", "historicalOrders", "userFills", "userFillsByTime", "fundingHistory",
                     "userFunding", "nonUserFundingUpdates", "twapHistory", "userTwapSliceFills",
                     "userTwapSliceFillsByTime", "delegatorHistory", "delegatorRewards", "validatorStats",
                     # protocol.md lists "nonUserFundingUpdates (sic)": most likely this request, which the
                     # ledger backfill sends; charged as well, so the count cannot fall short
                     "userNonFundingLedgerUpdates"), 20),
    "candleSnapshot": 60,
}


def request_weight(body: Any) -> int:
    """The weight of sending ``body`` (an info request: ``{"type": ..., ...}``)."""
    request_type = body.get("type") if isinstance(body, dict) else None
    return _WEIGHTS.get(request_type, DEFAULT_WEIGHT) if isinstance(request_type, str) else DEFAULT_WEIGHT


def items_weight(request_type: str, answer: Any) -> int:
    """The weight ``answer`` (the request's JSON reply) adds: 1 per 20 items (or 60)
    started, for the request types that count them; 0 otherwise."""
    per = ITEMS_PER_WEIGHT.get(request_type)
    if per is None or not isinstance(answer, list):
        return 0
    return math.ceil(len(answer) / per)
