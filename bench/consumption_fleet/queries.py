"""The named warehouse queries that feed the fleet scan (`fleet_columns_from_warehouse`).

Written with the warehouse's `Query` type (bound `:name` parameters, dates computed in
Python), portable between DuckDB and Firebolt. The account set is the one
`DatasetRepository.account_dataset` accepts on `as_of` (created before the end of that day
or of unknown creation), numbered in `sf_account_id` order; usage rows carry that number
(`account_pos`) instead of the id string, so 18 million rows need no string matching in
Python. Usage values come as REAL (float32: what the analysis stores, see `inputs.py`).
"""

from __future__ import annotations

from services.data_agent.warehouse.queries import (
    Query,
    customer_call_predicate,  # one definition of "a customer call" (docs/domain.md §2)
)
from services.decision_agent.consumption.inputs import USAGE_METRICS

_ACCOUNTS = (
    "SELECT sf_account_id, sf_account_type_custom, created_at_ts FROM salesforce_account_d "
    "WHERE created_at_ts IS NULL OR created_at_ts < CAST(:before_ts AS TIMESTAMP)"
)
_OPEN_OPPORTUNITY = (
    "EXISTS (SELECT 1 FROM opportunity_d AS o WHERE o.sf_account_id = a.sf_account_id "
    "AND (o.created_at_ts IS NULL OR o.created_at_ts < CAST(:before_ts AS TIMESTAMP)) "
    "AND (o.stage_name NOT IN ('Closed Won', 'Closed Lost') "
    "OR o.closed_at_date > CAST(:as_of AS DATE)))"
)

# One row per account: class, creation, an open opportunity on as_of, first usage day in
# the data agent's usage window (what a per-account dataset's first usage row would be).
FLEET_ACCOUNTS = Query(
    "fleet_accounts",
    "SELECT a.sf_account_id, a.sf_account_type_custom, a.created_at_ts, "
    f"{_OPEN_OPPORTUNITY} AS has_opportunity, f.first_usage_date "
    f"FROM ({_ACCOUNTS}) AS a LEFT JOIN ("
    "SELECT sf_account_id, MIN(usage_date) AS first_usage_date FROM consumption_daily_f "
    "WHERE usage_date > CAST(:usage_after AS DATE) AND usage_date <= CAST(:as_of AS DATE) "
    "GROUP BY sf_account_id) AS f ON f.sf_account_id = a.sf_account_id "
    "ORDER BY a.sf_account_id",
)

# Usage of the analysis window, ordered by (account, day): the dense fast path of
# `usage_matrix` applies as-is.
FLEET_USAGE = Query(
    "fleet_usage",
    "SELECT a.account_pos, u.usage_date, "
    + ", ".join(f"CAST(u.{m} AS REAL) AS {m}" for m in USAGE_METRICS)
    + " FROM consumption_daily_f AS u JOIN ("
    "SELECT sf_account_id, CAST(ROW_NUMBER() OVER (ORDER BY sf_account_id) - 1 AS INTEGER) "
    "AS account_pos "
    f"FROM ({_ACCOUNTS}) AS x) AS a ON a.sf_account_id = u.sf_account_id "
    "WHERE u.usage_date > CAST(:window_after AS DATE) AND u.usage_date <= CAST(:as_of AS DATE) "
    "ORDER BY a.account_pos, u.usage_date",
)

FLEET_TICKETS = Query(
    "fleet_tickets",
    "SELECT sf_account_id, ticket_id, created_at_ts, priority FROM support_ticket_f "
    "WHERE created_at_ts >= CAST(:side_from_ts AS TIMESTAMP) "
    "AND created_at_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY sf_account_id, created_at_ts, ticket_id",
)

FLEET_AGREEMENTS = Query(
    "fleet_agreements",
    "SELECT sf_account_id, agreement_id, start_date, end_date, amount, term_months, is_active "
    "FROM agreement_f WHERE start_date <= CAST(:as_of AS DATE) "
    "ORDER BY sf_account_id, start_date, agreement_id",
)

FLEET_CUSTOMER_CALLS = Query(
    "fleet_customer_calls",
    "SELECT sf_account_id, call_id, start_ts FROM gong_call_f "
    "WHERE sf_account_id IS NOT NULL AND start_ts >= CAST(:side_from_ts AS TIMESTAMP) "
    f"AND start_ts < CAST(:before_ts AS TIMESTAMP) AND {customer_call_predicate()} "
    "ORDER BY sf_account_id, start_ts, call_id",
)

FLEET_QUERIES: dict[str, Query] = {
    q.name: q
    for q in (FLEET_ACCOUNTS, FLEET_USAGE, FLEET_TICKETS, FLEET_AGREEMENTS, FLEET_CUSTOMER_CALLS)
}
