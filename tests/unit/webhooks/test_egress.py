"""SSRF guard: allow-list by (scheme, host, port); private, loopback and link-local
addresses refused unless explicitly allowed; refusals are permanent and send nothing."""

from __future__ import annotations

import pytest

from contracts.actions import ActionStatus
from services.webhook_processor.config import AllowRule, EgressConfig, WebhooksConfigError
from services.webhook_processor.egress import EgressDenied, EgressPolicy
from tests.support import HttpRecorder
from tests.unit.webhooks.conftest import CONFIG, HarnessFactory, make_config, make_job


def policy(allow: list[tuple[str, str, int | None]], private: list[str] | None = None):
    rules = [AllowRule(scheme=s, host=h, port=p) for s, h, p in allow]
    return EgressPolicy(EgressConfig(allow=rules, allow_private=private or []))


async def test_loopback_refused_unless_allowed(
    harness_factory: HarnessFactory, sink: HttpRecorder
) -> None:
    h = await harness_factory({'allow_private: ["127.0.0.1/32"]': "allow_private: []"})
    await h.engine.enqueue(make_job("a-ssrf", "slack_cs_alerts"))
    [result] = await h.wait_results(1)
    assert result.status == ActionStatus.FAILED
    [(_job, code, message)] = h.dead
    assert code == "egress_private_address"
    assert message == (
        "127.0.0.1 resolves to 127.0.0.1, a private/loopback/link-local "
        "address not in egress.allow_private"
    )
    assert sink.requests() == []


async def test_metadata_address_refused_before_connecting() -> None:
    p = policy([("http", "169.254.169.254", None)])
    with pytest.raises(EgressDenied) as exc:
        await p.check("http://169.254.169.254/latest/meta-data/")
    assert exc.value.code == "egress_private_address"


async def test_hostname_resolving_to_loopback_refused() -> None:
    p = policy([("http", "localhost", 8080)])
    with pytest.raises(EgressDenied) as exc:
        await p.check("http://localhost:8080/x")
    assert exc.value.code == "egress_private_address"
    await policy([("http", "localhost", 8080)], ["127.0.0.0/8", "::1/128"]).check(
        "http://localhost:8080/x"
    )


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/services/x", True),
        ("https://hooks.slack.com:8443/services/x", False),  # other port
        ("http://hooks.slack.com/services/x", False),  # other scheme
        ("https://evil.com/?hooks.slack.com", False),
        ("https://acme.my.salesforce.com/services", True),
        ("https://my.salesforce.com/services", False),  # wildcard needs a subdomain
        ("https://acme.my.salesforce.com.evil.com/", False),
        ("file:///etc/passwd", False),
    ],
)
def test_allow_list(url: str, allowed: bool) -> None:
    p = policy([("https", "hooks.slack.com", None), ("https", "*.my.salesforce.com", None)])
    if allowed:
        p.check_allowed(url)
    else:
        with pytest.raises(EgressDenied):
            p.check_allowed(url)


def test_destination_outside_allow_list_refused_at_start_up(sink: HttpRecorder) -> None:
    text = CONFIG.replace("url: ${SINK}/hook", "url: http://10.0.0.5/hook")
    with pytest.raises(WebhooksConfigError) as exc:
        make_config(sink, text=text)
    assert str(exc.value) == (
        "webhooks.yaml: destinations.webhook_generic: http://10.0.0.5:80 is not in egress.allow"
    )
