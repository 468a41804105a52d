"""The bulk frame reader against hand-built frames, split at every possible boundary, and
strict about RFC 6455: what a client must fail the connection on raises ProtocolError
with the close code, as soon as the header shows it."""

from __future__ import annotations

import struct

import pytest

from hyperliquid_ws.frames import FrameReader, ProtocolError
from hyperliquid_ws.testing.wire import close_payload, encode_frame


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


def read_all(data: bytes, size: int, **settings):
    texts, pings, binary = [], [], []
    reader = FrameReader(ChunkedSocket(data, size), pings.append, on_binary=binary.append, **settings)
    while (result := reader.read(texts.append)) is None:
        pass
    read_all.binary = binary
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
    + frame(b"\x00\x01", opcode=0x2)  # binary: to on_binary
    + frame(b"ping in the middle", opcode=0x9)
    + frame(b"bin ", opcode=0x2, final=False)
    + frame(b"ary", opcode=0x0)
    + frame(b"", opcode=0xA)  # pong: ignored
    + frame(struct.pack("!H", 4000) + b"bye", opcode=0x8)
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 125, 1000, 65_536, 1 << 20])
def test_every_frame_is_read_whatever_the_read_sizes(size):
    texts, pings, result = read_all(STREAM, size)
    assert texts == [b'{"channel":"pong"}', b"x" * 300, b"y" * 1600, b"z" * 70_000, b"part one, part two"]
    assert pings == [b"ping!", b"ping in the middle"]
    assert read_all.binary == [b"\x00\x01", b"bin ary"]
    assert result == (4000, "bye")


def test_a_stream_that_just_ends_reports_no_close_code():
    assert read_all(frame(b"a") + frame(b"b")[:3], 4)[2] == (None, "")


def test_a_continuation_without_a_start_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        read_all(frame(b"orphan", opcode=0x0), 100)


GOOD = frame(b'{"channel":"pong"}')
BREACHES = [
    pytest.param(encode_frame(b"hidden", mask=b"\x01\x02\x03\x04"), "masked_frame", 1002, id="masked"),
    pytest.param(encode_frame(b"x", rsv=4), "reserved_bits", 1002, id="rsv1"),
    pytest.param(encode_frame(b"x", rsv=1), "reserved_bits", 1002, id="rsv3"),
    pytest.param(encode_frame(b"x", opcode=0x3), "unknown_opcode", 1002, id="opcode-3"),
    pytest.param(encode_frame(b"x", opcode=0xB), "unknown_opcode", 1002, id="opcode-B"),
    pytest.param(encode_frame(b"p" * 126, opcode=0x9), "bad_control_frame", 1002, id="ping-126"),
    pytest.param(encode_frame(b"p", opcode=0x9, fin=False), "bad_control_frame", 1002, id="ping-fragmented"),
    pytest.param(encode_frame(b"c" * 126, opcode=0x8), "bad_control_frame", 1002, id="close-126"),
    pytest.param(encode_frame(b"\x03", opcode=0x8), "bad_close_frame", 1002, id="close-one-byte"),
    pytest.param(encode_frame(close_payload(0), opcode=0x8), "bad_close_code", 1002, id="close-code-0"),
    pytest.param(encode_frame(close_payload(999), opcode=0x8), "bad_close_code", 1002, id="close-code-999"),
    pytest.param(encode_frame(close_payload(1004), opcode=0x8), "bad_close_code", 1002, id="close-code-1004"),
    pytest.param(encode_frame(close_payload(1005), opcode=0x8), "bad_close_code", 1002, id="close-code-1005"),
    pytest.param(encode_frame(close_payload(1006), opcode=0x8), "bad_close_code", 1002, id="close-code-1006"),
    pytest.param(encode_frame(close_payload(1015), opcode=0x8), "bad_close_code", 1002, id="close-code-1015"),
    pytest.param(encode_frame(close_payload(1016), opcode=0x8), "bad_close_code", 1002, id="close-code-1016"),
    pytest.param(encode_frame(close_payload(2999), opcode=0x8), "bad_close_code", 1002, id="close-code-2999"),
    pytest.param(encode_frame(close_payload(1000, b"\xff\xfe"), opcode=0x8), "bad_close_reason", 1007,
                 id="close-reason-not-utf8"),
    pytest.param(encode_frame(b"orphan", opcode=0x0), "bad_continuation", 1002, id="orphan-continuation"),
    pytest.param(encode_frame(b"a", fin=False) + encode_frame(b"b"), "bad_continuation", 1002, id="interleaved"),
    pytest.param(encode_frame(b"", length=2**40), "message_too_big", 1009, id="header-2**40"),
    pytest.param(encode_frame(b"m" * 3000), "message_too_big", 1009, id="over-max"),
    pytest.param(encode_frame(b"m" * 1500, fin=False) + encode_frame(b"m" * 1000, opcode=0x0),
                 "message_too_big", 1009, id="fragments-over-max"),
]


@pytest.mark.parametrize("size", [1, 5, 4096])
@pytest.mark.parametrize(("breach", "reason", "code"), BREACHES)
def test_what_rfc_6455_forbids_fails_the_connection_with_its_close_code(breach, reason, code, size):
    texts = []
    reader = FrameReader(ChunkedSocket(GOOD + breach + GOOD, size), lambda payload: None, max_message_size=2048)
    with pytest.raises(ProtocolError) as raised:
        while reader.read(texts.append) is None:
            pass
    assert (raised.value.reason, raised.value.code) == (reason, code)
    assert texts == [b'{"channel":"pong"}']  # what came before is delivered


def test_a_header_announcing_too_much_fails_before_any_body_arrives():
    """Only the 10-byte header is on the wire: nothing waits for the terabyte."""
    reader = FrameReader(ChunkedSocket(encode_frame(b"", length=2**40), 4096), lambda payload: None)
    with pytest.raises(ProtocolError, match="max_message_size"):
        reader.read(lambda payload: None)


def test_frames_counts_whole_frames_only():
    data = frame(b"a" * 5000)
    reader = FrameReader(ChunkedSocket(data, 1000), lambda payload: None)
    counts = []
    for _ in range(5):
        reader.read(lambda payload: None)
        counts.append(reader.frames)
    assert counts == [0, 0, 0, 0, 0]
    reader.read(lambda payload: None)
    assert reader.frames == 1


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999])
def test_a_close_code_that_may_be_sent_is_reported_as_sent(code):
    reader = FrameReader(ChunkedSocket(encode_frame(close_payload(code, "bye \u00e9"), opcode=0x8), 4096),
                         lambda payload: None)
    assert reader.read(lambda payload: None) == (code, "bye \u00e9")
