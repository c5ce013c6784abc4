"""Insights (`revops_ai_insights`, docs/domain.md §5): one open insight per subject and type,
a lifecycle with a timestamp per transition, an audit row for every change, optimistic
concurrency on `version`, and expiry.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel, Field

from contracts.analysis import Flag, Recommendation
from contracts.common import PRIORITY_RANK, Priority, Severity, Subject, utcnow
from services.common.ids import derived_uuid
from services.common.stores.database import (
    LOOKUP_CHUNK,
    Connection,
    Database,
    past_deferred,
    select_in_chunks,
)
from services.execution_agent.store import from_db_time, from_json, to_db_time, to_json
from services.execution_agent.warehouse_export.outbox import enqueue_export

SYSTEM_ACTOR = "execution_agent"
INSIGHTS_TABLE = "revops_ai_insights"
AUDIT_TABLE = "revops_ai_insight_audit"


class InsightStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
    EXPIRED = "expired"


# Statuses in which an insight is still "open" in the wide sense: at most one per subject+type.
ACTIVE_STATUSES = (InsightStatus.OPEN, InsightStatus.ACKNOWLEDGED, InsightStatus.IN_PROGRESS)
# Statuses expiry applies to: nobody has started working on the insight yet.
EXPIRABLE_STATUSES = (InsightStatus.OPEN, InsightStatus.ACKNOWLEDGED)


class InsightEvent(StrEnum):
    """What an analysis did to the insight for its subject and type. Notifications follow
    these events (routing.yaml `send_on`), not the analyses: a re-run that finds the same
    thing again is `unchanged` and sends nothing."""

    CREATED = "created"  # first insight of this type for the subject
    REOPENED = "reopened"  # a new one, after the previous one was resolved/dismissed/expired
    ESCALATED = "escalated"  # a re-run raised its priority
    UPDATED = "updated"  # a re-run changed what it says (title, description, findings) or
    # lowered its priority
    UNCHANGED = "unchanged"  # a re-run found the same thing again


@dataclass(frozen=True)
class InsightChange:
    insight: Insight
    event: InsightEvent
    previous_priority: Priority | None = None  # before a re-run (escalated: lower)


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[InsightStatus, ...]
    target: InsightStatus
    stamp_column: str


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("ack", (InsightStatus.OPEN,), InsightStatus.ACKNOWLEDGED, "acknowledged_at"),
        Transition(
            "start",
            (InsightStatus.OPEN, InsightStatus.ACKNOWLEDGED),
            InsightStatus.IN_PROGRESS,
            "started_at",
        ),
        Transition(
            "resolve",
            (InsightStatus.ACKNOWLEDGED, InsightStatus.IN_PROGRESS),
            InsightStatus.RESOLVED,
            "resolved_at",
        ),
        Transition("dismiss", ACTIVE_STATUSES, InsightStatus.DISMISSED, "dismissed_at"),
        Transition("expire", EXPIRABLE_STATUSES, InsightStatus.EXPIRED, "expired_at"),
    )
}

SEVERITY_WEIGHT: dict[str, float] = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25}

DEFAULT_TTL: dict[Priority, timedelta] = {
    Priority.CRITICAL: timedelta(days=7),
    Priority.HIGH: timedelta(days=14),
    Priority.MEDIUM: timedelta(days=30),
    Priority.LOW: timedelta(days=60),
}


class InsightError(Exception):
    """Base of the insight store's refusals."""


class InsightNotFoundError(InsightError):
    def __init__(self, insight_id: str) -> None:
        super().__init__(f"insight {insight_id!r} not found")
        self.insight_id = insight_id


AMBIGUOUS_SHOWN = 5  # ids an ambiguous-prefix error lists


class AmbiguousInsightIdError(InsightError):
    def __init__(self, prefix: str, matches: Sequence[str]) -> None:
        many = len(matches) > AMBIGUOUS_SHOWN
        shown = ", ".join(matches[:AMBIGUOUS_SHOWN]) + (", ..." if many else "")
        count = f"more than {AMBIGUOUS_SHOWN}" if many else str(len(matches))
        super().__init__(
            f"insight id {prefix!r} is ambiguous: {count} ids start with it ({shown}); "
            "type more of it"
        )
        self.prefix = prefix
        self.matches = list(matches)


