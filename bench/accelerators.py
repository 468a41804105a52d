"""Which optional C accelerators each client under test may import.

Every accelerator a user might add (``orjson``, ``msgspec``, ``wsaccel``) is installed in
the benchmark's venv, and each worker process hides the ones its client must run without,
so "as shipped" rows really run without them and the other rows run with exactly one
more package, in the same run, on the same frames:

``sdk``           the official SDK as ``pip install hyperliquid-python-sdk`` gives it
``sdk_wsaccel``   the same + ``wsaccel`` (websocket-client's C UTF-8 validator and masker),
                  which any user who reads the SDK's issues installs
``ours``          ``pip install hyperliquid-ws``: websocket-client and requests only
``ours_fast``     the same + ``orjson`` (the ``fast`` extra)
``raw`` / ``raw_fast``  our frame reader + our parser, nothing else (stdlib / orjson)
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

ACCELERATORS = ("orjson", "msgspec", "wsaccel")
ALLOWED: dict[str, frozenset[str]] = {
    "ours_fast": frozenset({"orjson"}),
    "raw_fast": frozenset({"orjson"}),
    "sdk_wsaccel": frozenset({"wsaccel"}),
}


class _Hidden(importlib.abc.MetaPathFinder):
    """Makes ``import <name>`` fail as if the package were not installed."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden by the benchmark)", name=fullname)
        return None


def allowed(client: str) -> frozenset[str]:
    return ALLOWED.get(client, frozenset())


def restrict(client: str) -> None:
    """Hide from this process every accelerator ``client`` must run without.
    Call before anything imports websocket-client or hyperliquid_ws."""
    hidden = frozenset(ACCELERATORS) - allowed(client)
    for name in hidden:
        if name in sys.modules:
            raise RuntimeError(f"{name} was imported before the benchmark could hide it")
    sys.meta_path.insert(0, _Hidden(hidden))


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def missing(client: str) -> list[str]:
    """The accelerators ``client`` needs that this venv lacks."""
    return sorted(name for name in allowed(client) if not installed(name))
