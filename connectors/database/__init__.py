"""SQL databases as documents: one per row, one per restricted column value (see .connector)."""

from connectors.database.connector import DatabaseConnector

__all__ = ["DatabaseConnector"]
