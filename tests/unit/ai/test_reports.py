"""`revops explain deal|account --model`: the report says what the model wrote."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.common.settings import get_settings
from services.decision_agent.consumption.cli import explain_account_app
from services.decision_agent.deal_quality.cli import explain_deal_app
from tests.support import model_answers
from tests.support.model_server import ModelServer


@pytest.fixture
def model_env(cases, tmp_path, monkeypatch):
    with ModelServer(model_answers.answer) as server:
        for name, value in {
            "REVOPS_WAREHOUSE_PATH": str(cases.warehouse),
            "REVOPS_VAR_DIR": str(tmp_path),
            "REVOPS_MODEL_BACKEND": "openai",
            "REVOPS_MODEL_ENDPOINT_URL": server.url("/v1"),
            "REVOPS_MODEL_ID": "test-model",
            "REVOPS_MODEL_API_KEY_SECRET": "",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield server
    get_settings.cache_clear()


def test_explain_deal_with_the_model(cases, model_env) -> None:
    opportunity = cases.deal.result.subject.opportunity_id
    result = CliRunner().invoke(explain_deal_app, ["deal", opportunity, "--model"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Language model (openai test-model)" in out
    assert "written by the model: call_insights, summary" in out
    assert "rules' summary: " + cases.deal.result.summary in out
    assert "Call insights (model, each quote checked against its call)" in out
    assert "unsupported claim(s) dropped" in out
    # Without --model the report is the deterministic one, and says nothing of a model.
    plain = CliRunner().invoke(explain_deal_app, ["deal", opportunity])
    assert plain.exit_code == 0 and "Language model" not in plain.output
    assert plain.output.startswith(cases.deal.result.summary)


def test_explain_account_with_the_model(cases, model_env) -> None:
    account = cases.account.result.subject.account_id
    result = CliRunner().invoke(explain_account_app, ["account", account, "--model"])
    assert result.exit_code == 0, result.output
    assert f"\n{account} stands at customer health" in result.output
    assert "Language model (openai test-model)" in result.output


def test_model_option_without_a_model_is_one_clear_line(cases, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REVOPS_WAREHOUSE_PATH", str(cases.warehouse))
    monkeypatch.setenv("REVOPS_MODEL_BACKEND", "none")
    get_settings.cache_clear()
    try:
        opportunity = cases.deal.result.subject.opportunity_id
        result = CliRunner().invoke(explain_deal_app, ["deal", opportunity, "--model"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip() == "error: no model configured (REVOPS_MODEL_BACKEND=none)"


def test_the_run_summary_says_whether_a_model_is_used(tmp_path) -> None:
    from services.cli.orchestrator import summary
    from services.common.settings import Settings

    plain = summary(Settings(var_dir=tmp_path), {}, 0)
    assert "language model: none (deterministic analysis only;" in plain
    bedrock = Settings(var_dir=tmp_path, model_backend="bedrock", model_id="anthropic.claude-x")
    assert "language model: bedrock anthropic.claude-x" in summary(bedrock, {}, 0)
