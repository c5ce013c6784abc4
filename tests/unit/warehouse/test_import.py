"""`revops warehouse import` with each preset, on realistic exports (tests/unit/warehouse/
exports.py), and every message of the data-quality report; `warehouse check`; a missing or
empty warehouse says how to make one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from services.cli.explain_deal import explain_deal_app
from services.cli.warehouse import warehouse_app
from services.common.settings import get_settings
from services.common.stages import load_stage_model
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.loader import (
    LoadOptions,
    LoadRefused,
    check_warehouse,
    import_files,
)
from services.data_agent.warehouse.mapping import load_mapping
from services.data_agent.warehouse.quality_report import QualityReport, ShownProblem
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules

from . import exports as E

ALL = LoadOptions(limit=100_000)


def messages(report: QualityReport, rule: str) -> list[ShownProblem]:
    return [p for p in report.problems if p.rule == rule]


def sql(path: Path, query: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------- generic pipeline


@pytest.fixture(scope="module")
def generic(tmp_path_factory: pytest.TempPathFactory) -> tuple[E.Facts, Path, QualityReport]:
    folder = tmp_path_factory.mktemp("generic")
    facts = E.generic_pipeline(folder / "export")
    dest = folder / "wh.duckdb"
    result = import_files(facts.folder, load_mapping("generic-pipeline"), dest, ALL)
    return facts, dest, result.report


def test_generic_export_loads_with_every_warning_named(
    generic: tuple[E.Facts, Path, QualityReport],
) -> None:
    facts, dest, report = generic
    assert report.errors == 0 and report.as_of == E.AS_OF
    assert sql(dest, "SELECT COUNT(*) FROM opportunity_d") == [(facts.deals,)]
    # stage names mapped onto the default stage model, won deals are closed, not open
    won = sql(dest, "SELECT COUNT(*) FROM opportunity_d WHERE stage_name = 'Closed Won'")
    assert won == [(facts.won,)]
    assert sql(dest, "SELECT value FROM warehouse_meta WHERE key = 'as_of'") == [
        (E.AS_OF.isoformat(),)
    ]
    # deals without an account: all of them, each with its line
    lines = [p.location for p in messages(report, "deal_without_account")]
    assert lines == [f"sales_pipeline.csv line {facts.lines[d]}" for d in facts.without_account]
    assert all(
        p.message == "this deal has no account" for p in messages(report, "deal_without_account")
    )
    assert all(
        p.render().endswith(
            ", column account = '': this deal has no account [deal_without_account]"
        )
        for p in messages(report, "deal_without_account")
    )
    # 'GTXPro' in the pipeline, 'GTX Pro' in the product list
    unknown = messages(report, "unknown_product")
    assert [p.location for p in unknown] == [
        f"sales_pipeline.csv line {facts.lines[d]}" for d in facts.gtxpro_deals
    ]
    assert unknown[0].render() == (
        f"sales_pipeline.csv line {facts.lines['GTXPRO0']}, column product = 'GTXPro': product "
        "'GTXPro' is not in product_d; closest: 'GTX Pro' [unknown_product]"
    )
    near = [p.message for p in messages(report, "near_duplicate_name")]
    assert "looks like 'GTX Pro' (products.csv line 3); 3 row(s) use 'GTXPro'" in near
    assert "looks like 'Acme Corp' (accounts.csv line 7)" in near
    (backwards,) = messages(report, "close_before_create")
    assert backwards.location == f"sales_pipeline.csv line {facts.lines['close before create']}"
    assert backwards.value == "2017-06-01" and backwards.message == "created 2017-06-10"
    (stale,) = messages(report, "stale_in_stage")
    assert stale.location == f"sales_pipeline.csv line {facts.lines['stale']}"
    assert stale.message == (
        f"in Discover for {E.STALE_DAYS} days (since "
        f"{(E.AS_OF - timedelta(days=E.STALE_DAYS)).isoformat()}); won deals of product GTX Pro "
        "spent a median of 40 days there (5 deals)"
    )
    assert report.counts == {
        "deal_without_account": 4,
        "unknown_product": 3,
        "near_duplicate_name": 2,
        "close_before_create": 1,
        "stale_in_stage": 1,
    }
    text = report.render()
    assert "deal_without_account   warning          4  deal without an account" in text


def test_generic_export_with_its_own_stage_names(tmp_path: Path) -> None:
    """Prospecting / Engaging / Won / Lost as the stage model itself: the report and the
    analysis speak the export's language."""
    facts = E.generic_pipeline(tmp_path / "export")
    rules = E.custom_stage_rules(tmp_path / "rules", get_settings().rules_dir)
    (tmp_path / "mine.yaml").write_text(E.KEEP_STAGE_NAMES)
    stages = load_stage_model(rules)
    dest = tmp_path / "wh.duckdb"
    result = import_files(
        facts.folder, load_mapping(tmp_path / "mine.yaml"), dest, LoadOptions(stages=stages)
    )
    assert result.report.errors == 0
    assert sql(dest, "SELECT COUNT(*) FROM opportunity_d WHERE stage_name = 'Won'") == [
        (facts.won,)
    ]
    (stale,) = messages(result.report, "stale_in_stage")
    assert stale.message.startswith(f"in Engaging for {E.STALE_DAYS} days")
    assert stale.message.endswith(
        "won deals of product GTX Pro spent a median of 40 days there (5 deals)"
    )
    with DuckDBWarehouse(dest) as warehouse:
        repository = DatasetRepository(warehouse, stages=stages)
        analyzer = DealQualityAnalyzer(load_deal_rules(rules))
        dataset, _, findings = repository.deal_dataset(None, facts.stale_deal)
        result_stale = analyzer.analyze("t", dataset, findings)
        no_account, _, findings2 = repository.deal_dataset(None, "NOACC3")
        result_none = analyzer.analyze("t", no_account, findings2)
        gtx, _, findings3 = repository.deal_dataset(None, "GTXPRO2")
        result_gtx = analyzer.analyze("t", gtx, findings3)
    assert dataset.time_in_stage is not None and dataset.time_in_stage.days == E.STALE_DAYS
    flags = {f.code: f.description for f in result_stale.analysis_results.flags}
    assert flags["stale_in_stage"] == (
        f"In Engaging for {E.STALE_DAYS} days; won deals of product GTX Pro spent a median of "
        "40 days there (5 deals)"
    )
    flags = {f.code: f.description for f in result_none.analysis_results.flags}
    assert flags["no_account"].startswith("This deal has no account")
    assert "no_contacts" not in flags  # not a contacts problem: there is no account at all
    assert "no_account" in flags["data_gaps"]  # the account factors are missing because of it
    assert result_none.subject.account_id == ""
    flags = {f.code: f.description for f in result_gtx.analysis_results.flags}
    assert flags["product_not_in_catalog"] == "Product 'GTXPro' is not in the catalog"


