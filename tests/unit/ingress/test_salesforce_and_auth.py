"""Stage-change mapping rules and the ingress authenticator (no broker needed)."""

from __future__ import annotations

import time

import pytest

from contracts import Priority
from services.common.security import AuthenticationError, InMemoryReplayCache
from services.common.security.hmac_auth import sign_request
from services.common.security.secrets import EnvSecretsProvider
from services.ingress.auth import RequestAuthenticator, Scheme, split_values
from services.ingress.salesforce import Ignored, StageRules, map_stage_change, request_id_for
from services.ingress.schemas import SalesforceOpportunityEvent

RULES = StageRules.load()


def event(old: str | None, new: str, uuid: str | None = None) -> SalesforceOpportunityEvent:
    body: dict = {
        "payload": {
            "OpportunityId__c": "006A",
            "AccountId__c": "001A",
            "OldStage__c": old,
            "NewStage__c": new,
            "ChangedAt__c": "2025-05-01T08:00:00Z",
        }
    }
    if uuid:
        body["event"] = {"EventUuid": uuid}
    return SalesforceOpportunityEvent.model_validate(body)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Discover", "Proof of Concept", Priority.MEDIUM),
        ("Propose", "Negotiate", Priority.HIGH),  # late stage
        ("Negotiate", "Discover", Priority.HIGH),  # regression
        (None, "Opportunity Created", Priority.MEDIUM),
        ("discover", "PROPOSE", Priority.MEDIUM),  # case does not matter
    ],
)
def test_open_stage_changes_become_deal_quality_triggers(old, new, expected):
    trigger = map_stage_change(event(old, new), RULES)
    assert not isinstance(trigger, Ignored)
    assert trigger.priority is expected
    assert trigger.parameters.opportunity_id == "006A"
    assert trigger.trigger_type.value == "event"


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("Propose", "Propose", "stage_unchanged"),
        ("Signature", "Closed Won", "deal_closed"),
        ("Propose", "Closed Lost", "deal_closed"),
        ("Propose", "Custom Stage", "unknown_stage"),
    ],
)
def test_stage_changes_that_do_not_matter_are_ignored(old, new, reason):
    assert map_stage_change(event(old, new), RULES) == Ignored(reason)


def test_request_id_is_stable_per_event_and_differs_between_events():
    assert request_id_for(event("Discover", "Propose")) == request_id_for(
        event("Discover", "Propose")
    )
    assert request_id_for(event("Discover", "Propose")) != request_id_for(
        event("Propose", "Negotiate")
    )
    assert request_id_for(event("A", "B", uuid="u1")) == request_id_for(event("C", "D", uuid="u1"))


def test_split_values_allows_several_credentials_for_rotation():
    assert split_values(" a, b\nc ,,") == ["a", "b", "c"]


def authenticator(environ: dict[str, str], now: float) -> RequestAuthenticator:
    return RequestAuthenticator(
        EnvSecretsProvider(environ),
        tokens_secret="ingress-tokens",
        hmac_secret="ingress-hmac-secrets",
        window_s=300,
        replay_cache=InMemoryReplayCache(),
        clock=lambda: now,
    )


def test_either_old_or_new_secret_is_accepted_and_unconfigured_schemes_refuse():
    now = time.time()
    env = {"REVOPS_SECRET_INGRESS_HMAC_SECRETS": "old-secret,new-secret"}
    auth = authenticator(env, now)
    body = b"{}"
    for secret in (b"old-secret", b"new-secret"):
        headers = {
            "X-RevOps-Timestamp": str(int(now)),
            "X-RevOps-Signature": sign_request(secret, int(now), body + secret),
        }
        assert auth.authenticate(headers, body + secret) is Scheme.HMAC
    with pytest.raises(AuthenticationError) as refused:
        auth.authenticate({"authorization": "Bearer anything"}, body)  # no tokens configured
    assert refused.value.code.value == "bad_bearer_token"


def test_a_safe_read_may_repeat_its_signature_a_post_may_not():
    now = time.time()
    auth = authenticator({"REVOPS_SECRET_INGRESS_HMAC_SECRETS": "s"}, now)
    path = b"/v1/flows/req-1"
    headers = {
        "X-RevOps-Timestamp": str(int(now)),
        "X-RevOps-Signature": sign_request(b"s", int(now), path),
    }
    for _ in range(2):
        assert auth.authenticate(headers, path, replayable=True) is Scheme.HMAC
    auth.authenticate(headers, path)
    with pytest.raises(AuthenticationError) as refused:
        auth.authenticate(headers, path)
    assert refused.value.code.value == "replayed"
