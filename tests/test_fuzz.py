"""Property-based fuzzing of the receive path: whatever a server sends, the reader and the
router go on.

Three layers, all pure (no sockets, no threads):

- ``FrameReader`` against random bytes and against streams of frames with random header
  fields, cut into random read sizes, compared with a small reference decoder of the
  whole stream (RFC 6455 §5): only ``ProtocolError`` escapes ``read``, the texts are
  exactly the messages that were encoded as text, and what the reader buffers stays
  within ``max_message_size`` plus a read.
- ``Router`` wired as ``link.py`` wires it (``Registry``, ``Dispatcher(threads=0)``,
  ``FrameGuard``, a ``ready`` deque, ``PendingRequests``), fed mutations of every real
  message shape the local server builds, plus the control channels: ``handle`` never
  raises, no tracker raises, the guard's counters only grow (by at most one a frame),
  a backfill hold is always released, and the next good frame reaches its callback once.
- ``Tracker``/``CandleTracker`` directly: they never raise, whatever the data.

Then regressions by name: a message begun inside a fragmented one, items a tracker cannot
read, and one item dated far in the future, which must not hide every later one.

Bounded for a loaded 2-core machine: no example database, explicit example counts.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hyperliquid_ws.dispatch import Dispatcher, Lane, Ready
from hyperliquid_ws.errors import BadFrameError, HyperliquidWSError
from hyperliquid_ws.feeds import FEED_OF_CHANNEL, FEEDS, canonical
from hyperliquid_ws.frames import CHUNK, FrameReader, ProtocolError
from hyperliquid_ws.guard import FrameGuard
from hyperliquid_ws.history import SHAPES, CandleTracker, Tracker
from hyperliquid_ws.posts import PendingRequests, _Waiter
from hyperliquid_ws.registry import Registry
from hyperliquid_ws.router import Router
from hyperliquid_ws.subscription import Entry
from hyperliquid_ws.testing import wire
from hyperliquid_ws.testing.feeds import sample_data
from hyperliquid_ws.testing.market import Market
from hyperliquid_ws.testing.subscriptions import channel_of, normalise_subscription


def _fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- 1. the frame reader ------------------------------------------------------------------

MAX_SIZES = (1024, 4096, CHUNK - 1, CHUNK + 15, 40_000)  # the client accepts 1024 and up
HEADER_AND_MASK = 14  # the longest frame header (10) and a mask (4)


class SizedSocket:
    """Hands out ``data`` in reads of the given sizes (cycled), then end-of-stream."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = data
        self._position = 0
        floor = len(data) // 2000 + 1  # a long stream in 1-byte reads would take too long
        self._sizes = itertools.cycle([max(size, floor) for size in sizes])

    def recv_into(self, buffer: bytearray, nbytes: int = 0) -> int:
        size = min(next(self._sizes), len(buffer), len(self._data) - self._position)
        buffer[:size] = self._data[self._position : self._position + size]
        self._position += size
        return size


def buffered(reader: FrameReader) -> int:
    """Bytes the reader holds between reads: a frame still arriving and the fragments of a
    message still arriving (counted from the lists, not from the running totals)."""
    return sum(map(len, reader._parts)) + sum(map(len, reader._fragments))


@dataclass
class Outcome:
    texts: list[bytes]
    pings: list[bytes]
    binaries: list[bytes]
    end: str  # "closed" (or the stream ended), "breach", or "either" (see reference_read)
    result: tuple[int | None, str] | None = None  # what read() returns at "closed"


