"""The bulk frame reader against hand-built frames, split at every possible boundary."""

from __future__ import annotations

import struct

import pytest

from hyperliquid_ws.frames import FrameReader, ProtocolError


def frame(payload: bytes, opcode: int = 0x1, final: bool = True, mask: bytes | None = None) -> bytes:
    first = (0x80 if final else 0) | opcode
    length = len(payload)
    if length < 126:
        header = bytes([first, length | (0x80 if mask else 0)])
    elif length < 65536:
        header = bytes([first, 126 | (0x80 if mask else 0)]) + struct.pack("!H", length)
    else:
        header = bytes([first, 127 | (0x80 if mask else 0)]) + struct.pack("!Q", length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


class ChunkedSocket:
    """Hands out ``data`` in pieces of ``size`` bytes, then end-of-stream."""

    def __init__(self, data: bytes, size: int) -> None:
        self._chunks = [data[i : i + size] for i in range(0, len(data), size)]

    def recv_into(self, buffer: bytearray, nbytes: int = 0) -> int:
        """Like a socket: at most ``len(buffer)`` bytes; the rest stays for the next call."""
        chunk = self._chunks.pop(0) if self._chunks else b""
        if len(chunk) > len(buffer):
            chunk, rest = chunk[: len(buffer)], chunk[len(buffer) :]
            self._chunks.insert(0, rest)
        buffer[: len(chunk)] = chunk
        return len(chunk)


def read_all(data: bytes, size: int):
    texts, pings = [], []
    reader = FrameReader(ChunkedSocket(data, size), pings.append)
    while (result := reader.read(texts.append)) is None:
        pass
    return texts, pings, result


STREAM = (
    frame(b'{"channel":"pong"}')
    + frame(b"x" * 300)
    + frame(b"y" * 1600)  # a 16-bit length
    + frame(b"z" * 70_000)  # a 64-bit length
    + frame(b"ping!", opcode=0x9)
    + frame(b"part one, ", final=False)
    + frame(b"", opcode=0x0, final=False)
    + frame(b"part two", opcode=0x0)
    + frame(b"hidden", mask=b"\x01\x02\x03\x04")
    + frame(b"\x00\x01", opcode=0x2)  # binary: ignored
    + frame(b"", opcode=0xA)  # pong: ignored
    + frame(struct.pack("!H", 4000) + b"bye", opcode=0x8)
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 125, 1000, 65_536, 1 << 20])
def test_every_frame_is_read_whatever_the_read_sizes(size):
    texts, pings, result = read_all(STREAM, size)
    assert texts == [b'{"channel":"pong"}', b"x" * 300, b"y" * 1600, b"z" * 70_000,
                     b"part one, part two", b"hidden"]
    assert pings == [b"ping!"]
    assert result == (4000, "bye")


def test_a_stream_that_just_ends_reports_no_close_code():
    assert read_all(frame(b"a") + frame(b"b")[:3], 4)[2] == (None, "")


def test_a_continuation_without_a_start_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        read_all(frame(b"orphan", opcode=0x0), 100)
