"""Read an import's source files into Arrow, each row tagged with where it came from.

CSV is read by pyarrow, every column as text (an empty cell is empty, "NA" is text), with a
`_file` column (the file name as the user sees it) and a `_line` column: the line on which
the record starts, header = line 1, as an editor shows it. Blank lines and values spanning
several lines are counted exactly (a second pass with Python's csv module, only when the
file has them). Rows with the wrong number of cells are collected as `BadRow`s instead of
failing the whole file. Parquet is read as it is, `_line` being the row number.
"""

from __future__ import annotations

import csv
import fnmatch
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from services.data_agent.warehouse.mapping import Source

if TYPE_CHECKING:
    import pyarrow as pa

LINE_COL = "_line"
FILE_COL = "_file"
SUFFIXES = (".csv", ".parquet")
_BOM = b"\xef\xbb\xbf"


class SourceError(ValueError):
    """A whole file cannot be used (missing, unreadable, no header); one line."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.message = message


@dataclass(frozen=True)
class BadRow:
    """A record whose number of cells differs from the header's."""

    file: str
    line: int
    text: str
    expected: int
    actual: int


@dataclass
class SourceData:
    name: str
    files: list[str]
    table: pa.Table
    header: list[str]
    bad_rows: list[BadRow] = field(default_factory=list)
    line_word: str = "line"  # "row" for Parquet (no header line)


def find_files(folder: Path, spec: Source) -> list[Path]:
    """Files of the import folder matching the source's name or pattern (case-insensitive)."""
    names = sorted(p for p in folder.iterdir() if p.is_file())
    found = [p for p in names if fnmatch.fnmatch(p.name.lower(), spec.file.lower())]
    if len(found) > 1 and not spec.multiple:
        raise SourceError(
            spec.file,
            f"{len(found)} files match ({', '.join(p.name for p in found)}); keep one or "
            "set `multiple: true` on the source",
        )
    return found


def read_source(name: str, paths: list[Path], spec: Source) -> SourceData:
    """All files of one source, stacked (they must share the header). Headers are matched
    without regard to case and surrounding spaces, and renamed by the source's aliases."""
    import pyarrow as pa

    parts = [_canonical(_read_file(p, spec), spec) for p in paths]
    header = parts[0].header
    for part in parts[1:]:
        if part.header != header:
            raise SourceError(
                part.files[0], f"header differs from {parts[0].files[0]}'s; cannot stack them"
            )
    table = pa.concat_tables([p.table for p in parts]) if len(parts) > 1 else parts[0].table
    return SourceData(
        name=name,
        files=[f for p in parts for f in p.files],
        table=table,
        header=header,
        bad_rows=[b for p in parts for b in p.bad_rows],
        line_word=parts[0].line_word,
    )


def _canonical(data: SourceData, spec: Source) -> SourceData:
    """Rename headers to the names the mapping uses: an alias present in the file becomes
    its canonical name, and a header differing only in case takes the mapping's spelling."""
    by_fold = {h.casefold(): h for h in data.header}
    renames: dict[str, str] = {}
    for canonical, alternatives in spec.aliases.items():
        if canonical in data.header:
            continue
        for candidate in [canonical, *alternatives]:
            found = by_fold.get(candidate.strip().casefold())
            if found is not None and found not in renames:
                renames[found] = canonical
                break
    if not renames:
        return data
    header = [renames.get(h, h) for h in data.header]
    names = [renames.get(n, n) for n in data.table.column_names]
    data.table = data.table.rename_columns(names)
    data.header = header
    return data


def file_header(path: Path, spec: Source) -> list[str]:
    """The column names of a file, without reading its rows."""
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(path.name, f"cannot read Parquet file: {exc}") from exc
    with path.open("rb") as fh:
        first = fh.readline()
    if first.startswith(_BOM):
        first = first[len(_BOM) :]
    return _read_header(first, spec, path.name)


def _read_file(path: Path, spec: Source) -> SourceData:
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path)
    return _read_csv(path, spec)


