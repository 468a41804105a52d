"""Reads WebSocket frames off a connected socket in bulk (RFC 6455 §5.2).

websocket-client does the handshake and every send; receiving is done here because its
reader makes three small ``recv`` calls and builds an object per frame, which costs
more than everything else the client does with a frame. This reads up to ``CHUNK``
bytes at a time into one reused buffer and slices every complete frame out of what
arrived. A frame longer than that is gathered in parts and joined once, when whole.

Why 16 KiB: the frames of one read are parsed, then their callbacks run, so a read's
worth of parsed messages is alive at once. Ten 1.6 KB books stay in the CPU cache;
a hundred and sixty (256 KiB) do not, and parsing into cold memory costs a third more
(l2Book throughput 69k/s at 256 KiB, 84k/s at 16 KiB). And ``recv(256 KiB)`` would be
worse still: glibc serves an allocation that large with a fresh ``mmap`` on every call,
about 11 us, even when 300 bytes arrive; hence ``recv_into``.

Server frames are unmasked text; fragmented messages, masked frames, pings (answered
with a pong), pongs and close frames are handled too. Runs on the reader thread.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

CHUNK = 16_384
_TEXT, _BINARY, _CONTINUATION = 0x1, 0x2, 0x0
_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_LENGTH_16 = struct.Struct("!H")
_LENGTH_64 = struct.Struct("!Q")


class Socket(Protocol):
    def recv_into(self, buffer: bytearray, nbytes: int = 0) -> int: ...


class ProtocolError(Exception):
    """The server sent something that is not a WebSocket frame stream."""


def _unmask(mask: bytes, payload: bytes) -> bytes:
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(payload), "big")


class FrameReader:
    """The receive side of one connected socket. ``read`` may be called from different
    threads in turn, never at the same time."""

    def __init__(self, sock: Socket, on_ping: Callable[[bytes], None]) -> None:
        self._recv_into = sock.recv_into
        self._on_ping = on_ping
        self._scratch = bytearray(CHUNK)
        self._arrived = memoryview(self._scratch)
        self._parts: list[bytes] = []  # a frame still arriving (and what follows it)
        self._parts_size = 0
        self._needed = 0  # bytes the frame still arriving needs in all, when known
        self._fragments: list[bytes] = []
        self._fragmented_opcode = 0

    def read(self, on_text: Callable[[bytes], None]) -> tuple[int | None, str] | None:
        """Wait for data, then deliver every complete text message in it to ``on_text``.
        Returns None while the stream goes on, else the close code and reason (``None``
        and ``""`` when the stream just ended). Socket errors propagate."""
        count = self._recv_into(self._scratch)
        if not count:
            return None, ""
        buffer = self._arrived[:count].tobytes()
        if self._parts:
            self._parts.append(buffer)
            self._parts_size += count
            if self._parts_size < self._needed:
                return None  # a long frame: join its parts once, when it is whole
            buffer, self._parts = b"".join(self._parts), []
        end = len(buffer)
        position = 0
        self._needed = 0  # unless a frame is cut short below
        while end - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length = second & 0x7F
            header = 2
            if length == 126:
                if end - position < 4:
                    break
                length = _LENGTH_16.unpack_from(buffer, position + 2)[0]
                header = 4
            elif length == 127:
                if end - position < 10:
                    break
                length = _LENGTH_64.unpack_from(buffer, position + 2)[0]
                header = 10
            masked = second & 0x80
            if masked:
                header += 4
            start = position + header
            stop = start + length
            if stop > end:
                self._needed = stop - position
                break
            payload = buffer[start:stop]
            if masked:
                payload = _unmask(buffer[start - 4 : start], payload)
            position = stop
            opcode = first & 0x0F
            final = first & 0x80
            if opcode == _TEXT and final:
                on_text(payload)
            elif opcode == _CLOSE:
                code = _LENGTH_16.unpack_from(payload)[0] if len(payload) >= 2 else None
                return code, payload[2:].decode("utf-8", "replace")
            elif opcode == _PING:
                self._on_ping(payload)
            elif opcode in (_TEXT, _BINARY):
                if not final:  # the first fragment of a long message
                    self._fragmented_opcode, self._fragments = opcode, [payload]
            elif opcode == _CONTINUATION:
                if not self._fragments:
                    raise ProtocolError("continuation frame with no message to continue")
                self._fragments.append(payload)
                if final:
                    message, self._fragments = b"".join(self._fragments), []
                    if self._fragmented_opcode == _TEXT:
                        on_text(message)
            elif opcode != _PONG:  # a pong needs no answer; any frame is life
                raise ProtocolError(f"unknown opcode {opcode:#x}")
        if position < end:
            rest = buffer[position:]
            self._parts, self._parts_size = [rest], len(rest)
        return None

