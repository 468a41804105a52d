"""TLS settings, one set for the socket and the HTTP calls alike.

- Neither given: the ``ssl`` module's default context (the system's CAs, and OpenSSL's
  ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set), for the socket and HTTP alike, so both
  halves trust the same certificates (requests' certifi bundle and ``REQUESTS_CA_BUNDLE``
  are not used). Verification is on.
- ``ca_bundle=`` a PEM file (or a directory of hashed certificates), for a corporate TLS
  inspection CA or a private node: trusted *instead of* the defaults, on both halves.
- ``ssl_context=`` an ``ssl.SSLContext`` the user built (client certificates, pinning, a
  minimum version): used as it is for the socket, and for HTTP through a requests
  adapter that hands it to urllib3 and keeps requests from adding its own CAs to it.

HTTP always goes through ``ContextAdapter`` with the socket's context. There is no switch
that turns verification off: a context with ``CERT_NONE`` (or ``check_hostname`` off) is
the only way, and only one the user made; the constructor warns about it
(``InsecureContextWarning``, and a log line). Checked in the constructor; the contexts are shared by
every reconnect (``SSLContext`` is thread-safe).
"""

from __future__ import annotations

import logging
import os
import ssl
import warnings
from dataclasses import dataclass
from typing import Any

import requests

from .httpsession import AbortableAdapter

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


class InsecureContextWarning(UserWarning):
    """The ``ssl_context`` given does not verify the server's certificate or its name."""


@dataclass(frozen=True)
class TLSSettings:
    context: ssl.SSLContext  # for the socket and, through ``ContextAdapter``, for HTTP

    def configure(self, session: requests.Session) -> None:
        """Make ``session``'s HTTPS calls verify as the socket does."""
        session.mount("https://", ContextAdapter(self.context))


def _warn_if_insecure(context: ssl.SSLContext) -> None:
    problem = ("does not verify certificates (verify_mode is CERT_NONE)" if context.verify_mode == ssl.CERT_NONE
               else "does not check the server's host name (check_hostname is False)" if not context.check_hostname
               else None)
    if problem is not None:
        message = (f"the ssl_context given {problem}: anyone on the path can read and change the traffic; "
                   "build it with ssl.create_default_context() unless this is what you mean")
        log.warning("%s", message)
        warnings.warn(message, InsecureContextWarning, stacklevel=4)


def tls_settings(ssl_context: ssl.SSLContext | None, ca_bundle: PathLike | None) -> TLSSettings:
    """Check the constructor's TLS arguments; ``ValueError`` for a wrong one."""
    if ssl_context is not None and ca_bundle is not None:
        raise ValueError("give ssl_context or ca_bundle, not both (load the bundle into the context: "
                         "context.load_verify_locations(path))")
    if ssl_context is not None:
        if not isinstance(ssl_context, ssl.SSLContext):
            raise ValueError(f"ssl_context must be an ssl.SSLContext, got {ssl_context!r}")
        _warn_if_insecure(ssl_context)
        return TLSSettings(ssl_context)
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
    return TLSSettings(context)


class ContextAdapter(AbortableAdapter):
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
