"""Keeping credentials out of everything the client shows: logs, ``repr``, ``stats()``,
exception messages and hook arguments.

Node providers put API keys in URLs: in the user info (``https://user:KEY@host``), in a
path segment (``https://host/KEY/``) or in the query (``?apikey=KEY``); proxies take a
``user:password``. ``redact_url`` is the one helper that hides them in a URL:

- the user info, always: ``https://***@host``;
- a query value whose name sounds like a credential (``key``, ``token``, ``secret``,
  ``auth``, ``sig`` ...) or whose value looks like a key: ``?apikey=***``;
- a path segment that looks like a key (16+ characters of letters *and* digits, or 32+
  hex digits): ``/***/ws``.

Text the client did not write (an exception from requests or urllib3, a log line of
theirs) can still carry the secret: a ``Scrubber`` knows the secret parts of the
client's URLs (and the ``Basic`` header each user info becomes) and replaces them
wherever they appear, masks the value of any ``Authorization:`` header line, and as a ``logging.Filter`` does so
in the records of the HTTP and WebSocket libraries the client uses. Pure functions; the
filter runs on whichever thread logs.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

MASK = "***"

_SECRET_NAME = re.compile(r"key|token|secret|pass|auth|sig|cred|session|jwt|bearer|private", re.IGNORECASE)
_KEY_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")
_HEX = re.compile(r"(0x)?[0-9a-fA-F]{32,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MIN_KEY_LENGTH = 16
# An Authorization or Proxy-Authorization header line, as websocket-client's trace dumps it: its credentials.
_AUTHORIZATION = re.compile(r"(?im)^([ \t]*[\w-]*authorization:[ \t]*(?:[a-z]+[ \t]+)?)[^\r\n]+")

# The libraries whose own log lines can carry a URL's path, query or proxy address.
THIRD_PARTY_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.connection", "websocket")


def looks_like_key(text: str) -> bool:
    """True for a token that is most likely a credential: 16+ characters mixing letters
    and digits, 32+ hex digits, or a UUID. ``ws``, ``info``, ``v1``, ``BTC`` are not."""
    if _HEX.fullmatch(text) or _UUID.fullmatch(text):
        return True
    return (len(text) >= _MIN_KEY_LENGTH and bool(_KEY_CHARS.fullmatch(text))
            and any(c.isdigit() for c in text) and any(c.isalpha() for c in text))


_SECRET_SHORT_NAMES = {"k", "ak", "pk", "sk", "pw", "pwd"}  # too short for _SECRET_NAME to search for
_SEPARATORS = re.compile(r"([&;])")  # ";" separates parameters too (HTML 4, path parameters)


def _secret_query(name: str, value: str) -> bool:
    return bool(value) and (bool(_SECRET_NAME.search(name)) or name.lower() in _SECRET_SHORT_NAMES
                            or looks_like_key(value))


def _redact_params(text: str) -> str:
    return "".join(_redact_pair(piece) for piece in _SEPARATORS.split(text))


def _redact_segment(segment: str) -> str:
    if looks_like_key(unquote(segment)):
        return MASK
    head, semicolon, params = segment.partition(";")  # /ws;apikey=KEY
    return head + semicolon + _redact_params(params) if semicolon else segment


def _cut_user_info(url: str) -> tuple[str, str] | None:
    """(user info, the URL without it) when a user info was cut short by an unencoded ``/``,
    ``?`` or ``#`` in it (``http://user:pa/ss@host``): everything up to the last ``@`` is
    taken for it. None otherwise."""
    scheme, _, after = url.partition("://")
    if "@" not in after or "@" in urlsplit(url).netloc:
        return None
    userinfo, _, rest = after.rpartition("@")
    return userinfo, f"{scheme}://{rest}"


def _parseable(netloc_of: SplitResult) -> bool:
    try:
        netloc_of.port  # noqa: B018 - raises for what is not a port
    except ValueError:
        return False
    return True


def redact_url(url: str) -> str:
    """``url`` with its credentials masked (and any ``#fragment``); a URL without any comes
    back unchanged. When in doubt (a user info cut short by an unencoded ``/``, ``?`` or ``#``, a host and port
    that do not parse), more is masked, never less."""
    if not isinstance(url, str) or "://" not in url:
        return url
    cut = _cut_user_info(url)
    if cut is not None:
        scheme, _, rest = cut[1].partition("://")
        return redact_url(f"{scheme}://{MASK}@{rest}")
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    if not _parseable(parts):
        netloc = MASK
    segments = parts.path.split("/")
    path = "/".join(_redact_segment(segment) for segment in segments)
    query = _redact_params(parts.query)
    fragment = MASK if parts.fragment else ""  # never sent to a server, shown by nothing: masked whole
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def _redact_pair(pair: str) -> str:
    name, equals, value = pair.partition("=")
    if equals and _secret_query(unquote(name), unquote(value)):
        return f"{name}={MASK}"
    return pair


def secrets_of(url: str | None) -> set[str]:
    """The parts of ``url`` that ``redact_url`` hides, raw and percent-decoded."""
    if not url or "://" not in url:
        return set()
    cut = _cut_user_info(url)
    parts = urlsplit(url if cut is None else cut[1])
    found: set[str] = set()
    userinfo = cut[0] if cut is not None else parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    if userinfo is not None:
        user, _, password = userinfo.partition(":")
        found.update((user, password, userinfo))
        # as an Authorization / Proxy-Authorization: Basic header carries it (websocket-client's trace logs those)
        found.add(base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode())
    if cut is None and not _parseable(parts):
        found.add(parts.netloc)
    if parts.fragment:
        found.add(parts.fragment)
    found.update(s for s in parts.path.split("/") if looks_like_key(unquote(s)))
    params = [*_SEPARATORS.split(parts.query), *(p for s in parts.path.split("/") for p in s.split(";")[1:])]
    found.update(raw for pair in params
                 for name, _, raw in [pair.partition("=")] if raw and _secret_query(unquote(name), unquote(raw)))
    variants = {v for s in found for v in (s, unquote(s), quote(unquote(s), safe=""))}
    return {s for s in variants if len(s) >= 4}  # shorter ones would mask innocent text too


class Scrubber(logging.Filter):
    """Replaces the known secrets of a client's URLs in any text. Thread-safe.

    As a filter on ``THIRD_PARTY_LOGGERS`` (``install``/``uninstall``), it rewrites only the
    records that contain one of them; others pass untouched.
    """

    def __init__(self, urls: Iterable[str | None]) -> None:
        super().__init__()
        secrets = set().union(*(secrets_of(url) for url in urls))
        self._secrets = sorted(secrets, key=len, reverse=True)  # longest first: no half-masked leftovers
        self._lock = threading.Lock()
        self._installed = False

    @property
    def active(self) -> bool:
        return bool(self._secrets)

    def scrub(self, text: str) -> str:
        text = _AUTHORIZATION.sub(rf"\1{MASK}", text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, not ours
            return True
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True

    def install(self) -> None:
        with self._lock:
            if self._installed or not self._secrets:
                return
            self._installed = True
        for name in THIRD_PARTY_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        with self._lock:
            if not self._installed:
                return
            self._installed = False
        for name in THIRD_PARTY_LOGGERS:
            logging.getLogger(name).removeFilter(self)
