"""hyperliquid_ws: a thread-based client for Hyperliquid's WebSocket API.

    from hyperliquid_ws import HyperliquidWS
    ws = HyperliquidWS()
    ws.subscribe({"type": "trades", "coin": "SOL"}, print)
    ws.run_forever()

The client, the typed messages and the subscription builders load on first use
(``client.py`` brings ``requests`` and ``websocket-client``), so ``import hyperliquid_ws``
and the command line start fast: the CLI has its Ctrl-C handling in place before the
heavy imports.
"""

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from . import messages, shapes, subs
    from .client import HyperliquidWS, close_all
    from .messages import Message, SubscriptionDict
    from .stream import Stream
    from .subscription import Subscription

__version__ = "0.1.0"

_ON_FIRST_USE = {  # name -> the module that defines it ("": the name is a module itself)
    "HyperliquidWS": "client", "close_all": "client", "Message": "messages", "SubscriptionDict": "messages",
    "Stream": "stream", "Subscription": "subscription", "messages": "", "shapes": "", "subs": "",
}


def __getattr__(name: str) -> Any:
    where = _ON_FIRST_USE.get(name)
    if where is None:
        raise AttributeError(f"module 'hyperliquid_ws' has no attribute {name!r}")
    module = importlib.import_module(f".{where or name}", __name__)
    value = module if not where else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ON_FIRST_USE})

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
