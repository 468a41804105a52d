"""TLS: the local server over https:// and wss:// with a certificate trustme issued.
Refused by default on both halves; accepted with ca_bundle= that CA, or an ssl_context
trusting it; through a proxy too; verification cannot be turned off by accident; close() ends a stalled
TLS handshake, direct or through a proxy."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hyperliquid_ws import HyperliquidWS
from hyperliquid_ws.testing import LocalServer
from tests.conftest import DEADLINE, Collector, wait_until
from tests.proxy_server import SilentServer

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def tls_server(ca: Any) -> Iterator[LocalServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with LocalServer(tick_interval=None, ssl_context=context) as server:
        yield server


def trusting(ca: Any) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def connects_and_backfills(client: HyperliquidWS, server: LocalServer) -> None:
    """The socket's handshake and, after a dropped link, the HTTP backfill both succeed."""
    client.subscribe({"type": "trades", "coin": "BTC"}, Collector()).wait(timeout=DEADLINE)
    server.drop_connections()
    wait_until(lambda: client.stats()["backfill"]["gaps_backfilled"] >= 1, what="the backfill over https")
    assert client.stats()["backfill"]["gaps_unrecovered"] == 0


def refused_on_both_halves(client: HyperliquidWS, server: LocalServer) -> None:
    client.subscribe({"type": "allMids"}, Collector())
    reason = wait_until(lambda: client.stats()["last_disconnect_reason"], what="a failed connect")
    assert "CERTIFICATE_VERIFY_FAILED" in reason, reason
    assert not client.connected
    with pytest.raises(requests.exceptions.SSLError):
        client._backfiller._session.post(server.base_url + "/info", json={"type": "allMids"}, timeout=DEADLINE)


def test_the_server_serves_tls(tls_server: LocalServer) -> None:
    assert tls_server.base_url.startswith("https://127.0.0.1:")
    assert tls_server.ws_url.startswith("wss://127.0.0.1:")


def test_a_self_signed_certificate_is_refused_by_default(tls_server: LocalServer, make_client: Any) -> None:
    refused_on_both_halves(make_client(base_url=tls_server.base_url), tls_server)


def test_ca_bundle_trusts_that_certificate_on_both_halves(
        tls_server: LocalServer, ca_file: Path, make_client: Any) -> None:
    connects_and_backfills(make_client(base_url=tls_server.base_url, ca_bundle=ca_file), tls_server)


def test_an_ssl_context_is_used_on_both_halves(tls_server: LocalServer, ca: Any, make_client: Any) -> None:
    connects_and_backfills(make_client(base_url=tls_server.base_url, ssl_context=trusting(ca)), tls_server)


def test_a_context_trusting_another_ca_is_refused_on_both_halves(tls_server: LocalServer, make_client: Any) -> None:
    refused_on_both_halves(make_client(base_url=tls_server.base_url, ssl_context=trusting(trustme.CA())), tls_server)


def test_wss_through_an_http_proxy(tls_server: LocalServer, ca_file: Path, make_client: Any,
                                   tmp_path: Path) -> None:
    pytest.importorskip("pproxy")
    from tests.proxy_server import PProxy

    proxy = PProxy("http", tmp_path)
    try:
        client = make_client(base_url=tls_server.base_url, ca_bundle=str(ca_file), proxy=proxy.url())
        connects_and_backfills(client, tls_server)
        assert len(proxy.tunnels(tls_server.port)) >= 3, proxy.output()  # two sockets, one HTTPS session
    finally:
        proxy.stop()


def test_tls_arguments_are_checked_in_the_constructor(ca_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        HyperliquidWS(ca_bundle=ca_file, ssl_context=ssl.create_default_context())
    with pytest.raises(ValueError, match="cannot be loaded"):
        HyperliquidWS(ca_bundle=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="SSLContext"):
        HyperliquidWS(ssl_context=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # there is no switch that turns verification off
        HyperliquidWS(verify=False)  # type: ignore[call-arg]


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("via", ["direct", "http", "socks5"])
def test_close_interrupts_a_stalled_tls_handshake(via: str, silent_server: SilentServer, make_client: Any,
                                                  tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The server (reached directly or through a real proxy) accepts and reads the
    ClientHello but never answers: close() ends the handshake and joins the reader long
    before open_timeout."""
    proxy = None
    if via != "direct":
        pytest.importorskip("pproxy")
        pytest.importorskip("python_socks")
        from tests.proxy_server import PProxy

        proxy = PProxy(via, tmp_path)
    try:
        client: HyperliquidWS = make_client(base_url=f"https://{silent_server.address}", backfill=False,
                                            proxy=proxy.url() if proxy else None, open_timeout=60.0,
                                            close_timeout=5.0)
        client.subscribe({"type": "allMids"}, Collector())
        hello = silent_server.wait_for_bytes()
        assert hello[:1] == b"\x16", hello[:16]  # a TLS handshake record: the client waits for the ServerHello
        client.close()
        assert not any(t.is_alive() for t in client._threads())
        assert client.stats()["connections"][0]["last_disconnect_reason"] == "closed by the user"
        assert "still running after close()" not in caplog.text
    finally:
        if proxy is not None:
            proxy.stop()


def test_ssl_cert_file_is_trusted_on_both_halves(tls_server: LocalServer, ca_file: Path, make_client: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSL's SSL_CERT_FILE makes the default context trust the CA; the HTTP half uses
    that same context, so the backfill does not fail where the feed connects."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    connects_and_backfills(make_client(base_url=tls_server.base_url), tls_server)


@pytest.mark.parametrize("insecure", ["CERT_NONE", "check_hostname"])
def test_a_context_that_does_not_verify_is_warned_about(insecure: str, caplog: pytest.LogCaptureFixture) -> None:
    from hyperliquid_ws.tls import InsecureContextWarning

    context = ssl.create_default_context()
    context.check_hostname = False
    if insecure == "CERT_NONE":
        context.verify_mode = ssl.CERT_NONE
    with pytest.warns(InsecureContextWarning, match="ssl_context"):
        HyperliquidWS(ssl_context=context)
    assert "ssl_context given does not" in caplog.text


def test_a_verifying_context_is_not_warned_about(ca: Any, recwarn: pytest.WarningsRecorder) -> None:
    HyperliquidWS(ssl_context=trusting(ca))
    assert not [w for w in recwarn if "ssl_context" in str(w.message)]
