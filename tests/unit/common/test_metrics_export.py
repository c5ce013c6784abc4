"""Metrics an operator's alerts rely on: known label sets exported at 0 from the start,
every dead-letter code known, breakers labelled with their service, the service's own
`revops_service_info` series."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from contracts import AnalysisType
from services.common import metrics
from services.common.breaker import AsyncCircuitBreaker
from services.common.errors import DEAD_LETTER_CODES
from services.common.periodic import PeriodicTask
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings

SERVICES_DIR = Path(__file__).resolve().parents[3] / "services"


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def never_parsed(record: Record) -> Parsed:
    raise AssertionError("no record is consumed in this test")


async def never_handled(item: Parsed, record: Record) -> list[Outgoing]:
    raise AssertionError("no record is consumed in this test")


def test_a_consumer_exports_every_dead_letter_code_at_zero_before_its_first_record(
    tmp_path: Path,
) -> None:
    runtime = ServiceRuntime("zero_export_test", Settings(var_dir=tmp_path, signing_enabled=False))
    runtime.subscribe("t.zero", never_parsed, never_handled)
    try:
        for code in DEAD_LETTER_CODES:
            for family in ("revops_messages_dead_lettered_total", "revops_messages_failed_total"):
                value = sample(family, service="zero_export_test", topic="t.zero", code=code)
                assert value == 0.0, (family, code)
        for family in ("revops_messages_consumed_total", "revops_retries_total"):
            assert sample(family, service="zero_export_test", topic="t.zero") == 0.0
        assert (
            sample("revops_messages_produced_total", service="zero_export_test", topic="t.zero.dlq")
            == 0.0
        )
    finally:
        runtime.idempotency.close()


def test_every_error_code_the_services_raise_is_a_known_dead_letter_code() -> None:
    """A code missing from DEAD_LETTER_CODES would not be exported at 0, and the alert on
    dead letters could miss its first occurrence."""
    raised: set[str] = set()
    for path in SERVICES_DIR.rglob("*.py"):
        raised |= set(re.findall(r'\bcode="([A-Z][A-Z_]+)"', path.read_text()))
    assert raised, "the scan found no codes"
    assert raised <= DEAD_LETTER_CODES, raised - DEAD_LETTER_CODES
    assert "AUTHENTICATION_FAILED_BAD_SIGNATURE" in DEAD_LETTER_CODES


async def test_housekeeping_outcomes_are_exported_at_zero_when_the_timer_starts() -> None:
    task = PeriodicTask("zero_export_task", 3600, lambda: None)
    await task.start()
    await task.stop()
    for outcome in ("ok", "failed"):
        value = sample(
            "revops_housekeeping_runs_total",
            service=metrics.service_name(),
            task="zero_export_task",
            outcome=outcome,
        )
        assert value is not None


def test_the_execution_agent_exports_its_flow_counters_at_zero() -> None:
    metrics.configure("execution_agent")
    for analysis in (AnalysisType.DEAL_QUALITY, AnalysisType.CONSUMPTION):
        for status in ("success", "partial", "failed"):
            value = sample(
                "revops_flows_completed_total", analysis_type=analysis.value, status=status
            )
            assert value is not None


def test_a_breaker_built_before_the_service_named_itself_is_exported_under_its_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "_service", "unknown")
    AsyncCircuitBreaker("early-breaker")
    metrics.configure("webhook_processor")
    assert (
        sample("revops_circuit_breaker_state", service="webhook_processor", breaker="early-breaker")
        == 0.0
    )
    assert (
        sample("revops_circuit_breaker_state", service="unknown", breaker="early-breaker") is None
    )


def test_a_service_says_it_is_scraped_with_its_own_name() -> None:
    metrics.configure("decision_agent")
    assert sample("revops_service_info", service="decision_agent") == 1.0
