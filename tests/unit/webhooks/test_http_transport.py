"""The HTTP transport against a real server on loopback: what it sends, how it keeps its
connection, and how it reads each kind of answer and failure."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.webhook_processor.config import AllowRule, EgressConfig
from services.webhook_processor.egress import EgressPolicy
from services.webhook_processor.rendering import PermanentDeliveryError
from services.webhook_processor.specs import HttpRequestSpec, RetryableDeliveryError
from services.webhook_processor.transports import (
    EnvironmentProxies,
    HttpTransport,
    new_http_client,
)
from tests.support.http_recorder import HttpRecorder


def loopback_policy(port: int, host: str = "127.0.0.1") -> EgressPolicy:
    rule = AllowRule(scheme="http", host=host, port=port)
    return EgressPolicy(EgressConfig(allow=[rule], allow_private=["127.0.0.1/32", "::1/128"]))


def closed_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD")


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_http_client(max_connections=2) as session:
        yield session


async def test_the_request_goes_as_built_with_no_header_added_to_name_its_body(
    client: aiohttp.ClientSession,
) -> None:
    with HttpRecorder() as sink:
        transport = HttpTransport(client, loopback_policy(sink.port))
        body = b'{"text": "Deal 006A at risk", "n": 1}'
        spec = HttpRequestSpec("POST", sink.url("/hook?x=1"), {"Idempotency-Key": "k-1"}, body)
        outcome = await transport.send(spec, 5.0)
        [sent] = sink.requests("/hook")
        assert (sent.method, sent.query, sent.body) == ("POST", "x=1", body)
        assert sent.header("Idempotency-Key") == "k-1"
        assert sent.header("Content-Type") is None  # the spec named none
        assert outcome.status_code == 200 and outcome.response == {"ok": True}
        typed = HttpRequestSpec(
            "PUT", sink.url("/hook"), {"Content-Type": "application/json"}, b"{}"
        )
        await transport.send(typed, 5.0)
        assert sink.requests("/hook")[1].header("Content-Type") == "application/json"


async def test_one_kept_connection_carries_requests_one_after_another(
    client: aiohttp.ClientSession,
) -> None:
    with HttpRecorder() as sink:
        transport = HttpTransport(client, loopback_policy(sink.port))
        for n in range(20):
            await transport.send(HttpRequestSpec("POST", sink.url("/hook"), {}, b"%d" % n), 5.0)
        assert len(sink.requests("/hook")) == 20
        assert sink.connections == 1


async def test_answers_are_read_as_the_result_records_them(client: aiohttp.ClientSession) -> None:
    with HttpRecorder() as sink:
        transport = HttpTransport(client, loopback_policy(sink.port))
        sink.respond("/list", json=[1, 2])
        sink.respond("/text", text="accepted, thanks")
        sink.respond("/empty", status=204, text="")
        answers = [
            (await transport.send(HttpRequestSpec("POST", sink.url(p), {}, b"{}"), 5.0)).response
            for p in ("/list", "/text", "/empty")
        ]
    assert answers == [{"body": [1, 2]}, {"body": "accepted, thanks"}, {}]


async def test_failures_are_classified_retryable_or_permanent(
    client: aiohttp.ClientSession,
) -> None:
    with HttpRecorder() as sink:
        transport = HttpTransport(client, loopback_policy(sink.port))
        spec = HttpRequestSpec("POST", sink.url("/hook"), {}, b"{}")
        sink.rate_limit("/hook", retry_after=7)
        with pytest.raises(RetryableDeliveryError) as limited:
            await transport.send(spec, 5.0)
        assert (limited.value.code, limited.value.status_code) == ("rate_limited", 429)
        assert limited.value.retry_after_s == 7.0
        sink.fail("/hook", status=503, body={"error": "down for a moment"})
        with pytest.raises(RetryableDeliveryError) as unavailable:
            await transport.send(spec, 5.0)
        assert unavailable.value.code == "destination_unavailable"
        assert "down for a moment" in unavailable.value.message
        sink.fail("/hook", status=302, headers={"Location": "http://169.254.169.254/"})
        with pytest.raises(PermanentDeliveryError) as redirected:
            await transport.send(spec, 5.0)
        assert redirected.value.code == "destination_redirected"
        sink.stall("/hook", seconds=2.0)
        with pytest.raises(RetryableDeliveryError) as slow:
            await transport.send(spec, 0.3)
        assert slow.value.code == "timeout"
        assert len(sink.requests("/hook")) == 4  # the redirect was not followed


async def test_a_destination_that_refuses_connections_is_retryable(
    client: aiohttp.ClientSession,
) -> None:
    port = closed_port()
    transport = HttpTransport(client, loopback_policy(port))
    spec = HttpRequestSpec("POST", f"http://127.0.0.1:{port}/hook", {}, b"{}")
    with pytest.raises(RetryableDeliveryError) as refused:
        await transport.send(spec, 5.0)
    assert refused.value.code == "connection_error"


def set_proxy_environment(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


async def test_requests_go_through_the_proxy_the_environment_names_with_its_credentials(
    client: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = closed_port()  # reached directly, the request would be refused
    with HttpRecorder() as proxy:
        set_proxy_environment(monkeypatch, HTTP_PROXY=f"http://relay:s3cret@127.0.0.1:{proxy.port}")
        transport = HttpTransport(client, loopback_policy(destination, host="localhost"))
        spec = HttpRequestSpec("POST", f"http://localhost:{destination}/hook", {}, b"{}")
        outcome = await transport.send(spec, 5.0)
        [relayed] = proxy.requests("/hook")
    assert outcome.status_code == 200
    assert relayed.header("Host") == f"localhost:{destination}"
    # base64("relay:s3cret"): the proxy's credentials go to the proxy only
    assert relayed.header("Proxy-Authorization") == "Basic cmVsYXk6czNjcmV0"
    assert relayed.header("Authorization") is None


async def test_no_proxy_hosts_and_other_schemes_are_reached_directly(
    client: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = closed_port()
    spec = HttpRequestSpec("POST", f"http://localhost:{destination}/hook", {}, b"{}")
    with HttpRecorder() as proxy:
        for environment in (
            {"HTTP_PROXY": proxy.url(""), "NO_PROXY": "example.org,localhost"},
            {"HTTPS_PROXY": proxy.url("")},  # a proxy for https:// only
        ):
            set_proxy_environment(monkeypatch, **environment)
            transport = HttpTransport(client, loopback_policy(destination, host="localhost"))
            with pytest.raises(RetryableDeliveryError) as refused:
                await transport.send(spec, 5.0)
            assert refused.value.code == "connection_error"  # went straight to the closed port
        assert proxy.requests("/hook") == []


def test_the_environment_is_read_once_when_the_transport_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_proxy_environment(monkeypatch, https_proxy="proxy.internal:3128")
    proxies = EnvironmentProxies.from_environment()
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere:1")
    assert proxies.for_url("https://hooks.slack.com/services/X") == "http://proxy.internal:3128"
    assert proxies.for_url("http://hooks.slack.com/services/X") is None
