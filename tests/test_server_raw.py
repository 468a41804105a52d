"""Raw bytes from the local server: ``wire.encode_frame`` and ``LocalServer.send_raw``.

The client side is websocket-client's handshake and then its bare TCP socket, so what
arrives is exactly what the server wrote, with no client parser in between.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import websocket

from hyperliquid_ws.testing import LocalServer, connection, wire
from hyperliquid_ws.testing.raw import HIGH_WATER, ROOM_POLL, RawSend, RawWriter
from tests.conftest import DEADLINE, wait_until

CLIENT_MASK = b"\x11\x22\x33\x44"
SERVER_SIDE_LOGGERS = {"hyperliquid_ws", "aiohttp", "asyncio"}


@pytest.fixture
def ws(server: LocalServer) -> Iterator[websocket.WebSocket]:
    """A handshaken client; the test reads its raw socket (nothing arrives unasked)."""
    client = websocket.create_connection(server.ws_url, timeout=DEADLINE)
    assert server.wait_for_connections(1)
    yield client
    if client.sock is not None:  # no close handshake: a test may leave the stream mid-frame
        client.sock.close()


@pytest.fixture
def warnings_seen(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """``warnings_seen()``: every WARNING or worse the server side logged so far.

    That is this package, aiohttp and asyncio, on any thread. A function, not a list:
    pytest starts a fresh record list for each test phase.
    """
    caplog.set_level(logging.WARNING)
    return lambda: [f"{r.name}: {r.getMessage()}" for r in caplog.records
                    if r.levelno >= logging.WARNING and r.name.partition(".")[0] in SERVER_SIDE_LOGGERS]


def _raw(client: websocket.WebSocket) -> socket.socket:
    """The client's TCP socket, to read and write below websocket-client's parser."""
    sock = client.sock
    assert sock is not None, "not connected"
    return sock


def _only_conn(server: LocalServer) -> int:
    (conn,) = server.connection_ids()
    return conn


def _read_exactly(sock: socket.socket, n: int, timeout: float = DEADLINE) -> bytes:
    """``n`` bytes from ``sock``, failing the test at the deadline or on EOF."""
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"got {len(data)} of {n} bytes before the deadline: {data[:64]!r}")
        sock.settimeout(remaining)
        part = sock.recv(n - len(data))
        if not part:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes")
        data += part
    return data


def _recv_parts(sock: socket.socket, n: int) -> list[tuple[float, bytes]]:
    """Read ``n`` bytes as the socket delivers them: (arrival time, bytes) per ``recv``."""
    deadline = time.monotonic() + DEADLINE
    parts: list[tuple[float, bytes]] = []
    while sum(len(part) for _, part in parts) < n:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        part = sock.recv(n)
        assert part, "connection closed mid-trickle"
        parts.append((time.monotonic(), part))
    return parts


def _client_close_frame(code: int) -> bytes:
    return wire.encode_frame(wire.close_payload(code, "client gives up"), opcode=wire.CLOSE, mask=CLIENT_MASK)


# -- wire: the pure encoder --------------------------------------------------------------


@pytest.mark.parametrize("opcode", [wire.TEXT, wire.BINARY, wire.CONTINUATION, wire.PING, wire.PONG])
@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("fin", [True, False])
def test_encode_frame_matches_websocket_client_abnf(opcode: int, size: int, fin: bool) -> None:
    payload = bytes(i % 251 for i in range(size))
    expected = websocket.ABNF(int(fin), 0, 0, 0, opcode, 0, payload).format()
    assert wire.encode_frame(payload, opcode=opcode, fin=fin) == expected


@pytest.mark.parametrize("size", [0, 3, 126, 65536])
def test_masked_encode_frame_matches_websocket_client_abnf(size: int) -> None:
    payload = bytes(i % 7 for i in range(size))
    frame = websocket.ABNF(1, 0, 0, 0, wire.BINARY, 1, payload)
    frame.get_mask_key = lambda _n: CLIENT_MASK
    assert wire.encode_frame(payload, opcode=wire.BINARY, mask=CLIENT_MASK) == frame.format()


def test_text_and_close_payloads() -> None:
    assert wire.encode_frame("é") == b"\x81\x02" + "é".encode()
    assert wire.close_payload(1002, "bad") == b"\x03\xeabad"
    assert wire.close_payload(4000) == b"\x0f\xa0"
    assert wire.close_payload(1000, b"\xff") == b"\x03\xe8\xff"  # invalid UTF-8 on purpose
    assert wire.encode_frame(wire.close_payload(1000), opcode=wire.CLOSE) == b"\x88\x02\x03\xe8"


def test_length_overrides_the_announced_size_only() -> None:
    assert wire.encode_frame(b"", length=2**40) == b"\x81\x7f" + struct.pack("!Q", 2**40)
    assert wire.encode_frame(b"ab", opcode=wire.BINARY, length=126) == b"\x82\x7e\x00\x7eab"
    assert wire.encode_frame(b"abc", length=1) == b"\x81\x01abc"
    assert wire.encode_frame(length=wire.MAX_LENGTH)[2:] == b"\x7f" + b"\xff" * 7
    assert wire.encode_frame(b"", rsv=wire.RSV1 | wire.RSV3, opcode=0xB, fin=False) == b"\x5b\x00"


@pytest.mark.parametrize("kwargs", [
    {"rsv": 8}, {"rsv": -1}, {"opcode": 16}, {"opcode": -1}, {"mask": b"abc"},
    {"mask": b"abcde"}, {"length": -1}, {"length": 2**63},
])
def test_encode_frame_rejects_values_that_do_not_fit(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        wire.encode_frame(b"x", **kwargs)


@pytest.mark.parametrize(("payload", "kwargs"), [
    (123, {}), (b"x", {"mask": "abcd"}), (b"x", {"opcode": 1.0}), (b"x", {"length": "5"}),
])
def test_encode_frame_rejects_wrong_types(payload: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        wire.encode_frame(payload, **kwargs)


def test_close_payload_rejects_codes_beyond_two_bytes() -> None:
    with pytest.raises(ValueError):
        wire.close_payload(65536)
    with pytest.raises(ValueError):
        wire.close_payload(-1)


# -- send_raw: bytes on the wire ---------------------------------------------------------


@pytest.mark.parametrize("raw", [
    pytest.param(wire.encode_frame("masked", mask=CLIENT_MASK), id="masked-server-frame"),
    pytest.param(wire.encode_frame("rsv", rsv=wire.RSV1 | wire.RSV2 | wire.RSV3), id="rsv-bits"),
    pytest.param(wire.encode_frame(b"?", opcode=0x3), id="reserved-data-opcode"),
    pytest.param(wire.encode_frame(b"?", opcode=0xF), id="reserved-control-opcode"),
    pytest.param(wire.encode_frame(b"p" * 200, opcode=wire.PING), id="oversized-ping"),
    pytest.param(wire.encode_frame(b"c", opcode=wire.CLOSE), id="one-byte-close"),
    pytest.param(wire.encode_frame(b"", length=2**40), id="huge-announced-length"),
])
def test_hostile_frames_arrive_verbatim(server: LocalServer, ws: websocket.WebSocket, raw: bytes) -> None:
    assert server.send_raw(raw) == 1
    assert server.push("after") == 1  # aiohttp's next frame follows on the same stream
    assert _read_exactly(_raw(ws), len(raw) + 7) == raw + wire.encode_frame("after")


def test_a_cut_header_arrives_as_cut(server: LocalServer, ws: websocket.WebSocket) -> None:
    cut = wire.encode_frame(b"", length=70000)[:3]  # mid-way through the 64-bit length
    assert server.send_raw(cut, _only_conn(server)) == 1
    assert _read_exactly(_raw(ws), 3) == cut


def test_normal_frames_parse_in_websocket_client(server: LocalServer, ws: websocket.WebSocket) -> None:
    server.send_raw(wire.encode_frame("hello") + wire.encode_frame(b"\x00\x01", opcode=wire.BINARY)
                    + wire.encode_frame("first ", fin=False)
                    + wire.encode_frame(b"ping!", opcode=wire.PING)
                    + wire.encode_frame("last", opcode=wire.CONTINUATION))
    assert ws.recv_data_frame()[1].data == b"hello"
    assert ws.recv_data_frame()[1].data == b"\x00\x01"
    opcode, frame = ws.recv_data_frame(control_frame=True)  # the ping between two fragments
    assert (opcode, frame.data) == (wire.PING, b"ping!")
    opcode, frame = ws.recv_data_frame()
    assert (opcode, frame.data) == (wire.TEXT, b"first last")


def test_send_raw_reaches_every_connection_or_one(server: LocalServer, ws: websocket.WebSocket) -> None:
    other = websocket.create_connection(server.ws_url, timeout=DEADLINE)
    try:
        assert server.wait_for_connections(2)
        _first, second = server.connection_ids()
        assert server.send_raw(b"\x81\x03all") == 2
        assert server.send_raw(b"\x81\x03one", second) == 1
        assert server.send_raw(b"\x81\x03nop", 999) == 0
        assert _read_exactly(_raw(ws), 5) == b"\x81\x03all"
        assert _read_exactly(_raw(other), 10) == b"\x81\x03all\x81\x03one"
    finally:
        other.close()


def test_raw_bytes_ignore_silence(server: LocalServer, ws: websocket.WebSocket) -> None:
    server.silence()
    assert server.push("muted") == 0
    assert server.send_raw(wire.encode_frame("raw")) == 1
    assert _read_exactly(_raw(ws), 5) == wire.encode_frame("raw")


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"chunk_size": 0}, ValueError), ({"interval": -0.1}, ValueError),
    ({"interval": float("nan")}, ValueError), ({"interval": float("inf")}, ValueError),
    ({"repeat": 0}, ValueError), ({"repeat": True}, TypeError), ({"chunk_size": 1.5}, TypeError),
    ({"data": b""}, ValueError), ({"data": "text"}, TypeError),
])
def test_send_raw_rejects_bad_arguments_before_sending(
    server: LocalServer, ws: websocket.WebSocket, kwargs: dict[str, Any], error: type[Exception],
) -> None:
    arguments: dict[str, Any] = {"data": b"\x81\x03bad", **kwargs}
    with pytest.raises(error):
        server.send_raw(**arguments)
    assert server.send_raw(b"\x81\x02ok") == 1
    assert _read_exactly(_raw(ws), 4) == b"\x81\x02ok"  # nothing went out before


# -- send_raw: trickles ------------------------------------------------------------------


def test_trickle_arrives_in_chunks_interval_apart(server: LocalServer, ws: websocket.WebSocket) -> None:
    data = bytes(range(40))
    interval = 0.05
    started = time.monotonic()
    assert server.send_raw(data, _only_conn(server), chunk_size=8, interval=interval) == 1
    parts = _recv_parts(_raw(ws), len(data))
    assert b"".join(part for _, part in parts) == data
    assert all(len(part) % 8 == 0 for _, part in parts)  # never a chunk split by the server
    assert len(parts) >= 2
    # Four pauses between five writes: a lower bound, whatever the machine's load.
    assert parts[-1][0] - started >= 4 * interval * 0.9
    wait_until(lambda: server.raw_pending() == 0, what="the trickle to finish")


def test_repeat_count_and_call_order(server: LocalServer, ws: websocket.WebSocket) -> None:
    conn = _only_conn(server)
    assert server.send_raw(b"ab", conn, chunk_size=1, interval=0.01, repeat=3) == 1
    assert server.send_raw(b"|", conn) == 1  # queued behind the trickle, not interleaved
    assert server.raw_pending(conn) == 1
    assert _read_exactly(_raw(ws), 7) == b"ababab|"
    wait_until(lambda: server.raw_pending() == 0, what="the queue to empty")


@pytest.mark.parametrize("goodbye", ["close-1009-then-drop", "close-1002-then-drop", "drop"])
def test_endless_trickle_stops_when_the_client_goes(
    server: LocalServer, ws: websocket.WebSocket, warnings_seen: Callable[[], list[str]], goodbye: str,
) -> None:
    conn = _only_conn(server)
    header = wire.encode_frame(b"", opcode=wire.BINARY, length=2**40)
    assert server.send_raw(header, conn) == 1
    assert server.send_raw(b"x" * 1024, conn, repeat=None, interval=0.01) == 1
    assert _read_exactly(_raw(ws), len(header) + 3 * 1024) == header + b"x" * 3 * 1024
    assert server.raw_pending(conn) == 1
    if goodbye != "drop":  # a client failing the connection: too big (1009) or not WebSocket (1002)
        _raw(ws).sendall(_client_close_frame(int(goodbye[6:10])))
    _raw(ws).close()  # unread bytes: the kernel answers the next write with a reset
    assert server.wait_for_connections(0)
    wait_until(lambda: server.raw_pending() == 0, what="the trickle to stop")
    assert warnings_seen() == []
    # The server is still fine: a new client is served normally.
    fresh = websocket.create_connection(server.ws_url, timeout=DEADLINE)
    try:
        fresh.send('{"method":"ping"}')
        assert fresh.recv() == '{"channel":"pong"}'
    finally:
        fresh.close()


def test_drop_connections_ends_a_trickle(server: LocalServer, ws: websocket.WebSocket) -> None:
    assert server.send_raw(b"z", chunk_size=1, repeat=None, interval=0.01) == 1
    assert _read_exactly(_raw(ws), 3) == b"zzz"
    assert server.drop_connections() == 1
    assert server.wait_for_connections(0)
    assert server.raw_pending() == 0
    assert server.send_raw(b"z") == 0


class _FakeTransport:
    """Just enough of ``asyncio.Transport`` for ``RawWriter``: records writes, fakes a backlog."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.backlog = 0
        self.closing = False

        self.aborted = 0

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def abort(self) -> None:
        self.aborted += 1
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing


