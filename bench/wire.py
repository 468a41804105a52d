"""The server's half of RFC 6455, as much as the blaster needs.

Server-to-client frames are unmasked, so a text frame is ``0x81``, a length, and the
payload: cheap to pre-encode once and write many times. Client frames are masked and
are parsed by ``ClientFrames``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterator

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def accept_key(client_key: str) -> str:
    return base64.b64encode(hashlib.sha1(client_key.encode() + _GUID).digest()).decode()


def handshake_response(client_key: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(client_key)}\r\n\r\n"
    ).encode()


def encode(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One unmasked, final frame."""
    head = 0x80 | opcode
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", head, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", head, 126, n) + payload
    return struct.pack("!BBQ", head, 127, n) + payload


def _unmask(mask: bytes, data: bytes) -> bytes:
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


class ClientFrames:
    """Feed bytes in, get ``(opcode, payload)`` out. Client messages are few and small,
    so fragmentation (which websocket-client does not use for them) is not supported."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        buf = self._buffer
        buf += data
        while len(buf) >= 2:
            opcode, length, masked = buf[0] & 0x0F, buf[1] & 0x7F, buf[1] & 0x80
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return
                (length,) = struct.unpack_from("!H", buf, 2)
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                (length,) = struct.unpack_from("!Q", buf, 2)
                offset = 10
            mask_end = offset + (4 if masked else 0)
            if len(buf) < mask_end + length:
                return
            payload = bytes(buf[mask_end : mask_end + length])
            if masked:
                payload = _unmask(bytes(buf[offset:mask_end]), payload)
            del buf[: mask_end + length]
            yield opcode, payload
