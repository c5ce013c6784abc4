"""Executions (`revops_ai_executions`, the seed's "Durable Persistent State" table): one row per
request, its versioned `state_data` holding the delivery results of its jobs and any
compensating jobs, so a flow's outcome is always recorded and recoverable. The planned jobs
are written once, when the flow starts, to `revops_ai_execution_plans` (every result
rewrites `state_data`, and the plan is most of a flow's bytes); `Execution.state` holds them
as before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from cachetools import LRUCache
from pydantic import BaseModel, Field, TypeAdapter

from contracts.actions import ActionJob, ActionResult, ActionStatus
from contracts.analysis import AnalysisResults
from contracts.common import AnalysisType, Subject, utcnow
from services.common.stores.database import (
    LOOKUP_CHUNK,
    Connection,
    Database,
    select_in_chunks,
)
from services.execution_agent.store import from_db_time, to_db_time

EXECUTIONS_TABLE = "revops_ai_executions"
PLANS_TABLE = "revops_ai_execution_plans"
_PLAN = TypeAdapter(list[ActionJob])
# Memo key of what `read_many` found (unlocked: never written back from there).
_FOUND = "found:" + EXECUTIONS_TABLE
# How `_dump` spells a flow not published yet (pydantic's compact JSON).
_UNPUBLISHED = '"flow_published_at":null'
# Parsed states kept per process (`ParsedStates`): a flow's results arrive within a second
# or so of its plan, so a few dozen flows in flight are what light load needs; at
# saturation a batch's transaction memo already reads each row once.
PARSED_STATES_KEPT = 64


class ExecutionStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"


FINAL_STATUSES = (ExecutionStatus.COMPLETE, ExecutionStatus.PARTIAL, ExecutionStatus.FAILED)


class ExecutionError(Exception):
    """Base of the execution store's refusals."""


class ExecutionNotFoundError(ExecutionError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"no execution for request {request_id!r}")
        self.request_id = request_id


class UnknownActionError(ExecutionError):
    def __init__(self, request_id: str, action_id: str) -> None:
        super().__init__(f"action {action_id!r} was not planned for request {request_id!r}")


class ExecutionConflictError(ExecutionError):
    def __init__(self, request_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"execution {request_id!r} changed since it was read: expected version {expected}, "
            f"found {actual}"
        )
        self.expected = expected
        self.actual = actual


class Compensation(BaseModel):
    """A compensating job and why it was needed (the seed's compensating transactions)."""

    rule: str
    reason: str
    compensates: str = Field(description="action_id of the step that must not stand alone")
    failed: list[str] = Field(description="action_ids whose failure left it alone")
    job: ActionJob


class ExecutionState(BaseModel):
    """`state_data`: everything needed to finish the flow after a restart."""

    analysis_type: AnalysisType
    subject: Subject
    scores: dict[str, int] = Field(default_factory=dict)
    summary: str = ""
    insight_ids: list[str] = Field(default_factory=list)
    planned_actions: list[ActionJob] = Field(default_factory=list)
    results: dict[str, ActionResult] = Field(default_factory=dict)
    compensations_checked: bool = False
    compensations: list[Compensation] = Field(default_factory=list)
    started_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    flow_published_at: datetime | None = None

    def all_jobs(self) -> list[ActionJob]:
        return [*self.planned_actions, *(c.job for c in self.compensations)]

    def primary_results(self) -> list[ActionResult]:
        return [
            self.results[j.action_id] for j in self.planned_actions if j.action_id in self.results
        ]

    def primaries_done(self) -> bool:
        return all(job.action_id in self.results for job in self.planned_actions)

    def pending_compensations(self) -> list[ActionJob]:
        return [c.job for c in self.compensations if c.job.action_id not in self.results]

    def is_complete(self) -> bool:
        return (
            self.primaries_done()
            and self.compensations_checked
            and not self.pending_compensations()
        )


class Execution(BaseModel):
    request_id: str
    flow_id: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime
    execution_status: ExecutionStatus
    state: ExecutionState


