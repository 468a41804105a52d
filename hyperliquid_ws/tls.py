"""TLS settings, one set for the socket and the HTTP calls alike.

- Neither given: the ``ssl`` module's default context for the socket (the system's CAs),
  requests' defaults (certifi) for HTTP. Verification is on.
- ``ca_bundle=`` a PEM file (or a directory of hashed certificates), for a corporate TLS
  inspection CA or a private node: trusted *instead of* the defaults, on both halves.
- ``ssl_context=`` an ``ssl.SSLContext`` the user built (client certificates, pinning, a
  minimum version): used as it is for the socket, and for HTTP through a requests
  adapter that hands it to urllib3 and keeps requests from adding its own CAs to it.

There is no switch that turns verification off: a context with ``CERT_NONE`` is the only
way, and only one the user made. Checked in the constructor; the contexts are shared by
every reconnect (``SSLContext`` is thread-safe).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TLSSettings:
    context: ssl.SSLContext  # for the socket
    ca_bundle: str | None = None  # requests' ``verify`` path
    user_context: bool = False  # ``context`` is the user's: HTTP goes through ``ContextAdapter``

    def configure(self, session: requests.Session) -> None:
        """Make ``session``'s HTTPS calls verify as the socket does."""
        if self.user_context:
            session.mount("https://", ContextAdapter(self.context))
        elif self.ca_bundle is not None:
            session.verify = self.ca_bundle


def tls_settings(ssl_context: ssl.SSLContext | None, ca_bundle: PathLike | None) -> TLSSettings:
    """Check the constructor's TLS arguments; ``ValueError`` for a wrong one."""
    if ssl_context is not None and ca_bundle is not None:
        raise ValueError("give ssl_context or ca_bundle, not both (load the bundle into the context: "
                         "context.load_verify_locations(path))")
    if ssl_context is not None:
        if not isinstance(ssl_context, ssl.SSLContext):
            raise ValueError(f"ssl_context must be an ssl.SSLContext, got {ssl_context!r}")
        return TLSSettings(ssl_context, user_context=True)
    if ca_bundle is None:
        return TLSSettings(ssl.create_default_context())
    if not isinstance(ca_bundle, (str, os.PathLike)):
        raise ValueError(f"ca_bundle must be the path of a PEM file or directory, got {ca_bundle!r}")
    path = os.fspath(ca_bundle)
    try:
        if os.path.isdir(path):
            context = ssl.create_default_context(capath=path)
        else:
            context = ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_bundle {path!r} cannot be loaded: {exc}") from None
    return TLSSettings(context, ca_bundle=path)


class ContextAdapter(HTTPAdapter):
    """A requests adapter whose HTTPS connections use one ``ssl.SSLContext`` as it is."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        # requests would add certifi's CAs to the context and force CERT_REQUIRED on it;
        # the context already says what to trust and how.
        conn.cert_reqs = self._context.verify_mode
        conn.ca_certs = None
        conn.ca_cert_dir = None
