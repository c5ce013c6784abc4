"""The stage model is configuration, checked by `revops rules validate` (every problem with
file and line); import mappings are checked the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.rules import rules_app
from services.common.settings import get_settings
from services.common.stages import load_stage_model
from services.data_agent.warehouse.mapping import PRESETS_DIR
from tests.unit.warehouse.exports import CUSTOM_STAGES

HEAD = "kind: deal_stages\nversion: 1\nmeddpicc_status_credit: {Validated: 1.0}\nstages:\n"


def validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(rules_app, ["validate", str(path)])
    return result.exit_code, result.output


def test_default_and_custom_models_are_valid(tmp_path: Path) -> None:
    model = load_stage_model(get_settings().rules_dir)
    assert model.names("won") == ["Closed Won"] and model.names("lost") == ["Closed Lost"]
    assert model.is_open("Negotiate") and not model.is_open("Closed Lost")
    assert model.is_open("Something else")  # unknown names are never silently closed
    assert model.required_meddpicc("Discover") == [
        "economic_buyer", "identify_pain", "champion", "competition", "metrics",
        "decision_criteria",
    ]  # fmt: skip
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "stages.yaml").write_text(CUSTOM_STAGES)
    assert validate(folder) == (0, "1 rule file(s) OK\n")
    custom = load_stage_model(folder)
    assert custom.closed_names == ["Won", "Lost"] and custom.probability("Engaging") == 40


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            "  - {name: A, status: open, probability: 10}\n"
            "  - {name: L, status: lost, probability: 0}\n",
            "stages: the model needs at least one won stage",
        ),
        (
            "  - {name: A, status: open, probability: 10}\n"
            "  - {name: W, status: won, probability: 100}\n"
            "  - {name: B, status: open, probability: 20}\n"
            "  - {name: L, status: lost, probability: 0}\n",
            "stages.2.status: open stage 'B' comes after closed stage 'W': list open stages first",
        ),
        (
            "  - {name: A, status: open, probability: 50}\n"
            "  - {name: B, status: open, probability: 20}\n"
            "  - {name: W, status: won, probability: 100}\n"
            "  - {name: L, status: lost, probability: 0}\n",
            "stages.1.probability: probability 20 of 'B' is below 50 of the earlier stage 'A'",
        ),
        (
            "  - {name: A, status: open, probability: 10}\n"
            "  - {name: W, status: won, probability: 90}\n"
            "  - {name: L, status: lost, probability: 0}\n",
            "stages.1.probability: a won stage has probability 100",
        ),
        (
            "  - {name: Won, status: open, probability: 10}\n"
            "  - {name: won, status: won, probability: 100}\n"
            "  - {name: L, status: lost, probability: 0}\n",
            "stages.1.name: duplicate stage 'won' (same as stage 1, ignoring case)",
        ),
        (
            "  - {name: A, status: open, probability: 10, adds_meddpicc: [budget]}\n"
            "  - {name: W, status: won, probability: 100}\n"
            "  - {name: L, status: lost, probability: 0}\n",
            "stages.0.adds_meddpicc.0: unknown MEDDPICC field 'budget'",
        ),
        (
            "  - {name: A, status: opened, probability: 10}\n"
            "  - {name: W, status: won, probability: 100}\n"
            "  - {name: L, status: lost, probability: 0}\n",
            "stages.0.status: Input should be 'open', 'won' or 'lost'",
        ),
    ],
)
def test_stage_model_problems_name_file_and_line(tmp_path: Path, stages: str, message: str) -> None:
    path = tmp_path / "stages.yaml"
    path.write_text(HEAD + stages)
    code, output = validate(path)
    assert code == 1
    assert f"{path}:" in output and message in output, output


def test_presets_are_valid_mappings() -> None:
    code, output = validate(PRESETS_DIR)
    assert code == 0, output
    assert output == "3 rule file(s) OK\n"


def test_mapping_problems_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "kind: warehouse_mapping\nversion: 1\n"
        "sources: {deals: {file: deals.csv}}\n"
        "tables:\n"
        "  accounts: {from: deals, columns: {id: Id}}\n"
        "  opportunity_d:\n"
        "    from: dealz\n"
        "    columns: {opportunity_id: Id, amout: Amount, stage_name: {column: S, values: stage}}\n"
    )
    code, output = validate(path)
    assert code == 1
    assert f"{path}:5:3: tables.accounts: no warehouse table 'accounts'; tables: " in output
    assert "salesforce_account_d, opportunity_d" in output
    assert f"{path}:7:5: tables.opportunity_d.0.from: no source 'dealz'; sources: deals" in output
    assert "opportunity_d has no column 'amout'" in output
    assert "no value map 'stage'; value maps: none" in output
