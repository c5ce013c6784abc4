"""Every warehouse query, written once, portable between DuckDB and Firebolt.

Values are always bound parameters: a query is written with `:name` placeholders and
`Query.bind` turns it into the `?` (qmark) style both drivers accept, with the values in
order. Identifiers (tables, columns) come only from the schema registry, never from input.
Date windows are computed in Python and bound, so no engine-specific date arithmetic is
needed; the only date function used, DATE_DIFF('day', a, b), exists in both engines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from services.data_agent.warehouse.rules import load_rules
from services.data_agent.warehouse.schema import table

if TYPE_CHECKING:
    from services.common.stages import StageRules

    # Built on first use from the configured stage model (see __getattr__ below).
    LIST_OPEN_OPPORTUNITIES: Query
    ALL_QUERIES: dict[str, Query]

_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class QueryParameterError(ValueError):
    """A query was run without one of its parameters."""


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    # Values bound unless the caller gives them: e.g. the stage model's closed stage names,
    # so `LIST_OPEN_OPPORTUNITIES` runs with just a limit.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    param_names: tuple[str, ...] = field(init=False)
    qmark_sql: str = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(_PLACEHOLDER.findall(self.sql))
        object.__setattr__(self, "param_names", names)
        object.__setattr__(self, "qmark_sql", _PLACEHOLDER.sub("?", self.sql))

    def bind(self, params: Mapping[str, Any] | None = None) -> tuple[str, tuple[Any, ...]]:
        """qmark style (`?`, one value per occurrence): DuckDB."""
        params = self._check(params)
        return self.qmark_sql, tuple(params[n] for n in self.param_names)

    def bind_numeric(self, params: Mapping[str, Any] | None = None) -> tuple[str, list[Any]]:
        """Numbered style (`$1`, one value per distinct name): Firebolt's server-side
        parameters (`fb_numeric`)."""
        params = self._check(params)
        order = list(dict.fromkeys(self.param_names))
        numbers = {name: i + 1 for i, name in enumerate(order)}
        sql = _PLACEHOLDER.sub(lambda m: f"${numbers[m.group(1)]}", self.sql)
        return sql, [params[n] for n in order]

    def _check(self, params: Mapping[str, Any] | None) -> Mapping[str, Any]:
        params = {**self.defaults, **params} if params else self.defaults
        missing = sorted(set(self.param_names) - set(params))
        if missing:
            raise QueryParameterError(f"query {self.name} needs parameters {missing}")
        return params


def _cols(table_name: str, alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in table(table_name).column_names)


def customer_call_predicate() -> str:
    """SQL for 'a customer call': not deleted, no internal-meeting keyword in the title, not
    near-empty (rules.yaml). Keywords are bound as parameters kw0..kwN. For scans over every
    account; a subject's reads fetch its calls (`CALLS_BY_*`) and keep the customer ones
    with `DataRules.customer_calls`, the same test in Python."""
    rules = load_rules()
    empty = rules.near_empty_call
    no_keyword = " AND ".join(
        f"LOWER(title) NOT LIKE :kw{i}" for i in range(len(rules.internal_call_title_keywords))
    )
    return (
        "is_deleted = FALSE"
        f" AND {no_keyword}"
        f" AND NOT (LENGTH(COALESCE(brief, '')) <= {empty.max_brief_chars}"
        f" AND LENGTH(COALESCE(key_points, '')) <= {empty.max_key_points_chars}"
        f" AND LENGTH(COALESCE(next_steps, '')) <= {empty.max_next_steps_chars})"
    )


def customer_call_params() -> dict[str, str]:
    """The bound values of the internal-keyword placeholders of the call queries."""
    words = load_rules().internal_call_title_keywords
    return {f"kw{i}": f"%{w.lower()}%" for i, w in enumerate(words)}


def in_list(column: str, prefix: str, values: Sequence[str]) -> tuple[str, dict[str, str]]:
    """`column IN (:prefix_0, :prefix_1, ...)` and its values (portable, always bound).
    An empty list matches nothing."""
    if not values:
        return "FALSE", {}
    names = [f"{prefix}_{i}" for i in range(len(values))]
    sql = f"{column} IN ({', '.join(':' + n for n in names)})"
    return sql, dict(zip(names, values, strict=True))


def open_stage_predicate(
    stages: StageRules, column: str = "stage_name"
) -> tuple[str, dict[str, str]]:
    """SQL true for a deal in an open stage of the stage model (unknown names count as open,
    as in `StageRules.is_open`), and the bound closed-stage names."""
    closed, params = in_list(column, "closed_stage", stages.closed_names)
    return f"NOT ({closed})", params


#: Where a set query's subject predicate goes (see `SetQuery`).
IDS = "{ids}"


@dataclass(frozen=True)
class SetQuery:
    """A query over many subjects at once, the set-based twin of a per-subject query.

    `IDS` in the text becomes `column IN (:id_0, :id_1, ...)`, one bound parameter per
    subject (the caller chunks the ids under the engine's limit), and `key` is the result
    column that names the subject of each row, so the rows can be split per subject. Rows
    come ordered by `key` first, then as the per-subject query orders them.
    """

    name: str
    sql: str
    column: str
    key: str = ""  # default: `column`
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.key or self.column)

    def for_ids(self, ids: Sequence[str]) -> tuple[Query, dict[str, str]]:
        """The query for `ids` and the ids' bound values."""
        predicate, params = in_list(self.column, "id", ids)
        return Query(self.name, self.sql.replace(IDS, predicate), self.defaults), params


META = Query("meta", "SELECT key, value FROM warehouse_meta ORDER BY key")

ACCOUNT_BY_ID = Query(
    "account_by_id",
    f"SELECT {_cols('salesforce_account_d')} FROM salesforce_account_d "
    "WHERE sf_account_id = :account_id",
)
OPPORTUNITY_BY_ID = Query(
    "opportunity_by_id",
    f"SELECT {_cols('opportunity_d')} FROM opportunity_d WHERE opportunity_id = :opportunity_id",
)
EMPLOYEE_BY_ID = Query(
    "employee_by_id",
    f"SELECT {_cols('employee_d')} FROM employee_d WHERE sf_user_id = :user_id",
)
CONTACTS_BY_ACCOUNT = Query(
    "contacts_by_account",
    f"SELECT {_cols('contact_d')} FROM contact_d WHERE sf_account_id = :account_id "
    "ORDER BY contact_id",
)
STAGE_HISTORY_BY_OPPORTUNITY = Query(
    "stage_history_by_opportunity",
    f"SELECT {_cols('opportunity_stage_f')} FROM opportunity_stage_f "
    "WHERE opportunity_id = :opportunity_id AND started_at_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY started_at_ts",
)
_CALL_COLS = _cols("gong_call_f")
# A subject's calls, all of them: the reads keep the customer ones (DataRules.customer_calls).
CALLS_BY_OPPORTUNITY = Query(
    "calls_by_opportunity",
    f"SELECT {_CALL_COLS} FROM gong_call_f "
    "WHERE opportunity_id = :opportunity_id AND start_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY start_ts, call_id",
)
CALLS_BY_ACCOUNT = Query(
    "calls_by_account",
    f"SELECT {_CALL_COLS} FROM gong_call_f "
    "WHERE sf_account_id = :account_id AND start_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY start_ts, call_id",
)
USAGE_BY_ACCOUNT = Query(
    "usage_by_account",
    f"SELECT {_cols('consumption_daily_f')} FROM consumption_daily_f "
    "WHERE sf_account_id = :account_id AND usage_date > CAST(:after_date AS DATE) "
    "AND usage_date <= CAST(:as_of AS DATE) ORDER BY usage_date",
)
TICKETS_BY_ACCOUNT = Query(
    "tickets_by_account",
    f"SELECT {_cols('support_ticket_f')} FROM support_ticket_f "
    "WHERE sf_account_id = :account_id AND created_at_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY created_at_ts, ticket_id",
)
AGREEMENTS_BY_ACCOUNT = Query(
    "agreements_by_account",
    f"SELECT {_cols('agreement_f')} FROM agreement_f "
    "WHERE sf_account_id = :account_id AND start_date <= CAST(:as_of AS DATE) "
    "ORDER BY start_date, agreement_id",
)
BILLING_BY_ACCOUNT = Query(
    "billing_by_account",
    "SELECT event_date, amount_usd FROM billing_event_f "
    "WHERE sf_account_id = :account_id AND event_date <= CAST(:as_of AS DATE) "
    "ORDER BY event_date, billing_event_id",
)
LIST_ACCOUNTS = Query(
    "list_accounts",
    "SELECT sf_account_id, sf_account_name, sf_account_type_custom, sf_industry, "
    "employee_count, account_region FROM salesforce_account_d "
    "ORDER BY sf_account_id LIMIT :limit",
)
_LIST_OPP_COLS = (
    "opportunity_id, name, sf_account_id, stage_name, amount, close_date, probability, owner_id"
)
LIST_OPPORTUNITIES = Query(
    "list_opportunities",
    f"SELECT {_LIST_OPP_COLS} FROM opportunity_d ORDER BY opportunity_id LIMIT :limit",
)
HISTORY_COVERAGE = Query(
    "history_coverage",
    "SELECT COUNT(*) AS stage_rows, COUNT(close_date) AS close_date, COUNT(amount) AS amount, "
    "COUNT(probability) AS probability FROM opportunity_stage_f",
)
PRODUCT_BY_ID = Query(
    "product_by_id",
    f"SELECT {_cols('product_d')} FROM product_d WHERE product_id = :product_id",
)


# -- Set-based twins of the per-subject queries above, for a batch of subjects (one query
# per table instead of one per table and subject; services/data_agent/reads.py).
ACCOUNTS_BY_IDS = SetQuery(
    "accounts_by_ids",
    f"SELECT {_cols('salesforce_account_d')} FROM salesforce_account_d WHERE {IDS}",
    "sf_account_id",
)
OPPORTUNITIES_BY_IDS = SetQuery(
    "opportunities_by_ids",
    f"SELECT {_cols('opportunity_d')} FROM opportunity_d WHERE {IDS}",
    "opportunity_id",
)
EMPLOYEES_BY_IDS = SetQuery(
    "employees_by_ids",
    f"SELECT {_cols('employee_d')} FROM employee_d WHERE {IDS}",
    "sf_user_id",
)
PRODUCTS_BY_IDS = SetQuery(
    "products_by_ids",
    f"SELECT {_cols('product_d')} FROM product_d WHERE {IDS}",
    "product_id",
)
CONTACTS_BY_ACCOUNTS = SetQuery(
    "contacts_by_accounts",
    f"SELECT {_cols('contact_d')} FROM contact_d WHERE {IDS} ORDER BY sf_account_id, contact_id",
    "sf_account_id",
)
STAGE_HISTORY_BY_OPPORTUNITIES = SetQuery(
    "stage_history_by_opportunities",
    f"SELECT {_cols('opportunity_stage_f')} FROM opportunity_stage_f "
    f"WHERE {IDS} AND started_at_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY opportunity_id, started_at_ts",
    "opportunity_id",
)
CALLS_BY_OPPORTUNITIES = SetQuery(
    "calls_by_opportunities",
    f"SELECT {_CALL_COLS} FROM gong_call_f "
    f"WHERE {IDS} AND start_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY opportunity_id, start_ts, call_id",
    "opportunity_id",
)
CALLS_BY_ACCOUNTS = SetQuery(
    "calls_by_accounts",
    f"SELECT {_CALL_COLS} FROM gong_call_f "
    f"WHERE {IDS} AND start_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY sf_account_id, start_ts, call_id",
    "sf_account_id",
)
USAGE_BY_ACCOUNTS = SetQuery(
    "usage_by_accounts",
    f"SELECT {_cols('consumption_daily_f')} FROM consumption_daily_f "
    f"WHERE {IDS} AND usage_date > CAST(:after_date AS DATE) "
    "AND usage_date <= CAST(:as_of AS DATE) ORDER BY sf_account_id, usage_date",
    "sf_account_id",
)
TICKETS_BY_ACCOUNTS = SetQuery(
    "tickets_by_accounts",
    f"SELECT {_cols('support_ticket_f')} FROM support_ticket_f "
    f"WHERE {IDS} AND created_at_ts < CAST(:before_ts AS TIMESTAMP) "
    "ORDER BY sf_account_id, created_at_ts, ticket_id",
    "sf_account_id",
)
AGREEMENTS_BY_ACCOUNTS = SetQuery(
    "agreements_by_accounts",
    f"SELECT {_cols('agreement_f')} FROM agreement_f "
    f"WHERE {IDS} AND start_date <= CAST(:as_of AS DATE) "
    "ORDER BY sf_account_id, start_date, agreement_id",
    "sf_account_id",
)
BILLING_BY_ACCOUNTS = SetQuery(
    "billing_by_accounts",
    "SELECT sf_account_id, event_date, amount_usd FROM billing_event_f "
    f"WHERE {IDS} AND event_date <= CAST(:as_of AS DATE) "
    "ORDER BY sf_account_id, event_date, billing_event_id",
    "sf_account_id",
)
#: Every set query that does not depend on configuration, by name.
SET_QUERIES: dict[str, SetQuery] = {
    q.name: q
    for q in (
        ACCOUNTS_BY_IDS,
        OPPORTUNITIES_BY_IDS,
        EMPLOYEES_BY_IDS,
        PRODUCTS_BY_IDS,
        CONTACTS_BY_ACCOUNTS,
        STAGE_HISTORY_BY_OPPORTUNITIES,
        CALLS_BY_OPPORTUNITIES,
        CALLS_BY_ACCOUNTS,
        USAGE_BY_ACCOUNTS,
        TICKETS_BY_ACCOUNTS,
        AGREEMENTS_BY_ACCOUNTS,
        BILLING_BY_ACCOUNTS,
    )
}


def list_open_opportunities(stages: StageRules) -> Query:
    """Open deals of the stage model, id first (runs with just `limit`)."""
    return _list_open(tuple(stages.closed_names))


@lru_cache(maxsize=8)
def _list_open(closed_stages: tuple[str, ...]) -> Query:
    closed, params = in_list("stage_name", "closed_stage", closed_stages)
    return Query(
        "list_open_opportunities",
        f"SELECT {_LIST_OPP_COLS} FROM opportunity_d WHERE NOT ({closed}) "
        "ORDER BY opportunity_id LIMIT :limit",
        defaults=params,
    )


def closed_deals(stages: StageRules) -> Query:
    """Every deal in a won or lost stage: what a backtest scores."""
    return _closed(tuple(stages.closed_names))


@lru_cache(maxsize=8)
def _closed(closed_stages: tuple[str, ...]) -> Query:
    closed, params = in_list("stage_name", "closed_stage", closed_stages)
    return Query(
        "closed_deals",
        "SELECT opportunity_id, stage_name, closed_at_date, created_at_ts, owner_id "
        f"FROM opportunity_d WHERE {closed} ORDER BY closed_at_date, opportunity_id",
        defaults=params,
    )


def won_time_in_stage(stages: StageRules) -> Query:
    """How long deals won before `as_of` spent in `stage`: the median and the number of
    deals, over all of them and over those of the deal's segment (same values of the stage
    model's `stale_in_stage.segment_by` columns, bound as `seg_<column>`)."""
    return _won_time(tuple(stages.names("won")), tuple(stages.stale_in_stage.segment_by))


@lru_cache(maxsize=8)
def _won_time(won_stages: tuple[str, ...], segment_by: tuple[str, ...]) -> Query:
    is_won, params = in_list("o.stage_name", "won_stage", won_stages)
    segment = " AND ".join(f"o.{c} IS NOT DISTINCT FROM :seg_{c}" for c in segment_by)
    return Query(
        "won_time_in_stage",
        f"""
WITH spent AS (
  SELECT s.opportunity_id, SUM(s.days_in_stage) AS days,
    MAX(CASE WHEN {segment or "TRUE"} THEN 1 ELSE 0 END) AS in_segment
  FROM opportunity_stage_f AS s JOIN opportunity_d AS o ON o.opportunity_id = s.opportunity_id
  WHERE {is_won} AND o.closed_at_date < CAST(:as_of AS DATE)
    AND s.to_stage = :stage AND s.days_in_stage IS NOT NULL
    AND s.ended_at_ts < CAST(:before_ts AS TIMESTAMP)
  GROUP BY s.opportunity_id
)
SELECT COUNT(*) AS won_deals, MEDIAN(days) AS median_days,
  COALESCE(SUM(in_segment), 0) AS segment_won_deals,
  MEDIAN(CASE WHEN in_segment = 1 THEN days ELSE NULL END) AS segment_median_days
FROM spent
""",
        defaults=params,
    )


def won_time_by_stage(stages: StageRules) -> tuple[SetQuery, SetQuery]:
    """`won_time_in_stage` for many stages at once (the stages are the subjects): the count
    and median over all won deals per stage, and per stage and segment (`seg_<column>`
    columns; NULL is a segment value of its own, as `IS NOT DISTINCT FROM` matches it)."""
    return _won_time_sets(tuple(stages.names("won")), tuple(stages.stale_in_stage.segment_by))


@lru_cache(maxsize=8)
def _won_time_sets(
    won_stages: tuple[str, ...], segment_by: tuple[str, ...]
) -> tuple[SetQuery, SetQuery]:
    is_won, params = in_list("o.stage_name", "won_stage", won_stages)
    segment = "".join(f", o.{c} AS seg_{c}" for c in segment_by)
    grouped = "".join(f", o.{c}" for c in segment_by)
    spent = f"""
WITH spent AS (
  SELECT s.opportunity_id, s.to_stage AS stage{segment}, SUM(s.days_in_stage) AS days
  FROM opportunity_stage_f AS s JOIN opportunity_d AS o ON o.opportunity_id = s.opportunity_id
  WHERE {is_won} AND o.closed_at_date < CAST(:as_of AS DATE)
    AND {IDS} AND s.days_in_stage IS NOT NULL
    AND s.ended_at_ts < CAST(:before_ts AS TIMESTAMP)
  GROUP BY s.opportunity_id, s.to_stage{grouped}
)
"""
    stats = "COUNT(*) AS won_deals, MEDIAN(days) AS median_days"
    columns = "".join(f", seg_{c}" for c in segment_by)
    return (
        SetQuery(
            "won_time_by_stage",
            f"{spent}SELECT stage, {stats} FROM spent GROUP BY stage ORDER BY stage",
            "s.to_stage",
            "stage",
            defaults=params,
        ),
        SetQuery(
            "won_time_by_segment",
            f"{spent}SELECT stage{columns}, {stats} FROM spent "
            f"GROUP BY stage{columns} ORDER BY stage",
            "s.to_stage",
            "stage",
            defaults=params,
        ),
    )


def __getattr__(name: str) -> Query | dict[str, Query]:
    """`LIST_OPEN_OPPORTUNITIES` and `ALL_QUERIES` depend on the configured stage model
    (rules folder), so they are built on first use, not when this module is imported."""
    if name == "LIST_OPEN_OPPORTUNITIES":
        return list_open_opportunities(_configured_stages())
    if name == "ALL_QUERIES":
        stages = _configured_stages()
        return {
            **FIXED_QUERIES,
            **{
                q.name: q
                for q in (
                    list_open_opportunities(stages),
                    won_time_in_stage(stages),
                    closed_deals(stages),
                )
            },
        }
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _configured_stages() -> StageRules:
    from services.common.stages import load_stage_model

    return load_stage_model()


# One set-based pass over consumption_daily_f: per-account window sums, then flags.
# Every bound value appears once, in the parameter row `p` (dates computed in Python):
#   trend_start < usage_date <= as_of        the last `trend_days` days (the scan window)
#   usage_date > recent_start                the last `recent_days` days
#   usage_date <= recent_start               the older part of the window (baseline)
#   usage_date > spike_start                 the last `spike_recent_days` days
#   spike_base_start < usage_date <= spike_start   the days before those (spike baseline)
FLEET_SCREEN = Query(
    "fleet_screen",
    """
WITH p AS (
  SELECT
    CAST(:as_of AS DATE) AS as_of,
    CAST(:trend_start AS DATE) AS trend_start,
    CAST(:recent_start AS DATE) AS recent_start,
    CAST(:spike_start AS DATE) AS spike_start,
    CAST(:spike_base_start AS DATE) AS spike_base_start
),
w AS (
  SELECT
    u.sf_account_id,
    SUM(CASE WHEN u.usage_date > p.recent_start THEN u.query_count ELSE 0 END) AS q_recent,
    SUM(u.query_count) AS q_trend,
    SUM(CASE WHEN u.usage_date <= p.recent_start THEN u.query_count ELSE 0 END) AS q_base,
    SUM(CASE WHEN u.usage_date > p.recent_start THEN u.cost_usd ELSE 0 END) AS c_recent,
    SUM(CASE WHEN u.usage_date <= p.recent_start THEN u.cost_usd ELSE 0 END) AS c_base,
    MAX(CASE WHEN u.usage_date > p.spike_start THEN u.query_count ELSE 0 END) AS q_spike_max,
    SUM(CASE WHEN u.usage_date > p.spike_base_start AND u.usage_date <= p.spike_start
        THEN u.query_count ELSE 0 END) AS q_spike_base,
    MAX(CASE WHEN u.query_count > 0 THEN u.usage_date ELSE NULL END) AS last_active_date,
    MAX(p.trend_start) AS trend_start,
    MAX(p.as_of) AS as_of
  FROM consumption_daily_f AS u CROSS JOIN p
  WHERE u.usage_date > p.trend_start AND u.usage_date <= p.as_of
  GROUP BY u.sf_account_id
),
m AS (
  SELECT
    sf_account_id, q_recent, q_trend, c_recent, c_base, last_active_date,
    CASE WHEN q_trend > 0 THEN 3.0 * q_recent / q_trend ELSE NULL END AS trend_ratio,
    DATE_DIFF('day', COALESCE(last_active_date, trend_start), as_of) AS idle_days,
    CASE WHEN q_spike_base > 0
      THEN q_spike_max / (q_spike_base / :spike_baseline_days) ELSE NULL END AS spike_ratio,
    CASE WHEN c_base > 0
      THEN (c_recent / :recent_days) / (c_base / :base_days) ELSE NULL END AS cost_growth,
    CASE WHEN q_base > 0
      THEN (q_recent / :recent_days) / (q_base / :base_days) ELSE NULL END AS usage_growth
  FROM w
),
f AS (
  SELECT m.*,
    idle_days >= :inactive_idle_days AS is_inactive,
    q_recent = 0 AS is_complete_stop,
    idle_days < :inactive_idle_days AND trend_ratio < :major_decline_below
      AS is_major_decline,
    idle_days < :inactive_idle_days AND trend_ratio >= :major_decline_below
      AND trend_ratio < :declining_below AS is_declining,
    idle_days < :inactive_idle_days AND trend_ratio > :growing_above AS is_growing,
    COALESCE(spike_ratio > :spike_above, FALSE) AS is_spike,
    COALESCE(cost_growth >= :cost_growth_at_least
      AND COALESCE(usage_growth, 0) < :growing_above, FALSE) AS is_cost_anomaly
  FROM m
)
SELECT sf_account_id, trend_ratio, idle_days, spike_ratio, cost_growth, usage_growth,
  q_recent, q_trend, c_recent, last_active_date,
  is_inactive, is_complete_stop, is_major_decline, is_declining, is_growing, is_spike,
  is_cost_anomaly
FROM f
WHERE is_inactive OR is_complete_stop OR is_major_decline OR is_declining OR is_growing
  OR is_spike OR is_cost_anomaly
ORDER BY sf_account_id
""",
)

#: Queries that do not depend on configuration (`ALL_QUERIES` adds the stage-model ones).
FIXED_QUERIES: dict[str, Query] = {
    q.name: q
    for q in (
        META,
        ACCOUNT_BY_ID,
        OPPORTUNITY_BY_ID,
        PRODUCT_BY_ID,
        HISTORY_COVERAGE,
        EMPLOYEE_BY_ID,
        CONTACTS_BY_ACCOUNT,
        STAGE_HISTORY_BY_OPPORTUNITY,
        CALLS_BY_OPPORTUNITY,
        CALLS_BY_ACCOUNT,
        USAGE_BY_ACCOUNT,
        TICKETS_BY_ACCOUNT,
        AGREEMENTS_BY_ACCOUNT,
        BILLING_BY_ACCOUNT,
        LIST_ACCOUNTS,
        LIST_OPPORTUNITIES,
        FLEET_SCREEN,
    )
}