CompensationPlanner = Callable[[ExecutionState], Sequence[Compensation]]


def is_complete(execution: Execution) -> bool:
    """Every planned job and every compensating job has a result."""
    return execution.state.is_complete()


def derive_status(state: ExecutionState) -> ExecutionStatus:
    """planned -> in_progress -> complete | partial | failed, from the primary results."""
    if not state.planned_actions:
        return ExecutionStatus.COMPLETE  # nothing to do is done
    if not state.results:
        return ExecutionStatus.PLANNED
    if not state.primaries_done():
        return ExecutionStatus.IN_PROGRESS
    results = state.primary_results()
    failed = sum(r.status is ActionStatus.FAILED for r in results)
    if failed == 0:
        return ExecutionStatus.COMPLETE
    return ExecutionStatus.FAILED if failed == len(results) else ExecutionStatus.PARTIAL


class ParsedStates:
    """The parsed `state_data` of the executions this process wrote or read last, keyed by
    request id and checked against the row's JSON text.

    At light load each delivery result is a transaction of its own, which reads the flow's
    row again and parsed its whole state (4-40 KB of JSON: a fifth to a third of the
    execution agent's CPU per result). A row whose text is exactly what this process last
    wrote or read is the same state, so it is not parsed again; any other text (another
    replica's write, a transaction that rolled back after its write was remembered, an
    evicted entry) is parsed. Keyed by the text itself, nothing can go stale."""

    def __init__(self, kept: int = PARSED_STATES_KEPT) -> None:
        self._entries: LRUCache[str, tuple[str, ExecutionState]] = LRUCache(maxsize=kept)
        self._lock = threading.Lock()  # the store's worker threads share the repository

    def parse(self, request_id: str, text: str) -> ExecutionState:
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is not None and entry[0] == text:
                return _copy_state(entry[1])
        state = ExecutionState.model_validate_json(text)
        self.remember(request_id, text, state)
        return state

    def remember(self, request_id: str, text: str, state: ExecutionState) -> None:
        """`text` is `state` as stored (`_dump`); a copy is kept, the caller's may change."""
        with self._lock:
            self._entries[request_id] = (text, _copy_state(state))


class Plans:
    """The planned jobs of executions, by request id. A plan is written once, when its flow
    starts, and never changed, so the plans of the flows this process started or read last
    are kept parsed; the others are read from the store (a batch's at once: `load`)."""

    def __init__(self, store: Database, kept: int = PARSED_STATES_KEPT) -> None:
        self._store = store
        self._entries: LRUCache[str, list[ActionJob]] = LRUCache(maxsize=kept)
        self._lock = threading.Lock()

    def remember(self, request_id: str, jobs: list[ActionJob]) -> None:
        with self._lock:
            self._entries[request_id] = jobs

    def load(self, request_ids: Iterable[str]) -> dict[str, list[ActionJob]]:
        """The plans of `request_ids`: those kept, the others read in a few statements for
        all (and kept, the last `kept` of them)."""
        plans: dict[str, list[ActionJob]] = {}
        missing = []
        with self._lock:
            for request_id in dict.fromkeys(request_ids):
                jobs = self._entries.get(request_id)
                if jobs is None:
                    missing.append(request_id)
                else:
                    plans[request_id] = jobs
        if missing:
            sql = (
                f"SELECT request_id, planned_actions FROM {PLANS_TABLE} "
                "WHERE request_id IN ({marks})"
            )
            with self._store.reader() as conn:
                found = {row[0]: row[1] for row in select_in_chunks(conn, sql, missing)}
            for request_id in missing:
                # No row: an execution stored without one (written by hand): nothing planned.
                plans[request_id] = _PLAN.validate_json(found.get(request_id, "[]"))
                self.remember(request_id, plans[request_id])
        return plans

    def of(self, request_id: str) -> list[ActionJob]:
        return self.load([request_id])[request_id]


