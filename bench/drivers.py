"""The three clients under test, behind one small interface.

``ours``     hyperliquid_ws.HyperliquidWS with a callback, as installed (callbacks on the
             connection's reader thread, a relay thread standing by).
``pooled``   the same with ``callback_threads=2``: two dispatcher threads run the callbacks.
``sdk``      hyperliquid-python-sdk's WebsocketManager with a callback, driven directly.
``ours_fast`` the same with orjson importable (the ``fast`` extra).
``sdk``      hyperliquid-python-sdk's WebsocketManager with a callback, driven directly,
             as shipped; ``sdk_wsaccel`` the same with wsaccel importable.
``wsclient`` a bare websocket-client receive loop (``skip_utf8_validation=True``) that
             hands each frame's raw bytes to the probe: the best websocket-client's own
             reader does. Not a limit for us: our reader bypasses it.
``raw``      the raw limit of this design: our ``FrameReader`` on the handshaken socket
             and our parser, each parsed message straight to the probe, no routing, no
             dedupe, no lanes (``raw_fast``: with orjson).
``wire``     no WebSocket parsing at all: ``recv_into`` on the socket, counting bytes.
             It measures the blaster itself, which must be far faster than any client.

Which accelerators each may import is ``bench.accelerators``' business.

Each driver's ``start`` returns once everything is subscribed (as far as that client
can tell); ``deliver`` then blocks until the probe is done or the time box runs out.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, ClassVar, Protocol

CLIENTS = ("ours", "ours_fast", "pooled", "sdk", "sdk_wsaccel", "wsclient", "raw", "raw_fast", "wire")
_SETUP_POLL = 0.005  # seconds; setup only, never per frame


class Probe(Protocol):
    done: threading.Event

    def __call__(self, message: Any) -> None: ...

    def stop(self) -> None: ...


class Driver(Protocol):
    def load(self) -> None: ...

    def start(self, base_url: str, subscriptions: list[dict[str, Any]], probe: Probe) -> None: ...

    def deliver(self, probe: Probe, frames: int, seconds: float) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


def _wait_probe(probe: Probe, seconds: float) -> None:
    if not probe.done.wait(seconds):
        probe.stop()


class Ours:
    settings: ClassVar[dict[str, Any]] = {}  # the defaults

    def load(self) -> None:
        import hyperliquid_ws  # noqa: F401

    def start(self, base_url: str, subscriptions: list[dict[str, Any]], probe: Probe) -> None:
        from hyperliquid_ws import HyperliquidWS

        self.ws = HyperliquidWS(base_url, name="bench", **self.settings)
        handles = [self.ws.subscribe(sub, probe) for sub in subscriptions]
        for handle in handles:
            handle.wait(timeout=60)

    def deliver(self, probe: Probe, frames: int, seconds: float) -> dict[str, Any] | None:
        _wait_probe(probe, seconds)
        return None

    def close(self) -> None:
        self.ws.close()


class Sdk:
    """The SDK sees no acks (it drops subscriptionResponse frames), so ``start``
    returns once every subscribe is sent; the blaster starts after the last ack."""

    def load(self) -> None:
        import hyperliquid.websocket_manager  # noqa: F401

    def start(self, base_url: str, subscriptions: list[dict[str, Any]], probe: Probe) -> None:
        from hyperliquid.websocket_manager import WebsocketManager

        self.manager = WebsocketManager(base_url)
        self.manager.name = "bench-sdk-ws"
        self.manager.daemon = True
        self.manager.start()
        # Subscribing while the SDK is still connecting can lose the subscription
        # (its queue is read once, in on_open), so wait for the link first.
        deadline = time.monotonic() + 30
        while not self.manager.ws_ready:
            if time.monotonic() > deadline:
                raise TimeoutError("the SDK did not connect within 30 s")
            time.sleep(_SETUP_POLL)
        for sub in subscriptions:
            self.manager.subscribe(sub, probe)

    def deliver(self, probe: Probe, frames: int, seconds: float) -> dict[str, Any] | None:
        _wait_probe(probe, seconds)
        return None

    def close(self) -> None:
        self.manager.stop()
        self.manager.join(1)


class WsClientLoop:
    """Runs the receive loop on the calling thread; a timer thread ends it at the time box."""

    def load(self) -> None:
        import websocket  # noqa: F401

    def start(self, base_url: str, subscriptions: list[dict[str, Any]], probe: Probe) -> None:
        self._subscribe(base_url, subscriptions)
        for _ in subscriptions:  # the blaster acks everything before the first data frame
            self.ws.recv_data()

    def _subscribe(self, base_url: str, subscriptions: list[dict[str, Any]]) -> None:
        import json

        import websocket

        url = "ws" + base_url[len("http") :] + "/ws"
        self.ws = websocket.create_connection(url, skip_utf8_validation=True)
        for sub in subscriptions:
            self.ws.send(json.dumps({"method": "subscribe", "subscription": sub}))

    def _time_box(self, probe: Probe, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self._time_up, args=(probe,))
        timer.name = "bench-timebox"
        timer.daemon = True
        timer.start()
        return timer

    def deliver(self, probe: Probe, frames: int, seconds: float) -> dict[str, Any] | None:
        import websocket

        timer = self._time_box(probe, seconds)
        recv = self.ws.recv_data
        try:
            for _ in range(frames):
                probe(recv()[1])
        except (OSError, websocket.WebSocketException):
            pass  # the time box closed the socket under us
        finally:
            timer.cancel()
        return None

    def _time_up(self, probe: Probe) -> None:
        probe.stop()
        self.ws.shutdown()  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.ws.close()


class Wire(WsClientLoop):
    """Drains the socket after the acks, counting bytes; frames = bytes / mean frame size."""

    def __init__(self, mean_frame_bytes: float) -> None:
        self.mean_frame_bytes = mean_frame_bytes

    def deliver(self, probe: Probe, frames: int, seconds: float) -> dict[str, Any] | None:
        sock = self.ws.sock
        assert sock is not None
        buffer = bytearray(1 << 20)
        wanted = frames * self.mean_frame_bytes
        received = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + seconds
        now = started
        while received < wanted and now < deadline:
            n = sock.recv_into(buffer)
            if not n:
                break
            received += n
            now = time.perf_counter()
        elapsed = now - started
        count = received / self.mean_frame_bytes
        return {"frames": int(count), "seconds": elapsed, "rate": count / elapsed,
                "cpu_us_per_frame": (time.process_time() - cpu_started) / count * 1e6,
                "mbytes_per_s": received / elapsed / 1e6}


class Raw(WsClientLoop):
    """websocket-client does the handshake (it reads the response a byte at a time, so
    nothing of the stream is left in its buffers); from then on our ``FrameReader`` reads
    the socket and ``hyperliquid_ws.router.loads`` parses each text frame for the probe.
    The acks are parsed too, and not handed to the probe."""

    def start(self, base_url: str, subscriptions: list[dict[str, Any]], probe: Probe) -> None:
        self._subscribe(base_url, subscriptions)
        self._expected_acks = len(subscriptions)

    def _time_up(self, probe: Probe) -> None:
        import socket

        probe.stop()
        sock = self.ws.sock
        if sock is not None:  # wakes our blocked recv_into (closing the socket alone would not)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def deliver(self, probe: Probe, frames: int, seconds: float) -> dict[str, Any] | None:
        from hyperliquid_ws.frames import FrameReader
        from hyperliquid_ws.router import loads

        timer = self._time_box(probe, seconds)
        sock = self.ws.sock
        assert sock is not None
        reader = FrameReader(sock, on_ping=lambda payload: None)

        acks = [self._expected_acks]

        def on_ack(payload: bytes) -> None:  # the blaster acks everything before the first data frame
            loads(payload)
            acks[0] -= 1

        def on_text(payload: bytes) -> None:
            probe(loads(payload))

        read = reader.read
        try:
            while acks[0] > 0 and read(on_ack) is None:
                pass
            while not probe.done.is_set() and read(on_text) is None:
                pass
        except OSError:
            pass  # the time box closed the socket under us
        finally:
            timer.cancel()
        return None


class OursPooled(Ours):
    """``callback_threads=2``: the reader hands every message to dispatcher threads."""

    settings: ClassVar[dict[str, Any]] = {"callback_threads": 2}


def make(client: str, workload: str) -> Driver:
    if client == "wire":
        from bench.blaster import mean_frame_bytes

        return Wire(mean_frame_bytes(workload))
    drivers: dict[str, type[Driver]] = {"ours": Ours, "ours_fast": Ours, "pooled": OursPooled, "sdk": Sdk,
                                        "sdk_wsaccel": Sdk, "wsclient": WsClientLoop, "raw": Raw, "raw_fast": Raw}
    return drivers[client]()
