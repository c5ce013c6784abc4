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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts.common import PRIORITY_RANK, Priority
from services.common.stores.database import Database
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


class NotificationLog:
    def __init__(self, store: Database) -> None:
        self.store = store

    def record(self, notifications: Iterable[Notification]) -> None:
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
            conn.executemany(
                "INSERT INTO revops_ai_notifications (action_id, route, subject_key, "
                "insight_id, insight_type, event, priority, ticket_of, request_id, sent_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (action_id) DO NOTHING",
                rows,
            )

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
        with self.store.reader() as conn:
            sent = [
                row["priority"]
                for row in conn.execute(
                    "SELECT priority FROM revops_ai_notifications WHERE route = ? AND "
                    "subject_key = ? AND insight_type = ? AND sent_at > ? AND sent_at <= ?",
                    (route, subject_key, insight_type, to_db_time(now - cooldown), to_db_time(now)),
                )
            ]
        return any(PRIORITY_RANK[p] <= PRIORITY_RANK[priority.value] for p in sent)

    def open_ticket(self, route: str, subject_key: str) -> OpenTicket | None:
        """The newest ticket `route` opened for the subject that still covers an open insight
        (the one it was opened for, or one an update added), with its id if known."""
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
