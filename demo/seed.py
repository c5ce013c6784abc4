"""`seed_warehouse`: build a deterministic demo warehouse and its ground-truth file.

Same (accounts, days, seed, as_of, holidays) -> identical tables. Accounts are generated in
fixed-size chunks, each with its own random stream, so memory stays flat at any fleet size:
usage is a numpy matrix per chunk appended to DuckDB through arrow. The ground truth is
streamed to `<path>.ground_truth.json` next to the warehouse; both files are written under
temporary names and renamed at the end, so a failed run never leaves a half warehouse.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from demo.crm import (
    COMPETITOR_SHARES,
    MEDDPICC_SHARES,
    STAGE_SHARES,
    WON_SHARE_OF_CLOSED,
    AccountPlan,
    CrmGenerator,
    DealPlan,
    employee_rows,
)
from demo.fastrandom import FastRandom
from demo.quotas import quota_labels
from demo.usage import (
    PATTERNS,
    WEEKEND_FACTOR,
    generate_usage,
    product_holidays,
)
from services.data_agent.warehouse.schema import TABLES, create_all_ddl

GENERATOR_VERSION = "1.0"
CHUNK_ACCOUNTS = 2_000  # part of the determinism contract: do not change per run
CLASS_SHARES = {"commit": 0.30, "plg": 0.40, "prospect": 0.30}
OPPS_PER_ACCOUNT_SHARES = {1: 0.20, 2: 0.35, 3: 0.30, 4: 0.15}  # mean 2.4
NO_CONTACTS_SHARE = 0.08
TICKET_BURST_SHARE = 0.10
NEAR_RENEWAL_SHARE_OF_COMMIT = 0.30
NO_CALLS_SHARE = 0.12
SLIPPED_SHARE = 0.20
REGRESSION_SHARE_OF_ADVANCED = 0.12
OPEN_DEAL_SHARES = {  # each an independent quota over open deals
    "stale_close_date": 0.20,
    "owner_missing": 0.05,
    "amount_missing": 0.05,
    "probability_mismatch": 0.10,
}


def ground_truth_path(path: Path) -> Path:
    return path.with_name(path.name + ".ground_truth.json")


@dataclass(frozen=True)
class GroundTruth:
    """Summary of what was injected; `load()` reads the per-account/opportunity detail."""

    path: Path
    params: dict[str, Any]
    summary: dict[str, Any]

    def load(self) -> dict[str, Any]:
        return load_ground_truth(self.path)


def load_ground_truth(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def _flags(rng: np.random.Generator, share: float, n: int) -> np.ndarray:
    return quota_labels(rng, {"y": share, "n": 1 - share}, n) == "y"


@dataclass
class _Plan:
    accounts: list[AccountPlan]
    deals_by_account: list[list[DealPlan]]


def _plan(seed: int, n_accounts: int) -> _Plan:
    """Assign every injected case by quota (exact proportions, random placement)."""
    rng = np.random.default_rng([seed, 0])
    classes = quota_labels(rng, CLASS_SHARES, n_accounts)
    patterns = quota_labels(rng, PATTERNS, n_accounts)
    has_contacts = ~_flags(rng, NO_CONTACTS_SHARE, n_accounts)
    burst = _flags(rng, TICKET_BURST_SHARE, n_accounts)
    near_renewal = np.zeros(n_accounts, dtype=bool)
    commit_idx = np.flatnonzero(classes == "commit")
    near_renewal[commit_idx] = _flags(rng, NEAR_RENEWAL_SHARE_OF_COMMIT, len(commit_idx))
    n_opps = quota_labels(
        rng, {str(k): v for k, v in OPPS_PER_ACCOUNT_SHARES.items()}, n_accounts
    ).astype(int)

    total = int(n_opps.sum())
    stage = quota_labels(rng, STAGE_SHARES, total)
    meddpicc = quota_labels(rng, MEDDPICC_SHARES, total)
    competitor = quota_labels(rng, COMPETITOR_SHARES, total)
    no_calls = _flags(rng, NO_CALLS_SHARE, total)
    slipped = _flags(rng, SLIPPED_SHARE, total)
    open_idx = np.flatnonzero(stage != "Closed")
    open_flags = {}
    for name, share in OPEN_DEAL_SHARES.items():
        arr = np.zeros(total, dtype=bool)
        arr[open_idx] = _flags(rng, share, len(open_idx))
        open_flags[name] = arr
    advanced = np.flatnonzero(np.isin(stage, ["Propose", "Negotiate", "Signature", "Closed"]))
    regression = np.zeros(total, dtype=bool)
    regression[advanced] = _flags(rng, REGRESSION_SHARE_OF_ADVANCED, len(advanced))

    # Deal quality drives winning: complete MEDDPICC, customer calls and no competitor help.
    med_value = np.select([meddpicc == "complete", meddpicc == "partial"], [1.0, 0.5], 0.0)
    score = (
        med_value + 0.5 * (~no_calls) - 0.35 * (competitor != "none") + rng.normal(0.0, 0.35, total)
    )
    quality = np.clip((score + 0.6) / 2.4, 0.0, 1.0)
    closed_idx = np.flatnonzero(stage == "Closed")
    n_won = round(len(closed_idx) * WON_SHARE_OF_CLOSED)
    ranked = closed_idx[np.argsort(-score[closed_idx], kind="stable")]
    final_stage = stage.copy()
    final_stage[ranked[:n_won]] = "Closed Won"
    final_stage[ranked[n_won:]] = "Closed Lost"

    accounts, deals_by_account = [], []
    d = 0
    for i in range(n_accounts):
        accounts.append(
            AccountPlan(
                index=i,
                account_id=f"001{i:012d}",
                customer_class=str(classes[i]),
                pattern=str(patterns[i]),
                has_contacts=bool(has_contacts[i]),
                ticket_burst=bool(burst[i]),
                near_renewal=bool(near_renewal[i]),
            )
        )
        deals = []
        for _ in range(int(n_opps[i])):
            deals.append(
                DealPlan(
                    index=d,
                    opportunity_id=f"006{d:012d}",
                    stage=str(final_stage[d]),
                    meddpicc=str(meddpicc[d]),
                    competitor_mode=str(competitor[d]),
                    no_customer_calls=bool(no_calls[d]),
                    stale_close_date=bool(open_flags["stale_close_date"][d]),
                    slipped_close_date=bool(slipped[d]),
                    regression=bool(regression[d]),
                    owner_missing=bool(open_flags["owner_missing"][d]),
                    amount_missing=bool(open_flags["amount_missing"][d]),
                    probability_mismatch=bool(open_flags["probability_mismatch"][d]),
                    quality=float(quality[d]),
                )
            )
            d += 1
        deals_by_account.append(deals)
    return _Plan(accounts, deals_by_account)


def _billing(
    account_ids: Sequence[str],
    indices: Sequence[int],
    classes: Sequence[str],
    cost: np.ndarray,
    as_of: date,
    days: int,
) -> pa.Table:
    """Monthly usage invoices (MRR events) for paying customers, from the usage matrix."""
    start = as_of - timedelta(days=days - 1)
    dates = np.arange(np.datetime64(start), np.datetime64(as_of) + 1, dtype="datetime64[D]")
    months = dates.astype("datetime64[M]")
    paying = np.array([c != "prospect" for c in classes])
    cols: dict[str, list[Any]] = {c: [] for c in TABLES["billing_event_f"].column_names}
    for month in np.unique(months):
        first = month.astype("datetime64[D]")
        last = (month + 1).astype("datetime64[D]") - 1
        if first < dates[0] or last > dates[-1]:
            continue  # only whole months inside the window
        amounts = cost[:, months == month].sum(axis=1)
        tag = str(month).replace("-", "")
        last_date = last.astype(object)
        for k in np.flatnonzero(paying).tolist():
            cols["billing_event_id"].append(f"BE{indices[k]:09d}{tag}")
            cols["sf_account_id"].append(account_ids[k])
            cols["event_date"].append(last_date)
            cols["amount_usd"].append(round(float(amounts[k]), 2))
            cols["event_type"].append("usage_invoice")
    return pa.Table.from_pydict(cols, schema=TABLES["billing_event_f"].arrow_schema())


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    if data.num_rows:
        con.register("_chunk", data)
        con.execute(f"INSERT INTO {TABLES[table].name} SELECT * FROM _chunk")
        con.unregister("_chunk")


def seed_warehouse(
    path: Path | str,
    accounts: int = 50,
    days: int = 365,
    seed: int = 7,
    as_of: date | None = None,
    holidays: Sequence[str] | None = None,
    on_accounts: Callable[[int], None] | None = None,
) -> GroundTruth:
    """Generate the warehouse at `path` (replacing it) and `<path>.ground_truth.json`.
    `holidays` (ISO dates) default to the decision agent's holiday rules' days over the
    generated days. `on_accounts(n)` is called after each chunk of `n` accounts is written
    (progress)."""
    if accounts < 1 or days < 120:
        raise ValueError("need at least 1 account and 120 days (the screens look back 90)")
    as_of = as_of or date.today()
    if holidays is None:
        holidays = product_holidays(as_of - timedelta(days=days - 1), as_of)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    truth_path = ground_truth_path(path)
    truth_tmp = truth_path.with_name(truth_path.name + ".tmp")
    for p in (tmp, truth_tmp):
        p.unlink(missing_ok=True)

    params = {
        "accounts": accounts,
        "days": days,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "holidays": list(holidays),
        "generator_version": GENERATOR_VERSION,
        "chunk_accounts": CHUNK_ACCOUNTS,
    }
    plan = _plan(seed, accounts)
    emp_rows, employees = employee_rows(FastRandom(seed, 3), max(12, accounts // 25))
    summary: Counter[str] = Counter()
    rows_written: Counter[str] = Counter()

    con = duckdb.connect(str(tmp))
    try:
        for ddl in create_all_ddl("duckdb"):
            con.execute(ddl)
        _insert(con, "employee_d", emp_rows.arrow("employee_d"))
        rows_written["employee_d"] += emp_rows.count("employee_d")
        with truth_tmp.open("wb") as out:
            out.write(b'{"params":' + orjson.dumps(params))
            acc_sep, acc_parts, opp_parts = b"", [], []
            for chunk_no, lo in enumerate(range(0, accounts, CHUNK_ACCOUNTS)):
                chunk = plan.accounts[lo : lo + CHUNK_ACCOUNTS]
                crm = CrmGenerator(FastRandom(seed, 1, chunk_no), as_of, days, employees)
                for acc in chunk:
                    crm.account(acc, plan.deals_by_account[acc.index])
                ids = [a.account_id for a in chunk]
                classes = [a.customer_class for a in chunk]
                usage = generate_usage(
                    np.random.default_rng([seed, 2, chunk_no]),
                    ids,
                    classes,
                    [a.pattern for a in chunk],
                    as_of,
                    days,
                    holidays,
                )
                for acc, info in zip(chunk, usage.pattern_info, strict=True):
                    crm.truth.accounts[acc.account_id].update(info)
                con.execute("BEGIN")
                for name in crm.rows.tables():
                    _insert(con, name, crm.rows.arrow(name))
                    rows_written[name] += crm.rows.count(name)
                _insert(con, "consumption_daily_f", usage.table)
                rows_written["consumption_daily_f"] += usage.table.num_rows
                billing = _billing(ids, [a.index for a in chunk], classes, usage.cost, as_of, days)
                _insert(con, "billing_event_f", billing)
                rows_written["billing_event_f"] += billing.num_rows
                con.execute("COMMIT")
                if on_accounts is not None:
                    on_accounts(len(chunk))
                _count(summary, crm.truth.accounts, crm.truth.opportunities)
                # Stream the detail out; keep only the encoded bytes of this chunk.
                acc_parts.append(orjson.dumps(crm.truth.accounts)[1:-1])
                opp_parts.append(orjson.dumps(crm.truth.opportunities)[1:-1])
                del crm, usage, billing
            out.write(b',"accounts":{' + b",".join(p for p in acc_parts if p) + b"}")
            del acc_parts
            out.write(b',"opportunities":{' + b",".join(p for p in opp_parts if p) + b"}")
            del opp_parts, acc_sep
            full_summary = _summary(summary, rows_written, accounts)
            out.write(b',"summary":' + orjson.dumps(full_summary) + b"}")
        meta = {
            "as_of": as_of.isoformat(),
            "seed": str(seed),
            "accounts": str(accounts),
            "days": str(days),
            "generator_version": GENERATOR_VERSION,
        }
        _insert(
            con,
            "warehouse_meta",
            pa.Table.from_pydict(
                {"key": list(meta), "value": list(meta.values())},
                schema=TABLES["warehouse_meta"].arrow_schema(),
            ),
        )
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        truth_tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, path)
    os.replace(truth_tmp, truth_path)
    return GroundTruth(truth_path, params, full_summary)


def _count(
    summary: Counter[str],
    accounts: dict[str, dict[str, Any]],
    opportunities: dict[str, dict[str, Any]],
) -> None:
    for a in accounts.values():
        summary[f"class.{a['customer_class']}"] += 1
        summary[f"pattern.{a['pattern']}"] += 1
        summary["accounts.no_contacts"] += a["contacts"] == 0
        summary["accounts.p1_p2_burst"] += a["p1_p2_burst_last_30d"] >= 3
        summary["accounts.near_renewal"] += bool(a["near_renewal"])
    for o in opportunities.values():
        summary[f"stage.{o['stage']}"] += 1
        summary[f"meddpicc.{o['meddpicc_class']}"] += 1
        summary["deals.competitor_in_field"] += o["competitor_in_field"]
        summary["deals.competitor_in_calls"] += o["competitor_mentioned_in_calls"]
        for flag in (
            "stale_close_date",
            "slipped_close_date",
            "stage_regression",
            "no_customer_calls",
            "owner_missing",
            "amount_missing",
            "probability_mismatch",
        ):
            summary[f"deals.{flag}"] += bool(o[flag])
        for kind in ("customer_calls", "internal_calls", "near_empty_calls", "deleted_calls"):
            summary[f"calls.{kind}"] += o[kind]


def _summary(counts: Counter[str], rows: Counter[str], accounts: int) -> dict[str, Any]:
    return {
        "counts": dict(sorted(counts.items())),
        "rows": dict(sorted(rows.items())),
        "accounts": accounts,
        "weekday_share_target": round(5 / (5 + 2 * WEEKEND_FACTOR), 4),
        "pattern_shares": PATTERNS,
        "class_shares": CLASS_SHARES,
        "stage_shares": STAGE_SHARES,
        "meddpicc_shares": MEDDPICC_SHARES,
        "competitor_shares": COMPETITOR_SHARES,
    }
