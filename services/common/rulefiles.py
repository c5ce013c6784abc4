"""Generic loader for versioned YAML rule files validated by pydantic models.

Conventions every rule file follows:

* the top level is a mapping with ``kind: <name>`` (which model validates it) and
  ``version: <int>`` (the rules-format version; today only ``1``);
* the model is a subclass of :class:`RuleFile` registered under its kind with
  :func:`register_rule_kind` when its module is imported. Nothing is discovered on disk: a
  service registers the families it imports, and `revops rules validate` lists every family
  of the product (`services/cli/rules.py`). The rule files are described in docs/rules.md.

Every problem is reported at once, each with its file and line: YAML syntax errors,
duplicate keys, every pydantic validation error (its location mapped back to the YAML node
through the node marks) and the model's own semantic checks (:meth:`RuleFile.issues`, e.g.
weights that do not add up, overlapping bands).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

Loc = tuple[str | int, ...]

RULE_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class RuleProblem:
    """One problem in one rule file; ``line``/``column`` are 1-based."""

    file: Path
    line: int | None
    column: int | None
    location: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        if self.column is not None and self.line is not None:
            where += f":{self.column}"
        what = f"{self.location}: {self.message}" if self.location else self.message
        return f"{where}: {what}"


class RuleFileError(Exception):
    """Raised when one or more rule files are invalid; lists every problem found."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in rule files:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class RuleIssue(NamedTuple):
    """A semantic problem found by a model, located by its path inside the document."""

    loc: Loc
    message: str


class RuleFile(BaseModel):
    """Base of every rule-file model: ``kind`` + ``version`` header, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_kind: ClassVar[str] = ""
    supported_versions: ClassVar[tuple[int, ...]] = (1,)

    kind: str
    version: int

    @field_validator("kind")
    @classmethod
    def _kind_matches_model(cls, value: str) -> str:
        if cls.rule_kind and value != cls.rule_kind:
            raise ValueError(f"this file must declare kind: {cls.rule_kind} (got {value!r})")
        return value

    @field_validator("version")
    @classmethod
    def _version_supported(cls, value: int) -> int:
        if value not in cls.supported_versions:
            supported = ", ".join(str(v) for v in cls.supported_versions)
            raise ValueError(f"unsupported rules version {value}; supported: {supported}")
        return value

    def issues(self) -> list[RuleIssue]:
        """Cross-field checks run after structural validation; override in subclasses."""
        return []


T = TypeVar("T", bound=BaseModel)
R = TypeVar("R", bound=type[RuleFile])

_REGISTRY: dict[str, type[RuleFile]] = {}


def register_rule_kind(model: R) -> R:
    """Class decorator: register ``model`` under its ``rule_kind``."""
    kind = model.rule_kind
    if not kind:
        raise ValueError(f"{model.__name__} has no rule_kind")
    existing = _REGISTRY.get(kind)
    if existing is not None and existing is not model:
        existing_name = f"{existing.__module__}.{existing.__qualname__}"
        new_name = f"{model.__module__}.{model.__qualname__}"
        if existing_name != new_name:  # a module reload re-registers the same class name
            raise ValueError(f"rule kind {kind!r} already registered by {existing_name}")
    _REGISTRY[kind] = model
    return model


def rule_kinds() -> dict[str, type[RuleFile]]:
    """The registry kind -> model: the families whose modules were imported."""
    return dict(_REGISTRY)


# ---------------------------------------------------------------- YAML with positions


def _compose(path: Path) -> tuple[yaml.Node | None, Any, list[RuleProblem]]:
    """Parse ``path`` into (node tree, plain data, problems); data is None on syntax errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, None, [RuleProblem(path, None, None, "", f"cannot read file: {exc}")]
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        return None, None, [RuleProblem(path, line, column, "", f"invalid YAML: {reason}")]
    finally:
        loader.dispose()
    return node, data, _duplicate_keys(path, node, ())


