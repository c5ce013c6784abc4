"""The directory: people, accounts and deals copied from the warehouse into the console's store.

Insights name their subject by id only; who owns it (the deal's owner, else the account's)
and which team follows it up (routing.yaml `teams`: deals -> the deal-quality team, accounts
-> the consumption team) come from here, so the inbox filters by owner and team with a join
and the overview aggregates in SQL. Refreshed at start and on a timer; one transaction per
refresh, so a page never sees half a directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog

from contracts.common import AnalysisType
from services.common.stores.database import Database
from services.data_agent.warehouse import Warehouse
from services.data_agent.warehouse.queries import Query
from services.execution_agent.insights import subject_key
from services.execution_agent.routing import RoutingRules

log = structlog.get_logger("console.directory")

CLOSED_STAGES = ("Closed Won", "Closed Lost")

PEOPLE = Query("console_people", "SELECT sf_user_id, name, email, title FROM employee_d")
ACCOUNTS = Query(
    "console_accounts",
    "SELECT sf_account_id, sf_account_name, sf_account_type_custom, sf_owner_id, sf_industry, "
    "account_region FROM salesforce_account_d",
)
DEALS = Query(
    "console_deals",
    "SELECT opportunity_id, sf_account_id, name, stage_name, amount, close_date, owner_id "
    "FROM opportunity_d",
)

CHUNK_ROWS = 20_000

# The directory's tables, key column first (migrations/*/0001_initial.sql).
PEOPLE_COLUMNS = ("owner_id", "name", "email", "title")
ACCOUNT_COLUMNS = ("account_id", "name", "customer_class", "owner_id", "industry", "region")
DEAL_COLUMNS = (
    "opportunity_id",
    "account_id",
    "name",
    "stage",
    "amount",
    "close_date",
    "owner_id",
    "is_open",
)
SUBJECT_COLUMNS = ("subject_key", "account_id", "opportunity_id", "name", "owner_id", "team")


def customer_class(account_type: str | None) -> str:
    """docs/domain.md §2: 'Commit Customer' | 'PLG Customer' | anything else = prospect."""
    text = (account_type or "").lower()
    return "commit" if "commit" in text else "plg" if "plg" in text else "prospect"


class Directory:
    def __init__(self, store: Database, routing: RoutingRules) -> None:
        self._store = store
        deal_team = routing.team_for(AnalysisType.DEAL_QUALITY)
        account_team = routing.team_for(AnalysisType.CONSUMPTION)
        self.deal_team = deal_team.team if deal_team else "sales"
        self.account_team = account_team.team if account_team else "customer_success"
        self._owners: list[tuple[str, str]] | None = None  # until the next refresh

    def refresh(self, warehouse: Warehouse) -> dict[str, int]:
        """Replace the directory with the warehouse's current rows; returns row counts."""
        counts = {"people": 0, "accounts": 0, "deals": 0}
        with self._store.transaction() as conn:
            for table in ("console_people", "console_accounts", "console_deals"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("DELETE FROM console_subjects")
            for rows in _chunks(warehouse, PEOPLE):
                conn.executemany(
                    _insert_replacing("console_people", PEOPLE_COLUMNS),
                    [(r["sf_user_id"], r["name"], r["email"], r["title"]) for r in rows],
                )
                counts["people"] += len(rows)
            for rows in _chunks(warehouse, ACCOUNTS):
                accounts = [
                    (
                        r["sf_account_id"],
                        r["sf_account_name"] or r["sf_account_id"],
                        customer_class(r["sf_account_type_custom"]),
                        r["sf_owner_id"],
                        r["sf_industry"],
                        r["account_region"],
                    )
                    for r in rows
                ]
                conn.executemany(_insert_replacing("console_accounts", ACCOUNT_COLUMNS), accounts)
                conn.executemany(
                    _insert_replacing("console_subjects", SUBJECT_COLUMNS),
                    [
                        (subject_key(a[0], None), a[0], None, a[1], a[3], self.account_team)
                        for a in accounts
                    ],
                )
                counts["accounts"] += len(rows)
            for rows in _chunks(warehouse, DEALS):
                deals = [
                    (
                        r["opportunity_id"],
                        r["sf_account_id"],
                        r["name"] or r["opportunity_id"],
                        r["stage_name"],
                        r["amount"],
                        None if r["close_date"] is None else str(r["close_date"]),
                        r["owner_id"],
                        int(r["stage_name"] not in CLOSED_STAGES),
                    )
                    for r in rows
                ]
                conn.executemany(_insert_replacing("console_deals", DEAL_COLUMNS), deals)
                conn.executemany(
                    _insert_replacing("console_subjects", SUBJECT_COLUMNS),
                    [
                        (subject_key(d[1], d[0]), d[1], d[0], d[2], d[6], self.deal_team)
                        for d in deals
                    ],
                )
                counts["deals"] += len(rows)
            # A deal without an owner (a CRM gap the data agent reports) is followed up by
            # its account's owner rather than by nobody: the inbox's owner filter finds it.
            conn.execute(
                "UPDATE console_subjects SET owner_id = (SELECT a.owner_id FROM console_accounts a "
                "WHERE a.account_id = console_subjects.account_id) "
                "WHERE owner_id IS NULL AND opportunity_id IS NOT NULL"
            )
        self._owners = None
        log.info("directory_refreshed", **counts)
        return counts

    def owners(self) -> list[tuple[str, str]]:
        """(owner id, name) of everyone who owns an account or a deal, by name (kept until
        the next refresh: every filter form lists them)."""
        if self._owners is not None:
            return self._owners
        with self._store.reader() as conn:
            rows = conn.execute(
                "SELECT p.owner_id, COALESCE(p.name, p.owner_id) AS name FROM console_people p "
                "WHERE p.owner_id IN (SELECT owner_id FROM console_subjects) ORDER BY 2"
            ).fetchall()
        self._owners = [(r["owner_id"], r["name"]) for r in rows]
        return self._owners

    def teams(self) -> list[str]:
        return sorted({self.deal_team, self.account_team})


def _insert_replacing(table: str, columns: tuple[str, ...]) -> str:
    """An INSERT of one row whose key (the first column) may already be there: the warehouse
    can repeat a key, and its last row wins."""
    key, *rest = columns
    updates = ", ".join(f"{c} = excluded.{c}" for c in rest)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _chunks(warehouse: Warehouse, query: Query) -> Iterator[list[dict[str, Any]]]:
    yield from warehouse.fetch_chunks(query, {}, chunk_rows=CHUNK_ROWS)
