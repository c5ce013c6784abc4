"""Prompt files are validated at start-up like rule files; the knowledge index finds the
playbook that fits; the Bedrock Knowledge Bases adapter speaks the Retrieve API."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from services.cli.rules import rules_app
from services.common.rulefiles import RuleFileError
from services.common.settings import PROJECT_ROOT, Settings
from services.decision_agent.app import build_runtime
from services.decision_agent.knowledge.bedrock_kb import BedrockKnowledgeBase
from services.decision_agent.knowledge.documents import load_chunks
from services.decision_agent.knowledge.local_index import LocalKnowledgeIndex, fts_query
from services.decision_agent.prompts.catalog import DEFAULT_PROMPTS_DIR, PromptCatalog

KNOWLEDGE = PROJECT_ROOT / "knowledge"
RULES = PROJECT_ROOT / "services" / "decision_agent" / "rules"


def test_the_shipped_prompts_load_with_versions() -> None:
    catalog = PromptCatalog.load()
    versions = catalog.versions()
    assert set(versions) == {"call_understanding", "deal_narrative", "account_narrative"}
    assert all(re.fullmatch(r"\d+-[0-9a-f]{8}", v) for v in versions.values())


def broken_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "prompts"
    shutil.copytree(DEFAULT_PROMPTS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__py*"))
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return folder


def test_an_unknown_template_variable_is_reported_with_file_and_line(tmp_path) -> None:
    folder = broken_copy(tmp_path, "deal_narrative.yaml", "{{ facts_json }}", "{{ fact_json }}")
    with pytest.raises(RuleFileError) as caught:
        PromptCatalog.load(folder)
    (problem,) = caught.value.problems
    assert problem.file == folder / "deal_narrative.yaml" and problem.line is not None
    assert "fact_json" in problem.message and "facts_json" in problem.message


def test_template_syntax_errors_and_missing_prompts_are_all_listed(tmp_path) -> None:
    folder = broken_copy(tmp_path, "call_understanding.yaml", "{% endfor %}", "{% endfo %}")
    (folder / "account_narrative.yaml").unlink()
    with pytest.raises(RuleFileError) as caught:
        PromptCatalog.load(folder)
    messages = [str(p) for p in caught.value.problems]
    assert any("call_understanding.yaml" in m and "template line" in m for m in messages)
    assert any("missing prompt 'account_narrative'" in m for m in messages)


def test_a_prompt_with_the_wrong_output_is_refused(tmp_path) -> None:
    folder = broken_copy(tmp_path, "deal_narrative.yaml", "output: narrative", "output: essay")
    with pytest.raises(RuleFileError, match="output"):
        PromptCatalog.load(folder)


def test_rules_validate_checks_prompt_files() -> None:
    result = CliRunner().invoke(rules_app, ["validate", str(DEFAULT_PROMPTS_DIR)])
    assert result.exit_code == 0, result.output
    assert "3 rule file(s) OK" in result.output


def test_the_decision_agent_refuses_to_start_on_a_broken_prompt(tmp_path) -> None:
    folder = broken_copy(tmp_path, "deal_narrative.yaml", "revision: 1", "revision: 0")
    settings = Settings(prompts_dir=folder, var_dir=tmp_path / "var")
    with pytest.raises(SystemExit) as caught:
        asyncio.run(build_runtime(settings, None))
    message = str(caught.value)
    assert message.startswith("decision agent cannot start:")
    assert "deal_narrative.yaml" in message and "revision" in message


def test_the_decision_agent_refuses_an_unknown_model_backend(tmp_path) -> None:
    settings = Settings(model_backend="gpt-9", var_dir=tmp_path / "var")
    with pytest.raises(SystemExit, match="REVOPS_MODEL_BACKEND must be one of"):
        asyncio.run(build_runtime(settings, None))


@pytest.fixture(scope="module")
def index() -> LocalKnowledgeIndex:
    return LocalKnowledgeIndex(load_chunks(KNOWLEDGE, [RULES]))


def test_every_playbook_section_and_rule_is_a_passage() -> None:
    chunks = load_chunks(KNOWLEDGE, [RULES])
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids))
    assert "playbooks/competitive.md#snowflake" in ids
    assert "playbooks/churn-response.md#usage-decline" in ids
    assert "rules/risks.yaml#rules.competitor-named" in ids
    assert not any(i.startswith("README") for i in ids)
    snowflake = next(c for c in chunks if c.id == "playbooks/competitive.md#snowflake")
    assert snowflake.title == "Competitive displacement: Snowflake"
    assert snowflake.applies_to == ("deal_quality",)


def test_search_finds_the_playbook_for_the_situation(index: LocalKnowledgeIndex) -> None:
    found = index.search("competitor_named snowflake", 3, "deal_quality")
    assert "playbooks/competitive.md#snowflake" in [p.id for p in found[:2]]
    account = index.search("usage_decline usage decline churn", 4, "consumption")
    assert "playbooks/churn-response.md#usage-decline" in [p.id for p in account]
    assert all(not p.id.startswith("playbooks/competitive") for p in account)


def test_query_words_are_never_fts_operators(index: LocalKnowledgeIndex) -> None:
    query = 'NOT budget OR "x" NEAR(a'
    assert fts_query(query) == '"not" OR "budget" OR "or" OR "x" OR "near" OR "a"'
    assert index.search(query, 3)  # words, not syntax: no FTS5 error
    assert index.search('(*) "" ^', 3) == []
    assert index.search("", 3) == []


def test_a_playbook_without_front_matter_is_reported(tmp_path) -> None:
    (tmp_path / "bad.md").write_text("## Section\ntext\n")
    (tmp_path / "odd.md").write_text("---\ntitle: Odd\napplies_to: [sales]\n---\n## A\nb\n")
    with pytest.raises(RuleFileError) as caught:
        load_chunks(tmp_path, [])
    messages = sorted(str(p) for p in caught.value.problems)
    assert "bad.md:1:1: missing front matter" in messages[0]
    assert "odd.md:2: applies_to" in messages[1]


async def test_bedrock_knowledge_base_retrieve() -> None:
    client = boto3.client(
        "bedrock-agent-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="secret",
    )
    stubber = Stubber(client)
    stubber.add_response(
        "retrieve",
        {
            "retrievalResults": [
                {
                    "content": {"text": "Lead with a cost-per-query comparison."},
                    "location": {
                        "type": "S3",
                        "s3Location": {"uri": "s3://kb/playbooks/competitive.md"},
                    },
                    "score": 0.82,
                },
                {"content": {"text": "  "}, "location": {"type": "S3"}, "score": 0.1},
            ]
        },
        {
            "knowledgeBaseId": "KB12345678",
            "retrievalQuery": {"text": "competitor snowflake"},
            "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}},
        },
    )
    kb = BedrockKnowledgeBase("KB12345678", client_factory=lambda: client)
    with stubber:
        passages = await kb.retrieve("competitor snowflake", 3)
    assert [(p.id, p.title, p.score) for p in passages] == [
        ("s3://kb/playbooks/competitive.md#1", "competitive.md", 0.82)
    ]
    assert passages[0].text == "Lead with a cost-per-query comparison."
