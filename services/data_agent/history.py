"""A deal as it stood on a day: which values are known then, and which must be left out.

Today's record of a deal is its final state: a closed deal's amount, close date, MEDDPICC
notes or next step may have been filled in after (or because) it was won. Scoring a deal on
a past day (a backtest, `explain deal --as-of`) must not see them. So on a past day:

* stage, close date, amount and probability come from `opportunity_stage_f`, the row in
  force that day, when the table records that field at all (a column never filled has no
  history and the field is left out);
* the fields the data rules list as known at creation are kept (id, name, account, owner...);
* every other field is left out (None), and `left_out_fields` names them for reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.dataset import Opportunity
from services.data_agent.warehouse.base import Row
from services.data_agent.warehouse.rules import AsItStood

#: Opportunity field -> the opportunity_stage_f column that records its history.
HISTORY_COLUMNS = {
    "stage_name": "to_stage",
    "close_date": "close_date",
    "amount": "amount",
    "probability": "probability",
}
#: Known once the deal closed (and cleared when it closed after the day).
CLOSING_FIELDS = ("closed_at_date", "closed_won_lost_reason", "last_modified_date_ts")


class NoHistoryError(LookupError):
    """The deal has no stage history on or before the day: its stage then is unknown."""


@dataclass(frozen=True)
class HistoryCoverage:
    """Which opportunity fields opportunity_stage_f records (any non-empty value)."""

    fields: frozenset[str]

    @classmethod
    def from_counts(cls, counts: Row) -> HistoryCoverage:
        """`counts`: non-null counts per history column (`stage_rows` for the table)."""
        fields = {
            field
            for field, column in HISTORY_COLUMNS.items()
            if (counts.get("stage_rows") if field == "stage_name" else counts.get(column))
        }
        return cls(frozenset(fields))


def left_out_fields(coverage: HistoryCoverage, policy: AsItStood) -> list[str]:
    """Opportunity fields a past-day score cannot use: no history and not known at creation."""
    known = set(policy.opportunity_fields_known_at_creation) | coverage.fields
    return [f for f in Opportunity.model_fields if f not in known and f not in CLOSING_FIELDS]


def current_row(stage_rows: Sequence[Row]) -> Row | None:
    """The stage_f row in force (rows sorted by start, all started before the day's end)."""
    return stage_rows[-1] if stage_rows else None


def stage_since(stage_rows: Sequence[Row]) -> datetime | None:
    """When the deal entered its current stage: the first row of the last run of rows with
    the same stage (rows that only change amount or close date do not restart the clock)."""
    if not stage_rows:
        return None
    stage = stage_rows[-1]["to_stage"]
    since = stage_rows[-1]["started_at_ts"]
    for row in reversed(stage_rows):
        if row["to_stage"] != stage:
            break
        since = row["started_at_ts"]
    return since


def opportunity_on_past_day(
    raw: Row,
    stage_rows: Sequence[Row],
    coverage: HistoryCoverage,
    policy: AsItStood,
    before_ts: datetime,
) -> dict[str, Any]:
    """The opportunity row as known on the day that ends at `before_ts` (see module doc)."""
    current = current_row(stage_rows)
    if current is None:
        raise NoHistoryError(
            f"opportunity {raw['opportunity_id']!r} has no stage history on or before "
            f"{(before_ts.date()).isoformat()}: its stage on that day is unknown"
        )
    known = set(policy.opportunity_fields_known_at_creation)
    row: dict[str, Any] = {k: (v if k in known else None) for k, v in raw.items()}
    row["opportunity_id"] = raw["opportunity_id"]
    row["name"] = raw["name"]
    for field, column in HISTORY_COLUMNS.items():
        if field in coverage.fields:
            row[field] = current.get(column)
    closed_at = raw.get("closed_at_date")
    if closed_at is not None and closed_at < before_ts.date():
        row["closed_at_date"] = closed_at
        row["closed_won_lost_reason"] = raw.get("closed_won_lost_reason")
    row["last_modified_date_ts"] = current["started_at_ts"]
    return row


def account_on_past_day(raw: Row, policy: AsItStood) -> dict[str, Any]:
    known = set(policy.account_fields_known_before)
    return {k: (v if k in known else None) for k, v in raw.items()}