class IllegalTransitionError(InsightError):
    def __init__(self, insight_id: str, action: str, status: str) -> None:
        allowed = TRANSITIONS[action].sources if action in TRANSITIONS else ()
        # str(): a status is a StrEnum, whose repr would read "<InsightStatus.OPEN: 'open'>".
        super().__init__(
            f"cannot {action} insight {insight_id}: it is {status!s}"
            + (f"; {action} is allowed from {', '.join(map(str, allowed))}" if allowed else "")
        )
        self.insight_id = insight_id
        self.action = action
        self.status = status


class StaleVersionError(InsightError):
    def __init__(self, insight_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"insight {insight_id!r} changed since you read it: you had version {expected}, "
            f"it is now version {actual}; reload it and try again"
        )
        self.insight_id = insight_id
        self.expected = expected
        self.actual = actual


class Insight(BaseModel):
    insight_id: str
    request_id: str
    flow_id: str | None = None
    correlation_id: str | None = None
    source_agent: str = SYSTEM_ACTOR
    category: str
    type: str
    title: str
    description: str
    status: InsightStatus
    priority: Priority
    confidence: float
    impact_score: float
    urgency_score: float
    account_id: str
    opportunity_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    recommended_actions: list[dict[str, Any]] = Field(default_factory=list)
    actions_taken: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    started_at: datetime | None = None
    resolved_at: datetime | None = None
    dismissed_at: datetime | None = None
    expired_at: datetime | None = None
    expires_at: datetime | None = None
    version: int

    @property
    def subject(self) -> Subject:
        return Subject(account_id=self.account_id, opportunity_id=self.opportunity_id)

    def is_expired(self, now: datetime | None = None) -> bool:
        """Expired in effect: marked so, or expirable and past `expires_at`."""
        if self.status is InsightStatus.EXPIRED:
            return True
        now = now or utcnow()
        return (
            self.status in EXPIRABLE_STATUSES
            and self.expires_at is not None
            and self.expires_at <= now
        )

    def effective_status(self, now: datetime | None = None) -> InsightStatus:
        return InsightStatus.EXPIRED if self.is_expired(now) else self.status


class AuditEntry(BaseModel):
    audit_id: int
    insight_id: str
    version: int
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict)


def subject_key(account_id: str, opportunity_id: str | None) -> str:
    return f"{account_id}|{opportunity_id or ''}"


@dataclass(frozen=True)
class _KnownPair:
    """What a batch's read (`InsightRepository.prepare_upserts`) found of one subject and
    type, kept current by the batch's own upserts: the active insight (locked) and the
    newest one of any status, as (insight_id, status)."""

    active: Insight | None
    newest: tuple[str, str] | None


# Keys of the transaction's memo (Database.memo): (_PAIR, subject_key, type) -> _KnownPair;
# (_WRITTEN_BY, request_id) -> the insights that request created or re-ran before.
_PAIR = "insight_pair"
_WRITTEN_BY = "insight_written_by"
# Subjects per locking read of `prepare_upserts`: within both engines' parameter limits.
_ONE_LOCKING_READ = 20000


# Fields a re-run may change, compared to say in the audit row what changed.
RERUN_FIELDS = (
    "request_id",
    "flow_id",
    "correlation_id",
    "title",
    "description",
    "priority",
    "confidence",
    "impact_score",
    "urgency_score",
    "payload",
    "evidence",
    "recommended_actions",
    "expires_at",
)

JSON_COLUMNS = ("payload", "evidence", "recommended_actions", "actions_taken")
TIME_COLUMNS = (
    "created_at",
    "updated_at",
    "acknowledged_at",
    "started_at",
    "resolved_at",
    "dismissed_at",
    "expired_at",
    "expires_at",
)


def _row_to_insight(row: Any) -> Insight:
    data = {key: row[key] for key in row.keys() if key != "subject_key"}  # noqa: SIM118
    for col in JSON_COLUMNS:
        data[col] = from_json(data[col])
    for col in TIME_COLUMNS:
        data[col] = from_db_time(data[col])
    return Insight.model_validate(data)


