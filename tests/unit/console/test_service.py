"""The console as a service: one clear line when it cannot start; the search index and the
overview's figures follow the store."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from contracts.common import utcnow
from services.common.settings import Settings
from services.common.stores.postgres import POOL_MAX_SIZE, close_pools
from services.console.app import build_components
from services.console.config import ConsoleSettings
from services.console.db import open_console_store
from services.console.inbox import InboxFilter
from services.console.overview import OverviewFilter
from services.console.pages import Components
from tests.postgres_server import PostgresServer


def test_a_missing_warehouse_stops_the_console_with_one_line(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    with pytest.raises(SystemExit) as stopped:
        build_components(settings, ConsoleSettings())
    assert str(stopped.value).startswith("console: cannot start: warehouse file ")
    assert "revops warehouse seed" in str(stopped.value)


def test_a_changed_insight_is_found_by_its_new_words_at_the_next_search(
    components: Components,
) -> None:
    row = components.inbox.page(InboxFilter()).rows[0]
    assert components.inbox.page(InboxFilter(search="quokka")).rows == []
    with components.insights.store.transaction() as conn:
        conn.execute(
            "UPDATE revops_ai_insights SET description = 'the quokka deal', updated_at = ? "
            "WHERE insight_id = ?",
            (utcnow().isoformat(timespec="microseconds"), row.insight_id),
        )
    found = components.inbox.page(InboxFilter(search="Quokka")).rows
    assert [r.insight_id for r in found] == [row.insight_id]


def test_the_overview_figures_are_a_snapshot_refreshed_by_its_timer(
    components: Components,
) -> None:
    first = components.overview.figures()
    assert components.overview.figures() is first  # no work per page
    refreshed = components.overview.refresh()
    assert refreshed.computed_at >= first.computed_at
    assert components.overview.build(OverviewFilter()).figures is refreshed
    owners = {c["owner_id"] for c in refreshed.cells}
    one = sorted(o for o in owners if o)[0]
    mine = components.overview.build(OverviewFilter(owner=one))
    assert mine.open_deals == sum(c["n"] for c in refreshed.cells if c["owner_id"] == one)
    assert components.overview.build(OverviewFilter(team="customer_success")).open_deals == 0


def test_stage_times_come_from_the_agents_idempotency_stores(
    tmp_path: Path, database_url: str
) -> None:
    from services.common.idempotency import IdempotencyStore
    from services.console.flows import StageClock

    url = database_url or None
    data_agent = IdempotencyStore(tmp_path / "idempotency-data_agent.db", url)
    data_agent.mark_processed("revops.data_agent", ["trigger:req-1"])
    data_agent.close()
    console_store, _ = open_console_store(tmp_path, url)
    clock = StageClock(tmp_path, "revops", console_store if url else None)
    done = clock.done_at("data_agent", "trigger:req-1")
    assert done is not None and abs((utcnow() - done).total_seconds()) < 60
    assert clock.done_at("data_agent", "trigger:req-2") is None
    assert clock.done_at("decision_agent", "req-1:dataset") is None
    assert not (tmp_path / "idempotency-decision_agent.db").exists()  # never created
    clock.close()


def test_on_postgresql_more_page_threads_than_pooled_connections_all_get_served(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Page handlers run on many short-lived threads: the console's store returns each
    connection to the pool after use, so threads beyond the pool's size wait their turn
    instead of finding every connection held by a thread that is idle."""
    store, _ = open_console_store(tmp_path, postgres.fresh_database())
    threads = 3 * POOL_MAX_SIZE
    all_read = threading.Barrier(threads)  # every thread stays alive until all have read

    def page() -> int:
        with store.reader() as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM revops_ai_insights").fetchone()
        all_read.wait(timeout=120)
        return int(count)

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            counts = [f.result() for f in [pool.submit(page) for _ in range(threads)]]
    finally:
        close_pools()
    assert counts == [0] * threads
