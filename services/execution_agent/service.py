"""The execution agent's two handlers, free of Kafka: the runtime calls them and publishes
what they return (cosmicpython's "service layer": a command in, events out).

- `handle_decision(analysis, ...)` (topic `revops.decisions`): insights upserted, health
  updated, actions planned and recorded; returns the jobs for `revops.actions` (and the flow
  output at once when there is nothing to do).
- `handle_action_result(result)` (topic `revops.action-results`): result recorded,
  compensations planned when the flow's last planned result arrives; returns compensating
  jobs for `revops.actions` and, once everything has a result, the flow output for
  `revops.flow-results`.
- `handle_decisions(batch)` / `handle_action_results(batch)`: the same for a batch, in one
  transaction (services/common/stores/batch.py): set-based first, with a savepoint per item
  when one fails; one commit per batch; an item that fails is undone alone and returned as
  its exception.

Both are idempotent: a redelivered message returns the same jobs and the same flow output
(deterministic ids), so re-publishing after a crash is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.actions import ActionJob, ActionResult
from contracts.analysis import AnalysisResults, Flag
from contracts.common import PRIORITY_RANK, AnalysisType, utcnow
from contracts.execution import FlowOutput
from services.common.errors import PermanentError
from services.common.stores.batch import in_one_transaction
from services.common.stores.database import Database
from services.execution_agent.compensations import compensation_planner
from services.execution_agent.completion import build_execution_results, build_flow_output
from services.execution_agent.executions import (
    EXECUTIONS_TABLE,
    Execution,
    ExecutionNotFoundError,
    ExecutionRepository,
    UnknownActionError,
)
from services.execution_agent.health import HealthRecord, HealthRepository
from services.execution_agent.history import AnalysisHistory
from services.execution_agent.insights import (
    Insight,
    InsightChange,
    InsightNotFoundError,
    InsightRepository,
    subject_key,
)
from services.execution_agent.notifications import NotificationLog
from services.execution_agent.planner import ActionPlanner
from services.execution_agent.routing import RoutingRules
from services.execution_agent.store import open_store

# Score names the decision agent uses for customer health and churn risk (consumption).
HEALTH_SCORE_KEYS = ("customer_health", "health")
CHURN_RISK_KEY = "churn_risk"


@dataclass(frozen=True)
class HandlerOutput:
    execution: Execution
    jobs: list[ActionJob] = field(default_factory=list)  # publish to revops.actions
    flow_output: FlowOutput | None = None  # publish to revops.flow-results, then
    insights: list[Insight] = field(default_factory=list)  # call flow_published()


@dataclass(frozen=True)
class Decision:
    """A decision to handle, with what its envelope says about it."""

    analysis: AnalysisResults
    flow_id: str | None = None
    correlation_id: str | None = None
    received_at: datetime | None = None  # the envelope's timestamp (stable on redelivery)
    # The record's payload as read (a dict from JSON): the history keeps it re-encoded
    # instead of serialising the parsed analysis again (`history.payload_json`).
    payload: object = None


BatchResult = HandlerOutput | BaseException


class ExecutionAgent:
    def __init__(self, store: Database | None = None, routing: RoutingRules | None = None) -> None:
        self.store = store or open_store()
        self.routing = routing or RoutingRules.load()
        self.insights = InsightRepository(self.store)
        self.executions = ExecutionRepository(self.store)
        self.health = HealthRepository(self.store)
        self.history = AnalysisHistory(self.store)
        self.notifications = NotificationLog(self.store)
        self.planner = ActionPlanner(self.routing, self.notifications)
        self._compensate = compensation_planner(self.routing)

    def handle_decision(
        self,
        analysis: AnalysisResults,
        flow_id: str | None = None,
        correlation_id: str | None = None,
        received_at: datetime | None = None,
    ) -> HandlerOutput:
        """`received_at`: the decision envelope's timestamp (stable across redeliveries).

        One transaction: insights, health and the execution are recorded together or not
        at all (and with one commit)."""
        with self.store.transaction():
            return self._handle_decision(analysis, flow_id, correlation_id, received_at)

    def _handle_decision(
        self,
        analysis: AnalysisResults,
        flow_id: str | None,
        correlation_id: str | None,
        received_at: datetime | None,
        payload: object = None,
    ) -> HandlerOutput:
        existing = self.executions.find(analysis.request_id)
        if existing is not None:  # redelivery: re-publish what may not have gone out
            return HandlerOutput(
                execution=existing,
                jobs=[
                    j
                    for j in existing.state.all_jobs()
                    if j.action_id not in existing.state.results
                ],
                flow_output=self._flow_output_if_due(existing, analysis),
            )
        changes = self._upsert_insights(analysis, flow_id, correlation_id)
        for hook in POST_ANALYSIS_HOOKS.get(analysis.analysis_type, ()):
            hook(self, analysis, received_at)
        self.history.record(analysis, analyzed_at=received_at, payload=payload)
        plan = self.planner.make_plan(analysis, changes, as_of=received_at)
        # Same transaction as the execution: what was sent is remembered exactly when the
        # plan is (a redelivered decision re-publishes the plan and plans nothing anew).
        self.notifications.record(plan.sent)
        execution = self.executions.start(
            analysis.request_id,
            flow_id,
            analysis,
            plan.jobs,
            insight_ids=[c.insight.insight_id for c in changes],
            started_at=received_at,
        )
        return HandlerOutput(
            execution=execution,
            jobs=plan.jobs,
            flow_output=self._flow_output_if_due(execution, analysis),
            insights=[c.insight for c in changes],
        )

    def handle_decisions(self, batch: Sequence[tuple[Hashable, Decision]]) -> list[BatchResult]:
        """`handle_decision` for each (key, decision), in order, in one transaction: per item
        its output, or the exception it raised (its writes undone), or `Deferred` after a
        failed item of the same key (the Kafka key: per-account order)."""
        return in_one_transaction(
            self.store,
            batch,
            lambda item: self._handle_decision(
                item[1].analysis,
                item[1].flow_id,
                item[1].correlation_id,
                item[1].received_at,
                item[1].payload,
            ),
            key_of=lambda item: item[0],
            prepare=self._read_for_decisions,
        )

    def _read_for_decisions(self, batch: Sequence[tuple[Hashable, Decision]]) -> None:
        """What a batch of decisions reads, read together: the flows' executions, then for
        the new ones (not redeliveries) the insights their upserts read and lock."""
        self.executions.read_many(d.analysis.request_id for _, d in batch)
        new = [d.analysis for _, d in batch if self.executions.find(d.analysis.request_id) is None]
        self.insights.prepare_upserts(
            (
                subject_key(a.subject.account_id, a.subject.opportunity_id),
                flag.insight_type,
                a.request_id,
            )
            for a in new
            for flag, _ in _one_flag_per_type(a.analysis_results.flags)
        )
        # The planner's cooldown windows end at a decision's received_at (or now).
        cooldown = max((r.cooldown for r in self.routing.routes), default=timedelta(0))
        now = utcnow()
        self.notifications.prepare(
            (subject_key(a.subject.account_id, a.subject.opportunity_id) for a in new),
            (r.name for r in self.routing.routes),
            since=min((d.received_at or now for _, d in batch), default=now) - cooldown,
        )

    def handle_action_results(
        self, batch: Sequence[tuple[Hashable, ActionResult]]
    ) -> list[BatchResult]:
        """`handle_action_result` for each (key, result), as `handle_decisions` does."""
        return in_one_transaction(
            self.store,
            batch,
            lambda item: self._handle_action_result(item[1]),
            key_of=lambda item: item[0],
            prepare=self._lock_for_results,
        )

    def _lock_for_results(self, batch: Sequence[tuple[Hashable, ActionResult]]) -> None:
        """The rows a batch of results writes, read and locked together: the flows'
        executions, then the insights their jobs act on."""
        self.executions.lock_many(result.request_id for _, result in batch)
        memo = self.store.memo() or {}
        insight_ids = []
        for _, result in batch:
            execution = memo.get((EXECUTIONS_TABLE, result.request_id))
            if execution is None:
                continue  # unknown: its step says so
            job = next(
                (j for j in execution.state.all_jobs() if j.action_id == result.action_id), None
            )
            if job is not None and job.insight_id is not None:
                insight_ids.append(job.insight_id)
        self.insights.lock_many(insight_ids)

    def handle_action_result(self, result: ActionResult) -> HandlerOutput:
        """Raises `PermanentError` for a result of an unknown request or action (-> DLQ).
        The result and its mark on the insight are one transaction."""
        with self.store.transaction():
            return self._handle_action_result(result)

    def _handle_action_result(self, result: ActionResult) -> HandlerOutput:
        try:
            execution = self.executions.record_result(result, compensate=self._compensate)
        except (ExecutionNotFoundError, UnknownActionError) as exc:
            raise PermanentError(str(exc), code="UNKNOWN_ACTION") from exc
        is_primary = any(j.action_id == result.action_id for j in execution.state.planned_actions)
        self._record_on_insight(execution, result)
        # Compensating jobs go out when the last planned result lands; a redelivered primary
        # result re-publishes any still pending (downstream dedups on action_id).
        jobs = execution.state.pending_compensations() if is_primary else []
        return HandlerOutput(
            execution=execution,
            jobs=jobs,
            flow_output=self._flow_output_if_due(execution, None),
        )

    def flow_published(self, request_id: str) -> Execution:
        return self.executions.mark_flow_published(request_id)

    def flows_published(self, request_ids: Sequence[str]) -> list[Execution]:
        """`flow_published` for many flows, in as few statements as the store allows."""
        return self.executions.mark_flows_published(request_ids)

    # -- steps ----------------------------------------------------------------------------

    def _upsert_insights(
        self, analysis: AnalysisResults, flow_id: str | None, correlation_id: str | None
    ) -> list[InsightChange]:
        insights = []
        for flag, merged in _one_flag_per_type(analysis.analysis_results.flags):
            recommendations = [
                r for r in analysis.recommendations if set(r.based_on) & {f.code for f in merged}
            ]
            insights.append(
                self.insights.upsert(
                    analysis.subject,
                    flag,
                    analysis.request_id,
                    flow_id,
                    correlation_id,
                    recommendations,
                    payload={
                        "analysis_type": analysis.analysis_type.value,
                        # Display names (`revops insights list/show`), when the data had them.
                        "account_name": analysis.subject.account_name,
                        "opportunity_name": analysis.subject.opportunity_name,
                        "flag_codes": [f.code for f in merged],
                        "flag_type": flag.type.value,
                        "scores": analysis.analysis_results.scores,
                    },
                )
            )
        return insights

    def update_health(self, analysis: AnalysisResults, received_at: datetime | None) -> None:
        """The account's health record (console, history), from an analysis that scores it."""
        body = analysis.analysis_results
        key = next((k for k in HEALTH_SCORE_KEYS if k in body.scores), None)
        if key is None:
            return
        churn = body.score_details.get(CHURN_RISK_KEY)
        detail = body.score_details.get(key)
        self.health.upsert(
            HealthRecord(
                account_id=analysis.subject.account_id,
                score=body.scores[key],
                churn_risk=churn.band if churn else None,
                band=detail.band if detail else None,
                as_of=received_at or utcnow(),
                request_id=analysis.request_id,
                detail={
                    "scores": body.scores,
                    "score_details": {
                        k: v.model_dump(mode="json", exclude={"factors"})
                        for k, v in body.score_details.items()
                    },
                    "summary": analysis.summary,
                },
            )
        )

    def _record_on_insight(self, execution: Execution, result: ActionResult) -> None:
        job = next((j for j in execution.state.all_jobs() if j.action_id == result.action_id), None)
        if job is None or job.insight_id is None:
            return
        try:
            self.insights.record_action_taken(job.insight_id, result)
        except InsightNotFoundError:
            return

    def _flow_output_if_due(
        self, execution: Execution, analysis: AnalysisResults | None
    ) -> FlowOutput | None:
        if not execution.state.is_complete() or execution.state.flow_published_at is not None:
            return None
        results = build_execution_results(execution, database=self.store.database_name)
        return build_flow_output(
            execution,
            analysis or _analysis_from_state(execution),
            results,
            started_at=execution.state.started_at,
        )


