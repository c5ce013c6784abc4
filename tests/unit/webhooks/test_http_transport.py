"""The HTTP transport against a real server on loopback: what it sends, how it keeps its
connection, and how it reads each kind of answer and failure."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from services.webhook_processor import egress
from services.webhook_processor.config import AllowRule, EgressConfig
from services.webhook_processor.egress import EgressDenied, EgressPolicy
from services.webhook_processor.rendering import PermanentDeliveryError
from services.webhook_processor.specs import HttpRequestSpec, RetryableDeliveryError
from services.webhook_processor.transports import EnvironmentProxies, HttpTransport
from tests.kafka_broker import free_port
from tests.support.http_recorder import HttpRecorder


def loopback_policy(port: int, host: str = "127.0.0.1") -> EgressPolicy:
    rule = AllowRule(scheme="http", host=host, port=port)
    return EgressPolicy(EgressConfig(allow=[rule], allow_private=["127.0.0.1/32", "::1/128"]))


TransportFor = Callable[[EgressPolicy], HttpTransport]


@pytest.fixture
async def transport_for() -> AsyncIterator[TransportFor]:
    """Transports for the test (two connections each), closed after it."""
    made: list[HttpTransport] = []

    def make(policy: EgressPolicy) -> HttpTransport:
        made.append(HttpTransport(policy, max_connections=2))
        return made[-1]

    yield make
    for transport in made:
        await transport.close()


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD")


async def test_the_request_goes_as_built_with_no_header_added_to_name_its_body(
    transport_for: TransportFor,
) -> None:
    with HttpRecorder() as sink:
        transport = transport_for(loopback_policy(sink.port))
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
    transport_for: TransportFor,
) -> None:
    with HttpRecorder() as sink:
        transport = transport_for(loopback_policy(sink.port))
        for n in range(20):
            await transport.send(HttpRequestSpec("POST", sink.url("/hook"), {}, b"%d" % n), 5.0)
        assert len(sink.requests("/hook")) == 20
        assert sink.connections == 1


async def test_answers_are_read_as_the_result_records_them(transport_for: TransportFor) -> None:
    with HttpRecorder() as sink:
        transport = transport_for(loopback_policy(sink.port))
        sink.respond("/list", json=[1, 2])
        sink.respond("/text", text="accepted, thanks")
        sink.respond("/empty", status=204, text="")
        answers = [
            (await transport.send(HttpRequestSpec("POST", sink.url(p), {}, b"{}"), 5.0)).response
            for p in ("/list", "/text", "/empty")
        ]
    assert answers == [{"body": [1, 2]}, {"body": "accepted, thanks"}, {}]


async def test_failures_are_classified_retryable_or_permanent(transport_for: TransportFor) -> None:
    with HttpRecorder() as sink:
        transport = transport_for(loopback_policy(sink.port))
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
    transport_for: TransportFor,
) -> None:
    port = free_port()  # nothing listens on it
    transport = transport_for(loopback_policy(port))
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
    transport_for: TransportFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = free_port()  # nothing listens on it: reached directly, refused
    with HttpRecorder() as proxy:
        set_proxy_environment(monkeypatch, HTTP_PROXY=f"http://relay:s3cret@127.0.0.1:{proxy.port}")
        transport = transport_for(loopback_policy(destination, host="localhost"))
        spec = HttpRequestSpec("POST", f"http://localhost:{destination}/hook", {}, b"{}")
        outcome = await transport.send(spec, 5.0)
        [relayed] = proxy.requests("/hook")
    assert outcome.status_code == 200
    assert relayed.header("Host") == f"localhost:{destination}"
    # base64("relay:s3cret"): the proxy's credentials go to the proxy only
    assert relayed.header("Proxy-Authorization") == "Basic cmVsYXk6czNjcmV0"
    assert relayed.header("Authorization") is None


async def test_no_proxy_hosts_and_other_schemes_are_reached_directly(
    transport_for: TransportFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = free_port()  # nothing listens on it
    spec = HttpRequestSpec("POST", f"http://localhost:{destination}/hook", {}, b"{}")
    with HttpRecorder() as proxy:
        for environment in (
            {"HTTP_PROXY": proxy.url(""), "NO_PROXY": "example.org,localhost"},
            {"HTTPS_PROXY": proxy.url("")},  # a proxy for https:// only
        ):
            set_proxy_environment(monkeypatch, **environment)
            transport = transport_for(loopback_policy(destination, host="localhost"))
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


class ScriptedNames(AbstractResolver):
    """A name service answering from a table (OSError for a name it lacks), recording what it
    was asked: it stands in for the system's behind the transport's egress resolver."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in self.answers[host]
        ]

    async def close(self) -> None:
        return None


def named_policy(host: str, port: int, private: list[str]) -> EgressPolicy:
    rule = AllowRule(scheme="http", host=host, port=port)
    return EgressPolicy(EgressConfig(allow=[rule], allow_private=private))


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["93.184.216.34", "127.0.0.1"]])
async def test_a_name_is_checked_at_the_addresses_its_connection_would_use(
    transport_for: TransportFor, monkeypatch: pytest.MonkeyPatch, addresses: list[str]
) -> None:
    names = ScriptedNames({"hooks.example.com": addresses})
    monkeypatch.setattr(egress, "DefaultResolver", lambda: names)
    set_proxy_environment(monkeypatch)
    with HttpRecorder() as sink:
        url = f"http://hooks.example.com:{sink.port}/hook"
        refusing = transport_for(named_policy("hooks.example.com", sink.port, []))
        with pytest.raises(EgressDenied) as denied:
            await refusing.send(HttpRequestSpec("POST", url, {}, b"{}"), 5.0)
        assert denied.value.code == "egress_private_address"
        assert denied.value.message.startswith("hooks.example.com resolves to 127.0.0.1,")
        assert sink.requests() == []  # refused before any connection


async def test_a_name_is_resolved_for_its_connection_not_for_every_request(
    transport_for: TransportFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ScriptedNames({"hooks.example.com": ["127.0.0.1"]})
    monkeypatch.setattr(egress, "DefaultResolver", lambda: names)
    set_proxy_environment(monkeypatch)
    with HttpRecorder() as sink:
        url = f"http://hooks.example.com:{sink.port}/hook"
        transport = transport_for(named_policy("hooks.example.com", sink.port, ["127.0.0.1/32"]))
        for n in range(20):
            await transport.send(HttpRequestSpec("POST", url, {}, b"%d" % n), 5.0)
        assert len(sink.requests("/hook")) == 20
        assert sink.requests("/hook")[0].header("Host") == f"hooks.example.com:{sink.port}"
        assert sink.connections == 1
    assert names.asked == ["hooks.example.com"]


async def test_a_name_that_does_not_resolve_is_refused(
    transport_for: TransportFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(egress, "DefaultResolver", lambda: ScriptedNames({}))
    set_proxy_environment(monkeypatch)
    transport = transport_for(named_policy("nowhere.example.com", 80, []))
    with pytest.raises(EgressDenied) as denied:
        await transport.send(HttpRequestSpec("POST", "http://nowhere.example.com/x", {}, b""), 5.0)
    assert denied.value.code == "egress_dns_failed"
    assert denied.value.message.startswith("nowhere.example.com does not resolve: ")
