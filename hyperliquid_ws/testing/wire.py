"""A pure RFC 6455 frame encoder for tests that play a hostile server.

``encode_frame`` builds one frame's bytes exactly as asked, including frames no honest
peer would send: reserved bits set, unknown opcodes, a masked server frame, a control
frame over 125 bytes, a header announcing more payload than follows. It checks only
that each field fits its place in the header. Hand the result to
``LocalServer.send_raw``::

    from hyperliquid_ws.testing import wire

    server.send_raw(wire.encode_frame(b"", length=2**40), conn)  # a 2**40-byte frame begins
    server.send_raw(b"x" * 1024, conn, repeat=None, interval=0.5)  # its body, 1 KiB / 0.5 s
    server.send_raw(wire.encode_frame("hi", rsv=wire.RSV1))        # an unnegotiated extension
    server.send_raw(wire.encode_frame("hi")[:1])                   # a cut header

No I/O and no state: safe on any thread.
"""

from __future__ import annotations

import struct

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "MAX_LENGTH",
    "PING",
    "PONG",
    "RSV1",
    "RSV2",
    "RSV3",
    "TEXT",
    "close_payload",
    "encode_frame",
]

CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA

RSV1 = 0b100
"""The reserved bits as ``encode_frame(rsv=...)`` takes them: OR them together."""
RSV2 = 0b010
RSV3 = 0b001

MAX_LENGTH = 2**63 - 1
"""The largest payload length the 64-bit length field may carry (its top bit must be 0)."""

_MASK_BIT = 0x80
_LENGTH_16 = 126  # the 7-bit length value that says "a 16-bit length follows"
_LENGTH_64 = 127  # ... "a 64-bit length follows"


def encode_frame(
    payload: bytes | str = b"", *, opcode: int = TEXT, fin: bool = True, rsv: int = 0,
    mask: bytes | None = None, length: int | None = None,
) -> bytes:
    """One WebSocket frame as bytes: header, then the (optionally masked) payload.

    ``payload``: bytes, or a str sent as UTF-8. ``opcode``: 0..15, e.g. ``TEXT``; any
    value is encoded, defined or not. ``fin``: the final-fragment bit. ``rsv``: the three
    reserved bits as one number 0..7 (``RSV1 | RSV3``...). ``mask``: 4 bytes; sets the
    mask bit and XORs the payload with them, as a client must and a server must not.
    ``length``: the payload length the header announces, in bytes, 0..``MAX_LENGTH``;
    by default ``len(payload)``. The whole payload follows the header whatever
    ``length`` says, so announcing more than is sent leaves the peer waiting for the
    rest. The length field is always the shortest form (7, 16 or 64 bits).

    Raises ``ValueError`` for a value that does not fit its field, ``TypeError`` for a
    payload or mask of the wrong type.
    """
    body = _payload_bytes(payload)
    for name, value in (("opcode", opcode), ("rsv", rsv), ("length", length)):
        if value is not None and not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= opcode <= 0xF:
        raise ValueError(f"opcode must be 0..15, got {opcode!r}")
    if not 0 <= rsv <= 0b111:
        raise ValueError(f"rsv must be 0..7 (RSV1=4, RSV2=2, RSV3=1), got {rsv!r}")
    announced = len(body) if length is None else length
    if not 0 <= announced <= MAX_LENGTH:
        raise ValueError(f"length must be 0..2**63-1 bytes, got {length!r}")
    if mask is not None:
        if not isinstance(mask, bytes):
            raise TypeError(f"mask must be 4 bytes or None, got {type(mask).__name__}")
        if len(mask) != 4:
            raise ValueError(f"mask must be exactly 4 bytes, got {len(mask)}")
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = _MASK_BIT if mask is not None else 0
    if announced < _LENGTH_16:
        header = struct.pack("!BB", first, mask_bit | announced)
    elif announced <= 0xFFFF:
        header = struct.pack("!BBH", first, mask_bit | _LENGTH_16, announced)
    else:
        header = struct.pack("!BBQ", first, mask_bit | _LENGTH_64, announced)
    if mask is None:
        return header + body
    return header + mask + _masked(body, mask)


def close_payload(code: int, reason: str | bytes = b"") -> bytes:
    """The payload of a close frame: ``code`` as 2 bytes big-endian, then ``reason``.

    ``code`` may be any 0..65535, valid for RFC 6455 or not (999, 1005, 1015 are
    forbidden on the wire, which is the point of sending them). ``reason`` is a str
    (sent as UTF-8) or bytes, which may be invalid UTF-8. Use it as
    ``encode_frame(close_payload(1002, "bad"), opcode=CLOSE)``.
    """
    if not isinstance(code, int):
        raise TypeError(f"close code must be an int, got {type(code).__name__}")
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"close code must be 0..65535, got {code!r}")
    return struct.pack("!H", code) + _payload_bytes(reason)


def _payload_bytes(payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    raise TypeError(f"payload must be bytes or str, got {type(payload).__name__}")


def _masked(body: bytes, mask: bytes) -> bytes:
    """XOR ``body`` with the repeating 4-byte ``mask`` (RFC 6455 section 5.3)."""
    if not body:
        return b""
    # One big-int XOR instead of a Python loop per byte: a 1 MiB payload stays cheap.
    repeated = (mask * (len(body) // 4 + 1))[: len(body)]
    value = int.from_bytes(body, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(body), "big")