def reference_read(stream: bytes, max_size: int) -> Outcome:
    """The whole stream decoded at once, as RFC 6455 §5 reads it for a client.

    A breach the header shows ends the stream there. A breach only the frame's place in a
    message shows (a stray continuation, a new message inside a fragmented one) or its
    body (a one-byte close) ends it there too; if that frame is cut off by the end of the
    stream, a reader may have seen it or not yet: ``"either"``.
    """
    out = Outcome([], [], [], "closed", (None, ""))
    position, fragmented = 0, 0  # fragmented: the opcode of the message arriving, if any
    fragments: list[bytes] = []
    while len(stream) - position >= 2:
        first, second = stream[position], stream[position + 1]
        length, header = second & 0x7F, 2
        if length == 126:
            if len(stream) - position < 4:
                return out
            length, header = int.from_bytes(stream[position + 2 : position + 4], "big"), 4
        elif length == 127:
            if len(stream) - position < 10:
                return out
            length, header = int.from_bytes(stream[position + 2 : position + 10], "big"), 10
        final, opcode = first & 0x80, first & 0x0F
        is_control = opcode >= wire.CLOSE
        if (second & 0x80 or first & 0x70 or opcode not in (0, 1, 2, 8, 9, 10)
                or (is_control and (not final or length > 125))
                or length + (sum(map(len, fragments)) if opcode == wire.CONTINUATION else 0) > max_size):
            out.end = "breach"
            return out
        misplaced = (opcode == wire.CONTINUATION and not fragmented) or (
            opcode in (wire.TEXT, wire.BINARY) and fragmented)
        start, stop = position + header, position + header + length
        if stop > len(stream):
            out.end = "either" if misplaced or (opcode == wire.CLOSE and length == 1) else "closed"
            return out
        payload, position = stream[start:stop], stop
        if misplaced:
            out.end = "breach"
            return out
        if opcode == wire.PING:
            out.pings.append(payload)
        elif opcode == wire.CLOSE:
            if length == 1:
                out.end = "breach"
                return out
            code = int.from_bytes(payload[:2], "big") if length >= 2 else None
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                out.end = "breach"  # §5.5.1: a close reason is UTF-8
                return out
            if code is not None and (code < 1000 or code in (1004, 1005, 1006, 1015) or 1016 <= code <= 2999):
                out.end = "breach"  # §7.4: codes that may not be sent
                return out
            out.result = (code, reason)
            return out
        elif opcode != wire.PONG:
            if opcode != wire.CONTINUATION and not final:
                fragmented, fragments = opcode, [payload]
                continue
            if opcode == wire.CONTINUATION:
                fragments.append(payload)
                if not final:
                    continue
                opcode, payload, fragmented, fragments = fragmented, b"".join(fragments), 0, []
            (out.texts if opcode == wire.TEXT else out.binaries).append(payload)
    return out


def check_reader(stream: bytes, sizes: list[int], max_size: int) -> None:
    """The reader, fed ``stream`` in reads of ``sizes``, against ``reference_read``."""
    texts: list[bytes] = []
    pings: list[bytes] = []
    binaries: list[bytes] = []
    reader = FrameReader(SizedSocket(stream, sizes), pings.append, max_message_size=max_size,
                         on_binary=binaries.append)
    bound = max_size + CHUNK + HEADER_AND_MASK
    result: tuple[int | None, str] | None = None
    breached = False
    try:  # anything but ProtocolError fails the test
        while result is None:
            result = reader.read(texts.append)
            assert buffered(reader) <= bound, f"the reader holds {buffered(reader)} bytes, bound {bound}"
    except ProtocolError:
        breached = True
    expected = reference_read(stream, max_size)
    assert texts == expected.texts
    assert pings == expected.pings
    assert binaries == expected.binaries
    if expected.end == "breach":
        assert breached, f"no ProtocolError; read returned {result!r}"
    elif expected.end == "closed":
        assert not breached and result == expected.result
    else:
        assert breached or result == (None, "")


