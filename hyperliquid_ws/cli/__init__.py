"""The ``hyperliquid-ws`` command (and ``python -m hyperliquid_ws``).

- ``__init__.py``: ``console()``, the entry point. It puts Ctrl-C handling in place
  first and only then imports the rest, so a Ctrl-C at any moment after the interpreter
  has started ends the command with status 130 and no traceback. It imports nothing
  but ``contextlib``, ``os``, ``signal`` and ``sys``.
- ``command.py``: ``main(argv)``, the command line itself: parsing, the feeds or the
  ``/info`` request, the connect timeout, printing. Runs on the main thread; its
  printer runs where the client runs callbacks.
- ``table.py``: ``--format table``, messages and answers as short lines (pure).
- ``gateway.py``: ``hyperliquid-ws gateway`` (the ``hyperliquid_ws.gateway`` subpackage).
- ``record.py``: ``hyperliquid-ws record`` and ``serve`` (``hyperliquid_ws.recording``).

Only this subpackage writes to the terminal; the library logs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

INTERRUPTED = 130  # the shell's code for "ended by Ctrl-C" (128 + SIGINT)

_interrupts = 0


def _on_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C: the first one unwinds ``main`` (which closes everything and returns 130);
    another, while that takes its time, ends the process at once."""
    global _interrupts
    _interrupts += 1
    if _interrupts > 1:
        os._exit(INTERRUPTED)
    raise KeyboardInterrupt


def console() -> None:
    """The ``hyperliquid-ws`` command: ``main()`` with Ctrl-C handled at every moment."""
    global _interrupts
    signal.signal(signal.SIGINT, _on_interrupt)
    try:
        from .command import main  # the heavy imports, now that Ctrl-C is handled

        code = main()
    except KeyboardInterrupt:  # while importing, or in the moment before main's own handler
        code = INTERRUPTED
    _interrupts += 1  # from here on, Ctrl-C just ends the process: there is nothing left to close
    if code == INTERRUPTED:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        os._exit(INTERRUPTED)  # the interpreter's shutdown has nothing to add, and Ctrl-C can't break it
    sys.exit(code)
