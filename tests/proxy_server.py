"""A real proxy for the tests: ``pproxy`` (the dev extra) in a subprocess on loopback.

``PProxy("http")`` or ``PProxy("socks5", auth=("user", "pass"))`` serves HTTP CONNECT
(and plain forwarding) or SOCKS5 on an ephemeral port; ``-v`` makes it print one line
per tunnel it opens, ``<proto> 127.0.0.1:<client port> -> <host>:<port>``, which
``tunnels()`` parses so a test can see what went through it.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import DEADLINE

_LINE = re.compile(r"^(?P<proto>\w+) 127\.0\.0\.1:(?P<client>\d+) -> (?P<host>[^\s:]+):(?P<port>\d+)\s*$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PProxy:
    def __init__(self, kind: str, log_dir: Path, auth: tuple[str, str] | None = None) -> None:
        self.kind = kind
        self.auth = auth
        self.port = free_port()
        self.log_path = log_dir / f"pproxy-{kind}-{self.port}.log"
        listen = f"{kind}://127.0.0.1:{self.port}" + (f"#{auth[0]}:{auth[1]}" if auth else "")
        self._log = self.log_path.open("w")
        # --auth 0: check the credentials of every connection (pproxy would otherwise trust
        # an address for 30 days once it has authenticated)
        self._process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pproxy", "-l", listen, "-v", "--auth", "0"],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._wait_until_listening()

    def url(self, scheme: str | None = None, auth: tuple[str, str] | None = None) -> str:
        user = auth or self.auth
        credentials = f"{user[0]}:{user[1]}@" if user else ""
        return f"{scheme or self.kind}://{credentials}127.0.0.1:{self.port}"

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + DEADLINE
        pause = threading.Event()
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"pproxy exited with {self._process.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"pproxy did not listen on {self.port}: {self.output()}") from None
            pause.wait(0.05)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def tunnels(self, port: int | None = None) -> list[int]:
        """The client ports of the tunnels opened so far (to ``port`` only, if given), in order."""
        found = []
        for line in self.output().splitlines():
            match = _LINE.match(line)
            if match and (port is None or int(match["port"]) == port):
                found.append(int(match["client"]))
        return found

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(DEADLINE)
        self._log.close()


class SilentServer:
    """A TCP listener that accepts, reads what the client sends and never answers: a peer
    stalled in whatever handshake the client started (TLS, a proxy's, the WebSocket's).
    ``wait_for_bytes()`` returns the first bytes a client sent, so a test knows the client
    is waiting for the answer."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = int(self._listener.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self._accepted: list[socket.socket] = []

    def wait_for_bytes(self, timeout: float = DEADLINE) -> bytes:
        self._listener.settimeout(timeout)
        conn, _ = self._listener.accept()
        self._accepted.append(conn)
        conn.settimeout(timeout)
        return conn.recv(65536)

    def close(self) -> None:
        for conn in self._accepted:
            conn.close()
        self._listener.close()


class StallingProxy:
    """An HTTP proxy that tunnels ``CONNECT`` (the WebSocket) but, asked to forward a plain
    request (the ``/info`` call), reads it and never answers. ``stalled`` is set once one waits."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.stalled = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="test-stalling-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(conn)
            threading.Thread(target=self._serve, args=(conn,), name="test-stalling-proxy-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        head = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            if not head.startswith(b"CONNECT "):
                self.stalled.set()
                while conn.recv(4096):
                    pass
                return
            host, _, port = head.split()[1].decode().rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=DEADLINE)
            upstream.settimeout(None)
            self._sockets.append(upstream)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=_pipe, args=(upstream, conn), name="test-stalling-proxy-pipe", daemon=True).start()
            _pipe(conn, upstream)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
