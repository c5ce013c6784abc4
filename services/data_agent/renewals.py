"""The weekly renewal review's subjects: every account with an active agreement that ends
within the renewal horizon (docs/domain.md §4, renewal phases), in one set-based query."""

from __future__ import annotations

from datetime import date, timedelta

from services.data_agent.warehouse.base import Warehouse
from services.data_agent.warehouse.meta import meta_as_of, read_meta
from services.data_agent.warehouse.queries import Query

#: The renewal review looks this far ahead (the Near-term phase of docs/domain.md §4).
HORIZON_DAYS = 90

RENEWING_ACCOUNTS = Query(
    "renewing_accounts",
    "SELECT sf_account_id, MIN(end_date) AS end_date FROM agreement_f "
    "WHERE start_date <= CAST(:as_of AS DATE) AND end_date >= CAST(:as_of AS DATE) "
    "AND end_date <= CAST(:until AS DATE) GROUP BY sf_account_id ORDER BY sf_account_id",
)


def renewing_accounts(
    warehouse: Warehouse, as_of: date | None = None, horizon_days: int = HORIZON_DAYS
) -> list[str]:
    """Ids of the accounts whose agreement in force on `as_of` (default: the warehouse's
    last day) ends within `horizon_days`."""
    day = as_of or meta_as_of(read_meta(warehouse))
    params = {"as_of": day.isoformat(), "until": (day + timedelta(days=horizon_days)).isoformat()}
    return [str(row["sf_account_id"]) for row in warehouse.fetch_all(RENEWING_ACCOUNTS, params)]
