"""A service process leaves out what it never uses (services/common/lean_process.py): rich,
which structlog would load, stays out of every service's entry point, exceptions are still
logged whole, and `revops serve NAME` becomes that same process."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.processes import PROCESSES
from services.common.settings import PROJECT_ROOT
from tests.python_probe import run_python

ENTRY_POINTS = sorted((PROJECT_ROOT / "services").glob("*/__main__.py"))


def test_every_service_hides_unused_libraries_before_anything_else() -> None:
    services = {path.parent.name for path in ENTRY_POINTS}
    assert set(PROCESSES) <= services
    for path in ENTRY_POINTS:
        if path.parent.name not in PROCESSES:
            continue
        first, second = ast.parse(path.read_text()).body[:2]
        assert isinstance(first, ast.ImportFrom), path
        assert first.module == "services.common.lean_process", path
        assert isinstance(second, ast.Expr) and isinstance(second.value, ast.Call), path
        assert ast.unparse(second.value) == "hide_unused_libraries()", path


PROBE = """
import json, logging, sys
from services.common.lean_process import hide_unused_libraries
hide_unused_libraries()
import structlog
from services.common import logging as service_logging
import services.data_agent.app, services.decision_agent.app
import services.execution_agent.app, services.webhook_processor.app
service_logging.configure("probe", "INFO", sys.argv[1])
try:
    1 / 0
except ZeroDivisionError:
    structlog.get_logger("probe").exception("handler_failed")
    logging.getLogger("aiokafka").exception("library_failed")
loaded = [m for m in sys.modules if m.split(".")[0] in ("rich", "pygments") and sys.modules[m]]
print(json.dumps(loaded))
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_services_log_exceptions_whole_without_rich(fmt: str) -> None:
    done = run_python(PROBE, fmt)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    for event in ("handler_failed", "library_failed"):
        [line] = [line for line in done.stderr.splitlines() if event in line]
        if fmt == "json":
            assert "ZeroDivisionError: division by zero" in json.loads(line)["exception"]
    assert done.stderr.count("ZeroDivisionError: division by zero") == 2
    assert "pretty exceptions" not in done.stderr  # structlog's warning when rich is there


@pytest.mark.parametrize(
    "command",
    [["services.data_agent"], ["services.cli.main", "serve", "data-agent"]],
    ids=["python -m", "revops serve"],
)
def test_the_data_agent_without_its_warehouse_is_one_line(
    command: list[str], tmp_path: Path
) -> None:
    """No traceback: the line names the missing file and how to make one; exit status 2."""
    missing = tmp_path / "none.duckdb"
    env = {
        "PATH": "/usr/bin:/bin",
        "REVOPS_VAR_DIR": str(tmp_path),
        "REVOPS_WAREHOUSE_PATH": str(missing),
        "REVOPS_HTTP_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"data_agent: warehouse file {missing} does not exist")
    assert "revops warehouse seed" in line
