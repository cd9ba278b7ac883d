"""SQL databases: SQLite files and any server SQLAlchemy reaches (PostgreSQL tested).

Targets:
  - a declaration file NAME.database.yaml (see connectors.database.declaration), or a folder that
    holds one: the databases it declares are read (the folder's other files are not);
  - a SQLite file (.sqlite, .sqlite3, .db, .db3 with SQLite's header): read with the declaration
    beside it that names it, else every table with the defaults;
  - a database URL (postgresql+psycopg://user@host:5432/db): every table with the defaults. The
    password comes from the environment (PGPASSWORD, ~/.pgpass), never from the URL.

Each row is a document `db:<database>/<table>/<key>`; each restricted column with a value is a
document of its own, `db:<database>/<table>/<key>#<column>`, with the attribute `column` for the
policy to label. Everything the declaration names is checked against the database before the first
row is read, so a bad declaration fails whole, with nothing half-written.

SQLite files found in a folder walk are claimed by magic number and suffix; connectors for
particular SQLite files (browser history, notes apps) register before this one and win.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from connectors.database.connection import (
    Database,
    is_database_url,
    is_sqlite_file,
    open_database,
    sqlite_url,
)
from connectors.database.declaration import Declaration, default_declaration, is_declaration, load_declaration
from connectors.database.reader import TableReader
from connectors.database.schema import TablePlan, plan_tables
from memex.connector import Connector
from memex.documents import SourceDocument
from memex.errors import ParseError


class DatabaseConnector(Connector):
    name = "database"

    @classmethod
    def accepts(cls, target: str) -> bool:
        return is_database_url(target) or super().accepts(target)

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        return is_declaration(path) or is_sqlite_file(path)

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        return bool(_declarations_in(path))

    def load(self) -> Iterator[SourceDocument]:
        databases: list[Database] = []
        try:
            planned: list[tuple[Database, Declaration, list[TablePlan]]] = []
            for declaration, base in self.declarations():
                database = open_database(
                    declaration.url,
                    name=declaration.name,
                    password_env=declaration.password_env,
                    base=base,
                    origin=declaration.origin,
                )
                databases.append(database)
                planned.append((database, declaration, plan_tables(database, declaration)))
            # Every declaration is checked against its database: only now is anything read.
            for database, declaration, plans in planned:
                digest = declaration.digest()
                for plan in plans:
                    reader = TableReader(
                        database,
                        plan,
                        schema=declaration.schema,
                        digest=digest,
                        batch_rows=declaration.batch_rows,
                    )
                    yield from reader.documents()
        finally:
            for database in databases:
                database.close()

    def declarations(self) -> list[tuple[Declaration, Path | None]]:
        """(declaration, folder its relative paths start from) for each database the target names."""
        target = self.target
        explicit = self.options.get("declaration")
        if explicit:
            path = Path(explicit).expanduser().resolve()
            declaration = load_declaration(path)
            if is_database_url(target):
                declaration = _with_url(declaration, target)
            elif Path(target).is_file():
                declaration = _with_url(declaration, sqlite_url(Path(target).resolve()))
            return [(declaration, path.parent)]
        if is_database_url(target):
            return [(default_declaration(target, origin=target), None)]
        path = Path(target).expanduser().resolve()
        if path.is_dir():
            found = _declarations_in(path)
            if not found:
                raise ParseError(f"{path}: no *.database.yaml declaration in this folder")
            return [(load_declaration(p), path) for p in found]
        if is_declaration(path):
            return [(load_declaration(path), path.parent)]
        for candidate in _declarations_in(path.parent):
            declaration = load_declaration(candidate)
            if _names_file(declaration, path, candidate.parent):
                return [(declaration, candidate.parent)]
        return [(default_declaration(sqlite_url(path), origin=str(path)), None)]


def _declarations_in(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [Path(e.path) for e in entries if is_declaration(Path(e.name)) and e.is_file()]


def _names_file(declaration: Declaration, path: Path, base: Path) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(declaration.url)
    except ArgumentError:
        return False
    if url.get_backend_name() != "sqlite" or not url.database:
        return False
    return (base / Path(url.database).expanduser()).resolve() == path


def _with_url(declaration: Declaration, url: str) -> Declaration:
    from dataclasses import replace

    return replace(declaration, url=url)
