"""Browsers keep their SQLite files open and locked (Firefox in EXCLUSIVE mode). memex never opens
the original: it copies the database, with its write-ahead log (-wal) when there is one, into a
private temporary folder, and reads the copy. The original is never written to."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memex.errors import ParseError

SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == SQLITE_HEADER
    except OSError:
        return False


@contextmanager
def snapshot(path: Path, what: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a private copy of the SQLite file `path` (and its -wal), removed
    afterwards. ParseError names `what` ("Firefox history") when the copy is not a database."""
    with tempfile.TemporaryDirectory(prefix="memex-browser-") as folder:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.is_file():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        try:
            # The copy is ours: opening it read-write lets SQLite apply the -wal we copied.
            db = sqlite3.connect(copy)
        except sqlite3.Error as exc:
            raise ParseError(f"cannot open the {what} database: {exc}") from None
        try:
            db.execute("PRAGMA query_only = ON")
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            yield db
        except sqlite3.DatabaseError as exc:
            raise ParseError(f"not a readable {what} database: {exc}") from None
        finally:
            db.close()


def tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
