"""Business rules as versioned YAML files, validated at start-up (see `loader`)."""

from services.decision_agent.rules.loader import (
    RuleFile,
    RuleFileError,
    RuleIssue,
    RuleProblem,
    load_rule_file,
    load_rules_dir,
    register_rule_kind,
    rule_file_paths,
    rule_kinds,
    validate_rules_dir,
)

__all__ = [
    "RuleFile",
    "RuleFileError",
    "RuleIssue",
    "RuleProblem",
    "load_rule_file",
    "load_rules_dir",
    "register_rule_kind",
    "rule_file_paths",
    "rule_kinds",
    "validate_rules_dir",
]
