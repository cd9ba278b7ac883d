"""Registers the connectors that ship with memex, through the same hook as plugins."""

from memex.hookspecs import hookimpl


@hookimpl
def register_connectors(register):
    from connectors.beir import BeirConnector
    from connectors.database import DatabaseConnector
    from connectors.files import FilesConnector

    register(BeirConnector)
    # Claims any SQLite file: connectors for particular SQLite files (browser history...) go above.
    register(DatabaseConnector)
    register(FilesConnector)
