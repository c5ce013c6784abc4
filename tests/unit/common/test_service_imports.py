"""What a service process loads is most of its resident memory (~70-90 MB of the ~110-180
MB a service holds at saturation, `make bench`): each service imports only the heavy
libraries it uses. Each check runs in a fresh interpreter, as `python -m services.<name>`
does, so what other tests imported does not count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from services.common.settings import PROJECT_ROOT

# Libraries no service uses at start-up: analytics and ML stacks (the CLI, the bench and
# the generator use them), the AWS SDK (Bedrock or Firebolt only when configured) and the
# PostgreSQL driver (only with REVOPS_DATABASE_URL).
NEVER_AT_IMPORT = {"pandas", "numba", "pyarrow", "scipy", "sklearn", "boto3", "psycopg"}
# DuckDB (~40 MB of resident code and its allocator's memory) is the data agent's alone; the
# execution agent's export loads it in a child process (warehouse_export/child.py).
WITHOUT_DUCKDB = ("decision_agent", "execution_agent", "webhook_processor")
# Per service, the libraries its default path never needs (what each adds to a service
# that loads it: numpy ~15 MB resident, httpx, aiohttp and jinja2 a few MB each): numpy for
# the decision agent, which analyses series (the data agent only builds and writes them:
# tests/unit/warehouse/test_data_agent_without_numpy.py), aiohttp and SMTP for the webhook
# processor's deliveries, httpx for the decision agent's OpenAI-compatible model only (the
# webhook processor delivers with aiohttp), jinja2 for prompts and templates.
NOT_AT_START_UP = {
    "data_agent": {"numpy", "jinja2", "httpx", "aiohttp", "smtplib"},
    "decision_agent": {"httpx", "aiohttp", "smtplib"},
    "execution_agent": {"numpy", "jinja2", "httpx", "aiohttp", "smtplib"},
    "webhook_processor": {"numpy", "httpx"},
}


def imported_by(script: str) -> set[str]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize(
    "service", ["data_agent", "decision_agent", "execution_agent", "webhook_processor"]
)
def test_a_service_imports_no_library_it_does_not_use(service: str) -> None:
    loaded = top_level(imported_by(f"import services.{service}.app"))
    assert "services" in loaded  # the probe did import the service
    assert loaded & NEVER_AT_IMPORT == set()
    if service in WITHOUT_DUCKDB:
        assert "duckdb" not in loaded
    assert loaded & NOT_AT_START_UP[service] == set()


def test_the_execution_agent_exports_without_loading_duckdb(tmp_path: Path) -> None:
    """The export job writes the insight into the DuckDB file, and DuckDB stays out of the
    agent's process (a child process wrote it)."""
    script = f"""
import asyncio, sys
from pathlib import Path
from contracts import Subject
from services.common.settings import Settings
from services.execution_agent.app import build_runtime
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import open_store
from tests.unit.execution.conftest import make_flag

state = Path({str(tmp_path)!r})
settings = Settings(
    state_dir=state, database_url=None, insights_export_interval_s=5, signing_enabled=False
)

async def main() -> None:
    runtime = await build_runtime(settings, http_port=None)
    [job] = [t for t in runtime.housekeeping if t.name == "export_insights"]
    repo = InsightRepository(open_store(state / "revops.db", url=""))
    repo.upsert_from_flag(Subject(account_id="ACC-1"), make_flag(), "req-1")
    await job.run_once()
    assert (job.runs, job.failures) == (1, 0), (job.runs, job.failures)

asyncio.run(main())
"""
    loaded = top_level(imported_by(script))
    assert "duckdb" not in loaded
    with duckdb.connect(str(tmp_path / "insights.duckdb"), read_only=True) as con:
        [(count,)] = con.execute("SELECT count(*) FROM revops_ai_insights").fetchall()
    assert count == 1
