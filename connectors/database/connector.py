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

Which tables are read (connectors.database.selection): by default every table a declaration
covers except link tables (only keys) and tables of more than 5,000 rows; `-o tables=A,B`,
`-o tables=+A`, `-o tables=*` and `-o max_rows=N` choose otherwise. Before the first row is read,
one line per database says what will be read and skipped and how to choose: logged at INFO on the
logger "memex.connectors.database", with the Plan itself as the record's `plan` attribute.
`plan(target, **options)` gives the same Plans without reading a row.

SQLite files found in a folder walk are claimed by magic number and suffix; connectors for
particular SQLite files (browser history, notes apps) register before this one and win.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connectors.database.connection import (
    Database,
    is_database_url,
    is_sqlite_file,
    open_database,
    sqlite_url,
)
from connectors.database.declaration import Declaration, default_declaration, is_declaration, load_declaration
from connectors.database.links import fold
from connectors.database.reader import TableReader
from connectors.database.schema import Schema, TablePlan, check_declaration, plan_table
from connectors.database.selection import Plan, Selection, choose, count_rows
from memex.connector import Connector
from memex.documents import SourceDocument
from memex.errors import ParseError

log = logging.getLogger("memex.connectors.database")


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
        with self._planned() as planned:
            # Every declaration is checked against its database: only now is anything said or read.
            for _, _, plan, _ in planned:
                log.info("%s", plan.line(), extra={"plan": plan})
            for database, declaration, _, tables in planned:
                digest = declaration.digest()
                for table in tables:
                    reader = TableReader(
                        database,
                        table,
                        schema=declaration.schema,
                        digest=digest,
                        batch_rows=declaration.batch_rows,
                    )
                    yield from reader.documents()

    def plans(self) -> list[Plan]:
        """What `load` would read and skip, database by database, without reading a row."""
        with self._planned() as planned:
            return [plan for _, _, plan, _ in planned]

    def count(self) -> int | None:
        """The documents `load` will yield (rows, and the restricted values that are documents of
        their own), for progress with a total; None where the databases cannot be planned (load
        then says why)."""
        try:
            with self._planned() as planned:
                total = 0
                for database, declaration, plan, tables in planned:
                    total += plan.rows
                    schema = Schema(database, declaration.schema)
                    for table in tables:
                        if table.separate and table.query is None:
                            total += count_rows(schema, table.table, table.separate)
                return total
        except (ParseError, OSError, ValueError):
            return None

    @contextmanager
    def _planned(self) -> Iterator[list[tuple[Database, Declaration, Plan, list[TablePlan]]]]:
        """Each database opened and planned (nothing read yet), closed on the way out."""
        selection = Selection.from_options(self.options)
        databases: list[Database] = []
        try:
            planned = []
            for declaration, base in self.declarations():
                database = open_database(
                    declaration.url,
                    name=declaration.name,
                    password_env=declaration.password_env,
                    base=base,
                    origin=declaration.origin,
                )
                databases.append(database)
                schema = Schema(database, declaration.schema)
                check_declaration(schema, declaration)
                shown = database.path.name if database.path is not None else database.display
                plan, specs = choose(schema, declaration, selection, name=shown)
                tables = [plan_table(schema, declaration, spec) for spec in specs]
                plan, tables = fold(schema, declaration, plan, specs, tables)
                planned.append((database, declaration, plan, tables))
            yield planned
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
