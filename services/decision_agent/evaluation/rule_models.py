"""Schema of the labelled excerpt set (kind ``conversation_eval_set``), validated like a
rule file: `revops rules validate services/decision_agent/evaluation` lists every problem
with file and line."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from services.common.rulefiles import RuleFile, RuleIssue, register_rule_kind
from services.decision_agent.ai.outputs import STANCES
from services.decision_agent.conversation.rule_models import (
    OBJECTION_CLASSES,
    TECHNICAL_REQUIREMENTS,
)

TAGS = (
    "objection",
    "competitor",
    "requirement",
    "stakeholder",
    "next_step",
    "sarcasm",
    "negation",
    "none",
)
_SLUG = re.compile(r"^[a-z0-9_]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    objections: list[str] = Field(default_factory=list)
    competitors: list[str] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)
    stances: dict[str, str] = Field(default_factory=dict, description="e-mail -> stance")
    next_step: bool = False


class Excerpt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    tags: list[str] = Field(min_length=1)
    text: str = Field(min_length=10)
    people: dict[str, str] = Field(
        default_factory=dict, description="Customer participants: e-mail -> title"
    )
    expect: Expectation


@register_rule_kind
class ConversationEvalSet(RuleFile):
    rule_kind: ClassVar[str] = "conversation_eval_set"

    excerpts: list[Excerpt] = Field(min_length=1)

    def issues(self) -> list[RuleIssue]:
        problems: list[RuleIssue] = []
        seen: set[str] = set()
        for n, excerpt in enumerate(self.excerpts):
            where: tuple[str | int, ...] = ("excerpts", n)
            if excerpt.id in seen:
                problems.append(RuleIssue((*where, "id"), f"duplicate id {excerpt.id!r}"))
            seen.add(excerpt.id)
            for tag in excerpt.tags:
                if tag not in TAGS:
                    problems.append(RuleIssue((*where, "tags"), f"unknown tag {tag!r}; {TAGS}"))
            for email in excerpt.people:
                if not _EMAIL.match(email):
                    problems.append(RuleIssue((*where, "people"), f"not an e-mail: {email!r}"))
            expect = excerpt.expect
            checks = (
                ("objections", expect.objections, OBJECTION_CLASSES),
                ("requirements", expect.requirements, TECHNICAL_REQUIREMENTS),
                ("stances", list(expect.stances.values()), STANCES),
            )
            for name, labels, known in checks:
                for label in labels:
                    if label not in known:
                        problems.append(
                            RuleIssue((*where, "expect", name), f"unknown {name} {label!r}")
                        )
            for label in expect.competitors:
                if not _SLUG.match(label):
                    problems.append(
                        RuleIssue((*where, "expect", "competitors"), f"not lower_case: {label!r}")
                    )
            for email in expect.stances:
                if email not in excerpt.people:
                    problems.append(
                        RuleIssue((*where, "expect", "stances"), f"{email} is not in people")
                    )
            if excerpt.people and set(excerpt.people) != set(expect.stances):
                problems.append(
                    RuleIssue((*where, "expect", "stances"), "every listed person needs a stance")
                )
        return problems