def stored_state(state_data: str, planned_actions: str | None) -> ExecutionState:
    """An execution's state from its two stored parts (the plan: None when it has no row),
    for readers of the tables that do not go through `ExecutionRepository`."""
    state = ExecutionState.model_validate_json(state_data)
    if planned_actions is not None:
        state.planned_actions = _PLAN.validate_json(planned_actions)
    return state


class ExecutionRepository:
    def __init__(self, store: Database) -> None:
        self.store = store
        self._states = ParsedStates()
        self._plans = Plans(store)

    def start(
        self,
        request_id: str,
        flow_id: str | None,
        analysis: AnalysisResults,
        planned_actions: Sequence[ActionJob],
        insight_ids: Sequence[str] = (),
        started_at: datetime | None = None,
    ) -> Execution:
        """Record the plan; starting the same request again returns the existing execution."""
        now = utcnow()
        state = ExecutionState(
            analysis_type=analysis.analysis_type,
            subject=analysis.subject,
            scores=analysis.analysis_results.scores,
            summary=analysis.summary,
            insight_ids=list(insight_ids),
            planned_actions=list(planned_actions),
            started_at=started_at or now,
        )
        # A flow with nothing to do is complete at once (and has nothing to compensate).
        if not state.planned_actions:
            state.compensations_checked = True
            state.completed_at = now
        status = derive_status(state)
        text = _dump(state)
        with self.store.transaction() as conn:
            # In a batch with the batch's other executions, in one INSERT (a row there
            # already fails the batch, which then runs record by record).
            inserted = self.store.insert_later(
                conn,
                EXECUTIONS_TABLE,
                "request_id, flow_id, version, created_at, updated_at, state_data, "
                "execution_status",
                (
                    request_id,
                    flow_id,
                    1,
                    to_db_time(now),
                    to_db_time(now),
                    text,
                    status.value,
                ),
                on_conflict="ON CONFLICT (request_id) DO NOTHING",
            )
            if not inserted:  # started before: that one stands
                return self._get(conn, request_id)
            self.store.insert_later(
                conn,
                PLANS_TABLE,
                "request_id, planned_actions",
                (request_id, _PLAN.dump_json(state.planned_actions).decode()),
                on_conflict="ON CONFLICT (request_id) DO NOTHING",
            )
            self._plans.remember(request_id, state.planned_actions)
            self._states.remember(request_id, text, state)
            stored_at = datetime.fromisoformat(to_db_time(now))  # as stored (from_db_time)
            started = Execution(
                request_id=request_id,
                flow_id=flow_id,
                version=1,
                created_at=stored_at,
                updated_at=stored_at,
                execution_status=status,
                state=state,
            )
            memo = self.store.memo()
            if memo is not None:  # this transaction wrote the row: it holds it
                memo.pop((_FOUND, request_id), None)
                memo[(EXECUTIONS_TABLE, request_id)] = started
            return _copy_for_update(started)

    def record_result(
        self,
        action_result: ActionResult,
        compensate: CompensationPlanner | None = None,
        expected_version: int | None = None,
    ) -> Execution:
        """Store one delivery result (idempotent per action_id) and move the status on.

        When this result completes the planned jobs, `compensate` runs in the same
        transaction, so the compensating jobs are recorded before anyone can see the flow
        as finished.
        """
        with self.store.transaction() as conn:
            execution = self._locked(conn, action_result.request_id)
            if expected_version is not None and expected_version != execution.version:
                raise ExecutionConflictError(
                    execution.request_id, expected_version, execution.version
                )
            state = execution.state
            if action_result.action_id in state.results:
                return execution  # redelivered result: already counted
            if action_result.action_id not in {j.action_id for j in state.all_jobs()}:
                raise UnknownActionError(execution.request_id, action_result.action_id)
            state.results[action_result.action_id] = action_result
            if state.primaries_done() and not state.compensations_checked:
                state.compensations.extend(compensate(state) if compensate else ())
                state.compensations_checked = True
            if state.is_complete() and state.completed_at is None:
                state.completed_at = utcnow()
            return self._save(conn, execution, derive_status(state), state)

    def mark_flow_published(self, request_id: str) -> Execution:
        return self.mark_flows_published([request_id])[0]

    def mark_flows_published(self, request_ids: Sequence[str]) -> list[Execution]:
        """Record that these flows' outputs were published, in request order.

        One statement per `LOOKUP_CHUNK` requests where it can (no BEGIN/COMMIT round
        trips on a server, no read, parse and rewrite of the whole state by the client): the
        time replaces the `"flow_published_at":null` of each state's compact JSON (`_dump`)
        as text, which costs the server far less than parsing the JSON. A state not spelled
        that way, an already published one, or an unknown request (ExecutionNotFoundError)
        takes the read-modify-write path."""
        now = utcnow()
        published_at = f'"flow_published_at":{json.dumps(now.isoformat())}'
        marked: dict[str, Execution] = {}
        wanted = list(dict.fromkeys(request_ids))
        for at in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[at : at + LOOKUP_CHUNK]
            with self.store.one_statement() as conn:
                rows = conn.execute(
                    f"UPDATE {EXECUTIONS_TABLE} SET version = version + 1, updated_at = ?, "
                    "state_data = replace(state_data, ?, ?) "
                    f"WHERE request_id IN ({', '.join('?' * len(chunk))}) "
                    f"AND {self.store.dialect.contains('state_data')} RETURNING *",
                    (to_db_time(now), _UNPUBLISHED, published_at, *chunk, _UNPUBLISHED),
                ).fetchall()
            for row in rows:
                execution = self._from_row(row)
                marked[execution.request_id] = execution
        memo = self.store.memo()
        if memo is not None:  # inside a batch: the remembered rows are stale now
            for request_id in marked:
                memo.pop((EXECUTIONS_TABLE, request_id), None)
        for request_id in wanted:
            if request_id not in marked:
                marked[request_id] = self._mark_published_by_rewrite(request_id, now)
        return [marked[request_id] for request_id in request_ids]

    def _mark_published_by_rewrite(self, request_id: str, now: datetime) -> Execution:
        with self.store.transaction() as conn:
            execution = self._get(conn, request_id, self.store.dialect.for_update)
            if execution.state.flow_published_at is not None:
                return execution
            execution.state.flow_published_at = now
            return self._save(conn, execution, execution.execution_status, execution.state)

    def get(self, request_id: str) -> Execution:
        with self.store.reader() as conn:
            return self._get(conn, request_id)

    def find(self, request_id: str) -> Execution | None:
        memo = self.store.memo()
        if memo is not None:  # what this transaction wrote, or what `read_many` found
            if (EXECUTIONS_TABLE, request_id) in memo:
                return _copy_for_update(memo[(EXECUTIONS_TABLE, request_id)])
            if (_FOUND, request_id) in memo:
                return memo[(_FOUND, request_id)]
        try:
            return self.get(request_id)
        except ExecutionNotFoundError:
            return None

    def read_many(self, request_ids: Iterable[str]) -> None:
        """Find a batch's executions in a few statements for all (`find` answers from the
        transaction's memo then, None included). Not locked: only for reading."""
        memo = self.store.memo()
        if memo is None:
            return
        wanted = list(dict.fromkeys(request_ids))
        found: dict[str, Execution | None] = dict.fromkeys(wanted)
        with self.store.reader() as conn:
            sql = f"SELECT * FROM {EXECUTIONS_TABLE} WHERE request_id IN ({{marks}})"
            rows = list(select_in_chunks(conn, sql, wanted))
        plans = self._plans.load(row["request_id"] for row in rows)  # of the flows found
        for row in rows:
            found[row["request_id"]] = self._from_row(row, plans)
        memo.update(((_FOUND, request_id), e) for request_id, e in found.items())

    def lock_many(self, request_ids: Iterable[str]) -> None:
        """Read and lock the executions a batch will write, together, into the
        transaction's memo (`Database.lock_into_memo`)."""
        if self.store.memo() is None:
            return
        request_ids = list(request_ids)
        plans = self._plans.load(request_ids)  # results: their flows started, all have plans
        self.store.lock_into_memo(
            EXECUTIONS_TABLE, "request_id", request_ids, lambda row: self._from_row(row, plans)
        )

    def _locked(self, conn: Connection, request_id: str) -> Execution:
        """The execution, locked for this transaction's write; from the transaction's memo
        when an earlier step of it already holds the row (a batch's results of one flow)."""
        memo = self.store.memo()
        key = (EXECUTIONS_TABLE, request_id)
        if memo is not None and key in memo:
            return _copy_for_update(memo[key])
        return self._get(conn, request_id, self.store.dialect.for_update)

    def _get(self, conn: Connection, request_id: str, lock: str = "") -> Execution:
        """`lock`: the dialect's row lock, when the caller will write the row back."""
        row = conn.execute(
            f"SELECT * FROM {EXECUTIONS_TABLE} WHERE request_id = ?{lock}", (request_id,)
        ).fetchone()
        if row is None:
            raise ExecutionNotFoundError(request_id)
        return self._from_row(row)

    def _from_row(self, row: Any, plans: dict[str, list[ActionJob]] | None = None) -> Execution:
        """`plans`: a batch's plans, read together (else this row's is looked up)."""
        return Execution(
            request_id=row["request_id"],
            flow_id=row["flow_id"],
            version=row["version"],
            created_at=from_db_time(row["created_at"]),
            updated_at=from_db_time(row["updated_at"]),
            execution_status=ExecutionStatus(row["execution_status"]),
            state=self._state_of(row["request_id"], row["state_data"], plans),
        )

    def _state_of(
        self, request_id: str, state_data: str, plans: dict[str, list[ActionJob]] | None
    ) -> ExecutionState:
        state = self._states.parse(request_id, state_data)
        known = plans.get(request_id) if plans is not None else None
        state.planned_actions = known if known is not None else self._plans.of(request_id)
        return state

    def _save(
        self,
        conn: Connection,
        execution: Execution,
        status: ExecutionStatus,
        state: ExecutionState,
    ) -> Execution:
        now = utcnow()
        version = execution.version + 1
        text = _dump(state)
        try:  # a batch writes the row once, with its last state
            self.store.write_later(
                conn,
                EXECUTIONS_TABLE,
                "request_id",
                execution.request_id,
                {
                    "version": version,
                    "updated_at": to_db_time(now),
                    "state_data": text,
                    "execution_status": status.value,
                },
                guard={"version": execution.version},
            )
        except LookupError:
            raise ExecutionConflictError(execution.request_id, execution.version, -1) from None
        self._states.remember(execution.request_id, text, state)
        saved = execution.model_copy(
            update={
                "version": version,
                "updated_at": now,
                "execution_status": status,
                "state": state,
            }
        )
        memo = self.store.memo()
        if memo is not None:  # this transaction holds the row now (its lock, its write)
            memo[(EXECUTIONS_TABLE, execution.request_id)] = saved
        return saved


def _copy_for_update(execution: Execution) -> Execution:
    """A copy the caller may change without touching the remembered one nor what an earlier
    step returned."""
    return execution.model_copy(update={"state": _copy_state(execution.state)})


def _copy_state(state: ExecutionState) -> ExecutionState:
    """`record_result` adds to `results` and `compensations` and sets plain fields of the
    state; the jobs, results and compensations themselves are never changed, so they are
    shared."""
    return state.model_copy(
        update={"results": dict(state.results), "compensations": list(state.compensations)}
    )


def _dump(state: ExecutionState) -> str:
    """`state_data`: the state but its plan (`PLANS_TABLE`, written once). Read and written on
    every action result: pydantic's JSON (de)serializer, no dict tree."""
    return state.model_dump_json(exclude={"planned_actions"})