def test_time_in_stage_agrees_between_report_and_analysis(
    generic: tuple[E.Facts, Path, QualityReport],
) -> None:
    """The set-based check and the per-deal dataset compute the same stale threshold."""
    facts, dest, report = generic
    with DuckDBWarehouse(dest) as warehouse:
        repository = DatasetRepository(warehouse)
        stale, _, _ = repository.deal_dataset(None, facts.stale_deal)
        fresh, _, _ = repository.deal_dataset(None, "OPEN0")
    assert stale.time_in_stage is not None and fresh.time_in_stage is not None
    assert stale.time_in_stage.segment == "product GTX Pro"
    assert (stale.time_in_stage.won_median_days, stale.time_in_stage.won_deals) == (40.0, 5)
    assert stale.time_in_stage.stale_after_days == 80.0
    assert fresh.time_in_stage.days <= fresh.time_in_stage.stale_after_days
    flagged = {p.location for p in messages(report, "stale_in_stage")}
    assert flagged == {f"sales_pipeline.csv line {facts.lines['stale']}"}


def test_no_look_ahead_in_stage_medians(generic: tuple[E.Facts, Path, QualityReport]) -> None:
    """As of a day before any GTX Pro deal was won, there is nothing to compare with."""
    facts, dest, _ = generic
    with DuckDBWarehouse(dest) as warehouse:
        repository = DatasetRepository(warehouse)
        early = E.AS_OF - timedelta(days=E.STALE_DAYS - 3)
        dataset, _, _ = repository.deal_dataset(None, facts.stale_deal, early)
    assert dataset.time_in_stage is not None
    # one (non-GTX-Pro) deal was won before that day: too few to compare with
    assert dataset.time_in_stage.segment == "all deals"
    assert dataset.time_in_stage.won_deals == 1 and dataset.time_in_stage.won_median_days is None
    assert dataset.time_in_stage.stale_after_days == 90.0  # the stage model's fallback


