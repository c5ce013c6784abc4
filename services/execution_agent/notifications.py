"""What the planner has already sent per route (`revops_ai_notifications`): the memory that
makes notifications follow insights, not analyses.

- cooldown: a route stays quiet about a subject and insight type for `cooldown` after it
  sent about them, unless the insight is now more urgent than anything it sent meanwhile;
- tickets: while a ticket a route opened for a subject covers an insight that is still
  open, the route updates that ticket instead of opening another.

Rows are written in the transaction that records the execution, so a redelivered decision
(which re-publishes the recorded plan) never plans twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from contracts.common import PRIORITY_RANK, Priority
from services.common.stores.database import Database, select_in_chunks
from services.execution_agent.insights import ACTIVE_STATUSES
from services.execution_agent.store import from_json, to_db_time


@dataclass(frozen=True)
class Notification:
    """One event-driven job the planner sent (a row of `revops_ai_notifications`)."""

    action_id: str
    route: str
    subject_key: str
    insight_id: str
    insight_type: str
    event: str
    priority: Priority
    request_id: str
    sent_at: datetime
    ticket_of: str | None = None


@dataclass(frozen=True)
class OpenTicket:
    opened_by: str  # action_id of the job that opened it
    ticket_id: str | None  # the far side's id, once its delivery result came back


@dataclass(frozen=True)
class _Sent:
    """What the planner's reads need of one row of a subject's log."""

    route: str
    insight_type: str
    priority: str
    sent_at: str  # as stored: ISO text, compared as the SQL compares it
    ticket_of: str | None
    insight_active: bool


@dataclass
class _SubjectLog:
    """A subject's log as a batch read it (`NotificationLog.prepare`), in insertion order,
    kept current by the batch's own `record`: every row sent after `since`, and every
    ticket row of a still open insight; `tickets`: opening action -> the far side's id."""

    since: str
    sent: list[_Sent] = field(default_factory=list)
    tickets: dict[str, str | None] = field(default_factory=dict)


_LOG = "notifications_of"  # memo key (Database.memo): (_LOG, subject_key) -> _SubjectLog


