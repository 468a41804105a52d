"""hyperliquid_ws: a thread-based client for Hyperliquid's WebSocket API.

    from hyperliquid_ws import HyperliquidWS
    ws = HyperliquidWS()
    ws.subscribe({"type": "trades", "coin": "SOL"}, print)
    ws.run_forever()

Every name loads on first use (``client.py`` brings ``requests`` and
``websocket-client``), so ``import hyperliquid_ws`` costs next to nothing and the command
line (``cli/``) has its Ctrl-C handling in place before anything heavy is imported.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing would cost the CLI its quick Ctrl-C handling
if TYPE_CHECKING:
    from typing import Any

    from . import messages, shapes, subs
    from .backoff import Backoff
    from .client import HyperliquidWS, close_all
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

_ON_FIRST_USE = {  # name -> the module that defines it ("": the name is a module itself)
    "Backoff": "backoff", "MAINNET_API_URL": "endpoints", "TESTNET_API_URL": "endpoints",
    **{name: "errors" for name in (
        "BackfillError", "CallbackError", "ConnectionLostError", "HyperliquidTimeoutError",
        "HyperliquidWSError", "LimitError", "RequestError", "ServerError", "SlowConsumerError",
        "SubscriptionError")},
    "CANDLE_INTERVALS": "feeds", "FEEDS": "feeds", "Limits": "limits",
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
