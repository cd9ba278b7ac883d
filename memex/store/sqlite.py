"""The one way memex opens a SQLite database of its own (the ledger, the lexical index, the
audit log, the service's tokens): a private file (0600; SQLite gives its -wal and -shm files the
same mode), WAL, secure deletion (deleted rows are overwritten with zeros, not left in free
pages), explicit transactions, and numbered migrations applied once each, in order, each in its
own transaction, recorded in the database's `migrations` table."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from memex.store.filemodes import create_private

Migration = Callable[[sqlite3.Connection], None]


def connect(
    path: Path, *, migrations: Sequence[Migration] = (), foreign_keys: bool = False
) -> sqlite3.Connection:
    """The database at `path` (made if missing) with every migration applied. Migrations are
    named functions (`m001_initial`, ...): the name is what is recorded, so never rename one."""
    create_private(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if foreign_keys:
        db.execute("PRAGMA foreign_keys=ON")
    migrate(db, migrations)
    return db


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations not yet recorded; returns their names."""
    if not migrations:
        return []
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in db.execute("SELECT name FROM migrations")}
    applied = []
    for migration in migrations:
        if migration.__name__ in done:
            continue
        with transaction(db):
            # Another connection (a second thread, a second process) may have applied it since
            # the read above: asked again under the write lock, it is applied exactly once.
            if db.execute("SELECT 1 FROM migrations WHERE name = ?", (migration.__name__,)).fetchone():
                continue
            migration(db)
            db.execute("INSERT INTO migrations VALUES (?, ?)", (migration.__name__, time.time()))
        applied.append(migration.__name__)
    return applied


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def script(db: sqlite3.Connection, sql: str) -> None:
    """Run statements one by one (executescript would commit the migration's transaction)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def truncate_wal(db: sqlite3.Connection) -> None:
    """Copy the write-ahead log into the database and empty it: old page images in it (deleted
    text) go too. Busy readers leave it for the next time."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
