"""Knowledge documents cut into passages: markdown playbooks by section, rule files by rule.

A playbook is a markdown file with a front-matter header:

    ---
    title: Competitive displacement
    applies_to: [deal_quality]        # deal_quality | consumption
    ---
    intro ...
    ## Snowflake
    ...

Each ``##`` section is a passage (``<file>#<section-slug>``) that carries the document's
title; text before the first section is one more. A rule file (YAML) gives one passage per
item of a top-level list (a risk rule, a rubric category, a flag) or per top-level key,
cut from the file's own text so its comments come along. Problems are reported like the
rule files' (file:line: message), all at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from services.common.rulefiles import RuleFileError, RuleProblem, rule_file_paths

APPLIES_TO = ("deal_quality", "consumption")
MAX_PASSAGE_CHARS = 2400
SPLIT_LINES = 30  # a longer list or map of rules is cut into one passage per rule
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
_SECTION = re.compile(r"^## +(.+?)\s*$", re.MULTILINE)
_NAME_KEYS = ("code", "name", "id", "factor", "score", "metric")


@dataclass(frozen=True)
class Chunk:
    id: str
    title: str
    text: str
    applies_to: tuple[str, ...] = APPLIES_TO


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _markdown_chunks(path: Path, name: str, problems: list[RuleProblem]) -> list[Chunk]:
    text = path.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(text)
    if match is None:
        problems.append(RuleProblem(path, 1, 1, "", "missing front matter (--- title: ... ---)"))
        return []
    try:
        header = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        problems.append(RuleProblem(path, 2, None, "", f"invalid front matter: {exc}"))
        return []
    if not isinstance(header, dict) or not str(header.get("title") or "").strip():
        problems.append(RuleProblem(path, 2, None, "title", "front matter needs a title"))
        return []
    applies = header.get("applies_to", list(APPLIES_TO))
    if not isinstance(applies, list) or any(a not in APPLIES_TO for a in applies):
        problems.append(
            RuleProblem(path, 2, None, "applies_to", f"applies_to must list some of {APPLIES_TO}")
        )
        return []
    unknown = sorted(set(header) - {"title", "applies_to"})
    if unknown:
        problems.append(RuleProblem(path, 2, None, "", f"unknown front-matter keys {unknown}"))
    title = str(header["title"]).strip()
    body = text[match.end() :]
    starts = [(m.start(), m.group(1)) for m in _SECTION.finditer(body)]
    pieces: list[tuple[str, str]] = []
    head = body[: starts[0][0] if starts else len(body)].strip()
    if head:
        pieces.append(("", head))
    for index, (start, heading) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(body)
        pieces.append((heading, body[start:end].strip()))
    if not pieces:
        problems.append(RuleProblem(path, None, None, "", "playbook has no text"))
    seen: set[str] = set()
    chunks = []
    for heading, piece in pieces:
        anchor = slug(heading) or "overview"
        if anchor in seen:
            problems.append(RuleProblem(path, None, None, heading, "duplicate section heading"))
            continue
        seen.add(anchor)
        chunks.append(
            Chunk(
                f"{name}#{anchor}",
                f"{title}: {heading}" if heading else title,
                piece[:MAX_PASSAGE_CHARS],
                tuple(applies),
            )
        )
    return chunks


def _leading_comment(lines: list[str]) -> str:
    comment = []
    for line in lines:
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("# ").rstrip())
    return " ".join(comment)


def _spans(node: yaml.Node) -> int:
    return node.end_mark.line - node.start_mark.line


def _items(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node, str]] | None:
    """(first node, last node, label) of each rule in a list or map of rules, or None when
    the node is not one."""
    if isinstance(node, yaml.SequenceNode) and all(
        isinstance(item, yaml.MappingNode) for item in node.value
    ):
        return [
            (item, item, next((str(v.value) for k, v in item.value if k.value in _NAME_KEYS), ""))
            for item in node.value
        ]
    if isinstance(node, yaml.MappingNode) and all(
        isinstance(value, yaml.MappingNode) for _, value in node.value
    ):
        return [(key, value, str(key.value)) for key, value in node.value]
    return None


def _rule_chunks(path: Path, name: str, problems: list[RuleProblem]) -> list[Chunk]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(
            RuleProblem(path, mark.line + 1 if mark else None, None, "", f"invalid YAML: {exc}")
        )
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    about = _leading_comment(lines)
    kind = next((str(v.value) for k, v in root.value if k.value == "kind"), path.stem)
    applies = ("consumption",) if "consumption" in kind else ("deal_quality",)
    chunks = []

    def cut(first: yaml.Node, last: yaml.Node, key: str, label: str) -> None:
        # A block node ends where the next one starts (column 0 of the following line).
        end = last.end_mark.line + (1 if last.end_mark.column > 0 else 0)
        piece = "\n".join(lines[first.start_mark.line : end]).strip()
        body = f"{about}\n{piece}" if about else piece
        chunks.append(Chunk(f"{name}#{key}", f"{kind}: {label}", body[:MAX_PASSAGE_CHARS], applies))

    scalars: list[tuple[yaml.Node, yaml.Node]] = []  # consecutive one-line settings

    def flush_scalars() -> None:
        if scalars:
            first, last = scalars[0][0], scalars[-1][1]
            cut(first, last, f"settings.{slug(str(first.value))}", "settings")
            scalars.clear()

    for key_node, value in root.value:
        key = str(key_node.value)
        if key in ("kind", "version"):
            continue
        if isinstance(value, yaml.ScalarNode):
            scalars.append((key_node, value))
            continue
        flush_scalars()
        items = _items(value) if _spans(value) > SPLIT_LINES else None
        if items is None:
            cut(key_node, value, key, key)
            continue
        for first, item, label in items:
            cut(first, item, f"{key}.{slug(label)}", f"{key} {label}")
    flush_scalars()
    return chunks


def load_chunks(knowledge_dir: Path | None, rule_dirs: list[Path]) -> list[Chunk]:
    """Passages of every playbook below ``knowledge_dir`` (README.md excepted) and every
    rule file below ``rule_dirs``; raises RuleFileError with every problem found."""
    problems: list[RuleProblem] = []
    chunks: list[Chunk] = []
    if knowledge_dir is not None:
        if not knowledge_dir.is_dir():
            raise RuleFileError(
                [RuleProblem(knowledge_dir, None, None, "", "no such knowledge folder")]
            )
        for path in sorted(knowledge_dir.rglob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            name = path.relative_to(knowledge_dir).as_posix()
            chunks.extend(_markdown_chunks(path, name, problems))
    for folder in rule_dirs:
        for path in rule_file_paths(folder):
            name = f"rules/{path.relative_to(folder).as_posix()}" if folder.is_dir() else path.name
            chunks.extend(_rule_chunks(path, name, problems))
    seen: set[str] = set()
    for chunk in chunks:
        if chunk.id in seen:
            problems.append(RuleProblem(Path(chunk.id), None, None, "", "duplicate passage id"))
        seen.add(chunk.id)
    if problems:
        raise RuleFileError(problems)
    return chunks
