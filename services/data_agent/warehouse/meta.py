"""Facts about the warehouse itself (`warehouse_meta`): the day its data is "as of"."""

from __future__ import annotations

from datetime import date

from services.data_agent.warehouse.base import Warehouse
from services.data_agent.warehouse.queries import META


def read_meta(warehouse: Warehouse) -> dict[str, str]:
    return {r["key"]: r["value"] for r in warehouse.fetch_all(META)}


def meta_as_of(meta: dict[str, str]) -> date:
    """warehouse_meta's as_of (the day the data was generated or loaded for), else today."""
    value = meta.get("as_of")
    return date.fromisoformat(value) if value else date.today()
