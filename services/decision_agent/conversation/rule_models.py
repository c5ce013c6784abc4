"""Schema of the conversation lexicon data file (kind ``conversation_lexicon``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.common.rulefiles import RuleFile, RuleIssue, register_rule_kind

Phrases = list[str]

#: Objection classes named in docs/domain.md §3; the lexicon must cover exactly these.
OBJECTION_CLASSES = (
    "happy_with_current_tool",
    "no_budget",
    "no_time",
    "lock_in",
    "not_technical_enough",
    "performance_not_a_priority",
)
TECHNICAL_REQUIREMENTS = ("latency", "concurrency", "data_volume", "integrations")
STAKEHOLDER_ROLES = ("economic_buyer", "executive", "technical", "procurement")


@register_rule_kind
class ConversationLexicon(RuleFile):
    rule_kind: ClassVar[str] = "conversation_lexicon"

    snippet_chars: int = Field(default=80, ge=20, le=400)
    technical_requirements: dict[str, Phrases]
    objections: dict[str, Phrases]
    competitors: dict[str, Phrases]
    next_steps: Phrases
    stakeholder_roles: dict[str, Phrases]

    def issues(self) -> list[RuleIssue]:
        problems: list[RuleIssue] = []
        expected = {
            "technical_requirements": (self.technical_requirements, TECHNICAL_REQUIREMENTS),
            "objections": (self.objections, OBJECTION_CLASSES),
            "stakeholder_roles": (self.stakeholder_roles, STAKEHOLDER_ROLES),
        }
        for section, (mapping, known) in expected.items():
            for label in mapping:
                if label not in known:
                    problems.append(
                        RuleIssue((section, label), f"unknown {section} class; known: {known}")
                    )
            for label in known:
                if label not in mapping:
                    problems.append(RuleIssue((section,), f"missing class {label!r}"))
        for section, mapping in (
            ("technical_requirements", self.technical_requirements),
            ("objections", self.objections),
            ("competitors", self.competitors),
            ("stakeholder_roles", self.stakeholder_roles),
        ):
            for label, phrases in mapping.items():
                if not phrases or any(not p.strip() for p in phrases):
                    problems.append(RuleIssue((section, label), "needs non-empty phrases"))
        return problems