def _db_value(field: str, value: Any) -> Any:
    if field in JSON_COLUMNS:
        return to_json(value)
    if field in TIME_COLUMNS:
        return to_db_time(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


class InsightRepository:
    """Reads and writes insights; every write is one short transaction, and a write that
    reads the row it changes locks it (`Dialect.for_update`), so replicas never lose one."""

    def __init__(
        self,
        store: Database,
        ttl: Mapping[Priority, timedelta] | None = None,
        source_agent: str = SYSTEM_ACTOR,
    ) -> None:
        self.store = store
        self.ttl = dict(ttl or DEFAULT_TTL)
        self.source_agent = source_agent

    # -- writes ---------------------------------------------------------------------------

    def upsert(
        self,
        subject: Subject,
        flag: Flag,
        request_id: str,
        flow_id: str | None = None,
        correlation_id: str | None = None,
        recommended_actions: Sequence[Recommendation | Mapping[str, Any]] = (),
        payload: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> InsightChange:
        """Create the insight for this flag, or update the open one for the same subject+type,
        and say which it was (the event notifications follow).

        A redelivery of the same request changes nothing (same version and event back); a
        re-run bumps the version and writes an audit row naming what changed.
        """
        now = now or utcnow()
        priority = Priority(flag.severity.value)
        recs = [
            r.model_dump(mode="json") if isinstance(r, Recommendation) else dict(r)
            for r in recommended_actions
        ]
        fields: dict[str, Any] = {
            "request_id": request_id,
            "flow_id": flow_id,
            "correlation_id": correlation_id,
            "title": _title(flag),
            "description": flag.description,
            "priority": priority,
            "confidence": flag.confidence,
            "impact_score": SEVERITY_WEIGHT[flag.severity.value],
            "urgency_score": _urgency(flag.severity, recs),
            "payload": dict(payload or {}),
            "evidence": [e.model_dump(mode="json") for e in flag.evidence],
            "recommended_actions": recs,
            "expires_at": now + self.ttl[priority],
        }
        key = subject_key(subject.account_id, subject.opportunity_id)
        insight_id = _insight_id(key, flag.insight_type, request_id)
        for _ in range(2):  # second round only if the unique index caught a race
            try:
                with self.store.transaction() as conn:
                    seen = self._written_by(conn, key, flag.insight_type, insight_id, request_id)
                    if seen is not None:  # redelivery of a request already applied
                        return self._replayed(conn, seen, request_id)
                    known = self._known_pair(key, flag.insight_type)
                    current = (
                        self._active(conn, key, flag.insight_type)
                        if known is None
                        else known.active
                    )
                    if current is None:
                        return self._insert(conn, insight_id, subject, key, flag, fields, now)
                    return self._rerun_update(conn, current, fields, now)
            except self.store.integrity_error:
                continue  # another writer inserted the active one first: update it instead
        raise InsightError(f"could not upsert insight for {key} {flag.insight_type}")

    def upsert_from_flag(
        self,
        subject: Subject,
        flag: Flag,
        request_id: str,
        flow_id: str | None = None,
        correlation_id: str | None = None,
        recommended_actions: Sequence[Recommendation | Mapping[str, Any]] = (),
        payload: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Insight:
        """`upsert` without the event: the insight as it is now."""
        return self.upsert(
            subject, flag, request_id, flow_id, correlation_id, recommended_actions, payload, now
        ).insight

    def prepare_upserts(self, upserts: Iterable[tuple[str, str, str]]) -> None:
        """For a batch's `upsert`s, given as (subject_key, type, request_id): read what they
        would read one by one, a few statements for all, into the transaction's memo:
        the active and the newest insight of every subject and type (locked, in insight
        id order), and the insights each request already created or re-ran. Outside a
        transaction nothing is read."""
        memo = self.store.memo()
        if memo is None:
            return
        wanted = list(dict.fromkeys(upserts))
        pairs = sorted({(k, t) for k, t, _ in wanted if (_PAIR, k, t) not in memo})
        found: dict[tuple[str, str], list[Insight]] = {}
        for insight in self._lock_pairs(pairs):
            found.setdefault(
                (subject_key(insight.account_id, insight.opportunity_id), insight.type), []
            ).append(insight)
        for pair in pairs:
            rows = found.get(pair, [])
            active = next((i for i in rows if i.status in ACTIVE_STATUSES), None)
            newest = max(rows, key=lambda i: i.created_at, default=None)
            memo[(_PAIR, *pair)] = _KnownPair(
                active, None if newest is None else (newest.insight_id, str(newest.status))
            )
        requests = [(k, t, r) for k, t, r in wanted if (_WRITTEN_BY, r) not in memo]
        written: dict[str, list[Insight]] = {r: [] for _, _, r in requests}
        for request_id, insight in self._read_written_by(requests):
            written[request_id].append(insight)
        memo.update(((_WRITTEN_BY, r), insights) for r, insights in written.items())

    def _lock_pairs(self, pairs: Sequence[tuple[str, str]]) -> Iterable[Insight]:
        """The active and the newest insight of each (subject_key, type), locked."""
        if not pairs:
            return []
        types = sorted({t for _, t in pairs})
        active = ", ".join(f"'{s.value}'" for s in ACTIVE_STATUSES)  # constants, not input
        sql = (
            "SELECT * FROM revops_ai_insights WHERE insight_id IN (SELECT insight_id FROM "
            "(SELECT insight_id, status, ROW_NUMBER() OVER (PARTITION BY subject_key, type "
            "ORDER BY created_at DESC) AS newest FROM revops_ai_insights WHERE "
            f"type IN ({_placeholders(types)}) AND subject_key IN ({{marks}})) ranked "
            f"WHERE newest = 1 OR status IN ({active})) ORDER BY insight_id"
            + self.store.dialect.for_update
        )
        with self.store.reader() as conn:
            # One statement for a batch's subjects (far fewer than `_ONE_LOCKING_READ`), so
            # its locks go in one insight-id order, the order every other writer locks in.
            keys = sorted({k for k, _ in pairs})
            rows = select_in_chunks(conn, sql, keys, before=types, chunk=_ONE_LOCKING_READ)
            return [_row_to_insight(row) for row in rows]

    def _read_written_by(
        self, requests: Sequence[tuple[str, str, str]]
    ) -> Iterable[tuple[str, Insight]]:
        """(request_id, insight) for every insight one of `requests` created or re-ran."""
        by_id = {_insight_id(k, t, r): r for k, t, r in requests}
        by_request = self.store.dialect.json_text("a.changes", "request_id", "to")
        out: list[tuple[str, Insight]] = []
        with self.store.reader() as conn:
            for start in range(0, len(requests), LOOKUP_CHUNK):
                part = requests[start : start + LOOKUP_CHUNK]
                ids = [_insight_id(k, t, r) for k, t, r in part]
                keys = sorted({k for k, _, _ in part})
                request_ids = sorted({r for _, _, r in part})
                rows = conn.execute(
                    past_deferred(AUDIT_TABLE)
                    + "SELECT i.*, NULL AS by_request FROM revops_ai_insights i WHERE "
                    f"i.insight_id IN ({_placeholders(ids)}) UNION ALL "
                    f"SELECT i.*, {by_request} AS by_request FROM revops_ai_insights i JOIN "
                    "revops_ai_insight_audit a ON a.insight_id = i.insight_id WHERE "
                    f"i.subject_key IN ({_placeholders(keys)}) AND a.action = 'rerun' AND "
                    f"{by_request} IN ({_placeholders(request_ids)})",
                    (*ids, *keys, *request_ids),
                )
                for row in rows:
                    request_id = row["by_request"] or by_id[row["insight_id"]]
                    out.append((request_id, _row_to_insight(row)))
        return out

    def _known_pair(self, key: str, insight_type: str) -> _KnownPair | None:
        memo = self.store.memo()
        return None if memo is None else memo.get((_PAIR, key, insight_type))

    def _hold_pair(self, insight: Insight, newest: tuple[str, str] | None = None) -> None:
        """A batch's upsert wrote `insight`: what `prepare_upserts` read of its subject and
        type, made current (kept only where it was read)."""
        memo = self.store.memo()
        pair = (_PAIR, subject_key(insight.account_id, insight.opportunity_id), insight.type)
        known = None if memo is None else memo.get(pair)
        if memo is not None and known is not None:
            memo[pair] = _KnownPair(insight, newest or known.newest)

    def _drop_pair(self, insight: Insight) -> None:
        """Another write changed the insight: its subject and type are read again."""
        memo = self.store.memo()
        if memo is not None:
            key = subject_key(insight.account_id, insight.opportunity_id)
            memo.pop((_PAIR, key, insight.type), None)

    def _active(self, conn: Connection, key: str, insight_type: str) -> Insight | None:
        row = conn.execute(
            "SELECT * FROM revops_ai_insights WHERE subject_key = ? AND type = ? "
            f"AND status IN ({_placeholders(ACTIVE_STATUSES)})" + self.store.dialect.for_update,
            (key, insight_type, *ACTIVE_STATUSES),
        ).fetchone()
        return None if row is None else _row_to_insight(row)

    def _written_by(
        self, conn: Connection, key: str, insight_type: str, insight_id: str, request_id: str
    ) -> Insight | None:
        """The insight this request already created or re-ran, if any: applying an old
        request again must neither reopen a closed insight nor overwrite newer findings."""
        memo = self.store.memo()
        held = None if memo is None else memo.get((_WRITTEN_BY, request_id))
        if held is not None:  # what `prepare_upserts` read
            seen = next(
                (
                    i
                    for i in held
                    if i.insight_id == insight_id
                    or (
                        subject_key(i.account_id, i.opportunity_id) == key
                        and i.type == insight_type
                    )
                ),
                None,
            )
            known = self._known_pair(key, insight_type)
            if seen is not None and known is not None and known.active is not None:
                # The batch may have re-run it since: the insight as it is now.
                return known.active if known.active.insight_id == seen.insight_id else seen
            return seen
        # An audit row it looks for is never among a batch's deferred ones: a batch does
        # not run a request twice (the second finds its execution and stops there).
        row = conn.execute(
            past_deferred(AUDIT_TABLE)
            + "SELECT i.* FROM revops_ai_insights i WHERE i.insight_id = ? "
            "OR (i.subject_key = ? AND i.type = ? AND EXISTS (SELECT 1 FROM "
            "revops_ai_insight_audit a WHERE a.insight_id = i.insight_id AND a.action = 'rerun' "
            f"AND {self.store.dialect.json_text('a.changes', 'request_id', 'to')} = ?)) LIMIT 1",
            (insight_id, key, insight_type, request_id),
        ).fetchone()
        return None if row is None else _row_to_insight(row)

    def _insert(
        self,
        conn: Connection,
        insight_id: str,
        subject: Subject,
        key: str,
        flag: Flag,
        fields: dict[str, Any],
        now: datetime,
    ) -> InsightChange:
        known = self._known_pair(key, flag.insight_type)
        previous = (
            conn.execute(
                "SELECT insight_id, status FROM revops_ai_insights WHERE subject_key = ? "
                "AND type = ? ORDER BY created_at DESC LIMIT 1",
                (key, flag.insight_type),
            ).fetchone()
            if known is None
            else known.newest
        )
        insight = Insight(
            insight_id=insight_id,
            source_agent=self.source_agent,
            category=flag.category.value,
            type=flag.insight_type,
            status=InsightStatus.OPEN,
            account_id=subject.account_id,
            opportunity_id=subject.opportunity_id,
            created_at=now,
            updated_at=now,
            version=1,
            **fields,
        )
        columns = {name: _db_value(name, getattr(insight, name)) for name in Insight.model_fields}
        columns["subject_key"] = key
        # In a batch with its other new insights, in one INSERT ahead of their audit rows
        # (a concurrent insert of the same active insight fails the batch on the unique
        # index: it then runs record by record, where `upsert` re-runs that one instead).
        self.store.insert_later(
            conn, INSIGHTS_TABLE, ", ".join(columns), tuple(columns.values()), parent=True
        )
        if previous is None:
            action, event, note = "create", InsightEvent.CREATED, None
        else:
            action, event = "reopen", InsightEvent.REOPENED
            note = f"the previous one, {previous[0]}, is {previous[1]}"
        self._hold_pair(insight, newest=(insight_id, str(insight.status)))
        actor = self.source_agent
        self._audit(conn, insight.insight_id, 1, now, actor, action, None, "open", note)
        return InsightChange(insight, event)

    def _rerun_update(
        self, conn: Connection, current: Insight, fields: dict[str, Any], now: datetime
    ) -> InsightChange:
        # Each value in its stored form once (a JSON column's is its JSON text): compared,
        # audited and written as such.
        assignments = {name: _db_value(name, value) for name, value in fields.items()}
        changes: dict[str, dict[str, Any]] = {}
        for name, stored in assignments.items():
            before = _db_value(name, getattr(current, name))
            if before != stored:
                changes[name] = {"from": before, "to": stored}
        event = rerun_event(changes)
        version = current.version + 1
        assignments.update(updated_at=to_db_time(now), version=version)
        try:  # the row is locked (or written) by this transaction: a batch writes it once
            self.store.write_later(
                conn,
                INSIGHTS_TABLE,
                "insight_id",
                current.insight_id,
                assignments,
                guard={"version": current.version},
            )
        except LookupError:  # cannot happen: the row is locked; kept as a guard
            raise StaleVersionError(current.insight_id, current.version, -1) from None
        self._forget(current.insight_id)
        self._audit(
            conn,
            current.insight_id,
            version,
            now,
            self.source_agent,
            "rerun",
            current.status,
            current.status,
            f"re-run: {event}"
            + (f" from {current.priority}" if event is InsightEvent.ESCALATED else ""),
            changes,
        )
        updated = current.model_copy(update={**fields, "updated_at": now, "version": version})
        self._hold_pair(updated)
        return InsightChange(updated, event, previous_priority=current.priority)

    def _replayed(self, conn: Connection, insight: Insight, request_id: str) -> InsightChange:
        """The change a request already applied, read back from its audit row (so a
        redelivered decision plans exactly what the first delivery planned)."""
        row = conn.execute(
            "SELECT action, changes FROM revops_ai_insight_audit WHERE insight_id = ? AND "
            "(action IN ('create', 'reopen') OR (action = 'rerun' AND "
            f"{self.store.dialect.json_text('changes', 'request_id', 'to')} = ?)) "
            "ORDER BY (action = 'rerun') DESC, audit_id DESC LIMIT 1",
            (insight.insight_id, request_id),
        ).fetchone()
        if row is None or row["action"] == "create":
            return InsightChange(insight, InsightEvent.CREATED)
        if row["action"] == "reopen":
            return InsightChange(insight, InsightEvent.REOPENED)
        changes = from_json(row["changes"])
        before = changes.get("priority", {}).get("from")
        return InsightChange(
            insight, rerun_event(changes), Priority(before) if before else insight.priority
        )

    def transition(
        self,
        insight_id: str,
        action: str,
        actor: str,
        note: str | None = None,
        expected_version: int | None = None,
        now: datetime | None = None,
    ) -> Insight:
        """Apply `ack`, `start`, `resolve`, `dismiss` (or `expire`); refuse illegal or stale."""
        if action not in TRANSITIONS:
            raise InsightError(f"unknown action {action!r}; use one of {', '.join(TRANSITIONS)}")
        rule = TRANSITIONS[action]
        now = now or utcnow()
        with self.store.transaction() as conn:
            current = self._get(conn, insight_id, self.store.dialect.for_update)
            if expected_version is not None and expected_version != current.version:
                raise StaleVersionError(insight_id, expected_version, current.version)
            if current.status not in rule.sources:
                raise IllegalTransitionError(insight_id, action, current.status)
            version = current.version + 1
            cursor = conn.execute(
                f"UPDATE revops_ai_insights SET status = ?, {rule.stamp_column} = ?, "
                "updated_at = ?, version = ? WHERE insight_id = ? AND version = ?",
                (
                    rule.target.value,
                    to_db_time(now),
                    to_db_time(now),
                    version,
                    insight_id,
                    current.version,
                ),
            )
            if cursor.rowcount != 1:  # cannot happen: the row is locked; kept as a guard
                raise StaleVersionError(insight_id, current.version, -1)
            self._forget(insight_id)
            self._drop_pair(current)
            self._audit(
                conn,
                insight_id,
                version,
                now,
                actor,
                action,
                current.status,
                rule.target,
                note,
            )
        return current.model_copy(
            update={
                "status": rule.target,
                rule.stamp_column: now,
                "updated_at": now,
                "version": version,
            }
        )

    def expire_due(self, now: datetime | None = None, actor: str = SYSTEM_ACTOR) -> list[Insight]:
        """Mark every expirable insight past its `expires_at` as expired; returns them."""
        now = now or utcnow()
        with self.store.reader() as conn:
            ids = [
                row["insight_id"]
                for row in conn.execute(
                    "SELECT insight_id FROM revops_ai_insights WHERE expires_at <= ? "
                    f"AND status IN ({_placeholders(EXPIRABLE_STATUSES)})",
                    (to_db_time(now), *EXPIRABLE_STATUSES),
                )
            ]
        expired = []
        for insight_id in ids:
            try:
                expired.append(
                    self.transition(insight_id, "expire", actor, "past expires_at", now=now)
                )
            except IllegalTransitionError:
                continue  # someone moved it on in the meantime
        return expired

    def record_action_taken(
        self, insight_id: str, action_result: BaseModel | Mapping[str, Any]
    ) -> Insight:
        """Append a delivery result to `actions_taken` (idempotent per action_id; the same
        result again changes nothing)."""
        entry = (
            action_result.model_dump(mode="json")
            if isinstance(action_result, BaseModel)
            else dict(action_result)
        )
        now = utcnow()
        with self.store.transaction() as conn:
            current = self._locked(conn, insight_id)
            if entry in current.actions_taken:
                return current  # a redelivered result: no new version, no second audit row
            taken = [
                a for a in current.actions_taken if a.get("action_id") != entry.get("action_id")
            ]
            taken.append(entry)
            version = current.version + 1
            # The row is locked (or written) by this transaction: a batch writes it once,
            # with its last results.
            try:
                self.store.write_later(
                    conn,
                    INSIGHTS_TABLE,
                    "insight_id",
                    insight_id,
                    {
                        "actions_taken": to_json(taken),
                        "updated_at": to_db_time(now),
                        "version": version,
                    },
                    guard={"version": current.version},
                )
            except LookupError:  # cannot happen: the row is locked; kept as a guard
                raise StaleVersionError(insight_id, current.version, -1) from None
            self._audit(
                conn,
                insight_id,
                version,
                now,
                SYSTEM_ACTOR,
                "action_taken",
                current.status,
                current.status,
                f"{entry.get('channel')} -> {entry.get('destination')}: {entry.get('status')}",
            )
            changed = current.model_copy(
                update={"actions_taken": taken, "updated_at": now, "version": version}
            )
            self._remember(changed)
            self._drop_pair(changed)
        return changed

    def lock_many(self, insight_ids: Iterable[str]) -> None:
        """Read and lock the insights a batch will write, together, into the transaction's
        memo (`Database.lock_into_memo`)."""
        self.store.lock_into_memo(INSIGHTS_TABLE, "insight_id", insight_ids, _row_to_insight)

    # -- reads ----------------------------------------------------------------------------

    def get(self, insight_id: str) -> Insight:
        with self.store.reader() as conn:
            return self._get(conn, insight_id)

    def resolve_id(self, prefix: str) -> str:
        """The one insight id that is `prefix` or starts with it (what a person types)."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise InsightNotFoundError(prefix)
        with self.store.reader() as conn:
            # A range on the primary key: an index seek, where LIKE would scan.
            matches = [
                row["insight_id"]
                for row in conn.execute(
                    "SELECT insight_id FROM revops_ai_insights WHERE insight_id >= ? "
                    "AND insight_id < ? ORDER BY insight_id LIMIT ?",
                    (prefix, prefix + "\U0010ffff", AMBIGUOUS_SHOWN + 1),
                )
            ]
        if prefix in matches or len(matches) == 1:
            return prefix if prefix in matches else matches[0]
        if not matches:
            raise InsightNotFoundError(prefix)
        raise AmbiguousInsightIdError(prefix, matches)

    def list(
        self,
        status: str | None = None,
        category: str | None = None,
        account_id: str | None = None,
        since: datetime | None = None,
        now: datetime | None = None,
        limit: int = 500,
    ) -> list[Insight]:
        """Newest first. `status` is the effective status: `expired` includes open ones past
        their expiry, and `open`/`acknowledged` leave those out."""
        now_text = to_db_time(now or utcnow())
        where: list[str] = []
        params: list[Any] = []
        expirable = _placeholders(EXPIRABLE_STATUSES)
        if status == InsightStatus.EXPIRED:
            where.append(f"(status = 'expired' OR (status IN ({expirable}) AND expires_at <= ?))")
            params += [*EXPIRABLE_STATUSES, now_text]
        elif status is not None:
            where.append("status = ?")
            params.append(InsightStatus(status).value)
            if status in EXPIRABLE_STATUSES:
                where.append("(expires_at IS NULL OR expires_at > ?)")
                params.append(now_text)
        if category:
            where.append("category = ?")
            params.append(category)
        if account_id:
            where.append("account_id = ?")
            params.append(account_id)
        if since:
            where.append("updated_at >= ?")
            params.append(to_db_time(since))
        sql = "SELECT * FROM revops_ai_insights"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, insight_id LIMIT ?"
        with self.store.reader() as conn:
            return [_row_to_insight(row) for row in conn.execute(sql, (*params, limit))]

    def audit(self, insight_id: str) -> builtins.list[AuditEntry]:
        with self.store.reader() as conn:
            rows = conn.execute(
                "SELECT * FROM revops_ai_insight_audit WHERE insight_id = ? ORDER BY audit_id",
                (insight_id,),
            ).fetchall()
        return [
            AuditEntry.model_validate(
                {**dict(row), "at": from_db_time(row["at"]), "changes": from_json(row["changes"])}
            )
            for row in rows
        ]

    def _audit(
        self,
        conn: Connection,
        insight_id: str,
        version: int,
        at: datetime,
        actor: str,
        action: str,
        from_status: str | None,
        to_status: str,
        note: str | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """The audit row of a change, and the export-outbox row that follows it."""
        # Append-only, and read back in the same transaction only by a redelivery of its own
        # request (which a batch never runs twice): a batch writes its audit rows together.
        self.store.insert_later(
            conn,
            AUDIT_TABLE,
            "insight_id, version, at, actor, action, from_status, to_status, note, changes",
            (
                insight_id,
                version,
                to_db_time(at),
                actor,
                action,
                None if from_status is None else str(from_status),
                str(to_status),
                note,
                to_json(dict(changes or {})),
            ),
        )
        # Every change has its audit row: the warehouse export follows it, in this transaction.
        enqueue_export(self.store, conn, insight_id, version, at)

    # The transaction's memo (Database.memo) holds an insight that `record_action_taken`
    # locked and wrote, for the batch's next result of the same insight; every other
    # write of an insight row drops it.

    def _locked(self, conn: Connection, insight_id: str) -> Insight:
        """The insight, locked for this transaction's write (from the memo when held)."""
        memo = self.store.memo()
        held = None if memo is None else memo.get((INSIGHTS_TABLE, insight_id))
        if held is not None:
            return cast(Insight, held)
        return self._get(conn, insight_id, self.store.dialect.for_update)

    def _remember(self, insight: Insight) -> None:
        memo = self.store.memo()
        if memo is not None:
            memo[(INSIGHTS_TABLE, insight.insight_id)] = insight

    def _forget(self, insight_id: str) -> None:
        memo = self.store.memo()
        if memo is not None:
            memo.pop((INSIGHTS_TABLE, insight_id), None)

    @staticmethod
    def _get(conn: Connection, insight_id: str, lock: str = "") -> Insight:
        """`lock`: the dialect's row lock, when the caller will write the row back."""
        row = conn.execute(
            f"SELECT * FROM revops_ai_insights WHERE insight_id = ?{lock}", (insight_id,)
        ).fetchone()
        if row is None:
            raise InsightNotFoundError(insight_id)
        return _row_to_insight(row)


def _insight_id(key: str, insight_type: str, request_id: str) -> str:
    """Deterministic: the same request always names the same insight (safe redelivery)."""
    return derived_uuid("insight", key, insight_type, request_id)


def _placeholders(values: Sequence[Any] | Mapping[str, Any]) -> str:
    return ", ".join("?" for _ in values)


# What a person would call a change of an insight; a new request id, new evidence rows or
# moved scores alone are the same finding seen again.
MATERIAL_FIELDS = ("title", "description", "priority")


def rerun_event(changes: Mapping[str, Any]) -> InsightEvent:
    """A re-run's event from its audit changes ({field: {"from", "to"}}, as stored)."""
    priority = changes.get("priority")
    if priority and PRIORITY_RANK[priority["to"]] < PRIORITY_RANK[priority["from"]]:
        return InsightEvent.ESCALATED
    if any(name in changes for name in MATERIAL_FIELDS):
        return InsightEvent.UPDATED
    payload = changes.get("payload")
    if payload and _flag_codes(payload["from"]) != _flag_codes(payload["to"]):
        return InsightEvent.UPDATED
    return InsightEvent.UNCHANGED


def _flag_codes(payload_json: str) -> list[str]:
    return sorted((from_json(payload_json) or {}).get("flag_codes") or [])


def _title(flag: Flag) -> str:
    return flag.code.replace("_", " ").capitalize()


def _urgency(severity: Severity, recommendations: Sequence[Mapping[str, Any]]) -> float:
    weights = [SEVERITY_WEIGHT.get(str(r.get("priority")), 0.0) for r in recommendations]
    return max([SEVERITY_WEIGHT[severity.value], *weights])
