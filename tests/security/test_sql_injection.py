"""Injection strings through every user-controlled field that reaches a query: the warehouse
(account id, opportunity id, as_of, CLI --limit, load file names, column names and values),
the execution agent's insight store (CLI filters --status --category --account --since), and
the DLQ tool's filters. Nothing executes: every table keeps its rows, and the error is a clean
refusal (a domain error or a CLI usage error), never a database error or a traceback."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from contracts import AnalysisType, RawTrigger
from contracts.analysis import Flag, FlagType, InsightCategory
from contracts.common import Severity, Subject
from contracts.trigger import TriggerParameters, TriggerType
from demo.seed import seed_warehouse
from services.cli.main import app
from services.common.errors import PermanentError
from services.common.records import Parsed, Record
from services.common.settings import Settings
from services.data_agent.app import DataAgent
from services.data_agent.datasets import DatasetRepository, UnknownSubjectError
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.loader import LoadOptions, LoadRefused, load_directory
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import Store

INJECTIONS = [
    "'",
    '"',
    "' OR '1'='1",
    "x' OR 1=1 --",
    "1 OR 1=1",
    "'; DROP TABLE salesforce_account_d; --",
    "'); DELETE FROM opportunity_d; --",
    '"; DROP TABLE revops_ai_insights; --',
    "' UNION SELECT sf_account_id, NULL FROM salesforce_account_d --",
    "acc-1'/*",
    "\u2019 OR \u20181\u2019=\u20181",  # unicode quotes
    "\uff2f' \uff2f\uff32 1=1 --",  # full-width letters
    "acc\x00'; DROP TABLE contact_d; --",  # NUL
    "%' OR '%'='",
    "\\'; DROP TABLE employee_d; --",
    "A" * 100_000 + "' OR 1=1 --",  # very long
]
runner = CliRunner()


def row_counts_duckdb(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        # the data tables (a load also writes its own bookkeeping: row sources, meta)
        bookkeeping = ("warehouse_row_source", "warehouse_meta")
        tables = [
            r[0]
            for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
            if r[0] not in bookkeeping
        ]
        return {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}  # type: ignore[index]
    finally:
        con.close()


def row_counts_sqlite(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqli-warehouse") / "demo.duckdb"
    seed_warehouse(path, accounts=8, days=120, seed=3)
    return path


@pytest.fixture
def repository(warehouse_path: Path) -> Iterator[DatasetRepository]:
    warehouse = DuckDBWarehouse(warehouse_path)
    try:
        yield DatasetRepository(warehouse)
    finally:
        warehouse.close()


def a_deal(repository: DatasetRepository) -> tuple[str, str]:
    row = repository.warehouse.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": 1})[0]
    return str(row["sf_account_id"]), str(row["opportunity_id"])


@pytest.mark.parametrize("evil", INJECTIONS, ids=range(len(INJECTIONS)))
def test_ids_reach_the_warehouse_only_as_values(
    repository: DatasetRepository, warehouse_path: Path, evil: str
) -> None:
    before = row_counts_duckdb(warehouse_path)
    account, opportunity = a_deal(repository)
    with pytest.raises(UnknownSubjectError):
        repository.account_dataset(evil)
    with pytest.raises(UnknownSubjectError):
        repository.deal_dataset(evil, opportunity)
    with pytest.raises(UnknownSubjectError):
        repository.deal_dataset(account, evil)
    # The genuine subject still works (the warehouse was not broken by the attempts).
    repository.deal_dataset(account, opportunity)
    assert row_counts_duckdb(warehouse_path) == before


async def test_a_trigger_carrying_injection_is_dead_lettered_as_unknown_subject(
    repository: DatasetRepository, warehouse_path: Path
) -> None:
    before = row_counts_duckdb(warehouse_path)
    agent = DataAgent(Settings(), repository)
    for evil in INJECTIONS[:6]:
        trigger = RawTrigger(
            trigger_type=TriggerType.MANUAL,
            parameters=TriggerParameters(account_id=evil, analysis_type=AnalysisType.CONSUMPTION),
            request_id="req-sqli",
        )
        record = Record("revops.triggers", 0, 1, None, b"{}", (), 1_750_000_000_000)
        with pytest.raises(PermanentError) as exc:
            await agent.handle(Parsed("trigger:req-sqli", (trigger, "req-sqli")), record)
        assert exc.value.code == "UNKNOWN_SUBJECT"
    assert row_counts_duckdb(warehouse_path) == before


@pytest.mark.parametrize("evil", INJECTIONS[:10], ids=range(10))
def test_cli_limit_and_as_of_are_parsed_before_any_query(
    warehouse_path: Path, tmp_path: Path, evil: str
) -> None:
    before = row_counts_duckdb(warehouse_path)
    for command in ("accounts", "opportunities"):
        result = runner.invoke(
            app, ["warehouse", command, "--limit", evil, "--path", str(warehouse_path)]
        )
        assert result.exit_code == 2, result.output  # usage error: not an integer
        assert "Traceback" not in result.output
    target = tmp_path / "new.duckdb"
    result = runner.invoke(app, ["warehouse", "seed", "--as-of", evil, "--path", str(target)])
    assert result.exit_code == 2 and "is not a date" in result.output
    assert not target.exists()
    assert row_counts_duckdb(warehouse_path) == before


def export_accounts(warehouse_path: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "salesforce_account_d.csv"
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        con.execute(f"COPY salesforce_account_d TO '{target}' (HEADER)")
    finally:
        con.close()
    return target


def rewrite_csv(path: Path, header: list[str] | None = None, name: str | None = None) -> None:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if header is not None:
        rows[0] = header
    if name is not None:
        column = rows[0].index("sf_account_name") if "sf_account_name" in rows[0] else 1
        rows[1][column] = name
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_load_file_names_and_columns_are_never_sql(warehouse_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.duckdb"
    target.write_bytes(warehouse_path.read_bytes())
    before = row_counts_duckdb(target)

    evil_name = tmp_path / "name"
    source = export_accounts(warehouse_path, evil_name)
    source.rename(evil_name / "salesforce_account_d; DROP TABLE opportunity_d; --.csv")
    with pytest.raises(LoadRefused, match="no warehouse table by that name"):
        load_directory(evil_name, target, LoadOptions())

    for i, evil in enumerate(['sf_account_id"; DROP TABLE opportunity_d; --', "x' OR 1=1 --"]):
        directory = tmp_path / f"column{i}"
        source = export_accounts(warehouse_path, directory)
        with source.open() as fh:
            header = next(csv.reader(fh))
        rewrite_csv(source, header=[*header[:-1], evil])
        # an unknown column is reported by its name, verbatim, and ignored
        result = load_directory(directory, target, LoadOptions(limit=100_000))
        unused = [p for p in result.report.problems if p.rule == "unused_column"]
        assert [p.column for p in unused] == [evil]
    assert row_counts_duckdb(target) == before


def test_loaded_values_are_data_not_sql(warehouse_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.duckdb"
    target.write_bytes(warehouse_path.read_bytes())
    before = row_counts_duckdb(target)
    evil = "Acme'); DROP TABLE opportunity_d; -- \" OR 1=1 \u2019"
    directory = tmp_path / "values"
    source = export_accounts(warehouse_path, directory)
    rewrite_csv(source, name=evil)
    load_directory(directory, target, LoadOptions())
    assert row_counts_duckdb(target) == before
    con = duckdb.connect(str(target), read_only=True)
    try:
        rows = con.execute("SELECT * FROM salesforce_account_d").fetchall()
    finally:
        con.close()
    assert sum(1 for row in rows if evil in row) == 1  # stored verbatim, as a value


# --- the execution agent's insight store ----------------------------------------------------


@pytest.fixture
def insights_db(tmp_path: Path) -> Path:
    path = tmp_path / "revops.db"
    repo = InsightRepository(Store(path))
    for i, category in enumerate([InsightCategory.DEAL_QUALITY, InsightCategory.CHURN_RISK]):
        repo.upsert_from_flag(
            Subject(account_id=f"acc-{i}"),
            Flag(
                type=FlagType.RISK,
                severity=Severity.HIGH,
                description="d",
                code=f"code_{i}",
                category=category,
                insight_type=f"type_{i}",
            ),
            request_id=f"req-{i}",
        )
    return path


@pytest.mark.parametrize("evil", INJECTIONS, ids=range(len(INJECTIONS)))
def test_insight_filters_are_bound_values(insights_db: Path, evil: str) -> None:
    before = row_counts_sqlite(insights_db)
    base = ["insights", "--db", str(insights_db), "list", "--json"]
    assert runner.invoke(app, base).output.count('"insight_id"') == 2
    for option in ("--category", "--account"):
        result = runner.invoke(app, [*base, option, evil])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "[]"  # matched nothing: OR 1=1 did not widen it
    for option in ("--status", "--since"):
        result = runner.invoke(app, [*base, option, evil])
        assert result.exit_code == 2, result.output  # refused before any query
        assert "Traceback" not in result.output
    assert row_counts_sqlite(insights_db) == before
    repo = InsightRepository(Store(insights_db))
    assert repo.list(account_id=evil) == [] and repo.list(category=evil) == []
    assert len(repo.list(since=None, category=None)) == 2


# --- the DLQ tool ---------------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.parametrize("evil", INJECTIONS[:6], ids=range(6))
def test_dlq_filters_refuse_cleanly(
    kafka: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evil: str
) -> None:
    monkeypatch.setenv("REVOPS_KAFKA_BOOTSTRAP_SERVERS", kafka)
    monkeypatch.setenv("REVOPS_VAR_DIR", str(tmp_path))
    from services.common.settings import get_settings

    get_settings.cache_clear()
    try:
        for option in ("--code", "--since", "--topic"):
            result = runner.invoke(app, ["dlq", "list", option, evil])
            assert result.exit_code in (0, 1, 2), result.output
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                option,
                repr(result.exception),
            )
    finally:
        get_settings.cache_clear()


def test_as_of_is_a_date_before_it_reaches_a_query(repository: DatasetRepository) -> None:
    account, _ = a_deal(repository)
    with pytest.raises((TypeError, AttributeError, ValueError)):
        repository.account_dataset(account, as_of="2025-01-01'; DROP TABLE x; --")  # type: ignore[arg-type]
    assert repository.account_dataset(account, as_of=repository.default_as_of()) is not None