def test_refused_import_then_quarantine(tmp_path: Path) -> None:
    facts = E.generic_pipeline(tmp_path / "export", unknown_account=True)
    dest = tmp_path / "wh.duckdb"
    mapping = load_mapping("generic-pipeline")
    with pytest.raises(LoadRefused) as info:
        import_files(facts.folder, mapping, dest, ALL)
    (problem,) = messages(info.value.report, "unknown_account")
    assert problem.render() == (
        f"sales_pipeline.csv line {facts.lines['unknown account']}, column account = "
        "'Nonexistent Co': account 'Nonexistent Co' is not in salesforce_account_d "
        "[unknown_account]"
    )
    assert "--quarantine" in info.value.reason
    # its two stage-history rows go with it: counted as consequences, not listed
    assert info.value.report.count("line_rejected") == 1
    assert not messages(info.value.report, "line_rejected")
    assert not dest.exists()
    quarantine = tmp_path / "rejected"
    result = import_files(facts.folder, mapping, dest, LoadOptions(quarantine=quarantine))
    assert result.written and result.quarantined == {"sales_pipeline.rejected.csv": 1}
    assert sql(dest, "SELECT COUNT(*) FROM opportunity_d") == [(facts.deals - 1,)]
    # the whole line is set aside: its stage history rows too
    assert sql(dest, "SELECT COUNT(*) FROM opportunity_stage_f WHERE opportunity_id = 'GHOST'") == [
        (0,)
    ]
    lines = (quarantine / "sales_pipeline.rejected.csv").read_text().splitlines()
    assert lines[0].startswith("_line,_problems,opportunity_id,")
    assert lines[1].startswith(
        f"{facts.lines['unknown account']},unknown_account: account 'Nonexistent Co' is not in "
        "salesforce_account_d,GHOST,"
    )


# ---------------------------------------------------------------- Salesforce


@pytest.fixture(scope="module")
def sf(tmp_path_factory: pytest.TempPathFactory) -> tuple[E.Facts, Path]:
    return E.salesforce(tmp_path_factory.mktemp("sf") / "export"), tmp_path_factory.mktemp("sfw")


def test_salesforce_reports_import(sf: tuple[E.Facts, Path]) -> None:
    facts, folder = sf
    mapping = load_mapping("salesforce")
    with pytest.raises(LoadRefused) as info:
        import_files(facts.folder, mapping, folder / "refused.duckdb", ALL)
    report = info.value.report
    (ghost,) = messages(report, "unknown_account")
    # the two-line Next Step above it moves it one line down from its row number
    assert ghost.location == f"sf_opportunities_2024.csv line {facts.lines['unknown account']}"
    assert ghost.column == "Account ID / Account Name" and ghost.value == "0015g00000GHOSTAAA"
    assert report.count("parent_rejected") == 1  # its history row, counted, not listed
    (none,) = messages(report, "deal_without_account")
    assert none.location == f"sf_opportunities_2024.csv line {facts.lines['no account']}"
    dest = folder / "wh.duckdb"
    result = import_files(facts.folder, mapping, dest, LoadOptions(quarantine=folder / "q"))
    assert result.counts["opportunity_d"] == facts.deals - 1
    # footers ignored; US dates, currency amounts and thousands separators parsed
    assert sql(dest, "SELECT COUNT(*) FROM salesforce_account_d") == [(4,)]
    assert sql(
        dest,
        "SELECT employee_count, annual_revenue_usd, CAST(created_at_ts AS DATE) FROM "
        "salesforce_account_d WHERE sf_account_name = 'Northwind Traders'",
    ) == [(1200, 52_000_000.0, E.date(2023, 1, 15))]
    first = sql(
        dest,
        "SELECT amount, probability, close_date, stage_name FROM opportunity_d "
        "ORDER BY opportunity_id LIMIT 1",
    )
    assert first == [(100_000.0, 100.0, E.date(2023, 9, 17), "Closed Won")]
    # history: amount, probability and close date in force at each change
    history = sql(
        dest,
        "SELECT from_stage, to_stage, amount, close_date FROM opportunity_stage_f "
        "WHERE opportunity_id = (SELECT MIN(opportunity_id) FROM opportunity_d) "
        "ORDER BY started_at_ts",
    )
    assert history[0] == (None, "Opportunity Created", 50_000.0, E.date(2023, 8, 18))
    assert history[-1] == ("Negotiate", "Closed Won", 100_000.0, E.date(2023, 9, 17))
    # the deal whose Next Step spans two lines keeps it whole
    assert sql(dest, "SELECT next_step FROM opportunity_d WHERE next_step LIKE 'Call back%'") == [
        ('Call back,\n"urgent"',)
    ]
    # owners are names: the owner table is made from them
    assert sql(dest, "SELECT COUNT(*) FROM employee_d") == [(3,)]


