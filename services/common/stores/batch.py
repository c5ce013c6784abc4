"""A batch of records as one database transaction: set-based first, record by record when a
record fails.

First try (`Database.all_at_once`): every record's step runs in one transaction with no
savepoint, the repositories' new rows and row updates deferred and written set-based (one
multi-row INSERT per table, one `UPDATE ... FROM (VALUES ...)` per table whose row count
is checked: a row not as the batch read it is a conflict), and `prepare` may read what the
whole batch needs in a few statements (locking it where the steps would). That is the
common case, and the cheap one: a savepoint per record costs a round trip, and on
PostgreSQL a subtransaction, per record.

When any step fails (or the deferred writes do), that try is rolled back whole and the
batch runs again record by record: one transaction, a savepoint per record, so a record
that fails still has no effect: its savepoint is rolled back and its exception stands for
it, and the caller (the runtime's batch contract, services/common/records.py) handles it
alone. The records after it with the same key are not attempted (`Deferred`): they must
run after it, in order. Steps must therefore have no effect outside the database (the
first try's outputs are dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import structlog

from services.common.records import Deferred
from services.common.stores.database import Database, StoreUnavailableError

_Item = TypeVar("_Item")
_Out = TypeVar("_Out")

log = structlog.get_logger(__name__)


def in_one_transaction(
    db: Database,
    items: Sequence[_Item],
    step: Callable[[_Item], _Out],
    key_of: Callable[[_Item], Hashable],
    prepare: Callable[[Sequence[_Item]], None] | None = None,
) -> list[_Out | BaseException]:
    """`step(item)` for every item in order, all in one transaction that commits before this
    returns; per item its result, or the exception it raised (its writes undone), or
    `Deferred` when an earlier item of the same key failed. `prepare(items)`: set-based
    reads for the first try (see the module docstring).

    `StoreUnavailableError` (and anything that is not an `Exception`) aborts the whole call
    with nothing committed: the database is out of reach, which is no record's fault.
    """
    if items:
        try:
            return all_at_once(db, items, step, prepare)
        except StoreUnavailableError:
            raise
        except Exception as exc:
            log.info("batch_retried_record_by_record", records=len(items), reason=str(exc))
    return record_by_record(db, items, step, key_of)


def all_at_once(
    db: Database,
    items: Sequence[_Item],
    step: Callable[[_Item], _Out],
    prepare: Callable[[Sequence[_Item]], None] | None = None,
) -> list[_Out | BaseException]:
    """Every step in one flat transaction; raises (nothing committed) when any fails."""
    with db.all_at_once():
        if prepare is not None:
            prepare(items)
        return [step(item) for item in items]


def record_by_record(
    db: Database,
    items: Sequence[_Item],
    step: Callable[[_Item], _Out],
    key_of: Callable[[_Item], Hashable],
) -> list[_Out | BaseException]:
    """One transaction with a savepoint per item (see `in_one_transaction`)."""
    outcomes: list[_Out | BaseException] = []
    failed: set[Hashable] = set()
    with db.transaction():
        for item in items:
            key = key_of(item)
            if key in failed:
                outcomes.append(Deferred())
                continue
            try:
                with db.transaction():  # a savepoint: this item's writes only
                    outcomes.append(step(item))
            except StoreUnavailableError:
                raise
            except Exception as exc:
                failed.add(key)
                outcomes.append(exc)
    return outcomes
