"""Recent flows (the execution agent's `revops_ai_executions`) and each flow's timeline.

A flow's stages and where their times come from:
- trigger accepted: the analysis's `requested_at` (kept in the execution's state);
- dataset and decision published: when the data agent and the decision agent marked the
  flow's record done (their idempotency stores, read while they still keep the key: 8 days
  by default; in the shared PostgreSQL, or in their SQLite files where the console shares
  their state folder, as under `make run`);
- actions planned: when the execution was recorded;
- each delivery: its result's `finished_at`;
- complete and published: the execution's state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.common.idempotency import IdempotencyStore
from services.common.stores.database import Database
from services.execution_agent.executions import (
    EXECUTIONS_TABLE,
    Execution,
    ExecutionNotFoundError,
    ExecutionRepository,
    ExecutionState,
    ExecutionStatus,
)
from services.execution_agent.store import from_db_time

FLOW_STATUSES = tuple(s.value for s in ExecutionStatus)


@dataclass(frozen=True)
class FlowRow:
    request_id: str
    status: str
    created_at: datetime
    analysis_type: str
    account_id: str
    opportunity_id: str | None
    actions: int
    results: int
    failed: int
    duration_ms: int | None


@dataclass(frozen=True)
class Stage:
    name: str
    at: datetime | None
    detail: str = ""
    status: str = "done"  # done | failed | pending | unknown

    def offset_ms(self, start: datetime) -> int | None:
        return None if self.at is None else int((self.at - start).total_seconds() * 1000)


@dataclass
class FlowTimeline:
    execution: Execution
    stages: list[Stage]

    @property
    def start(self) -> datetime:
        return self.execution.state.started_at


class StageClock:
    """When the data and decision agents finished a request (None when not known)."""

    def __init__(self, state_dir: Path, group_prefix: str, shared: Database | None = None) -> None:
        self._paths = {
            "data_agent": state_dir / "idempotency-data_agent.db",
            "decision_agent": state_dir / "idempotency-decision_agent.db",
        }
        self._prefix = group_prefix
        self._shared = shared  # PostgreSQL: the agents' keys are in the shared database
        self._stores: dict[str, IdempotencyStore] = {}
        self._lock = threading.Lock()

    def done_at(self, service: str, key: str) -> datetime | None:
        with self._lock:
            store = self._stores.get(service)
            if store is None:
                if self._shared is None and not self._paths[service].exists():
                    return None  # never open (and so create) another service's file
                store = IdempotencyStore(self._paths[service], db=self._shared)
                self._stores[service] = store
            stamp = store.processed_at(f"{self._prefix}.{service}", key)
        return None if stamp is None else datetime.fromtimestamp(stamp, UTC)

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()


class Flows:
    def __init__(self, store: Database, executions: ExecutionRepository, clock: StageClock):
        self._store = store
        self._executions = executions
        self._clock = clock

    def recent(
        self, status: str | None = None, page: int = 1, page_size: int = 50
    ) -> tuple[list[FlowRow], int]:
        where, params = (
            ("", [])
            if status not in FLOW_STATUSES
            else (
                " WHERE execution_status = ?",
                [status],
            )
        )
        with self._store.reader() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM {EXECUTIONS_TABLE}{where}", params)
            count = int(total.fetchone()[0])
            rows = conn.execute(
                f"SELECT request_id, execution_status, created_at, state_data "
                f"FROM {EXECUTIONS_TABLE}{where} ORDER BY created_at DESC, request_id "
                "LIMIT ? OFFSET ?",
                (*params, page_size, (page - 1) * page_size),
            ).fetchall()
        return [_flow_row(r) for r in rows], count

    def timeline(self, request_id: str) -> FlowTimeline | None:
        try:
            execution = self._executions.get(request_id)
        except ExecutionNotFoundError:
            return None
        state = execution.state
        stages = [
            Stage("trigger accepted", state.started_at, state.analysis_type.value),
            self._agent_stage("dataset published", "data_agent", f"trigger:{request_id}"),
            self._agent_stage("decision published", "decision_agent", f"{request_id}:dataset"),
            Stage(
                "actions planned",
                execution.created_at,
                f"{len(state.planned_actions)} action(s); scores "
                + ", ".join(f"{k} {v}" for k, v in sorted(state.scores.items())),
            ),
        ]
        for job in state.all_jobs():
            result = state.results.get(job.action_id)
            target = f"{job.channel.value} -> {job.destination} ({job.template})"
            if result is None:
                stages.append(Stage("delivery", None, target, "pending"))
                continue
            failed = result.status.value == "failed"
            detail = f"{target}: {result.status.value}, {result.attempts} attempt(s)"
            if result.error:
                detail += f", {result.error}"
            stages.append(
                Stage("delivery", result.finished_at, detail, "failed" if failed else "done")
            )
        stages.append(
            Stage(
                "flow complete",
                state.completed_at,
                execution.execution_status.value,
                "done" if state.completed_at else "pending",
            )
        )
        stages.append(
            Stage(
                "flow output published",
                state.flow_published_at,
                "revops.flow-results",
                "done" if state.flow_published_at else "pending",
            )
        )
        return FlowTimeline(execution, stages)

    def _agent_stage(self, name: str, service: str, key: str) -> Stage:
        at = self._clock.done_at(service, key)
        if at is None:
            return Stage(name, None, f"{service}: time not recorded here", "unknown")
        return Stage(name, at, service)


def _flow_row(row: Any) -> FlowRow:
    state = ExecutionState.model_validate_json(row["state_data"])
    failed = sum(1 for r in state.results.values() if r.status.value == "failed")
    duration = (
        None
        if state.completed_at is None
        else int((state.completed_at - state.started_at).total_seconds() * 1000)
    )
    return FlowRow(
        request_id=row["request_id"],
        status=row["execution_status"],
        created_at=from_db_time(row["created_at"]) or state.started_at,
        analysis_type=state.analysis_type.value,
        account_id=state.subject.account_id,
        opportunity_id=state.subject.opportunity_id,
        actions=len(state.all_jobs()),
        results=len(state.results),
        failed=failed,
        duration_ms=duration,
    )
