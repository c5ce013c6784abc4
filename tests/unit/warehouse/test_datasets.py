"""DatasetRepository on generated data: what the ground truth says is what the dataset shows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from services.data_agent.datasets import DatasetRepository, DatasetResult, UnknownSubjectError
from services.data_agent.warehouse.rules import load_rules

from .conftest import AS_OF, Demo


@pytest.fixture(scope="module")
def repo(demo: Demo) -> DatasetRepository:
    return DatasetRepository(demo.warehouse)


@pytest.fixture(scope="module")
def deals(demo: Demo, repo: DatasetRepository) -> dict[str, DatasetResult]:
    """Every deal's dataset at the warehouse's as_of, built once for the module."""
    return {
        oid: repo.deal_dataset(t["sf_account_id"], oid)
        for oid, t in demo.truth["opportunities"].items()
    }


def opps(demo: Demo, **match: Any) -> list[tuple[str, dict[str, Any]]]:
    return [
        (oid, t)
        for oid, t in demo.truth["opportunities"].items()
        if all(t[k] == v for k, v in match.items())
    ]


def descriptions(findings: list[Any], kind: str | None = None) -> list[str]:
    return [f.description for f in findings if kind is None or f.type == kind]


def test_default_as_of_comes_from_warehouse_meta(repo: DatasetRepository) -> None:
    assert repo.default_as_of() == AS_OF


def test_customer_calls_only(
    demo: Demo, repo: DatasetRepository, deals: dict[str, DatasetResult]
) -> None:
    keywords = [k.lower() for k in load_rules().internal_call_title_keywords]
    for oid, t in demo.truth["opportunities"].items():
        ds, collection, _ = deals[oid]
        assert len(ds.calls) == t["customer_calls"], oid
        assert collection.record_counts["calls"] == t["customer_calls"]
        for call in ds.calls:
            assert not any(k in call.title.lower() for k in keywords)
            assert len(call.brief or "") > 50 or len(call.key_points or "") > 50
            assert call.participant_emails and all("@" in e for e in call.participant_emails)
    deleted = {r[0] for r in demo.sql("SELECT call_id FROM gong_call_f WHERE is_deleted")}
    assert deleted
    oid, t = opps(demo, deleted_calls=1)[0]
    ds, _, _ = repo.deal_dataset(t["sf_account_id"], oid)
    assert not {c.call_id for c in ds.calls} & deleted


def test_deal_without_customer_calls_reports_the_gap(demo: Demo, repo: DatasetRepository) -> None:
    cases = opps(demo, no_customer_calls=True)
    assert cases
    for oid, t in cases:
        assert t["internal_calls"] + t["near_empty_calls"] > 0  # they exist, but don't count
        ds, collection, findings = repo.deal_dataset(t["sf_account_id"], oid)
        assert ds.calls == []
        assert collection.status == "partial"
        gap = [f for f in findings if f.type == "data_gap" and "No customer calls" in f.description]
        assert len(gap) == 1
        assert gap[0].evidence[0].source == "gong_call_f"
        assert gap[0].evidence[0].ref == oid


def test_missing_meddpicc_fields_by_stage(demo: Demo, deals: dict[str, DatasetResult]) -> None:
    for oid, t in demo.truth["opportunities"].items():
        _, _, findings = deals[oid]
        gaps = [f for f in findings if f.description.startswith("MEDDPICC")]
        if not t["meddpicc_missing_required"]:
            assert not gaps, oid
            continue
        fields = [e.field for e in gaps[0].evidence]
        # Listed in the stage model's order (what each stage adds), not the generator's.
        assert sorted(str(f) for f in fields) == sorted(
            f"{m}_status" for m in t["meddpicc_missing_required"]
        )
        assert all(e.source == "opportunity_d" and e.ref == oid for e in gaps[0].evidence)


def test_inconsistencies_and_data_gaps_match_truth(
    demo: Demo, deals: dict[str, DatasetResult]
) -> None:
    for oid, t in demo.truth["opportunities"].items():
        _, _, findings = deals[oid]
        text = " | ".join(descriptions(findings))
        assert ("in the past on an open opportunity" in text) == t["stale_close_date"], oid
        assert ("does not match stage" in text) == t["probability_mismatch"], oid
        assert ("has no owner" in text) == t["owner_missing"], oid
        assert ("amount is missing" in text) == t["amount_missing"], oid
        assert ("Close date slipped" in text) == t["slipped_close_date"], oid
        assert ("Stage moved backwards" in text) == t["stage_regression"], oid
        no_contacts = demo.truth["accounts"][t["sf_account_id"]]["contacts"] == 0
        assert ("No contacts" in text) == no_contacts, oid


def test_evidence_names_table_field_ref_and_date(demo: Demo, repo: DatasetRepository) -> None:
    oid, t = opps(demo, stale_close_date=True)[0]
    _, _, findings = repo.deal_dataset(t["sf_account_id"], oid)
    (stale,) = [f for f in findings if "in the past" in f.description]
    ev = stale.evidence[0]
    assert (ev.source, ev.field, ev.ref) == ("opportunity_d", "close_date", oid)
    assert date.fromisoformat(ev.date or "") < AS_OF


def test_deal_dataset_contents(demo: Demo, repo: DatasetRepository) -> None:
    oid, t = opps(demo, stage="Negotiate")[0]
    ds, collection, _ = repo.deal_dataset(t["sf_account_id"], oid)
    assert ds.opportunity is not None and ds.opportunity.stage_name == "Negotiate"
    assert ds.account.sf_account_id == t["sf_account_id"]
    assert ds.stage_history[-1].to_stage == "Negotiate"
    assert len(ds.stage_history) == t["stage_rows"]
    usage = ds.usage_series()
    assert int(usage.present.sum()) == 365 and usage.last_day() == AS_OF
    assert ds.as_of == AS_OF
    assert collection.record_counts["usage_days"] == 365
    assert "opportunity_stage_f" in collection.sources_accessed


def test_backtest_as_of_sees_the_deal_as_it_stood(demo: Demo, repo: DatasetRepository) -> None:
    """A closed deal, 10 days after it was created: open stage, nothing after that day."""
    checked = 0
    for oid, t in opps(demo, is_open=False):
        created = demo.sql("SELECT created_at_ts FROM opportunity_d WHERE opportunity_id = ?", oid)[
            0
        ][0]
        as_of = (created + timedelta(days=10)).date()
        ds, _, _ = repo.deal_dataset(t["sf_account_id"], oid, as_of=as_of)
        opp = ds.opportunity
        assert opp is not None
        assert opp.stage_name not in ("Closed Won", "Closed Lost")
        assert opp.closed_at_date is None and opp.closed_won_lost_reason is None
        assert opp.stage_name == ds.stage_history[-1].to_stage
        # the demo's stage history records close dates, not probabilities or amounts: on a
        # past day those are unknown, so they are left out rather than read from today
        assert opp.probability is None and opp.amount is None
        assert (
            opp.close_date
            == demo.sql(
                "SELECT close_date FROM opportunity_stage_f WHERE opportunity_id = ? AND "
                "started_at_ts < ? ORDER BY started_at_ts DESC LIMIT 1",
                oid,
                datetime.combine(as_of + timedelta(days=1), datetime.min.time()),
            )[0][0]
        )
        end = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
        assert all(s.started_at_ts < end for s in ds.stage_history)
        assert ds.stage_history[-1].ended_at_ts is None
        assert all(c.start_ts < end for c in ds.calls)
        end_of_usage = ds.usage_series().end
        assert end_of_usage is None or end_of_usage <= as_of
        expected_calls = demo.sql(
            "SELECT COUNT(*) FROM gong_call_f WHERE opportunity_id = ? AND start_ts < ?",
            oid,
            end,
        )[0][0]
        assert len(ds.calls) <= expected_calls
        checked += 1
    assert checked > 10


def test_created_after_as_of_is_unknown(demo: Demo, repo: DatasetRepository) -> None:
    oid, t = opps(demo, stage="Opportunity Created")[0]
    with pytest.raises(UnknownSubjectError, match="created after"):
        repo.deal_dataset(t["sf_account_id"], oid, as_of=date(2020, 1, 1))


def test_account_dataset(demo: Demo, repo: DatasetRepository) -> None:
    accounts = demo.truth["accounts"]
    aid = next(a for a, t in accounts.items() if t["near_renewal"] and t["contacts"])
    ds, collection, _ = repo.account_dataset(aid)
    assert ds.opportunity is None
    assert ds.account.customer_class == "commit"
    assert [a.is_active for a in ds.agreements] == [False, True]
    assert (ds.agreements[-1].end_date - AS_OF).days < 90
    assert len(ds.billing_series()) == 12 and int(ds.usage_series().present.sum()) == 365
    assert collection.record_counts["tickets"] == len(ds.tickets)
    assert {"agreement_f", "billing_event_f", "support_ticket_f"} <= set(
        collection.sources_accessed
    )
    # As of 100 days earlier: no ticket, bill or usage after that day.
    earlier = AS_OF - timedelta(days=100)
    ds2, _, _ = repo.account_dataset(aid, as_of=earlier)
    assert ds2.usage_series().last_day() == earlier
    assert all(day <= earlier for day in ds2.billing.event_date)
    assert all(t.created_at_ts.date() <= earlier for t in ds2.tickets)


def test_account_usage_anomaly_findings(demo: Demo, repo: DatasetRepository) -> None:
    seen = set()
    for aid, t in demo.truth["accounts"].items():
        _, _, findings = repo.account_dataset(aid)
        anomalies = [f for f in findings if f.type == "anomaly"]
        text = " | ".join(f.description for f in anomalies)
        if t["pattern"] == "complete_stop":
            assert "No usage for" in text, aid
        elif t["pattern"] == "spike":
            (spike,) = [f for f in anomalies if "spike" in f.description]
            start = date.fromisoformat(t["pattern_start"])
            day = date.fromisoformat(spike.evidence[0].date or "")
            assert start <= day <= start + timedelta(days=2), aid
        elif t["pattern"] in ("stable", "healthy_growth", "cost_anomaly"):
            assert not anomalies, (aid, text)
        seen.add(t["pattern"])
    assert {"complete_stop", "spike", "stable"} <= seen


@pytest.mark.parametrize(
    "bad",
    [
        "'; DROP TABLE opportunity_d; --",
        "001' OR '1'='1",
        'x" OR 1=1 --',
        "",
        "0" * 500,
    ],
)
def test_injection_and_garbage_ids_raise_cleanly(
    demo: Demo, repo: DatasetRepository, bad: str
) -> None:
    any_opp, t = next(iter(demo.truth["opportunities"].items()))
    with pytest.raises(UnknownSubjectError):
        repo.account_dataset(bad)
    with pytest.raises(UnknownSubjectError):
        repo.deal_dataset(bad, any_opp)
    with pytest.raises(UnknownSubjectError):
        repo.deal_dataset(t["sf_account_id"], bad)
    assert demo.sql("SELECT COUNT(*) FROM opportunity_d")[0][0] == len(demo.truth["opportunities"])


def test_unknown_and_mismatched_subjects(demo: Demo, repo: DatasetRepository) -> None:
    with pytest.raises(UnknownSubjectError, match="unknown account '001999999999999'"):
        repo.account_dataset("001999999999999")
    aid = next(iter(demo.truth["accounts"]))
    with pytest.raises(UnknownSubjectError, match="unknown opportunity"):
        repo.deal_dataset(aid, "006999999999999")
    foreign = next(o for o, t in demo.truth["opportunities"].items() if t["sf_account_id"] != aid)
    with pytest.raises(UnknownSubjectError, match="belongs to account"):
        repo.deal_dataset(aid, foreign)
