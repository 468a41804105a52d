"""The requests ``Session`` of the HTTP half (the backfill's ``/info`` calls), whose
``close()`` also ends a call in flight.

requests' ``Session.close()`` closes only the idle connections of its pools; one lent to
a call stuck at a silent proxy or server would keep its thread until ``http_timeout``.
``AbortableAdapter`` gives every pool (direct, through an HTTP or a SOCKS proxy) a
subclass that remembers the connections it lent out, and whose ``close()`` shuts their
sockets down as well (the adapter's ``close()`` closes every pool: urllib3's ``clear()``
only forgets them), so the blocked read ends at once. A TCP connect still in progress
has no socket to shut down yet and ends at ``http_timeout``. ``close()`` runs on the
closing thread, the calls on the backfill thread.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import weakref
from typing import Any

from requests.adapters import HTTPAdapter


class AbortableAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose ``close()`` (``Session.close()``) also aborts the calls in flight."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _make_abortable(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _make_abortable(manager)
        return manager

    def close(self) -> None:
        # urllib3's PoolManager.clear() only forgets its pools; close each one first.
        for manager in (self.poolmanager, *self.proxy_manager.values()):
            pools = manager.pools
            for key in pools.keys():  # noqa: SIM118 - the container cannot be iterated itself
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
        super().close()


def _make_abortable(manager: Any) -> None:
    manager.pool_classes_by_scheme = {scheme: _abortable(pool_class)
                                      for scheme, pool_class in manager.pool_classes_by_scheme.items()}


@functools.cache
def _abortable(pool_class: type[Any]) -> type[Any]:
    if getattr(pool_class, "aborts_in_flight", False):
        return pool_class
    base: Any = pool_class

    class AbortablePool(base):  # type: ignore[misc]
        aborts_in_flight = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._lent: weakref.WeakSet[Any] = weakref.WeakSet()
            self._lent_lock = threading.Lock()

        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            with self._lent_lock:
                self._lent.add(conn)
            return conn

        def _put_conn(self, conn: Any) -> None:
            if conn is not None:
                with self._lent_lock:
                    self._lent.discard(conn)
            super()._put_conn(conn)

        def close(self) -> None:
            super().close()
            with self._lent_lock:
                lent = list(self._lent)
            for conn in lent:
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):  # the plain socket's shutdown, TLS or not
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)

    AbortablePool.__name__ = AbortablePool.__qualname__ = f"Abortable{pool_class.__name__}"
    return AbortablePool