def test_salesforce_gtxpro_is_named(sf: tuple[E.Facts, Path]) -> None:
    facts, folder = sf
    result = import_files(
        facts.folder,
        load_mapping("salesforce"),
        folder / "dry.duckdb",
        LoadOptions(dry_run=True, limit=100_000),
    )
    near = messages(result.report, "near_duplicate_name")
    assert [(p.value, p.message) for p in near] == [
        ("GTXPro", "looks like 'GTX Pro' (sf_opportunities_2024.csv line 2)")
    ]
    assert not (folder / "dry.duckdb").exists()  # a check writes nothing


# ---------------------------------------------------------------- HubSpot


def test_hubspot_deals_export(tmp_path: Path) -> None:
    facts = E.hubspot(tmp_path / "export")
    mapping = load_mapping("hubspot")
    dest = tmp_path / "wh.duckdb"
    with pytest.raises(LoadRefused) as info:
        import_files(facts.folder, mapping, dest, ALL)
    report = info.value.report
    (stage,) = messages(report, "unknown_stage")
    assert stage.location == (
        f"hubspot-crm-exports-all-deals-2024.csv line {facts.lines['unknown stage']}"
    )
    assert stage.column == "Deal Stage" and stage.value == "Trial Started"
    assert "map it in the mapping's value_maps or add it to stages.yaml" in stage.message
    absent = sorted(p.column or "" for p in messages(report, "absent_column"))
    assert absent == [
        'Date entered "Decision Maker Bought-In (Sales Pipeline)"',
        'Date entered "Presentation Scheduled (Sales Pipeline)"',
        "Last Modified Date",
        "Next step",
    ]
    result = import_files(facts.folder, mapping, dest, LoadOptions(quarantine=tmp_path / "q"))
    assert result.counts["opportunity_d"] == facts.deals - 1
    # accounts made from the deals' companies; the deal without one is kept and named
    assert sql(dest, "SELECT COUNT(*) FROM salesforce_account_d") == [(3,)]
    assert sql(dest, "SELECT sf_account_id FROM opportunity_d WHERE opportunity_id = '5100'") == [
        (None,)
    ]
    # stage history from the "Date entered" columns; probability 0-1 scaled to percent
    rows = sql(
        dest,
        "SELECT to_stage, from_stage FROM opportunity_stage_f WHERE opportunity_id = '5000' "
        "ORDER BY started_at_ts",
    )
    assert rows == [
        ("Opportunity Created", None),
        ("Discover", "Opportunity Created"),
        ("Negotiate", "Discover"),
        ("Closed Won", "Negotiate"),
    ]
    assert sql(dest, "SELECT probability FROM opportunity_d WHERE opportunity_id = '5100'") == [
        (20.0,)
    ]


# ---------------------------------------------------------------- check and empty warehouses


def test_check_command_on_a_warehouse_and_on_files(
    generic: tuple[E.Facts, Path, QualityReport], tmp_path: Path
) -> None:
    facts, dest, _ = generic
    report = check_warehouse(dest, load_stage_model(), limit=100_000)
    # rows keep the file and line they were loaded from
    assert [p.location for p in messages(report, "deal_without_account")] == [
        f"sales_pipeline.csv line {facts.lines[d]}" for d in facts.without_account
    ]
    ok = CliRunner().invoke(warehouse_app, ["check", "--path", str(dest)])
    assert ok.exit_code == 0, ok.output
    assert "deal_without_account" in ok.output and "stale_in_stage" in ok.output
    bad = E.generic_pipeline(tmp_path / "bad", unknown_account=True)
    files = CliRunner().invoke(
        warehouse_app,
        ["check", "--from", str(bad.folder), "--mapping", "generic-pipeline", "--path",
         str(tmp_path / "none.duckdb")],
    )  # fmt: skip
    assert files.exit_code == 1
    assert "Nonexistent Co" in files.output and not (tmp_path / "none.duckdb").exists()


