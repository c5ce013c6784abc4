"""The prompt files of a folder, validated and compiled once at start-up.

A bad file stops the process with every problem listed (file:line), as the rule files do:
`revops rules validate services/decision_agent/prompts` prints the same list.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Template

from services.common.rulefiles import (
    RuleFileError,
    RuleProblem,
    load_rule_file,
    rule_file_paths,
)
from services.decision_agent.prompts.rule_models import PromptFile, template_environment

DEFAULT_PROMPTS_DIR = Path(__file__).parent

#: Prompt ids the AI layer renders, and the output each must produce.
REQUIRED_PROMPTS = {
    "call_understanding": "call_understanding",
    "deal_narrative": "narrative",
    "account_narrative": "narrative",
}


@dataclass(frozen=True)
class Prompt:
    spec: PromptFile
    version: str  # "<revision>-<sha256 of the file, 8 hex digits>"
    _system: Template
    _user: Template

    @property
    def id(self) -> str:
        return self.spec.id

    def render(self, **variables: Any) -> tuple[str, str]:
        """(system, user) texts."""
        return self._system.render(**variables).strip(), self._user.render(**variables).strip()


def _declared_id(path: Path) -> str:
    """The ``id:`` a prompt file declares, read leniently (the file may be invalid)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return path.stem
    return str(data.get("id", path.stem)) if isinstance(data, dict) else path.stem


class PromptCatalog:
    def __init__(self, prompts: dict[str, Prompt]) -> None:
        self._prompts = prompts

    def __getitem__(self, prompt_id: str) -> Prompt:
        return self._prompts[prompt_id]

    def versions(self) -> dict[str, str]:
        return {pid: p.version for pid, p in sorted(self._prompts.items())}

    @classmethod
    def load(cls, folder: Path = DEFAULT_PROMPTS_DIR) -> PromptCatalog:
        """Every prompt file below ``folder``; raises RuleFileError listing all problems."""
        folder = Path(folder)
        if not folder.is_dir():
            raise RuleFileError([RuleProblem(folder, None, None, "", "no such prompts folder")])
        environment = template_environment()
        prompts: dict[str, Prompt] = {}
        problems: list[RuleProblem] = []
        invalid: set[str] = set()  # ids of files already reported: not "missing" as well
        for path in rule_file_paths(folder):
            try:
                spec = load_rule_file(path, PromptFile)
            except RuleFileError as exc:
                problems.extend(exc.problems)
                invalid.add(_declared_id(path))
                continue
            if spec.id in prompts:
                problems.append(
                    RuleProblem(path, None, None, "id", f"duplicate prompt {spec.id!r}")
                )
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
            prompts[spec.id] = Prompt(
                spec,
                f"{spec.revision}-{digest}",
                environment.from_string(spec.system),
                environment.from_string(spec.user),
            )
        for prompt_id, output in REQUIRED_PROMPTS.items():
            found = prompts.get(prompt_id)
            if found is None and prompt_id in invalid:
                continue
            if found is None:
                problems.append(
                    RuleProblem(folder, None, None, "", f"missing prompt {prompt_id!r}")
                )
            elif found.spec.output != output:
                problems.append(
                    RuleProblem(folder, None, None, prompt_id, f"prompt must have output: {output}")
                )
        if problems:
            raise RuleFileError(problems)
        return cls(prompts)