def _one_flag_per_type(flags: Sequence[Flag]) -> list[tuple[Flag, list[Flag]]]:
    """One insight per type: the most severe flag leads; the others add their evidence."""
    groups: dict[str, list[Flag]] = {}
    for flag in flags:
        groups.setdefault(flag.insight_type, []).append(flag)
    merged = []
    for group in groups.values():
        ordered = sorted(group, key=lambda f: PRIORITY_RANK[f.severity.value])
        lead = ordered[0]
        if len(ordered) > 1:
            lead = lead.model_copy(update={"evidence": [e for f in ordered for e in f.evidence]})
        merged.append((lead, ordered))
    return merged


def _analysis_from_state(execution: Execution) -> AnalysisResults:
    """Enough of the analysis for the flow output, rebuilt from the recorded state."""
    state = execution.state
    return AnalysisResults.model_validate(
        {
            "request_id": execution.request_id,
            "analysis_type": state.analysis_type,
            "subject": state.subject,
            "analysis_results": {"scores": state.scores},
            "summary": state.summary,
        }
    )


PostAnalysisHook = Callable[[ExecutionAgent, AnalysisResults, "datetime | None"], None]

#: What follows an analysis's insights, per analysis type (docs/extending.md): the types
#: that score customer health keep the account's health record current.
POST_ANALYSIS_HOOKS: dict[AnalysisType, tuple[PostAnalysisHook, ...]] = {
    AnalysisType.CONSUMPTION: (ExecutionAgent.update_health,),
}
