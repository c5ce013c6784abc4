"""Fixtures: a fresh store per test on each engine (SQLite, PostgreSQL) and small analyses
built from the wire contracts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from contracts import (
    ActionJob,
    ActionResult,
    ActionStatus,
    AnalysisBody,
    AnalysisResults,
    AnalysisType,
    Flag,
    Recommendation,
    ScoreDetail,
    Subject,
)
from services.common.stores.database import Database
from services.execution_agent.insights import InsightRepository
from services.execution_agent.routing import RoutingRules
from services.execution_agent.store import open_store
from tests.postgres_fixtures import database_url, postgres  # noqa: F401 (fixtures)


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Database:  # noqa: F811
    return open_store(tmp_path / "revops.db", url=database_url)


@pytest.fixture
def insights(store: Database) -> InsightRepository:
    return InsightRepository(store)


@pytest.fixture(scope="session")
def routing() -> RoutingRules:
    return RoutingRules.load()


def make_flag(
    severity: str = "high",
    insight_type: str = "missing_data",
    category: str = "deal_quality",
    code: str | None = None,
    description: str = "No customer calls in 30 days",
) -> Flag:
    return Flag(
        type="risk",
        severity=severity,
        description=description,
        code=code or f"{insight_type}_flag",
        category=category,
        insight_type=insight_type,
    )


def make_analysis(
    request_id: str = "req-1",
    analysis_type: AnalysisType = AnalysisType.DEAL_QUALITY,
    flags: Sequence[Flag] = (),
    account_id: str = "ACC-1",
    opportunity_id: str | None = "OPP-1",
) -> AnalysisResults:
    recs = [
        Recommendation(
            id=f"rec-{n}",
            priority=flag.severity.value,
            action=f"address_{flag.code}",
            description=f"Fix {flag.code}",
            assignee="account_executive",
            based_on=[flag.code],
        )
        for n, flag in enumerate(flags, start=1)
    ]
    return AnalysisResults(
        request_id=request_id,
        analysis_type=analysis_type,
        subject=Subject(account_id=account_id, opportunity_id=opportunity_id),
        analysis_results=AnalysisBody(
            scores={"deal_quality": 58, "customer_health": 41},
            score_details={"deal_quality": ScoreDetail(score=58, band="at_risk")},
            flags=list(flags),
        ),
        recommendations=recs,
        summary="test analysis",
    )


TARGETS = {"slack": "slack", "email": "email", "crm": "salesforce", "ticket": "jira"}


def result(
    job: ActionJob,
    status: str = "success",
    error: str | None = None,
    response: Mapping[str, object] | None = None,
) -> ActionResult:
    """The webhook processor's result for `job`."""
    return ActionResult.of_job(
        job,
        TARGETS[job.channel],
        ActionStatus(status),
        error=error,
        response={"ok": status == "success"} if response is None else dict(response),
    )
