"""Import mappings: how a CRM export's files and columns become warehouse tables (as data).

A mapping (YAML, rule kind ``warehouse_mapping``; docs/import.md) names its source files by
pattern and, per warehouse table, one or more row blocks: which source they come from, an
optional condition, and for each warehouse column where its value comes from (a column, a
constant or a template), with value maps (e.g. the export's stage names onto the stage
model), date formats and a scale factor. Several blocks of one table are stacked, which is
how rows are derived (stage history from engage/close dates, a product catalog from the
product names). Ready-made mappings live in ``mappings/`` and are named by their file stem;
a mapping may ``extends:`` one and override parts of it (mappings are merged key by key).

`revops warehouse load` uses the identity mapping: one file per table, named after it, with
the warehouse's own column names.
"""

from __future__ import annotations

import copy
import string
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.common.rulefiles import (
    RuleFile,
    RuleFileError,
    RuleIssue,
    RuleProblem,
    load_rule_file,
    register_rule_kind,
)
from services.data_agent.warehouse.schema import TABLES, Table

PRESETS_DIR = Path(__file__).with_name("mappings")
#: Tables an import may fill (the row-source and meta tables are the loader's own).
IMPORT_TABLES = tuple(t for t in TABLES if t not in ("warehouse_row_source", "warehouse_meta"))
#: A required column that may be left out: the loader fills it from another column.
FALLBACKS = {
    ("opportunity_d", "name"): "opportunity_id",
    ("salesforce_account_d", "sf_account_name"): "sf_account_id",
    ("product_d", "product_name"): "product_id",
}
#: A required column that may be left out: the loader fills in this value.
DEFAULTS = {("gong_call_f", "is_deleted"): "FALSE"}
#: Columns the loader derives when a stage history leaves them out (see staging.py).
DERIVED = {
    ("opportunity_stage_f", "from_stage"),
    ("opportunity_stage_f", "ended_at_ts"),
    ("opportunity_stage_f", "days_in_stage"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ValueSpec(_Strict):
    """Where one warehouse column's value comes from (exactly one of column, constant,
    template); a plain string in YAML is a column name, a plain list a column list."""

    column: str | list[str] | None = Field(
        default=None, description="Source column (a list: the first non-empty one)"
    )
    constant: str | float | int | bool | None = None
    template: str | None = Field(default=None, description="e.g. '{account} - {product}'")
    values: str | dict[str, str | None] | None = Field(
        default=None, description="A value map (inline, or the name of one in value_maps)"
    )
    format: str | list[str] | None = Field(default=None, description="strptime date formats")
    multiply: float | None = Field(default=None, description="Scale a number (e.g. millions)")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"column": data} if isinstance(data, str | list) else data

    @model_validator(mode="after")
    def _one_source(self) -> ValueSpec:
        given = [
            n
            for n in ("column", "constant", "template")
            if getattr(self, n) is not None or (n in self.model_fields_set and n == "constant")
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of column, constant, template")
        return self

    @property
    def columns(self) -> list[str]:
        if isinstance(self.column, str):
            return [self.column]
        return list(self.column or [])

    def template_columns(self) -> list[str]:
        if self.template is None:
            return []
        return [f for _, f, _, _ in string.Formatter().parse(self.template) if f]

    def source_columns(self) -> list[str]:
        return self.columns + self.template_columns()


class When(_Strict):
    """A row block applies to the source rows where every condition holds."""

    present: str | list[str] | None = Field(default=None, description="Column(s) not empty")
    column: str | None = None
    equals: list[str] | None = Field(default=None, description="Value of `column` in the list")

    @model_validator(mode="after")
    def _complete(self) -> When:
        if (self.column is None) != (self.equals is None):
            raise ValueError("`column` and `equals` go together")
        if self.present is None and self.column is None:
            raise ValueError("give `present` or `column` + `equals`")
        return self

    @property
    def present_columns(self) -> list[str]:
        if isinstance(self.present, str):
            return [self.present]
        return list(self.present or [])


class Block(_Strict):
    """Rows of one warehouse table taken from one source."""

    source: str = Field(alias="from")
    when: When | None = None
    distinct: bool = Field(default=False, description="One row per distinct key")
    only_if_missing: str | None = Field(
        default=None, description="Use this block only when the named source has no file"
    )
    columns: dict[str, ValueSpec]


class Source(_Strict):
    file: str = Field(description="File name or glob pattern inside the import folder")
    aliases: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Column name -> other headers that mean the same (first one present wins)",
    )
    required: bool = True
    multiple: bool = Field(default=False, description="Stack every matching file")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    stop_at_blank_line: bool = Field(
        default=False, description="The data ends at the first blank line (report footers)"
    )


class NumberFormat(_Strict):
    """How numbers are written: '$1,234.50', 'USD 1,234.50', '1.234,50 €', '12%'."""

    thousands: str | None = ","
    decimal: str = "."


@register_rule_kind
class ImportMapping(RuleFile):
    """An import mapping (docs/import.md)."""

    rule_kind: ClassVar[str] = "warehouse_mapping"

    name: str | None = None
    description: str | None = None
    extends: str | None = None
    date_formats: list[str] = Field(default_factory=list)
    number_format: NumberFormat | None = None
    value_maps: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    sources: dict[str, Source] = Field(default_factory=dict)
    tables: dict[str, list[Block]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _single_block(cls, data: Any) -> Any:
        """A table may be given as one block instead of a list of blocks."""
        if isinstance(data, dict) and isinstance(data.get("tables"), dict):
            data = dict(data)
            data["tables"] = {
                k: [v] if isinstance(v, dict) else v for k, v in data["tables"].items()
            }
        return data

    def issues(self) -> list[RuleIssue]:
        if self.extends is not None:
            return []  # a partial override: checked once merged with what it extends
        return mapping_issues(self)


def mapping_issues(mapping: ImportMapping) -> list[RuleIssue]:
    """Tables and columns exist, required columns are given, names resolve."""
    issues: list[RuleIssue] = []
    if not mapping.sources:
        issues.append(RuleIssue(("sources",), "a mapping needs at least one source"))
    if not mapping.tables:
        issues.append(RuleIssue(("tables",), "a mapping needs at least one table"))
    for name, blocks in mapping.tables.items():
        if name not in IMPORT_TABLES:
            issues.append(
                RuleIssue(
                    ("tables", name),
                    f"no warehouse table {name!r}; tables: {', '.join(IMPORT_TABLES)}",
                )
            )
            continue
        table = TABLES[name]
        for i, block in enumerate(blocks):
            issues.extend(_block_issues(mapping, table, ("tables", name, i), block))
    for name, values in mapping.value_maps.items():
        folded = [k.strip().casefold() for k in values]
        dupes = sorted({k for k in folded if folded.count(k) > 1})
        if dupes:
            issues.append(
                RuleIssue(("value_maps", name), f"keys differ only by case or spaces: {dupes}")
            )
    return issues


def _block_issues(
    mapping: ImportMapping, table: Table, loc: tuple[str | int, ...], block: Block
) -> list[RuleIssue]:
    issues: list[RuleIssue] = []
    for ref, where in ((block.source, "from"), (block.only_if_missing, "only_if_missing")):
        if ref is not None and ref not in mapping.sources:
            issues.append(
                RuleIssue(
                    (*loc, where),
                    f"no source {ref!r}; sources: {', '.join(mapping.sources) or 'none'}",
                )
            )
    known = set(table.column_names)
    for column, spec in block.columns.items():
        if column not in known:
            issues.append(
                RuleIssue(
                    (*loc, "columns", column),
                    f"{table.name} has no column {column!r}; columns: "
                    f"{', '.join(table.column_names)}",
                )
            )
        if isinstance(spec.values, str) and spec.values not in mapping.value_maps:
            issues.append(
                RuleIssue(
                    (*loc, "columns", column, "values"),
                    f"no value map {spec.values!r}; value maps: "
                    f"{', '.join(mapping.value_maps) or 'none'}",
                )
            )
    for column in required_columns(table):
        if column not in block.columns:
            issues.append(
                RuleIssue(
                    (*loc, "columns"),
                    f"{table.name} needs column {column!r} (required columns: "
                    f"{', '.join(required_columns(table))})",
                )
            )
    return issues


def required_columns(table: Table) -> list[str]:
    """Columns an import must give: NOT NULL ones without a fallback or derivation."""
    return [
        c.name
        for c in table.columns
        if not c.nullable
        and (table.name, c.name) not in FALLBACKS
        and (table.name, c.name) not in DEFAULTS
        and (table.name, c.name) not in DERIVED
    ]


# ---------------------------------------------------------------- loading


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def resolve_mapping_path(name_or_path: str | Path) -> Path:
    """A preset name (file stem in mappings/) or a path to a mapping file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = PRESETS_DIR / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    raise RuleFileError(
        [
            RuleProblem(
                path,
                None,
                None,
                "",
                f"no mapping file and no preset named {str(name_or_path)!r}; presets: "
                f"{', '.join(preset_names())}",
            )
        ]
    )


def _raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping's YAML with everything it extends merged in (its own keys win)."""
    if path in seen:
        raise RuleFileError(
            [RuleProblem(path, None, None, "extends", "mappings extend each other in a loop")]
        )
    load_rule_file(path, ImportMapping)  # the file alone: errors with its own line numbers
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    parent = data.pop("extends", None)
    if parent is None:
        return data
    sibling = path.parent / parent  # a path is relative to the mapping that extends it
    base_path = sibling if sibling.is_file() else resolve_mapping_path(parent)
    return _merge(_raw(base_path, (*seen, path)), data)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_mapping(name_or_path: str | Path) -> ImportMapping:
    """Load a preset or mapping file, with what it extends; every problem at once."""
    path = resolve_mapping_path(name_or_path)
    data = _raw(path)
    try:
        mapping = ImportMapping.model_validate(data)
    except ValidationError as exc:
        raise RuleFileError(
            [
                RuleProblem(path, None, None, ".".join(map(str, e["loc"])), e["msg"])
                for e in exc.errors(include_url=False)
            ]
        ) from None
    problems = [
        RuleProblem(path, None, None, ".".join(map(str, i.loc)), i.message)
        for i in mapping_issues(mapping)
    ]
    if problems:
        raise RuleFileError(problems)
    return mapping


def identity_mapping(files: dict[str, tuple[Path, list[str]]]) -> ImportMapping:
    """`revops warehouse load`: table name -> (file, its header); columns as they are."""
    sources = {name: Source(file=path.name) for name, (path, _) in files.items()}
    tables = {
        name: [
            Block.model_validate(
                {
                    "from": name,
                    "columns": {c: c for c in header if c in TABLES[name].column_names},
                }
            )
        ]
        for name, (_, header) in files.items()
    }
    return ImportMapping(kind="warehouse_mapping", version=1, sources=sources, tables=tables)