def _read_parquet(path: Path) -> SourceData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(path.name, f"cannot read Parquet file: {exc}") from exc
    header = list(table.column_names)
    rows = pa.array(range(1, table.num_rows + 1), type=pa.int64())
    table = table.append_column(LINE_COL, rows).append_column(
        FILE_COL, pa.array([path.name] * table.num_rows, type=pa.string())
    )
    return SourceData(path.stem, [path.name], table, header, line_word="row")


def _decode(path: Path, spec: Source) -> bytes:
    """The file as UTF-8 bytes without a byte-order mark, cut at a report footer."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(path.name, f"cannot read file: {exc.strerror}") from exc
    if spec.encoding.replace("-", "").lower() not in ("utf8", "utf8sig"):
        try:
            raw = raw.decode(spec.encoding).encode("utf-8")
        except (LookupError, UnicodeDecodeError) as exc:
            raise SourceError(path.name, f"cannot decode as {spec.encoding}: {exc}") from exc
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    if spec.stop_at_blank_line:
        normalized = raw.replace(b"\r\n", b"\n")
        cut = normalized.find(b"\n\n")
        if cut >= 0:
            raw = normalized[: cut + 1]
    return raw


def _read_header(raw: bytes, spec: Source, file: str) -> list[str]:
    first = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    try:
        header = next(csv.reader([first], delimiter=spec.delimiter), [])
    except csv.Error as exc:
        raise SourceError(file, f"cannot read the header line: {exc}") from exc
    header = [h.strip() for h in header]
    if not any(header):
        raise SourceError(file, "empty file (no header line)")
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise SourceError(file, f"two columns are named {h!r} (line 1)")
        seen.add(h)
    return header


def _read_csv(path: Path, spec: Source) -> SourceData:
    import pyarrow as pa

    raw = _decode(path, spec)
    header = _read_header(raw, spec, path.name)
    table, bad = _parse_csv(raw, header, spec, path.name, threads=True)
    if any(number <= 0 for number, *_ in bad):
        # a multi-threaded parse does not know a bad row's record number: parse again
        table, bad = _parse_csv(raw, header, spec, path.name, threads=False)
    physical = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    if not bad and physical == table.num_rows + 1:
        lines = pa.array(range(2, table.num_rows + 2), type=pa.int64())
        bad_rows: list[BadRow] = []
    else:
        starts = _record_start_lines(raw, spec)
        bad_numbers = {number for number, *_ in bad}
        good = [s for n, s in enumerate(starts, start=1) if n > 1 and n not in bad_numbers]
        if len(good) != table.num_rows:  # the two parsers disagree: say so, do not guess
            raise SourceError(
                path.name,
                f"cannot number the lines ({len(good)} records vs {table.num_rows} rows); "
                "check quoting",
            )
        lines = pa.array(good, type=pa.int64())
        bad_rows = [
            BadRow(path.name, starts[n - 1] if 0 < n <= len(starts) else 0, text, exp, act)
            for n, text, exp, act in bad
        ]
    table = table.append_column(LINE_COL, lines).append_column(
        FILE_COL, pa.array([path.name] * table.num_rows, type=pa.string())
    )
    return SourceData(path.stem, [path.name], table, header, bad_rows)


def _parse_csv(
    raw: bytes, header: list[str], spec: Source, file: str, *, threads: bool
) -> tuple[pa.Table, list[tuple[int, str, int, int]]]:
    """Every cell as text; rows with the wrong number of cells set aside with their record
    number (header = record 1)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad: list[tuple[int, str, int, int]] = []

    def on_bad_row(row: pacsv.InvalidRow) -> str:
        bad.append((row.number or 0, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=threads),
            parse_options=pacsv.ParseOptions(
                delimiter=spec.delimiter, newlines_in_values=True, invalid_row_handler=on_bad_row
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise SourceError(file, f"cannot read CSV: {exc}") from exc
    return table, bad


def _record_start_lines(raw: bytes, spec: Source) -> list[int]:
    """The line each non-blank CSV record starts on (the header is record 1)."""
    reader = csv.reader(
        io.StringIO(raw.decode("utf-8", errors="replace")), delimiter=spec.delimiter
    )
    starts: list[int] = []
    consumed = 0
    for record in reader:
        start = consumed + 1
        consumed = reader.line_num
        if record:
            starts.append(start)
    return starts
