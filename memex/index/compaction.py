"""Deleted text out of the files (issue 15, section 8). SQLite leaves deleted rows in free pages
and in the write-ahead log, and FTS5 keeps a deleted row's terms in its segments until they are
merged. memex's own databases delete securely (memex.store.sqlite.connect); this compacts what
deletion alone does not reach: the FTS5 segments, the WAL, and the embedded Chroma store's
SQLite file, whose connections are Chroma's. Chroma's HNSW segment files (binary vectors, no
text) keep a deleted vector until Chroma rewrites them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memex.store import sqlite


def compact_fts(db: sqlite3.Connection, table: str) -> None:
    """Merge an FTS5 table's segments into one: deleted rows' terms go, their pages are freed
    (and zeroed, under secure_delete)."""
    db.execute(f"INSERT INTO {table}({table}) VALUES('optimize')")


def compact_chroma(folder: Path) -> None:
    """Merge the FTS5 tables of an embedded Chroma store and VACUUM its SQLite file, so deleted
    documents are not left in free pages or in its log."""
    path = folder / "chroma.sqlite3"
    if not path.exists():
        return
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        db.execute("PRAGMA secure_delete=ON")
        tables = [
            name
            for (name, sql) in _tables(db).items()
            if sql and "USING fts5" in sql.replace("using", "USING")
        ]
        for table in tables:
            compact_fts(db, table)
        if "embeddings_queue" in _tables(db):
            _scrub_log(db)
        db.execute("VACUUM")
        sqlite.truncate_wal(db)
    finally:
        db.close()


def _tables(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())


def _scrub_log(db: sqlite3.Connection) -> None:
    """Chroma's write-ahead log (embeddings_queue) keeps each write, text included, until its
    vector segment is next persisted. A write that a later delete of the same id in the same
    collection supersedes changes nothing when the log is replayed, so its document and
    metadata are dropped (operation 3 is a delete)."""
    db.execute(
        "UPDATE embeddings_queue SET metadata = NULL WHERE operation != 3 AND metadata IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM embeddings_queue AS later WHERE later.id = embeddings_queue.id "
        "AND later.topic = embeddings_queue.topic AND later.seq_id > embeddings_queue.seq_id "
        "AND later.operation = 3)"
    )
