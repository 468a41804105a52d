"""Reads WebSocket frames off a connected socket in bulk, strictly (RFC 6455 §5).

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

Strict: what RFC 6455 says a client must fail the connection on raises
``ProtocolError`` with the close code to send, as soon as the header shows it (before
any body is read): a masked frame (§5.1), reserved bits without a negotiated extension
(§5.2), an unknown opcode (§5.2), a control frame that is fragmented or longer than 125
bytes (§5.5), a continuation with no message to continue or a new message inside a
fragmented one (§5.4), a close frame with a one-byte body (§5.5.1) or a code that may not
appear on the wire (§7.4: 1004-1006, 1015, below 1000, unassigned 1016-2999): code 1002;
a close reason that is not UTF-8 (§5.5.1): code 1007; a message
longer than ``max_message_size``, announced or gathered from fragments: code 1009
(§7.4.1). So a header announcing a terabyte costs nothing, and memory is bounded by
``max_message_size``. Text frames go to ``on_text`` (their UTF-8 is checked by the
parser, frame by frame); binary frames, which this server never sends, to ``on_binary``;
pings are answered; pongs count as life. ``frames`` counts whole frames: liveness is
stamped per frame, never per byte; ``message_began`` says since when a fragmented message
has been arriving, so that one that never ends is not taken for life either. Runs on the
thread holding the socket.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Protocol

CHUNK = 16_384
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024  # bytes; the largest real snapshots are a few MB
_TEXT, _BINARY, _CONTINUATION = 0x1, 0x2, 0x0
_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_CONTROL_MAX = 125
PROTOCOL_ERROR, INVALID_DATA, MESSAGE_TOO_BIG = 1002, 1007, 1009  # close codes, RFC 6455 §7.4.1
_NOT_ON_THE_WIRE = frozenset({1004, 1005, 1006, 1015})  # reserved, or for reporting only (§7.4.1)
_LENGTH_16 = struct.Struct("!H")
_LENGTH_64 = struct.Struct("!Q")


class Socket(Protocol):
    def recv_into(self, buffer: bytearray, nbytes: int = 0) -> int: ...


class ProtocolError(Exception):
    """The server broke RFC 6455; the client must fail the connection with ``code``.

    ``reason`` is a stable short name (the key of ``stats()["bad_frames"]``); ``header``
    holds the first bytes of the offending frame, for the report.
    """

    def __init__(self, reason: str, detail: str, *, code: int = PROTOCOL_ERROR, header: bytes = b"") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.code = code
        self.header = header


def _ignore(payload: bytes) -> None:
    pass


class FrameReader:
    """The receive side of one connected socket. ``read`` may be called from different
    threads in turn, never at the same time."""

    def __init__(self, sock: Socket, on_ping: Callable[[bytes], None], *,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 on_binary: Callable[[bytes], None] = _ignore) -> None:
        self._recv_into = sock.recv_into
        self._on_ping = on_ping
        self._on_binary = on_binary
        self._max = max_message_size
        self._scratch = bytearray(CHUNK)
        self._arrived = memoryview(self._scratch)
        self._parts: list[bytes] = []  # a frame still arriving (and what follows it)
        self._parts_size = 0
        self._needed = 0  # bytes the frame still arriving needs in all, when known
        self._fragments: list[bytes] = []
        self._fragments_size = 0
        self._fragmented_opcode = 0
        self.message_began: float | None = None  # monotonic; while a fragmented message arrives
        self.frames = 0  # whole frames read, control frames included

    def read(self, on_text: Callable[[bytes], None]) -> tuple[int | None, str] | None:
        """Wait for data, then deliver every complete text message in it to ``on_text``.
        Returns None while the stream goes on, else the close code and reason (``None``
        and ``""`` when the stream just ended). Raises ``ProtocolError``; socket errors
        propagate."""
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
            opcode = first & 0x0F
            if first & 0x70 or second & 0x80 or opcode != _TEXT or length > self._max or self._fragmented_opcode:
                self._check_header(first, second, length, buffer[position : position + header])
            start = position + header
            stop = start + length
            if stop > end:
                self._needed = stop - position
                break
            payload = buffer[start:stop]
            position = stop
            self.frames += 1
            if opcode == _TEXT:
                if first & 0x80:
                    on_text(payload)
                else:
                    self._fragment(opcode, first & 0x80, payload, on_text)
            elif opcode == _PING:
                self._on_ping(payload)
            elif opcode == _CLOSE:
                return _close(payload)
            elif opcode != _PONG:  # a pong needs no answer; any frame is life
                self._fragment(opcode, first & 0x80, payload, on_text)
        if position < end:
            rest = buffer[position:]
            self._parts, self._parts_size = [rest], len(rest)
        return None

    def _check_header(self, first: int, second: int, length: int, header: bytes) -> None:
        """The slow path for a header out of the ordinary: a control or binary frame, a
        continuation, a long one, or one to fail the connection for."""
        opcode = first & 0x0F
        if second & 0x80:
            raise ProtocolError("masked_frame", "the server masked a frame (RFC 6455 §5.1)", header=header)
        if first & 0x70:
            raise ProtocolError("reserved_bits", f"reserved bits {(first >> 4) & 7:#05b} set with no extension "
                                "negotiated (RFC 6455 §5.2)", header=header)
        if opcode >= _CLOSE:
            if opcode not in (_CLOSE, _PING, _PONG):
                raise ProtocolError("unknown_opcode", f"unknown opcode {opcode:#x}", header=header)
            if not first & 0x80 or length > _CONTROL_MAX:
                raise ProtocolError("bad_control_frame", f"control frame {opcode:#x} of {length} bytes, "
                                    f"{'final' if first & 0x80 else 'fragmented'} (RFC 6455 §5.5: at most "
                                    "125 bytes, never fragmented)", header=header)
        elif opcode > _BINARY:
            raise ProtocolError("unknown_opcode", f"unknown opcode {opcode:#x}", header=header)
        elif opcode != _CONTINUATION and self._fragmented_opcode:
            raise ProtocolError("bad_continuation", "a new message began inside a fragmented one", header=header)
        elif opcode == _CONTINUATION and not self._fragmented_opcode:
            raise ProtocolError("bad_continuation", "continuation frame with no message to continue", header=header)
        if length + (self._fragments_size if opcode == _CONTINUATION else 0) > self._max:
            raise ProtocolError("message_too_big", f"a message of {length + self._fragments_size} bytes or more, "
                                f"over max_message_size={self._max}", code=MESSAGE_TOO_BIG, header=header)

    def _fragment(self, opcode: int, final: int, payload: bytes, on_text: Callable[[bytes], None]) -> None:
        """A data frame that is not a whole text message by itself (RFC 6455 §5.4)."""
        if opcode == _CONTINUATION:  # _check_header made sure there is a message to continue
            self._fragments.append(payload)
            self._fragments_size += len(payload)
        elif not final:
            self._fragmented_opcode, self._fragments, self._fragments_size = opcode, [payload], len(payload)
            self.message_began = time.monotonic()
        if final:
            if opcode == _CONTINUATION:
                opcode, payload = self._fragmented_opcode, b"".join(self._fragments)
                self._fragmented_opcode, self._fragments, self._fragments_size = 0, [], 0
                self.message_began = None
            (on_text if opcode == _TEXT else self._on_binary)(payload)


def _close(payload: bytes) -> tuple[int | None, str]:
    """The code and reason of a close frame's body, checked as RFC 6455 §5.5.1 and §7.4 say."""
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise ProtocolError("bad_close_frame", "close frame with a one-byte body")
    code = _LENGTH_16.unpack_from(payload)[0]
    if code < 1000 or code in _NOT_ON_THE_WIRE or 1016 <= code <= 2999:
        raise ProtocolError("bad_close_code", f"close code {code}, which may not be sent (RFC 6455 §7.4)",
                            header=payload[:2])
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("bad_close_reason", f"close reason that is not UTF-8 ({exc.reason} at byte "
                            f"{exc.start})", code=INVALID_DATA, header=payload[:2]) from None
    return code, reason