def _duplicate_keys(path: Path, node: yaml.Node | None, loc: Loc) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(
                    _problem_at(
                        path,
                        key_node,
                        (*loc, key),
                        f"duplicate key (first defined on line {seen[key]})",
                    )
                )
            else:
                seen[key] = key_node.start_mark.line + 1
            problems.extend(_duplicate_keys(path, value_node, (*loc, key)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(path, item, (*loc, index)))
    return problems


def _node_at(root: yaml.Node | None, loc: Loc) -> yaml.Node | None:
    """The deepest YAML node on ``loc`` (a mapping step resolves to the key's node).

    Steps that do not exist in the document (a missing field, pydantic's union-tag
    segments) are skipped, so the problem points at the closest enclosing node.
    """
    current = root
    best = root
    for step in loc:
        if isinstance(current, yaml.MappingNode):
            match = next(
                ((k, v) for k, v in current.value if str(k.value) == str(step)),
                None,
            )
            if match is None:
                continue
            best, current = match[0], match[1]
        elif (
            isinstance(current, yaml.SequenceNode)
            and isinstance(step, int)
            and 0 <= step < len(current.value)
        ):
            current = current.value[step]
            best = current
    return best


def _problem_at(path: Path, node: yaml.Node | None, loc: Loc, message: str) -> RuleProblem:
    line = node.start_mark.line + 1 if node is not None else None
    column = node.start_mark.column + 1 if node is not None else None
    return RuleProblem(path, line, column, ".".join(str(s) for s in loc), message)


def _validation_problems(
    path: Path, root: yaml.Node | None, error: ValidationError
) -> list[RuleProblem]:
    problems = []
    for item in error.errors(include_url=False):
        loc: Loc = tuple(item["loc"])
        problems.append(_problem_at(path, _node_at(root, loc), loc, item["msg"]))
    return problems


def _issue_problems(
    path: Path, root: yaml.Node | None, issues: Iterable[RuleIssue]
) -> list[RuleProblem]:
    return [
        _problem_at(path, _node_at(root, issue.loc), issue.loc, issue.message) for issue in issues
    ]


# ------------------------------------------------------------------------ public API


def load_rule_file(path: Path, model: type[T]) -> T:
    """Read the YAML file at ``path`` and validate it with ``model``.

    Raises :class:`RuleFileError` listing every problem with file and line. When ``model``
    is a :class:`RuleFile`, its semantic :meth:`RuleFile.issues` are checked too.
    """
    path = Path(path)
    root, data, problems = _compose(path)
    if problems and data is None:
        raise RuleFileError(problems)
    if not isinstance(data, dict):
        problems.append(
            _problem_at(path, root, (), "a rule file must be a mapping with kind: and version:")
        )
        raise RuleFileError(problems)
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        raise RuleFileError([*problems, *_validation_problems(path, root, exc)]) from None
    if isinstance(result, RuleFile):
        problems.extend(_issue_problems(path, root, result.issues()))
    if problems:
        raise RuleFileError(problems)
    return result


def rule_file_paths(path: Path) -> list[Path]:
    """Every rule file at ``path`` (the file itself, or all YAML files below a folder)."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in RULE_FILE_SUFFIXES and p.is_file())


def load_rules_dir(
    path: Path,
    only: Iterable[str] | None = None,
    models: dict[str, type[RuleFile]] | None = None,
) -> list[RuleFile]:
    """Load every rule file below ``path`` with the model its ``kind:`` names.

    With ``only``, files of other kinds (or without a kind) are skipped: a service loads its
    own rule families and leaves the rest of a shared folder to their owners. ``models``
    (kind -> model) skips the discovery of every rule family: a service that needs one kind
    (the data agent, the stage model) does not import the others' code.
    Raises :class:`RuleFileError` with the problems of all files together.
    """
    kinds = rule_kinds() if models is None else models
    wanted = set(only) if only is not None else None
    loaded: list[RuleFile] = []
    problems: list[RuleProblem] = []
    paths = rule_file_paths(path)
    if not Path(path).exists():
        raise RuleFileError([RuleProblem(Path(path), None, None, "", "no such file or folder")])
    for file_path in paths:
        root, data, syntax = _compose(file_path)
        if data is None and syntax:
            problems.extend(syntax)
            continue
        kind_node = _node_at(root, ("kind",))
        kind = data.get("kind") if isinstance(data, dict) else None
        if wanted is not None and kind not in wanted:
            continue
        if not isinstance(kind, str) or kind_node is root:
            known = ", ".join(sorted(kinds)) or "none registered"
            problems.append(
                _problem_at(file_path, root, (), f"missing top-level kind: (known kinds: {known})")
            )
            continue
        model = kinds.get(kind)
        if model is None:
            known = ", ".join(sorted(kinds)) or "none registered"
            problems.append(
                _problem_at(
                    file_path, kind_node, ("kind",), f"unknown kind {kind!r} (known: {known})"
                )
            )
            continue
        try:
            loaded.append(load_rule_file(file_path, model))
        except RuleFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleFileError(problems)
    return loaded


def validate_rules_dir(path: Path) -> list[str]:
    """Every problem in every rule file below ``path``, as ``file:line:col: message`` lines."""
    try:
        load_rules_dir(path)
    except RuleFileError as exc:
        return [str(p) for p in exc.problems]
    return []
