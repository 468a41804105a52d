"""No credentials in any output: a secret planted in the API root's user info and query
and in the proxy's user info never shows in logs (all of them, at DEBUG), repr, stats(),
hook arguments or error messages, across connect, a refused connect, reconnect,
backfill (a failed one too), post and close; while the wire still carries them."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperliquid_ws import HyperliquidWS
from hyperliquid_ws.redact import Scrubber, looks_like_key, redact_url
from tests.conftest import DEADLINE, Collector, wait_until

USER_SECRET = "S3CRET-pa55word"
QUERY_SECRET = "k3y0000planted0000k3y"
PROXY_SECRET = "pr0xy-S3CRET"
SECRETS = (USER_SECRET, QUERY_SECRET, PROXY_SECRET)


@pytest.mark.parametrize(("url", "shown"), [
    ("http://apiuser:S3CRET@127.0.0.1:8765", "http://***@127.0.0.1:8765"),
    ("https://KEY0123456789abcdef@node.example/ws", "https://***@node.example/ws"),
    ("https://node.example/0123456789abcdef0123456789abcdef/info", "https://node.example/***/info"),
    ("https://x.example/a1b2c3d4e5f6a7b8c9/ws?token=t0k&dex=xyz", "https://x.example/***/ws?token=***&dex=xyz"),
    ("wss://node.example/ws?api_key=abc&coin=BTC", "wss://node.example/ws?api_key=***&coin=BTC"),
    ("wss://node.example/ws?id=Zx81kQ0pL2mN4bV6cX8z", "wss://node.example/ws?id=***"),
    ("socks5h://u:p%40ss@proxy:1080", "socks5h://***@proxy:1080"),
    ("https://api.hyperliquid.xyz/info", "https://api.hyperliquid.xyz/info"),
    # a password with an unencoded "/", "?" or "#" cuts the user info short: mask up to the last "@"
    ("http://apiuser:Secret/Pw99@127.0.0.1:8765", "http://***@127.0.0.1:8765"),
    ("https://user:pa?ss@node.example/", "https://***@node.example/"),
    ("https://user:pa#ss@node.example/", "https://***@node.example/"),
    ("http://host:notaport/ws", "http://***/ws"),  # a netloc that does not parse is masked whole
    ("https://node.example/?k=a1b2c3&coin=BTC", "https://node.example/?k=***&coin=BTC"),
    ("https://node.example/?a=1;apikey=hunter2", "https://node.example/?a=1;apikey=***"),
    ("https://node.example/ws;apikey=hunter2", "https://node.example/ws;apikey=***"),
    ("wss://api.hyperliquid-testnet.xyz/ws", "wss://api.hyperliquid-testnet.xyz/ws"),
    ("redis://:pw@127.0.0.1:6379/0#fragS3CRETtext", "redis://***@127.0.0.1:6379/0#***"),  # a fragment: whole
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_what_looks_like_a_key() -> None:
    assert looks_like_key("0123456789abcdef0123456789abcdef")
    assert looks_like_key("Zx81kQ0pL2mN4bV6cX8z")
    assert looks_like_key("3f2b8c1e-9d4a-4b7e-8f6a-1c2d3e4f5a6b")
    for word in ("ws", "info", "v1", "BTC", "hyperliquid-testnet", "exchange", "evm"):
        assert not looks_like_key(word)


def test_the_scrubber_masks_the_secrets_in_other_libraries_text() -> None:
    scrubber = Scrubber(["http://apiuser:S3CRET@h:1/?apikey=abcd", "http://pu:pw%21x@p:3128", None])
    text = "Max retries exceeded with url: /info?apikey=abcd (proxy pu:pw!x, auth apiuser:S3CRET)"
    assert scrubber.scrub(text) == "Max retries exceeded with url: /info?apikey=*** (proxy ***, auth ***)"


@pytest.fixture
def secret_proxy(tmp_path: Path) -> Iterator[Any]:
    pytest.importorskip("pproxy")
    from tests.proxy_server import PProxy

    proxy = PProxy("http", tmp_path, auth=("proxyuser", PROXY_SECRET))
    yield proxy
    proxy.stop()


def test_a_planted_secret_never_shows(server: Any, secret_proxy: Any, make_client: Any,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    base_url = f"http://apiuser:{USER_SECRET}@127.0.0.1:{server.port}/?apikey={QUERY_SECRET}"
    client = make_client(
        base_url=base_url, proxy=secret_proxy.url(),
        on_connect=lambda url: shown.append(f"on_connect {url}"),
        on_disconnect=lambda reason: shown.append(f"on_disconnect {reason}"),
        on_reconnect=lambda downtime: shown.append(f"on_reconnect {downtime}"),
        on_error=lambda error: shown.append(f"on_error {error!r} {error}"),
    )
    shown += [client.base_url, client.ws_url, client.info_url, repr(client)]

    client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait(timeout=DEADLINE)  # connect
    assert client.info({"type": "allMids"}, timeout=DEADLINE)  # post
    shown.append(repr(client))

    server.refuse_handshakes(1)  # a refused connect, then a reconnect whose backfill fails (404)
    server.fail_info(1, status=404)
    server.drop_connections()
    wait_until(lambda: client.stats()["backfill"]["gaps_unrecovered"] >= 1, what="the failed backfill")
    wait_until(lambda: client.connected, what="the reconnect")
    shown.append(json.dumps(client.stats()))

    server.drop_connections()  # a reconnect with a good backfill
    wait_until(lambda: client.stats()["backfill"]["gaps_backfilled"] >= 1, what="the backfill")
    wait_until(lambda: client.connected, what="the second reconnect")
    shown.append(json.dumps(client.stats()))

    client.close()
    shown += [repr(client), json.dumps(client.stats())]
    assert client.stats()["last_disconnect_reason"] == "closed by the user"

    assert any(line.startswith("on_connect ws://***@127.0.0.1") for line in shown), shown
    assert any("BackfillError" in line for line in shown), shown
    assert len(secret_proxy.tunnels(server.port)) >= 4  # the proxy's credentials were used
    logs = [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert any("urllib3" in record.name for record in caplog.records)  # the HTTP library's DEBUG lines too
    for text in (*logs, *shown):
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in {text!r}"


def test_the_secrets_reach_the_wire(server: Any, make_client: Any) -> None:
    """Masking is for what is shown: the client still sends the URL it was given."""
    client: HyperliquidWS = make_client(base_url=f"http://apiuser:{USER_SECRET}@127.0.0.1:{server.port}"
                                                 f"/?apikey={QUERY_SECRET}")
    assert client.info({"type": "allMids"}, timeout=DEADLINE)
    assert client._pool.primary.connection.url.endswith(f"/ws?apikey={QUERY_SECRET}")
    assert client.ws_url == f"ws://***@127.0.0.1:{server.port}/ws?apikey=***"


@pytest.mark.parametrize("base_url", ["http://apiuser:Secret/Pw99@127.0.0.1:8765", "http://apiuser:Secret?Pw99@127.0.0.1",
                                      "http://apiuser:Secret#Pw99@127.0.0.1", "http://127.0.0.1:Secret99"])
def test_a_base_url_cut_short_by_its_password_is_refused_without_it(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url") as refused:
        HyperliquidWS(base_url)
    assert "Secret" not in str(refused.value) and "Pw99" not in str(refused.value), refused.value


def test_websocket_client_trace_shows_no_credentials(server: Any, secret_proxy: Any, make_client: Any) -> None:
    """websocket.enableTrace(True) dumps every handshake's headers, the Basic ones included."""
    import io

    import websocket

    trace = io.StringIO()
    handler = logging.StreamHandler(trace)
    websocket_logger = logging.getLogger("websocket")
    level = websocket_logger.level
    websocket.enableTrace(True, handler=handler)
    try:
        client = make_client(base_url=f"http://apiuser:{USER_SECRET}@127.0.0.1:{server.port}",
                             proxy=secret_proxy.url(), backfill=False)
        client.subscribe({"type": "allMids"}, Collector()).wait(timeout=DEADLINE)
        client.close()
    finally:
        websocket.enableTrace(False)
        websocket_logger.removeHandler(handler)
        websocket_logger.setLevel(level)
    text = trace.getvalue()
    assert "Proxy-Authorization: Basic ***" in text and "\nAuthorization: Basic ***" in text, text
    tokens = [base64.b64encode(f"{user}:{password}".encode()).decode()
              for user, password in (("apiuser", USER_SECRET), ("proxyuser", PROXY_SECRET))]
    for secret in (*SECRETS, *tokens):
        assert secret not in text, f"{secret!r} in the trace"


def test_the_scrubber_masks_basic_tokens_and_authorization_headers() -> None:
    scrubber = Scrubber(["http://apiuser:S3CRET@h:1"])
    token = base64.b64encode(b"apiuser:S3CRET").decode()
    assert scrubber.scrub(f"sent {token}") == "sent ***"
    assert scrubber.scrub("GET /ws HTTP/1.1\r\nAuthorization: Bearer xyz\r\nHost: h") == \
        "GET /ws HTTP/1.1\r\nAuthorization: Bearer ***\r\nHost: h"
