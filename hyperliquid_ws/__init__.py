"""hyperliquid_ws: a thread-based client for Hyperliquid's WebSocket API.

    from hyperliquid_ws import HyperliquidWS
    ws = HyperliquidWS()
    ws.subscribe({"type": "trades", "coin": "SOL"}, print)
"""

from . import messages, shapes, subs
from .backoff import Backoff
from .client import HyperliquidWS
from .endpoints import MAINNET_API_URL, TESTNET_API_URL
from .errors import (
    BackfillError,
    CallbackError,
    ConnectionLostError,
    HyperliquidTimeoutError,
    HyperliquidWSError,
    LimitError,
    RequestError,
    ServerError,
    SlowConsumerError,
    SubscriptionError,
)
from .feeds import CANDLE_INTERVALS, FEEDS
from .limits import Limits
from .messages import Message, SubscriptionDict
from .stream import Stream
from .subscription import Subscription

__version__ = "0.1.0"

__all__ = [
    "CANDLE_INTERVALS",
    "FEEDS",
    "MAINNET_API_URL",
    "TESTNET_API_URL",
    "BackfillError",
    "Backoff",
    "CallbackError",
    "ConnectionLostError",
    "HyperliquidTimeoutError",
    "HyperliquidWS",
    "HyperliquidWSError",
    "LimitError",
    "Limits",
    "Message",
    "RequestError",
    "ServerError",
    "SlowConsumerError",
    "Stream",
    "Subscription",
    "SubscriptionDict",
    "SubscriptionError",
    "__version__",
    "messages",
    "shapes",
    "subs",
]
