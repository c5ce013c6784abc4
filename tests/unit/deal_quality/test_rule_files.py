"""Shipped rule files validate; broken ones are refused with file and line; edits need no code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.cli.rules import validate_rules_dir
from services.common.rulefiles import RuleFileError
from services.common.settings import get_settings
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules
from tests.unit.deal_quality import builders

RULES_DIR = get_settings().rules_dir


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_shipped_rules_are_valid() -> None:
    assert validate_rules_dir(RULES_DIR) == []


def test_unknown_factor_refused_with_line(rules_copy: Path) -> None:
    path = rules_copy / "icp_fit.yaml"
    replace(path, "measure: revenue_per_employee", "measure: vibes")
    problems = validate_rules_dir(rules_copy)
    assert len(problems) == 1
    assert f"icp_fit.yaml:{line_of(path, 'measure: vibes')}:" in problems[0]
    assert "unknown factor measure 'vibes'" in problems[0]


def test_weights_not_adding_up_and_overlapping_bands_all_reported(rules_copy: Path) -> None:
    health = rules_copy / "deal_health.yaml"
    replace(
        health,
        "{factor: poc, measure: stage_reached, points: 10",
        "{factor: poc, measure: stage_reached, points: 12",
    )
    replace(health, "{name: Good, min: 75, max: 89}", "{name: Good, min: 75, max: 92}")
    overall = rules_copy / "deal_quality.yaml"
    replace(overall, "icp_fit: 25", "icp_fit: 30")
    with pytest.raises(RuleFileError) as caught:
        load_deal_rules(rules_copy)
    rendered = [str(p) for p in caught.value.problems]
    assert len(rendered) == 3, rendered
    category_line = line_of(health, "- name: technical_validation") + 1
    assert any(f"deal_health.yaml:{category_line}:" in p and "add up to 27" in p for p in rendered)
    excellent = line_of(health, "{name: Excellent")
    assert any(f"deal_health.yaml:{excellent}:" in p and "overlaps" in p for p in rendered)
    assert any(
        f"deal_quality.yaml:{line_of(overall, 'total: 100')}:" in p and "105" in p for p in rendered
    )


def test_gap_between_bands_refused(rules_copy: Path) -> None:
    path = rules_copy / "technical_fit.yaml"
    replace(path, "{name: Weak, min: 35, max: 49}", "{name: Weak, min: 35, max: 47}")
    [problem] = validate_rules_dir(rules_copy)
    assert f"technical_fit.yaml:{line_of(path, '{name: Moderate')}:" in problem
    assert "gap between band 'Weak'" in problem


def test_bad_params_and_unknown_insight_type(rules_copy: Path) -> None:
    risks = rules_copy / "risks.yaml"
    replace(risks, "params: {days: 30}", "params: {days: soon}")
    replace(risks, "insight_type: competitive_threat", "insight_type: gossip")
    problems = validate_rules_dir(rules_copy)
    assert len(problems) == 2
    assert any(f"risks.yaml:{line_of(risks, 'days: soon')}:" in p and "days" in p for p in problems)
    assert any(f"risks.yaml:{line_of(risks, 'gossip')}:" in p for p in problems)


def test_changing_a_weight_in_yaml_changes_scores_without_code(rules_copy: Path) -> None:
    data = builders.dataset(calls=[])
    before = DealQualityAnalyzer(load_deal_rules(rules_copy)).analyze("r", data)
    overall = rules_copy / "deal_quality.yaml"
    replace(overall, "deal_health: 35", "deal_health: 5")
    replace(overall, "data_completeness: 15", "data_completeness: 45")
    after = DealQualityAnalyzer(load_deal_rules(rules_copy)).analyze("r", data)
    scores = before.analysis_results.scores
    expected = round(
        (
            5 * scores["deal_health"]
            + 25 * scores["icp_fit"]
            + 25 * scores["technical_fit"]
            + 45 * scores["data_completeness"]
        )
        / 100
    )
    assert after.analysis_results.scores["deal_quality"] == expected
    assert after.analysis_results.scores["deal_quality"] != scores["deal_quality"]


def test_changing_a_threshold_in_yaml_changes_flags(rules_copy: Path) -> None:
    data = builders.dataset(calls=builders.healthy_calls()[:3])  # last call 22 days before as_of
    before = DealQualityAnalyzer(load_deal_rules(rules_copy)).analyze("r", data)
    assert "no_recent_customer_call" not in {f.code for f in before.analysis_results.flags}
    replace(rules_copy / "risks.yaml", "params: {days: 30}", "params: {days: 14}")
    after = DealQualityAnalyzer(load_deal_rules(rules_copy)).analyze("r", data)
    assert "no_recent_customer_call" in {f.code for f in after.analysis_results.flags}
