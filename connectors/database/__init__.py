"""SQL databases as documents: one per row, one per restricted column value (see .connector)."""

from __future__ import annotations

from typing import Any

from connectors.database.connector import DatabaseConnector
from connectors.database.selection import Plan, TableChoice

__all__ = ["DatabaseConnector", "Plan", "TableChoice", "plan"]


def plan(target: str, **options: Any) -> list[Plan]:
    """What ingesting `target` with `options` (as `-o KEY=VALUE` gives them) would read and skip,
    one Plan per database, without reading a row. Raises ParseError as ingest would."""
    return DatabaseConnector(target, **options).plans()
