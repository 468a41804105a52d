"""hyperliquid_ws: a thread-based client for Hyperliquid's WebSocket API.

    from hyperliquid_ws import HyperliquidWS
    ws = HyperliquidWS()
    ws.subscribe({"type": "trades", "coin": "SOL"}, print)
    ws.run_forever()

``HyperliquidWS`` and ``close_all`` load ``client.py`` (and with it ``requests`` and
``websocket-client``) on first use, so that ``import hyperliquid_ws`` and the command
line start fast: the CLI has its Ctrl-C handling in place before the heavy imports.
"""

from typing import TYPE_CHECKING, Any

from . import messages, shapes, subs
from .backoff import Backoff
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

if TYPE_CHECKING:
    from .client import HyperliquidWS, close_all

__version__ = "0.1.0"

_FROM_CLIENT = ("HyperliquidWS", "close_all")


def __getattr__(name: str) -> Any:
    if name in _FROM_CLIENT:
        from . import client

        value = getattr(client, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hyperliquid_ws' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_CLIENT})

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
    "close_all",
    "messages",
    "shapes",
    "subs",
]