class NotificationLog:
    def __init__(self, store: Database) -> None:
        self.store = store

    def prepare(self, subject_keys: Iterable[str], routes: Iterable[str], since: datetime) -> None:
        """For a batch's plans: read the log of every subject the batch plans for, one
        statement for all, into the transaction's memo (`cooling_down` and `open_ticket`
        answer from it when it covers what they ask). `since`: the earliest cooldown
        window's start the batch can ask about."""
        memo = self.store.memo()
        if memo is None:
            return
        wanted = sorted({k for k in subject_keys if (_LOG, k) not in memo})
        names = sorted(set(routes))
        if not wanted or not names:
            return
        logs = {key: _SubjectLog(since=to_db_time(since)) for key in wanted}
        active = ", ".join("?" for _ in ACTIVE_STATUSES)
        # The opener's insight carries the ticket id its delivery result reported.
        sql = (
            "SELECT n.subject_key, n.route, n.insight_type, n.priority, n.sent_at, "
            f"n.ticket_of, i.status IN ({active}) AS insight_active, oi.actions_taken AS "
            "opener_taken FROM revops_ai_notifications n JOIN revops_ai_insights i ON "
            "i.insight_id = n.insight_id LEFT JOIN revops_ai_notifications o ON "
            "o.action_id = n.ticket_of LEFT JOIN revops_ai_insights oi ON "
            "oi.insight_id = o.insight_id WHERE "
            f"n.route IN ({', '.join('?' for _ in names)}) AND (n.sent_at > ? OR "
            f"(n.ticket_of IS NOT NULL AND i.status IN ({active}))) AND n.subject_key IN "
            "({marks}) ORDER BY n.rowid"
        )
        before = (*ACTIVE_STATUSES, *names, to_db_time(since), *ACTIVE_STATUSES)
        with self.store.reader() as conn:
            for row in select_in_chunks(conn, sql, wanted, before=before):
                log = logs[row["subject_key"]]
                ticket_of = row["ticket_of"]
                log.sent.append(
                    _Sent(
                        row["route"],
                        row["insight_type"],
                        row["priority"],
                        row["sent_at"],
                        ticket_of,
                        bool(row["insight_active"]),
                    )
                )
                if ticket_of is not None:
                    taken = from_json(row["opener_taken"]) or []
                    log.tickets[ticket_of] = _ticket_id(taken, ticket_of)
        memo.update(((_LOG, key), log) for key, log in logs.items())

    def _log_of(self, subject_key: str) -> _SubjectLog | None:
        memo = self.store.memo()
        return None if memo is None else memo.get((_LOG, subject_key))

    def _hold(self, notifications: Iterable[Notification]) -> None:
        """A batch recorded `notifications`: the subjects' logs as read, made current (a
        subject whose ticket it cannot place is read again by the next plan)."""
        memo = self.store.memo()
        if memo is None:
            return
        for n in notifications:
            log = memo.get((_LOG, n.subject_key))
            if log is None:
                continue
            if n.ticket_of is not None and n.ticket_of not in log.tickets:
                if n.ticket_of != n.action_id:
                    memo.pop((_LOG, n.subject_key))
                    continue
                log.tickets[n.ticket_of] = None  # just opened: no delivery result yet
            # The planner plans only for insights an upsert left active.
            sent = _Sent(
                n.route,
                n.insight_type,
                n.priority.value,
                to_db_time(n.sent_at),
                n.ticket_of,
                True,
            )
            log.sent.append(sent)

    def record(self, notifications: Iterable[Notification]) -> None:
        notifications = list(notifications)
        rows = [
            (
                n.action_id,
                n.route,
                n.subject_key,
                n.insight_id,
                n.insight_type,
                n.event,
                n.priority.value,
                n.ticket_of,
                n.request_id,
                to_db_time(n.sent_at),
            )
            for n in notifications
        ]
        with self.store.transaction() as conn:
            # In a batch with the batch's other plans' rows, in one INSERT (a row there
            # already fails the batch, which then runs record by record).
            self.store.insert_many_later(
                conn,
                "revops_ai_notifications",
                "action_id, route, subject_key, insight_id, insight_type, event, priority, "
                "ticket_of, request_id, sent_at",
                rows,
                on_conflict="ON CONFLICT (action_id) DO NOTHING",
            )
        self._hold(notifications)

    def cooling_down(
        self,
        route: str,
        subject_key: str,
        insight_type: str,
        priority: Priority,
        now: datetime,
        cooldown: timedelta,
    ) -> bool:
        """True when the route sent about this subject and type within the cooldown, at
        least as urgently as `priority` (a more urgent insight is news: it goes out)."""
        if cooldown <= timedelta(0):
            return False
        low, high = to_db_time(now - cooldown), to_db_time(now)
        log = self._log_of(subject_key)
        if log is not None and low >= log.since:  # the batch's read covers the window
            return any(
                PRIORITY_RANK[s.priority] <= PRIORITY_RANK[priority.value]
                for s in log.sent
                if s.route == route and s.insight_type == insight_type and low < s.sent_at <= high
            )
        with self.store.reader() as conn:
            sent = [
                row["priority"]
                for row in conn.execute(
                    "SELECT priority FROM revops_ai_notifications WHERE route = ? AND "
                    "subject_key = ? AND insight_type = ? AND sent_at > ? AND sent_at <= ?",
                    (route, subject_key, insight_type, low, high),
                )
            ]
        return any(PRIORITY_RANK[p] <= PRIORITY_RANK[priority.value] for p in sent)

    def open_ticket(self, route: str, subject_key: str) -> OpenTicket | None:
        """The newest ticket `route` opened for the subject that still covers an open insight
        (the one it was opened for, or one an update added), with its id if known."""
        log = self._log_of(subject_key)
        if log is not None:  # the newest of the batch's read and its own rows
            ticket_rows = [
                s for s in log.sent if s.route == route and s.ticket_of and s.insight_active
            ]
            if not ticket_rows:
                return None
            newest = max(enumerate(ticket_rows), key=lambda r: (r[1].sent_at, r[0]))[1]
            assert newest.ticket_of is not None
            return OpenTicket(newest.ticket_of, log.tickets.get(newest.ticket_of))
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        with self.store.reader() as conn:
            row = conn.execute(
                "SELECT n.ticket_of FROM revops_ai_notifications n JOIN revops_ai_insights i "
                "ON i.insight_id = n.insight_id WHERE n.route = ? AND n.subject_key = ? AND "
                f"n.ticket_of IS NOT NULL AND i.status IN ({marks}) "
                "ORDER BY n.sent_at DESC, n.rowid DESC LIMIT 1",
                (route, subject_key, *ACTIVE_STATUSES),
            ).fetchone()
            if row is None:
                return None
            opened_by = row["ticket_of"]
            opener = conn.execute(
                "SELECT i.actions_taken FROM revops_ai_notifications n JOIN revops_ai_insights "
                "i ON i.insight_id = n.insight_id WHERE n.action_id = ?",
                (opened_by,),
            ).fetchone()
        taken = from_json(opener["actions_taken"]) if opener is not None else []
        return OpenTicket(opened_by, _ticket_id(taken, opened_by))


def _ticket_id(actions_taken: list[dict[str, Any]], action_id: str) -> str | None:
    """The ticket id the webhook processor reported for the opening delivery, if it did."""
    for taken in actions_taken:
        response = taken.get("response")
        if taken.get("action_id") == action_id and isinstance(response, dict):
            value = response.get("ticket_id")
            return None if value is None else str(value)
    return None