@st.composite
def frame_bytes(draw: st.DrawFn, max_size: int) -> bytes:
    """One frame: mostly well formed (one in six has random header fields and trailing
    garbage), of a size around the boundaries that matter."""
    hostile = draw(st.integers(0, 5)) == 0
    if hostile:
        opcode = draw(st.integers(0, 15))
    else:
        opcode = draw(st.sampled_from([wire.TEXT] * 6 + [wire.BINARY, wire.PING, wire.PONG, wire.CLOSE]))
    if opcode >= wire.CLOSE:
        size = draw(st.one_of(st.integers(0, 125), st.sampled_from([0, 1, 2, 125, 126, 127])))
    else:
        boundaries = [size for size in (125, 126, 127, 65_535, 65_536, CHUNK - 2, CHUNK, CHUNK + 1,
                                        max_size // 2, max_size - 1, max_size) if size <= max_size]
        size = draw(st.one_of(st.integers(0, 300), st.sampled_from([*boundaries, max_size + 1])))
    if opcode == wire.CLOSE and size >= 2 and draw(st.booleans()):
        payload = wire.close_payload(draw(st.integers(0, 0xFFFF)), draw(st.text(max_size=20)))
    else:
        start = draw(st.text(max_size=30)).encode() if opcode != wire.BINARY else draw(st.binary(max_size=30))
        payload = (start + b"x" * size)[:size]
    if not hostile:
        fin = opcode >= wire.CLOSE or draw(st.integers(0, 7)) > 0  # fragments: see fragmented_message
        return wire.encode_frame(payload, opcode=opcode, fin=fin)
    frame = wire.encode_frame(
        payload, opcode=opcode, fin=draw(st.booleans()), rsv=draw(st.one_of(st.just(0), st.integers(0, 7))),
        mask=draw(st.one_of(st.none(), st.binary(min_size=4, max_size=4))),
        length=draw(st.one_of(st.none(), st.integers(0, 300),
                              st.sampled_from([max_size, max_size + 1, wire.MAX_LENGTH, 2**32]))),
    )
    return frame + draw(st.binary(max_size=4))


PINGS_AND_PONGS = st.builds(lambda payload, opcode: wire.encode_frame(payload, opcode=opcode),
                            st.binary(max_size=125), st.sampled_from([wire.PING, wire.PONG]))


@st.composite
def fragmented_message(draw: st.DrawFn, max_size: int) -> bytes:
    """A message in fragments (RFC 6455 §5.4), with any frames in between: control frames
    may be, data frames may not."""
    sizes = st.one_of(st.integers(0, 300), st.sampled_from([CHUNK, max_size // 2, max_size - 1, max_size]))
    opcode = draw(st.sampled_from([wire.TEXT, wire.TEXT, wire.BINARY]))
    pieces = draw(st.lists(sizes, min_size=2, max_size=4))
    out = []
    for number, size in enumerate(pieces):
        out.append(wire.encode_frame(b"f" * size, opcode=opcode if number == 0 else wire.CONTINUATION,
                                     fin=number == len(pieces) - 1))
        out += draw(st.lists(st.one_of(PINGS_AND_PONGS, PINGS_AND_PONGS, frame_bytes(max_size)), max_size=2))
    return b"".join(out)


@st.composite
def frame_streams(draw: st.DrawFn) -> tuple[bytes, int]:
    max_size = draw(st.sampled_from(MAX_SIZES))
    parts = st.one_of(frame_bytes(max_size), frame_bytes(max_size), fragmented_message(max_size))
    return b"".join(draw(st.lists(parts, max_size=6))), max_size


READ_SIZES = st.lists(st.one_of(st.integers(1, 20), st.integers(1, 70_000)), min_size=1, max_size=6)


@_fuzz(250)
@given(stream=st.binary(max_size=3000), sizes=READ_SIZES, max_size=st.sampled_from(MAX_SIZES))
@example(stream=b"\x81\x7f" + b"\xff" * 8, sizes=[1], max_size=1024)  # a 64-bit length with its top bit set
@example(stream=b"\x81\x05hello\x88\x01\x00", sizes=[3], max_size=1024)  # a one-byte close body
def test_random_bytes_only_ever_raise_protocol_error(stream: bytes, sizes: list[int], max_size: int) -> None:
    check_reader(stream, sizes, max_size)


@_fuzz(150)
@given(streamed=frame_streams(), sizes=READ_SIZES)
def test_frame_streams_deliver_exactly_the_texts_sent_until_the_first_breach(
        streamed: tuple[bytes, int], sizes: list[int]) -> None:
    stream, max_size = streamed
    check_reader(stream, sizes, max_size)


def test_a_message_begun_inside_a_fragmented_one_is_refused_before_its_body_is_held() -> None:
    """The RFC 6455 §5.4 breach shows in the header, so the reader fails there: gathering the
    new message's body first would hold twice ``max_message_size`` (a fragmented message
    nearly full, plus the new one)."""
    max_size = 40_000
    stream = (wire.encode_frame(b"a" * max_size, fin=False)
              + wire.encode_frame(b"b" * max_size)[: 10 + max_size - 1])  # a new text message, nearly all in
    check_reader(stream, [CHUNK], max_size)


# -- 2. the router, fed mutations of every real message -------------------------------------


def _market() -> Market:
    market = Market(1)
    account = market.account(market.users[0])
    for _ in range(300):  # until the first TWAP has sliced, so its feeds have real items
        if account.twap_history and account.twap_slice_fills:
            break
        market.step()
    return market


MARKET = _market()
USER = MARKET.users[0]


_FIELDS = {"user": USER, "coin": "BTC", "interval": "1m"}


def _subscription(type_: str) -> dict[str, Any]:
    return {"type": type_, **{name: _FIELDS[name] for name in FEEDS[type_].required}}


def _data_bases() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """For every feed the local server can build data for: its subscription and one real frame."""
    subscriptions: dict[str, dict[str, Any]] = {}
    frames: dict[str, dict[str, Any]] = {}
    for type_, feed in FEEDS.items():
        if not set(feed.required) <= _FIELDS.keys():
            continue  # a feed newer than this test: no subscription to build for it
        normalised, valid = normalise_subscription(_subscription(type_))
        try:
            data = sample_data(normalised, MARKET) if valid else None
        except (KeyError, ValueError):  # the local server does not serve it
            data = None
        if data is not None:
            subscriptions[type_] = _subscription(type_)
            frames[type_] = json.loads(json.dumps({"channel": channel_of(normalised), "data": data}))
    return subscriptions, frames


SUBSCRIPTIONS, DATA_FRAMES = _data_bases()
FEED_TYPES = tuple(SUBSCRIPTIONS)
TRACKED = tuple(t for t in FEED_TYPES if t == "candle" or t in SHAPES)


def _echo(type_: str) -> str:
    return json.dumps(normalise_subscription(_subscription(type_))[0])


CONTROL_FRAMES: dict[str, Any] = {
    "ack": {"channel": "subscriptionResponse",
            "data": {"method": "subscribe", "subscription": normalise_subscription(_subscription("l2Book"))[0]}},
    "unsubscribe ack": {"channel": "subscriptionResponse",
                        "data": {"method": "unsubscribe", "subscription": {"type": "trades", "coin": "BTC"}}},
    "already subscribed": {"channel": "error", "data": f"Already subscribed: {_echo('trades')}"},
    "invalid subscription": {"channel": "error", "data": f"Invalid subscription: {_echo('candle')}"},
    "already unsubscribed": {"channel": "error", "data": f"Already unsubscribed: {_echo('bbo')}"},
    "subscription limit": {"channel": "error", "data": "Cannot subscribe to more than 1000 total subscriptions"},
    "user limit": {"channel": "error", "data": "Cannot track more than 10 total users"},
    "rate limit": {"channel": "error", "data": "Cannot send more than 2000 messages per minute"},
    "post limit": {"channel": "error", "data": "too many pending post requests id=2"},
    "parse error": {"channel": "error", "data": "Error parsing JSON into valid websocket request: "
                    + json.dumps({"method": "subscribe", "subscription": _subscription("userFills")})},
    "other error": {"channel": "error", "data": {"code": 7, "text": "something else"}},
    "post": {"channel": "post", "data": {"id": 1, "response": {"type": "info", "payload": {
        "type": "l2Book", "data": DATA_FRAMES["l2Book"]["data"]}}}},
    "post error": {"channel": "post", "data": {"id": 3, "response": {"type": "error", "payload": "bad"}}},
    "pong": {"channel": "pong"},
}
BASES: dict[str, Any] = {**DATA_FRAMES, **CONTROL_FRAMES}

# the fields that identify an item to a tracker (or date it), bumped to make a frame new
_IDENTITY = frozenset({"tid", "oid", "time", "statusTimestamp", "twapId", "timestamp", "t"})


def fresh(value: Any, bump: int) -> Any:
    """A copy of ``value`` whose identity fields are ``bump`` higher: a frame no tracker has seen."""
    if isinstance(value, dict):
        return {k: v + bump if k in _IDENTITY and type(v) is int else fresh(v, bump) for k, v in value.items()}
    if isinstance(value, list):
        return [fresh(v, bump) for v in value]
    return value


@dataclass(frozen=True)
class Raw:
    """JSON text spliced in as it is: what ``json.dumps`` cannot (or should not) produce."""

    text: str


def to_json(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(to_json, value)) + "]"
    return json.dumps(value, ensure_ascii=False)  # NaN and Infinity too: the stdlib parser reads them


def _deep(depth: int, opener: str = "[", closer: str = "]", leaf: str = "") -> Raw:
    return Raw(opener * depth + leaf + closer * depth)


DEPTHS = st.one_of(st.sampled_from([2, 100, 500, 900, 950, 980, 990, 1000, 3000]), st.integers(1, 3000))
WEIRD: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1.5, -0.0, 1e308, 10**400, -(10**400), 2**63, 2**64,
                     float("nan"), float("inf"), "", "x", "BTC", [], {}, [None], {"": None}, [[]], {"a": {}}]),
    st.sampled_from([Raw("-0"), Raw("1e400"), Raw("-1e400"), Raw("1" * 4300), Raw("1" * 4301), Raw("9" * 5000),
                     Raw("0." + "1" * 5000), Raw('"\\ud800"'), Raw('"\\udfff\\ud800"'), Raw('"\\u0000"')]),
    DEPTHS.map(_deep),
    DEPTHS.map(lambda depth: _deep(depth, '{"a":', "}", "1")),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                 max_leaves=6),
)
BAD_UTF8 = (b"\xff", b"\x80", b"\xc3", b"\xc3(", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82")


def _weird(draw: st.DrawFn) -> Any:
    return copy.deepcopy(draw(WEIRD))  # a fresh copy: later mutations must not change the constants


def _paths(value: Any) -> list[tuple[Any, ...]]:
    """Every place in ``value``, the root first."""
    found: list[tuple[Any, ...]] = []
    todo: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while todo:
        path, node = todo.pop()
        found.append(path)
        if isinstance(node, dict):
            todo += [((*path, k), v) for k, v in node.items()]
        elif isinstance(node, list):
            todo += [((*path, i), v) for i, v in enumerate(node)]
    return found


def _retyped(value: Any) -> Any:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 1e300 else str(value)
    if isinstance(value, str):
        return int(value) if value.isascii() and value.isdigit() else [value]  # "¹".isdigit(), int("¹") fails
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return list(value.values())


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one to three things wrong: a value replaced by anything, a key gone
    or added, a value wrapped in a list, retyped, or a list item repeated."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        operation = draw(st.sampled_from(["replace", "delete", "extra", "wrap", "repeat", "retype"]))
        if not path:
            value = [value] if operation == "wrap" else _weird(draw) if operation == "replace" else value
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key, target = path[-1], parent[path[-1]]
        if operation == "replace":
            parent[key] = _weird(draw)
        elif operation == "delete":
            del parent[key]
        elif operation == "extra" and isinstance(target, dict):
            target[draw(st.sampled_from(["", "channel", "data", "coin", "time", "tid", "t", "extra"]))] = _weird(draw)
        elif operation == "repeat" and isinstance(target, list) and target:
            target.insert(draw(st.integers(0, len(target))), copy.deepcopy(draw(st.sampled_from(target))))
        elif operation == "retype":
            parent[key] = _retyped(target)
        else:
            parent[key] = [target]  # a list (unhashable) where a string or number was
    return value


@st.composite
def mutated_bytes(draw: st.DrawFn, base: Any) -> bytes:
    """A mutation of ``base`` as a frame's bytes, now and then cut short or not UTF-8."""
    blob = to_json(draw(mutated(base))).encode("utf-8", "surrogatepass")
    damage = draw(st.sampled_from(["none", "none", "truncate", "bad utf-8"]))
    if damage == "truncate":
        blob = blob[: draw(st.integers(0, max(0, len(blob) - 1)))]
    elif damage == "bad utf-8":
        quotes = [i + 1 for i, byte in enumerate(blob) if byte == ord('"')] or [0]
        at = draw(st.one_of(st.sampled_from(quotes), st.integers(0, len(blob))))
        blob = blob[:at] + draw(st.sampled_from(BAD_UTF8)) + blob[at:]
    return blob


def _parsed(blob: bytes) -> Any:
    try:
        return json.loads(blob)
    except (ValueError, RecursionError):
        return None


@st.composite
def backfilled(draw: st.DrawFn, type_: str) -> dict[str, Any]:
    """A message as a backfill builds it (``{"channel", "data", "backfill"}``) around data
    as an HTTP answer might hold it: parsed JSON, mutated."""
    base = DATA_FRAMES[type_]
    message = _parsed(draw(mutated_bytes(base["data"])))
    return {"channel": base["channel"], "data": message, "backfill": True}


@dataclass(frozen=True)
class Step:
    """One mutated frame; then the good frame of ``good`` must get through. With ``hold``,
    the entry of ``good`` holds live frames across the mutated frame, as during a backfill,
    and is then released with ``backfill``."""

    frame: bytes
    good: str
    hold: bool = False
    backfill: tuple[dict[str, Any], ...] = ()


@st.composite
def steps(draw: st.DrawFn) -> Step:
    kind = draw(st.one_of(st.sampled_from(TRACKED), st.sampled_from(sorted(BASES))))  # trackers: twice as often
    frame = draw(mutated_bytes(BASES[kind]))
    if kind not in DATA_FRAMES:
        return Step(frame, draw(st.sampled_from(FEED_TYPES)))
    hold = kind in TRACKED and draw(st.booleans())
    backfill = tuple(draw(st.lists(backfilled(kind), max_size=2))) if hold else ()
    return Step(frame, kind, hold, backfill)


class _Owner:
    def unsubscribe(self, subscription: Any) -> None:
        pass


def _encoded(message: Any) -> bytes:
    return json.dumps(message).encode()


class Harness:
    """One connection's receive side, wired as ``Link`` wires it, every feed subscribed and
    every subscribe unanswered."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.dispatcher = Dispatcher("fuzz", self.errors.append, threads=0)
        self.ready = Ready()
        self.guard = FrameGuard("fuzz")
        self.guard.report = lambda error: self.dispatcher.report(error, self.ready)
        self.registry = Registry()
        self.posts = PendingRequests(cast(Any, None), cast(Any, None), limit=100)
        for request_id in (1, 2, 3):  # requests in flight, for post replies and post errors to find
            self.posts._waiters[request_id] = _Waiter(1)
        self.router = Router(self.registry, self.dispatcher, self.posts, self.guard, self.ready)
        self.received: dict[str, list[Any]] = {type_: [] for type_ in FEED_TYPES}
        self.entries: dict[str, Entry] = {}
        for type_, subscription in SUBSCRIPTIONS.items():
            feed, canonical_form = canonical(subscription)
            self.registry.add(_Owner(), feed, canonical_form, dict(subscription), self.received[type_].append)
            self.entries[type_] = self.registry.routes[feed.route_of(canonical_form)]
        self.registry.claim_all(1)
        self._bumps = itertools.count(1)

    def counts(self) -> dict[str, int]:
        return {**{f"bad:{k}": v for k, v in self.guard.bad.items()},
                **{f"unrecognised:{k}": v for k, v in self.guard.unrecognised.items()}}

    def serve(self) -> None:
        self.router.flush()
        self.dispatcher.serve(self.ready)

    def feed(self, frame: bytes) -> list[BadFrameError]:
        """One frame, as the reader hands it over; returns what the guard reported for it."""
        before, reported = self.counts(), len(self.errors)
        self.router.handle(frame)  # must not raise, whatever the frame
        self.serve()
        after = self.counts()
        assert all(after.get(key, 0) >= count for key, count in before.items()), (before, after)
        assert sum(after.values()) - sum(before.values()) <= 1, "one frame, counted once at most"
        new = self.errors[reported:]
        assert all(isinstance(error, HyperliquidWSError) for error in new), new
        assert all(len(error.excerpt) <= BadFrameError.EXCERPT for error in new if isinstance(error, BadFrameError))
        return [error for error in new if isinstance(error, BadFrameError)]

    def release(self, entry: Entry, backfill: tuple[dict[str, Any], ...]) -> None:
        """The end of a backfill, as ``Backfiller._release`` does it."""
        def submit(lane: Lane, message: Any) -> None:
            self.dispatcher.submit(lane, message, self.ready)
        entry.release(submit, list(backfill))  # must not raise
        assert entry.held is None
        self.dispatcher.serve(self.ready)

    def good_frame_gets_through(self, type_: str) -> None:
        """A new, good frame of ``type_`` (or of the next feed still subscribed) reaches its
        callback exactly once."""
        order = FEED_TYPES[FEED_TYPES.index(type_):] + FEED_TYPES[: FEED_TYPES.index(type_)]
        type_ = next(t for t in order if self.registry.owns(self.entries[t]))
        frame = _encoded(fresh(DATA_FRAMES[type_], 1000 * next(self._bumps)))
        self.received[type_].clear()
        assert self.feed(frame) == []
        assert self.received[type_] == [json.loads(frame)], f"the good {type_} frame did not get through once"


def _escaped(reports: list[BadFrameError], frame: bytes) -> list[BadFrameError]:
    """Reports that say an exception escaped a handler into the router's catch-all (not the
    parse, the envelope or the route): a tracker, the entry, an ack, error or post handler.
    Only nesting too deep to handle at all is let pass, and only on a control channel."""
    message = _parsed(frame)
    channel = message.get("channel") if isinstance(message, dict) else None
    on_feed = isinstance(channel, str) and channel in FEED_OF_CHANNEL
    return [report for report in reports
            if report.reason == "bad_data" or (on_feed and report.detail.endswith("to handle"))]


def _trades(*times: Any, coin: Any = "BTC") -> bytes:
    trade = DATA_FRAMES["trades"]["data"][0]
    return _encoded({"channel": "trades", "data": [
        {**trade, "coin": coin, "tid": 7_000 + i, "time": when} for i, when in enumerate(times)]})


def _candle(t: Any) -> dict[str, Any]:
    return {"channel": "candle", "data": {**DATA_FRAMES["candle"]["data"], "t": t}}


@_fuzz(200)
@given(script=st.lists(steps(), min_size=1, max_size=3))
@example(script=[Step(b'{"channel":[]}', "trades")])
@example(script=[Step(b"[" * 100_000, "l2Book")])
@example(script=[Step(b"[" * 3000 + b"]" * 3000, "bbo")])
@example(script=[Step(b'{"channel":{},"data":1}', "candle")])
@example(script=[Step(_trades(1, coin=["BTC"]), "trades", hold=True)])
@example(script=[Step(_trades(1, "2"), "trades", hold=True, backfill=(
    {"channel": "trades", "data": [{"coin": "BTC", "tid": 1, "time": 1}, {"coin": "BTC", "tid": 2, "time": "2"}],
     "backfill": True},)), Step(_trades(3), "trades"), Step(_trades("4"), "trades")])
@example(script=[Step(_encoded(_candle(t)), "candle", hold=True, backfill=({**_candle(t), "backfill": True},))
                 for t in (None, "1796205360000", [1796205360000])])
@example(script=[Step(_encoded({"channel": "userTwapHistory", "data": {"user": USER, "history": [1, None, [], "x"]}}),
                      "userTwapHistory", hold=True)])
@example(script=[Step(_encoded({"channel": "error", "data": "too many pending post requests id=" + "7" * 5000}),
                      "trades")])
@example(script=[Step(_encoded({"channel": "userFills", "data": {"user": USER, "fills": True}}),
                      "userFills")])  # items that are not a list: delivered, not kept for joiners
def test_no_frame_escapes_the_router_and_good_frames_still_flow(script: list[Step]) -> None:
    harness = Harness()
    for step in script:
        entry = harness.entries[step.good]
        hold = step.hold and entry.tracker is not None and harness.registry.owns(entry)
        if hold:
            entry.held = []
        reports = harness.feed(step.frame)
        assert _escaped(reports, step.frame) == [], "a handler raised: the frame was dropped, not handled"
        if hold:
            harness.release(entry, step.backfill)
        harness.good_frame_gets_through(step.good)


def test_every_real_message_shape_reaches_its_subscription() -> None:
    """The bases the mutations start from are routable: each one is delivered once."""
    assert {"trades", "candle", "l2Book", "userFills", "userTwapHistory", "webData2"} <= set(FEED_TYPES)
    harness = Harness()
    for type_ in FEED_TYPES:
        harness.good_frame_gets_through(type_)
    for kind in CONTROL_FRAMES:
        assert harness.feed(_encoded(CONTROL_FRAMES[kind])) == []


# -- 3. the trackers, directly --------------------------------------------------------------


def _new_tracker(type_: str) -> Tracker | CandleTracker:
    return CandleTracker() if type_ == "candle" else Tracker(SHAPES[type_])


@st.composite
def tracker_inputs(draw: st.DrawFn) -> tuple[str, list[tuple[Any, bool]]]:
    """A tracked feed, and data for it as JSON parsing can produce it: live or backfilled."""
    type_ = draw(st.sampled_from(TRACKED))
    base = DATA_FRAMES[type_]["data"]
    inputs = [(base, False)]
    for _ in range(draw(st.integers(1, 4))):
        data = _parsed(draw(mutated_bytes(base)))
        inputs.append((data, draw(st.booleans())))
    return type_, inputs


@_fuzz(200)
@given(case=tracker_inputs())
@example(case=("userTwapHistory", [({"history": [1]}, False)]))
@example(case=("candle", [({"t": 1}, False), ({"t": None}, True), ({"t": "1"}, True), ({"t": [1]}, False)]))
def test_trackers_never_raise_whatever_the_data(case: tuple[str, list[tuple[Any, bool]]]) -> None:
    type_, inputs = case
    tracker = _new_tracker(type_)
    for data, backfill in inputs:
        deliver, kept = tracker.admit(data, backfill=backfill)
        assert isinstance(deliver, bool)
        if deliver and kept is not data:  # filtered: what is left is a part of what came
            assert isinstance(kept, (dict, list))


def _twap(twap_id: int) -> dict[str, Any]:
    item = DATA_FRAMES["userTwapHistory"]["data"]["history"][0]
    return {**item, "twapId": twap_id}


def test_an_unreadable_item_does_not_make_the_good_items_of_its_frame_count_as_seen() -> None:
    """A frame whose items the tracker cannot all read is delivered ("better twice than
    never"); at worst dropped, but then its good items were never delivered either, so
    they must not count as seen when they come again."""
    harness = Harness()
    good = {"channel": "userTwapHistory", "data": {"user": USER, "history": [_twap(41)]}}
    bad = {"channel": "userTwapHistory", "data": {"user": USER, "history": [_twap(41), 1]}}
    harness.feed(_encoded(bad))
    harness.feed(_encoded(good))
    delivered = [item for message in harness.received["userTwapHistory"] for item in message["data"]["history"]]
    assert _twap(41) in delivered


NOW_MS = DATA_FRAMES["trades"]["data"][0]["time"]


@pytest.mark.parametrize("poison", [10**400, 2**63, NOW_MS * 1000], ids=["10**400", "2**63", "microseconds"])
def test_one_item_dated_far_in_the_future_does_not_hide_every_later_one(poison: int) -> None:
    """A trade whose time is absurd but an int is delivered and remembered. Once the memory
    (512 trades) forgets it, it must not become the horizon that every real trade is
    "older" than: that would drop all later trades, silently and for good."""
    harness = Harness()
    harness.feed(_trades(poison))
    for number in range(1, 601):
        try:
            harness.good_frame_gets_through("trades")
        except AssertionError:
            horizon = getattr(harness.entries["trades"].tracker, "horizon", None)
            pytest.fail(f"good trade {number} after the one dated {str(poison)[:20]}... was dropped "
                        f"(tracker horizon {str(horizon)[:20]}...)")
