"""Schema of a prompt file (kind ``prompt``): a system and a user template (Jinja2) and the
tool the model must call to answer.

``revision`` is bumped by whoever changes the wording; the version recorded with each
analysis is ``<revision>-<first 8 hex digits of the file's sha256>``, so an edit that forgot
the bump still shows.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field

from services.common.rulefiles import RuleFile, RuleIssue, register_rule_kind

#: The variables each kind of prompt is rendered with (services/decision_agent/ai).
TEMPLATE_VARIABLES: dict[str, frozenset[str]] = {
    "call_understanding": frozenset({"call", "participants", "classes"}),
    "narrative": frozenset({"analysis_type", "subject", "facts_json", "knowledge"}),
}


def template_environment() -> SandboxedEnvironment:
    """Sandboxed (a prompt file cannot reach Python), strict (a misspelt variable fails at
    render time instead of vanishing), no HTML escaping (this is text for a model)."""
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@register_rule_kind
class PromptFile(RuleFile):
    rule_kind: ClassVar[str] = "prompt"

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    revision: int = Field(ge=1)
    description: str = Field(min_length=1)
    output: Literal["call_understanding", "narrative"]
    tool_name: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")
    tool_description: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=64, le=16384)
    system: str = Field(min_length=1)
    user: str = Field(min_length=1)

    def issues(self) -> list[RuleIssue]:
        problems: list[RuleIssue] = []
        environment = template_environment()
        allowed = TEMPLATE_VARIABLES[self.output]
        for name in ("system", "user"):
            source = getattr(self, name)
            try:
                tree = environment.parse(source)
            except TemplateSyntaxError as exc:
                problems.append(RuleIssue((name,), f"template line {exc.lineno}: {exc.message}"))
                continue
            unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
            if unknown:
                problems.append(
                    RuleIssue(
                        (name,),
                        f"unknown template variable(s) {', '.join(unknown)}; a {self.output} "
                        f"prompt has {', '.join(sorted(allowed))}",
                    )
                )
        return problems
