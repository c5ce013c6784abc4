"""The generic rule-file loader reports every problem with its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from services.common.rulefiles import (
    RuleFile,
    RuleFileError,
    RuleIssue,
    load_rule_file,
    register_rule_kind,
    validate_rules_dir,
)


@register_rule_kind
class ToyRules(RuleFile):
    rule_kind: ClassVar[str] = "toy_rules_for_tests"

    total: int
    weights: dict[str, int]

    def issues(self) -> list[RuleIssue]:
        if sum(self.weights.values()) != self.total:
            return [RuleIssue(("weights",), f"weights add up to {sum(self.weights.values())}")]
        return []


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.yaml",
        "kind: toy_rules_for_tests\nversion: 1\ntotal: 3\nweights: {a: 1, b: 2}\n",
    )
    rules = load_rule_file(path, ToyRules)
    assert rules.weights == {"a": 1, "b": 2}


def test_every_structural_problem_listed_with_line(tmp_path: Path) -> None:
    text = (
        "kind: toy_rules_for_tests\n"  # 1
        "version: 2\n"  # 2
        "total: many\n"  # 3
        "weights:\n"  # 4
        "  a: 1\n"  # 5
        "  b: lots\n"  # 6
        "surprise: true\n"  # 7
    )
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path, ToyRules)
    lines = {(p.location, p.line) for p in caught.value.problems}
    assert ("version", 2) in lines
    assert ("total", 3) in lines
    assert ("weights.b", 6) in lines
    assert ("surprise", 7) in lines
    assert all(p.file == path for p in caught.value.problems)
    assert f"{path}:6" in str(caught.value)


def test_semantic_issue_points_at_its_key(tmp_path: Path) -> None:
    path = write(
        tmp_path, "sum.yaml", "kind: toy_rules_for_tests\nversion: 1\ntotal: 5\nweights:\n  a: 1\n"
    )
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path, ToyRules)
    [problem] = caught.value.problems
    assert problem.line == 4
    assert "add up to 1" in problem.message


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.yaml", "kind: toy_rules_for_tests\nversion: 1\nweights: [a, b\n")
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path, ToyRules)
    assert caught.value.problems[0].line is not None
    assert "invalid YAML" in caught.value.problems[0].message


def test_duplicate_keys_reported(tmp_path: Path) -> None:
    text = "kind: toy_rules_for_tests\nversion: 1\ntotal: 1\ntotal: 1\nweights: {a: 1}\n"
    path = write(tmp_path, "dup.yaml", text)
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path, ToyRules)
    [problem] = caught.value.problems
    assert problem.line == 4
    assert "duplicate key" in problem.message


def test_validate_dir_reports_unknown_and_missing_kind(tmp_path: Path) -> None:
    write(
        tmp_path, "good.yaml", "kind: toy_rules_for_tests\nversion: 1\ntotal: 1\nweights: {a: 1}\n"
    )
    write(tmp_path, "unknown.yaml", "version: 1\nkind: no_such_kind\n")
    write(tmp_path, "nokind.yml", "version: 1\n")
    problems = validate_rules_dir(tmp_path)
    assert len(problems) == 2
    assert any("unknown.yaml:2" in p and "no_such_kind" in p for p in problems)
    assert any("nokind.yml:1" in p and "kind" in p for p in problems)
