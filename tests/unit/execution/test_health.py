"""revops_ai_health: one current record per account; older analyses never overwrite newer."""

from __future__ import annotations

from datetime import UTC, datetime

from services.execution_agent.health import HealthRecord, HealthRepository
from services.execution_agent.store import Store


def test_one_current_record_per_account(store: Store) -> None:
    repo = HealthRepository(store)
    june = datetime(2025, 6, 1, tzinfo=UTC)
    july = datetime(2025, 7, 1, tzinfo=UTC)
    repo.upsert(HealthRecord(account_id="A", score=70, band="healthy", as_of=june))
    current = repo.upsert(
        HealthRecord(account_id="A", score=40, band="at_risk", churn_risk="high", as_of=july)
    )
    assert (current.score, current.band, current.churn_risk) == (40, "at_risk", "high")
    stale = repo.upsert(HealthRecord(account_id="A", score=90, band="healthy", as_of=june))
    assert stale.score == 40 and stale.as_of == july  # the late, older analysis lost
    assert repo.get("B") is None
    with store.reader() as conn:
        assert conn.execute("SELECT count(*) FROM revops_ai_health").fetchone()[0] == 1
