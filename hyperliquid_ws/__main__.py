"""``python -m hyperliquid_ws`` is the ``hyperliquid-ws`` command."""

from .cli import console

if __name__ == "__main__":
    console()