def test_raw_writer_waits_while_the_transport_is_backed_up() -> None:
    async def scenario() -> None:
        transport = _FakeTransport()
        tasks: list[asyncio.Task[None]] = []

        def spawn(pump: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
            tasks.append(asyncio.ensure_future(pump))
            return tasks[-1]

        writer = RawWriter(1, transport, spawn)
        transport.backlog = HIGH_WATER + 1  # a client that stopped reading
        assert writer.start(RawSend(b"abc", chunk_size=1))
        assert transport.writes == [b"a"]  # the first write is immediate, backlog or not
        for _ in range(5):
            await asyncio.sleep(ROOM_POLL)
        assert transport.writes == [b"a"] and writer.busy
        transport.backlog = 0
        await asyncio.wait_for(tasks[0], DEADLINE)
        assert transport.writes == [b"a", b"b", b"c"] and not writer.busy

        assert writer.start(RawSend(b"x", repeat=None))
        transport.closing = True  # the peer went away: the endless trickle ends by itself
        await asyncio.wait_for(tasks[1], DEADLINE)
        assert not writer.busy and not writer.start(RawSend(b"x"))

    asyncio.run(scenario())


def test_a_forgotten_connection_socket_is_cut_after_the_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp closes gracefully, after its buffer drains: a client that sent its close frame
    but never reads again must not keep the server's socket (and its fd) past ``LINGER``."""
    monkeypatch.setattr(connection, "LINGER", 0.01)

    async def scenario() -> None:
        hub = connection.Hub(on_change=lambda: None)
        slow, quick = _FakeTransport(), _FakeTransport()
        for transport in (slow, quick):
            hub.forget(hub.open(None, transport, 0.0))  # type: ignore[arg-type]
        assert hub.connections == {} and slow.aborted == quick.aborted == 0
        hub.cut_lingering()  # what the server does once aiohttp has shut down
        assert slow.aborted == quick.aborted == 1
        third = _FakeTransport()
        hub.forget(hub.open(None, third, 0.0))  # type: ignore[arg-type]
        deadline = time.monotonic() + DEADLINE
        while not third.aborted and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert third.aborted == 1

    asyncio.run(scenario())


def test_raw_send_writes_chunks_then_repeats() -> None:
    send = RawSend(b"abcde", chunk_size=2, repeat=2)
    assert list(send.writes()) == [b"ab", b"cd", b"e", b"ab", b"cd", b"e"]
    assert not send.single_write and RawSend(b"abc", chunk_size=3).single_write
    endless = RawSend(b"ab", repeat=None).writes()
    assert [next(endless) for _ in range(3)] == [b"ab"] * 3


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("interval", [0.01, 3600.0])  # mid-write, or mid-pause at the stop
def test_endless_trickle_stops_with_the_server(warnings_seen: Callable[[], list[str]], interval: float) -> None:
    server = LocalServer(tick_interval=None).start()
    try:
        client = websocket.create_connection(server.ws_url, timeout=DEADLINE)
        assert server.wait_for_connections(1)
        server.send_raw(wire.encode_frame(b"", length=2**40))
        server.send_raw(b"x" * 1024, repeat=None, interval=interval)
        _read_exactly(_raw(client), 10 + 1024)
        assert server.raw_pending() == 1
    finally:
        server.stop()
    _raw(client).close()  # no close handshake: the stream is mid-frame
    assert not [t for t in threading.enumerate() if t.name == "hlws-local-server"]
    with pytest.raises(RuntimeError):
        server.send_raw(b"x")
    del server
    gc.collect()  # a task left pending at the stop would be reported as destroyed here
    assert warnings_seen() == []


def test_client_close_frame_then_drop_is_forgotten_cleanly(
    server: LocalServer, ws: websocket.WebSocket, warnings_seen: Callable[[], list[str]],
) -> None:
    _raw(ws).sendall(_client_close_frame(1002))
    _raw(ws).shutdown(socket.SHUT_RDWR)
    _raw(ws).close()
    assert server.wait_for_connections(0)
    assert server.connection_ids() == []
    assert warnings_seen() == []
