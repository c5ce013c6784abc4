"""`revops` loads a sub-command's module only when that command runs: `--help` lists every
command from the registry, and each registry entry names the command it stands for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.lazy import load_command
from services.cli.main import EXPLAIN_SUBCOMMANDS, SUBCOMMANDS, app
from tests.python_probe import run_python

HEAVY = ("aiokafka", "faststream", "duckdb", "numpy", "pyarrow", "httpx", "aiohttp", "jinja2")

# Runs the CLI in a fresh interpreter and reports which modules it imported.
PROBE = """
import json, sys
from services.cli.main import app
try:
    app(sys.argv[1:], prog_name="revops")
except SystemExit:
    pass
print("\\n@@MODULES@@" + json.dumps(sorted(sys.modules)))
"""


def imported_by(*args: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    done = run_python(PROBE, *args, env=env, timeout=60)
    output, _, modules = done.stdout.rpartition("@@MODULES@@")
    return {m.split(".")[0] for m in json.loads(modules)}, output


def test_help_lists_every_command_without_importing_heavy_modules() -> None:
    modules, output = imported_by("--help")
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    for name in [*SUBCOMMANDS, "explain", "serve", "run", "demo"]:
        assert f" {name} " in output, name


def test_insights_list_imports_no_kafka_warehouse_or_numpy(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "REVOPS_VAR_DIR": str(tmp_path)}
    modules, output = imported_by("insights", "list", env=env)
    assert "0 insight(s)" in output
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.parametrize(
    "name,entry", [*SUBCOMMANDS.items(), *EXPLAIN_SUBCOMMANDS.items()], ids=lambda v: str(v)
)
def test_registry_help_is_the_commands_own_help(name: str, entry) -> None:
    command = load_command(name, entry.target)
    assert command.name == name
    assert (command.help or "").strip().splitlines()[0] == entry.help


def test_explain_account_help_says_what_it_does_and_shows_real_ids() -> None:
    result = CliRunner().invoke(app, ["explain", "account", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "churn risk" in result.output and "001000000000016" in result.output
    deal = CliRunner().invoke(app, ["explain", "deal", "--help"], env={"COLUMNS": "200"})
    assert deal.exit_code == 0, deal.output
    assert "OPP-000123" not in deal.output and "006000000000005" in deal.output