@pytest.fixture
def warehouse_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "wh.duckdb"
    monkeypatch.setenv("REVOPS_WAREHOUSE_PATH", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.mark.parametrize("state", ["missing", "empty file", "empty tables"])
def test_missing_or_empty_warehouse_says_how_to_create_one(warehouse_env: Path, state: str) -> None:
    from services.cli.backtest.command import backtest_app

    if state == "empty file":
        duckdb.connect(str(warehouse_env)).close()
    elif state == "empty tables":
        con = duckdb.connect(str(warehouse_env))
        con.execute("CREATE TABLE opportunity_d (opportunity_id VARCHAR)")
        con.close()
    runs = [
        (warehouse_app, ["accounts"]),
        (warehouse_app, ["opportunities", "--open"]),
        (warehouse_app, ["check"]),
        (explain_deal_app, ["deal", "006000000000001"]),
        (backtest_app, ["deals"]),
    ]
    for app, args in runs:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert "create one with `revops warehouse seed`" in result.output, (args, result.output)
        assert "revops warehouse import --mapping PRESET --from DIR" in result.output
        assert ("Traceback" not in result.output and result.exception is None) or isinstance(
            result.exception, SystemExit
        ), (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, (args, result.output)


def test_the_remaining_report_messages(tmp_path: Path) -> None:
    """Open past its close date, unknown owner, a row with too many cells (line numbers
    stay right after it), and a file the mapping needs that is not there."""
    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "salesforce_account_d.csv").write_text(
        "sf_account_id,sf_account_name,sf_owner_id\nA1,Alpha,U1\nA2,Beta,U9\n"
    )
    (folder / "employee_d.csv").write_text("sf_user_id,name\nU1,Una\n")
    (folder / "opportunity_d.csv").write_text(
        "opportunity_id,sf_account_id,stage_name,close_date,created_at_ts,owner_id\n"
        "O1,A1,Discover,2024-01-31,2023-12-01,U1\n"
        "O2,A1,Discover,2024-06-30,2024-01-02,U1,surplus\n"
        "O3,A2,Negotiate,2024-05-31,2024-01-03,U7\n"
    )
    (folder / "warehouse_meta.csv").write_text("key,value\nas_of,2024-03-01\n")
    with pytest.raises(LoadRefused) as info:
        from services.data_agent.warehouse.loader import load_directory

        load_directory(folder, tmp_path / "wh.duckdb", ALL)
    report = info.value.report
    (bad,) = messages(report, "bad_row")
    assert bad.render() == ("opportunity_d.csv line 3: 7 cell(s) where the header has 6 [bad_row]")
    (past,) = messages(report, "open_past_close_date")
    assert past.render() == (
        "opportunity_d.csv line 2, column close_date = '2024-01-31': open (Discover), 30 days "
        "past it on 2024-03-01 [open_past_close_date]"
    )
    owners = [p.render() for p in messages(report, "unknown_owner")]
    assert owners == [
        "opportunity_d.csv line 4, column owner_id = 'U7': owner 'U7' is not in employee_d "
        "[unknown_owner]",
        "salesforce_account_d.csv line 3, column sf_owner_id = 'U9': owner 'U9' is not in "
        "employee_d [unknown_owner]",
    ]
    missing = tmp_path / "empty-export"
    missing.mkdir()
    (missing / "notes.txt").write_text("nothing here")
    with pytest.raises(LoadRefused) as info:
        import_files(missing, load_mapping("generic-pipeline"), tmp_path / "x.duckdb", ALL)
    (unusable,) = messages(info.value.report, "unusable_file")
    assert unusable.render() == (
        f"*pipeline*.csv: no file matches in {missing} (files there: notes.txt) [unusable_file]"
    )


def test_deal_review_names_deals_that_have_an_account(
    generic: tuple[E.Facts, Path, QualityReport],
) -> None:
    """A deal-quality trigger names an account, so the scheduled review fans out only deals
    that have one; the others are listed by `warehouse check` and explained one by one."""
    from services.data_agent.builders import open_opportunities

    facts, dest, _ = generic
    with DuckDBWarehouse(dest) as warehouse:
        reviewed = open_opportunities(warehouse, load_stage_model())
        every_open = warehouse.connection.execute(
            "SELECT COUNT(*) FROM opportunity_d WHERE stage_name NOT IN "
            "('Closed Won', 'Closed Lost')"
        ).fetchall()[0][0]
    ids = {oid for _, oid in reviewed}
    assert not ids & set(facts.without_account)
    assert len(ids) == every_open - len(facts.without_account)
    assert all(account for account, _ in reviewed)
