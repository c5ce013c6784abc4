"""A batch of records as one database transaction, with a savepoint per record.

One commit for the whole batch instead of one (or several) per record, while a record that
fails still has no effect: its savepoint is rolled back and its exception stands for it, so
the caller (the runtime's batch contract, services/common/records.py) handles it alone. The
records after it with the same key are not attempted (`Deferred`): they must run after it,
in order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from services.common.records import Deferred
from services.common.stores.database import Database, StoreUnavailableError

_Item = TypeVar("_Item")
_Out = TypeVar("_Out")


def in_one_transaction(
    db: Database,
    items: Sequence[_Item],
    step: Callable[[_Item], _Out],
    key_of: Callable[[_Item], Hashable],
) -> list[_Out | BaseException]:
    """`step(item)` for every item in order, all in one transaction that commits before this
    returns; per item its result, or the exception it raised (its writes undone), or
    `Deferred` when an earlier item of the same key failed.

    `StoreUnavailableError` (and anything that is not an `Exception`) aborts the whole call
    with nothing committed: the database is out of reach, which is no record's fault.
    """
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
