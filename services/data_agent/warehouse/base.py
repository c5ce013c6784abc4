"""The read interface every warehouse adapter provides."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from services.data_agent.warehouse.queries import Query

if TYPE_CHECKING:
    from contracts.series import UsageSeries

Row = dict[str, Any]
#: A result as one sequence per column, of the values `fetch_all` gives (NULL: None).
Columns = dict[str, Sequence[Any]]
Params = Mapping[str, Any]

DEFAULT_CHUNK_ROWS = 10_000


#: How to make a warehouse, for every message about a missing or empty one.
CREATE_HINT = (
    "create one with `revops warehouse seed` (demo data), `revops warehouse import "
    "--mapping PRESET --from DIR` (a CRM export; presets: `revops warehouse mappings`) or "
    "`revops warehouse load --from DIR`"
)


class WarehouseError(RuntimeError):
    """The warehouse could not answer (missing or empty file, engine error)."""


@runtime_checkable
class Warehouse(Protocol):
    """Read-only access to the warehouse through the named queries of `queries.py`."""

    engine: str
    #: Most ids one set-based query binds (`queries.SetQuery`); more are sent in chunks.
    max_bound_ids: int

    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        """All rows of `query` as dicts keyed by column name."""
        ...

    def fetch_chunks(
        self, query: Query, params: Params | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> Iterator[list[Row]]:
        """Rows of `query` in chunks of at most `chunk_rows`, for large results."""
        ...

    def fetch_columns(self, query: Query, params: Params | None = None) -> Columns:
        """All rows of `query` as one sequence per column (a long result of few columns, such
        as a year of daily usage: no dict per row)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class UsageSeriesSource(Protocol):
    """A warehouse that also answers accounts' usage as series at once, with no rows to
    convert: the data agent's copy (`replica.py`, its usage packed by `packed_usage.py`)."""

    def usage_series(
        self, account_ids: Sequence[str], after: date, as_of: date
    ) -> dict[str, UsageSeries]:
        """The usage after `after` up to `as_of` of those of `account_ids` it can answer, as
        the usage query and `convert.to_usage_series` would; the others are left out."""
        ...


def rows_to_columns(rows: list[Row]) -> Columns:
    """`fetch_columns` for an engine that returns rows as dicts (no rows: no columns)."""
    names = list(rows[0]) if rows else []
    return {name: [row[name] for row in rows] for name in names}
