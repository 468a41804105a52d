"""``Channel``: one Redis connection owned by one thread's hot loop.

The appender's ``APPEND`` call and a consumer's ``XREAD`` loop (with its position writes)
each run several hundred to thousands of times a second. Through ``redis.Redis`` every
command also takes a connection from the pool, runs redis-py's retry wrapper and its
telemetry hooks and gives the connection back: measured on the development machine
(redis-py 8.1, pure-Python parser), an ``XREAD`` of one entry costs about 140 µs of CPU
that way and about 40 µs sent on a connection directly, an ``HSET`` 100 µs against 45 µs.
The gateway's loops retry on their own (with backoff), so they use a ``Channel``: a
``redis.Connection`` from the client's pool, held for the loop's life, commands packed,
sent together and answered in order with redis-py's own parser (so TLS, auth, RESP2/3 and
``hiredis`` when installed all work as for the client). TCP_NODELAY is redis-py's default.

Not thread-safe: one thread calls it. Any failure disconnects the connection (so a reply
half read can never be taken for the next command's) and raises the redis-py error; the
next call connects again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis


class Channel:
    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool
        self._connection: Any = None

    def call(self, *args: Any) -> Any:
        """One command, its reply as redis-py's parser gives it (no reply callbacks)."""
        return self.pipeline([args])[0]

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send the commands in one write and read their replies in order (one round trip).
        An error reply raises (``redis.ResponseError``) after the connection is dropped."""
        connection = self._connection
        if connection is None:
            connection = self._connection = self._pool.make_connection()
        try:
            connection.send_packed_command(connection.pack_commands(commands), check_health=False)
            return [connection.read_response() for _ in commands]
        except BaseException:
            connection.disconnect()
            raise

    def evalsha(self, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a registered ``redis.Script`` by its SHA; loads it again after a Redis restart
        (``NOSCRIPT``)."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self.call(*command)
        except redis.exceptions.NoScriptError:
            pass
        self.call("SCRIPT", "LOAD", script.script)
        return self.call(*command)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.disconnect()
