"""Benchmarks for hyperliquid_ws against the official SDK and the bare transport.

Run ``python -m bench`` (or ``python bench/run.py``); see ``bench/README.md``. This is a
script, not a test suite: pytest does not collect it.
"""
