"""Customer health (`revops_ai_health`): one current record per account, replaced by newer
analyses only (an older, redelivered analysis never overwrites a fresher record)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from contracts.common import utcnow
from services.common.stores.database import Database
from services.execution_agent.store import from_db_time, from_json, to_db_time, to_json


class HealthRecord(BaseModel):
    account_id: str
    score: int | None = None
    churn_risk: str | None = None
    band: str | None = None
    as_of: datetime
    updated_at: datetime = Field(default_factory=utcnow)
    request_id: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class HealthRepository:
    def __init__(self, store: Database) -> None:
        self.store = store

    def upsert(self, record: HealthRecord) -> HealthRecord:
        """Keep the record with the latest `as_of`; returns the one now current."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO revops_ai_health (account_id, score, churn_risk, band, as_of, "
                "updated_at, request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET score = excluded.score, "
                "churn_risk = excluded.churn_risk, band = excluded.band, as_of = excluded.as_of, "
                "updated_at = excluded.updated_at, request_id = excluded.request_id, "
                "detail = excluded.detail WHERE excluded.as_of >= revops_ai_health.as_of",
                (
                    record.account_id,
                    record.score,
                    record.churn_risk,
                    record.band,
                    to_db_time(record.as_of),
                    to_db_time(record.updated_at),
                    record.request_id,
                    to_json(record.detail),
                ),
            )
        current = self.get(record.account_id)
        assert current is not None  # just written
        return current

    def get(self, account_id: str) -> HealthRecord | None:
        with self.store.reader() as conn:
            row = conn.execute(
                "SELECT * FROM revops_ai_health WHERE account_id = ?", (account_id,)
            ).fetchone()
        if row is None:
            return None
        return HealthRecord.model_validate(
            {
                **dict(row),
                "as_of": from_db_time(row["as_of"]),
                "updated_at": from_db_time(row["updated_at"]),
                "detail": from_json(row["detail"]),
            }
        )
