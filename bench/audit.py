"""The after-the-fact accounting of a run: every trigger, every action, every insight.

It reads only what the system itself keeps (the flow-results topic, the execution agent's
SQLite store, the webhook processor's outbox and delivery log, the DLQ topics) and what the
destinations saw (the sink's log, the e-mail outbox file), and says what does not add up.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load import FlowSeen
from bench.sink import SinkStats
from services.common.stores.postgres import PostgresDatabase
from services.execution_agent.executions import ExecutionState, stored_state

ACTIVE = ("open", "acknowledged", "in_progress")
EMAIL_DESTINATION = "email_revops"


@dataclass
class Audit:
    triggers: int = 0
    flows: int = 0
    lost_flows: list[str] = field(default_factory=list)
    duplicate_flow_records: int = 0  # same request id, same message id (at-least-once)
    duplicate_flow_times: list[float] = field(default_factory=list)  # each extra copy's time
    conflicting_flows: list[str] = field(default_factory=list)  # same request, other message
    actions: int = 0
    delivered: int = 0
    queued_for_digest: int = 0
    failed_actions: list[str] = field(default_factory=list)
    lost_actions: list[str] = field(default_factory=list)  # success but never seen
    unplanned_deliveries: list[str] = field(default_factory=list)  # seen, never planned
    raw_duplicate_deliveries: int = 0  # repeats of an Idempotency-Key the sink absorbed
    order_violations: list[str] = field(default_factory=list)
    duplicate_insights: list[str] = field(default_factory=list)
    log_mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost_flows
            or self.conflicting_flows
            or self.failed_actions
            or self.lost_actions
            or self.unplanned_deliveries
            or self.order_violations
            or self.duplicate_insights
            or self.log_mismatches
        )

    def summary(self) -> dict[str, Any]:
        def short(items: list[str]) -> dict[str, Any]:
            return {"count": len(items), "examples": items[:5]}

        return {
            "ok": self.ok,
            "triggers": self.triggers,
            "flows_completed": self.flows,
            "lost_flows": short(self.lost_flows),
            "duplicate_flow_records_same_message_id": self.duplicate_flow_records,
            "conflicting_flow_records": short(self.conflicting_flows),
            "actions": self.actions,
            "delivered_exactly_once": self.delivered,
            "queued_for_digest": self.queued_for_digest,
            "failed_actions": short(self.failed_actions),
            "lost_actions": short(self.lost_actions),
            "unplanned_deliveries": short(self.unplanned_deliveries),
            "raw_duplicate_deliveries_absorbed_by_idempotency_key": self.raw_duplicate_deliveries,
            "order_violations": short(self.order_violations),
            "duplicate_active_insights": short(self.duplicate_insights),
            "delivery_log_mismatches": short(self.log_mismatches),
        }


@dataclass(frozen=True)
class StateSource:
    """Where the run kept its state: the SQLite files under `state_dir`, or the PostgreSQL
    database of `database_url` (every replica's)."""

    state_dir: Path
    database_url: str | None = None

    def rows(self, file: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self.database_url:
            with PostgresDatabase(self.database_url).reader() as pg:
                return list(pg.execute(sql, params).fetchall())
        path = self.state_dir / file
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
            return conn.execute(sql, params).fetchall()


def executions(state: StateSource, request_ids: Iterable[str]) -> dict[str, ExecutionState]:
    wanted = set(request_ids)
    rows = state.rows(
        "revops.db",
        "SELECT e.request_id, e.state_data, p.planned_actions FROM revops_ai_executions e "
        "LEFT JOIN revops_ai_execution_plans p ON p.request_id = e.request_id",
    )
    return {rid: stored_state(data, plan) for rid, data, plan in rows if rid in wanted}


def outbox_rows(state: StateSource) -> dict[str, tuple[int, str, str, str]]:
    """action_id -> (seq, destination, status, account_id) for single-job rows."""
    rows = state.rows(
        "deliveries.db",
        "SELECT seq, action_id, destination, status, payload FROM outbox WHERE kind = 'job'",
    )
    return {
        action_id: (seq, dest, status, json.loads(payload)["account_id"])
        for seq, action_id, dest, status, payload in rows
    }


def digest_queued(state: StateSource) -> set[str]:
    return {r[0] for r in state.rows("deliveries.db", "SELECT action_id FROM digest_queue")}


def duplicate_active_insights(state: StateSource) -> list[str]:
    marks = ",".join("?" * len(ACTIVE))
    rows = state.rows(
        "revops.db",
        f"SELECT subject_key, type, count(*) FROM revops_ai_insights WHERE status IN ({marks})"
        " GROUP BY subject_key, type HAVING count(*) > 1",
        ACTIVE,
    )
    return [f"{s} {t} x{n}" for s, t, n in rows]


def email_outbox_counts(outbox_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    path = outbox_dir / f"{EMAIL_DESTINATION}.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:  # a line torn by kill -9 mid-write: the retry wrote it whole
                continue
            counts[row.get("idempotency_key") or ""] += 1
    return counts


def audit_run(
    request_ids: Iterable[str],
    flows: dict[str, list[FlowSeen]],
    sink: SinkStats,
    state_dir: Path,
    outbox_dir: Path,
    database_url: str | None = None,
) -> Audit:
    wanted = list(request_ids)
    state = StateSource(state_dir, database_url)
    a = Audit(triggers=len(wanted))
    for rid in wanted:
        seen = flows.get(rid, [])
        if not seen:
            a.lost_flows.append(rid)
            continue
        a.flows += 1
        if len({f.message_id for f in seen}) > 1:
            a.conflicting_flows.append(rid)
        a.duplicate_flow_records += len(seen) - 1
        a.duplicate_flow_times += sorted(f.produced_at for f in seen)[1:]

    delivered = sink.delivered_counts()
    emails = email_outbox_counts(outbox_dir)
    a.raw_duplicate_deliveries = sink.raw_duplicates() + sum(n - 1 for n in emails.values())
    outbox = outbox_rows(state)
    queued = digest_queued(state)
    planned: set[str] = set()
    for rid, execution in executions(state, wanted).items():
        for job in execution.all_jobs():
            planned.add(job.action_id)
            a.actions += 1
            result = execution.results.get(job.action_id)
            status = result.status.value if result else "missing"
            seen_count = (
                emails.get(job.action_id, 0)
                if job.destination == EMAIL_DESTINATION
                else delivered.get(job.action_id, 0)
            )
            row = outbox.get(job.action_id)
            if status == "success":
                if seen_count == 0:
                    a.lost_actions.append(f"{rid}/{job.action_id} success but never delivered")
                else:
                    a.delivered += 1
                if row is None or row[2] != "delivered":
                    a.log_mismatches.append(f"{job.action_id}: success, outbox {row and row[2]}")
            elif status == "queued":
                if job.action_id not in queued:
                    a.log_mismatches.append(f"{job.action_id}: queued but not in digest_queue")
                else:
                    a.queued_for_digest += 1
            elif status == "failed":
                a.failed_actions.append(f"{rid}/{job.action_id} ({job.destination})")
            else:
                a.lost_actions.append(f"{rid}/{job.action_id} has no result")
            if status != "success" and seen_count:
                a.log_mismatches.append(f"{job.action_id}: {status} but the destination saw it")
    for key in list(delivered) + list(emails):
        if key not in planned:
            a.unplanned_deliveries.append(key)
    a.order_violations = order_violations(sink, emails, outbox)
    a.duplicate_insights = duplicate_active_insights(state)
    return a


def order_violations(
    sink: SinkStats, emails: Counter[str], outbox: dict[str, tuple[int, str, str, str]]
) -> list[str]:
    """Per destination and account, the destination must first see the jobs in the order
    the webhook processor accepted them (outbox sequence = the account's Kafka order)."""
    arrivals: dict[tuple[str, str], list[int]] = defaultdict(list)
    for answer in sink.first_delivery_order():
        row = outbox.get(answer.key)
        if row is not None:
            arrivals[(row[1], row[3])].append(row[0])
    for key in emails:  # the outbox file is appended in delivery order
        row = outbox.get(key)
        if row is not None:
            arrivals[(row[1], row[3])].append(row[0])
    return [
        f"{dest}/{account}: {seqs[:8]}"
        for (dest, account), seqs in arrivals.items()
        if seqs != sorted(seqs)
    ]
